"""The typed configuration of a VAE training run (`mugv-train vae`), read from TOML with dotted
overrides exactly like the DiT config (`load_vae_config("vae-tiny", ["optim.lr=2e-4"])`).

It reuses the engine's optimiser, parallel, checkpoint, metrics and fault sections; the model,
data, loss, discriminator, stage and held-out-evaluation sections are the VAE's own. Shipped
presets live in `mugv_train/vae/configs/` (`vae-tiny`: CPU, from scratch; `vae-mugv`: the
released architecture at 256p).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mugv_train.config import (
    CheckpointConfig,
    FaultConfig,
    MetricsConfig,
    OptimConfig,
    ParallelConfig,
    PresetConfig,
)
from mugv_vae import LossConfig, VAEConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VAEModelConfig(_Strict):
    preset: str = Field("tiny", description="mugv_vae.VAEConfig preset: mugv | tiny")
    init_from: str | None = Field(
        None, description="start from a mugv-vae release folder or the released vae.pt"
    )
    freeze_spatial: bool = Field(
        False,
        description="train only the temporal stage (MUG-V kept its SDXL 2D stage frozen); "
        "use with init_from weights",
    )
    lpips: str | None = Field(
        None, description="local LPIPS-VGG safetensors file; needed when loss.perceptual_weight > 0"
    )
    frame_batch: int = Field(
        64,
        ge=1,
        description="frames per call of the frame-wise 2D stage in training and evaluation. "
        "The backward keeps every frame's activations whatever the split, so fewer, larger calls "
        "only save time (27 % of a tiny-VAE CPU step against mugv-vae's default of 8)",
    )

    @field_validator("init_from", "lpips", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        return None if v == "" else v  # `--set model.init_from=""` clears a preset's path

    def vae_config(self) -> VAEConfig:
        return VAEConfig.preset(self.preset)


class ClipDataConfig(_Strict):
    """Raw shards (mugv-raw/1) decoded to pixel clips of one size and length."""

    shards: str | list[str] = Field(..., description="raw shards: folder, glob or list")
    heldout: str | list[str] | None = Field(
        None, description="raw shards of held-out clips for PSNR/SSIM; None = no evaluation"
    )
    seed: int = 0
    width: int = Field(256, ge=8, description="clips are resized (short side) and centre-cropped")
    height: int = Field(256, ge=8)
    frames: int = Field(17, ge=1, description="frames per clip (8k+1 or a multiple of 8)")
    batch_size: int = Field(1, ge=1, description="clips per batch and rank")
    num_workers: int = Field(2, ge=0)

    @model_validator(mode="after")
    def _check(self) -> ClipDataConfig:
        if self.width % 8 or self.height % 8:
            raise ValueError(
                f"width={self.width}, height={self.height}: use multiples of 8 (the VAE "
                "reconstructs 8·floor(side/8) pixels)"
            )
        return self


class DiscriminatorConfig(_Strict):
    """PatchDiscriminator3D and its own AdamW (GAN stages only)."""

    channels: int = Field(64, ge=1)
    n_layers: int = Field(3, ge=2)
    groups: int = Field(32, ge=1)
    lr: float = Field(1e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.9)


class VAEStageConfig(_Strict):
    """One row of the stage table: a reconstruction stage, or a GAN fine-tuning stage."""

    name: str
    steps: int = Field(..., gt=0)
    lr: float | None = Field(None, gt=0)
    gan: bool = Field(False, description="train the discriminator and add the GAN term")
    gan_weight: float | None = Field(None, ge=0, description="γ of this stage (loss.gan_weight)")


class EvalConfig(_Strict):
    every: int = Field(500, ge=1, description="steps between held-out PSNR/SSIM evaluations")
    clips: int = Field(8, ge=1, description="held-out clips (the first ones of data.heldout)")


class VAETrainConfig(PresetConfig):
    presets_package: ClassVar[str] = "mugv_train.vae.configs"

    run_dir: str = "runs/vae"
    seed: int = 0
    model: VAEModelConfig = Field(default_factory=VAEModelConfig)
    data: ClipDataConfig
    loss: LossConfig = Field(default_factory=LossConfig)
    discriminator: DiscriminatorConfig = Field(default_factory=DiscriminatorConfig)
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(lr=1e-4, eps=1e-8))
    stages: list[VAEStageConfig] = Field(..., min_length=1)
    parallel: ParallelConfig = Field(
        default_factory=lambda: ParallelConfig(reshard_after_forward=False)
    )
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    faults: FaultConfig = Field(default_factory=FaultConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    autocast: bool = Field(
        False, description="bf16 autocast for the forward passes (parameters stay float32)"
    )
    export: bool = Field(True, description="write RUN_DIR/release (save_pretrained) when done")

    @model_validator(mode="after")
    def _check(self) -> VAETrainConfig:
        try:
            self.model.vae_config()
        except ValueError as e:
            raise ValueError(f"model.preset: {e}") from None
        if self.model.freeze_spatial and self.model.init_from is None:
            raise ValueError(
                "model.freeze_spatial=true keeps the 2D stage as initialised: give model.init_from "
                "(the released vae.pt or a release with the SDXL spatial weights)"
            )
        if self.loss.perceptual_weight > 0 and self.model.lpips is None:
            raise ValueError(
                f"loss.perceptual_weight={self.loss.perceptual_weight} needs LPIPS weights: set "
                "model.lpips=PATH (a local file, see mugv-vae's tools/convert_lpips.py) or "
                "loss.perceptual_weight=0"
            )
        p = self.parallel
        if p.cp != 1 or p.activation_checkpointing != "none" or p.compile:
            raise ValueError(
                "parallel.cp, parallel.activation_checkpointing and parallel.compile apply to the "
                "DiT only: the VAE is one FSDP2 unit (set them to 1, 'none', false)"
            )
        if p.param_dtype != "float32":
            raise ValueError(
                "parallel.param_dtype must be float32 for the VAE (it runs in its float32 latent "
                "buffers' dtype); set autocast=true for bf16 compute"
            )
        if p.reshard_after_forward:
            raise ValueError(
                "parallel.reshard_after_forward must be false for the VAE: it is one FSDP2 unit "
                "whose backward needs all its parameters right after the forward (and the adaptive "
                "GAN weight differentiates w.r.t. the gathered decoder weight)"
            )
        if self.optim.grad_accum != 1:
            raise ValueError(
                "optim.grad_accum must be 1 for VAE training (the GAN step alternates two "
                "optimisers per batch); raise data.batch_size instead"
            )
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique, got {names}")
        side = 2 ** (self.discriminator.n_layers + 2)
        if any(s.gan for s in self.stages) and min(self.data.width, self.data.height) < side:
            raise ValueError(
                f"GAN stages need clips of at least {side} px per side for a discriminator of "
                f"{self.discriminator.n_layers} layers; lower discriminator.n_layers or enlarge "
                "data.width/height"
            )
        return self


def preset_names() -> list[str]:
    return VAETrainConfig.preset_names()


def vae_config_from_dict(tree: dict[str, Any], source: str = "config") -> VAETrainConfig:
    return VAETrainConfig.from_dict(tree, source)


def load_vae_config(source: str, overrides: list[str] | tuple[str, ...] = ()) -> VAETrainConfig:
    """A preset name or TOML/JSON path, plus `dotted.key=value` overrides -> validated config."""
    return VAETrainConfig.load(source, overrides)
