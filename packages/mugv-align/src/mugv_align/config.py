"""The configuration of an alignment run: every mugv-train section plus an `align` section.

    cfg = load_align_config("debug", overrides=["align.method=dpo", "align.beta=2000"])

`AlignConfig` is a `TrainConfig` (model, data, objective, optim, stages, parallel, checkpoint,
ema, metrics, faults keep their meaning and validation) with one more section:

    [align]
    method = "dpo"            # sft | dpo | kto | rdpo
    beta = 5000.0             # on per-element mean squared velocity errors (docs/align.md)
    sft_weight = 0.1          # weight of the flow-matching (SFT) loss kept as a regulariser
    [[align.sources]]         # annotation sources (preference shards); none = data.shards
    name = "human"
    shards = "pairs/human"
    [align.interleave.polish] # per curriculum stage: relative weight of each source's batches
    human = 3.0
    auto = 1.0

`data.shards` holds what a single-source run reads: preference shards (dpo, kto) or latent
shards (sft, and the real videos of rdpo).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mugv_train.config import TrainConfig

METHODS = ("sft", "dpo", "kto", "rdpo")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceConfig(_Strict):
    """One annotation source: a set of preference shards with a default interleave weight."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9_-]+$")
    shards: str | list[str] = Field(..., description="preference shards: folder, glob or list")
    weight: float = Field(1.0, ge=0, description="share of batches when a stage names no mix")


class KTOConfig(_Strict):
    """Weights of desirable (pass) and undesirable (fail) samples (Ethayarajh et al. 2024)."""

    lambda_desirable: float = Field(1.0, ge=0)
    lambda_undesirable: float = Field(1.0, ge=0)


class RDPOConfig(_Strict):
    """Rounds of policy samples used as the rejected side against real videos."""

    round_steps: int = Field(50, gt=0, description="optimizer steps per round of samples")
    sampling_steps: int = Field(25, gt=0, description="Euler steps per generated sample")
    cfg_scale: float = Field(4.0, ge=0, description="classifier-free guidance of the samples")


class AlignSection(_Strict):
    method: Literal["sft", "dpo", "kto", "rdpo"] = "dpo"
    beta: float = Field(5000.0, ge=0, description="inverse temperature (0 = SFT regulariser only)")
    sft_weight: float = Field(
        0.1, ge=0, description="weight of the SFT loss added as a regulariser"
    )
    kto: KTOConfig = Field(default_factory=KTOConfig)
    rdpo: RDPOConfig = Field(default_factory=RDPOConfig)
    sources: list[SourceConfig] = Field(default_factory=list)
    interleave: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="stage name -> {source name: weight}"
    )


class AlignConfig(TrainConfig):
    """`AlignConfig.preset("debug", run_dir=...)`, `AlignConfig.load(source, overrides)` as for
    every run config (`mugv_train.config.PresetConfig`); presets ship in `mugv_align/configs/`."""

    presets_package: ClassVar[str] = "mugv_align.configs"
    run_dir: str = "runs/align"
    align: AlignSection = Field(default_factory=AlignSection)

    @model_validator(mode="after")
    def _check_align(self) -> AlignConfig:
        a = self.align
        names = [s.name for s in a.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"align.sources: names must be unique, got {names}")
        stages = {s.name for s in self.stages}
        for stage, mix in a.interleave.items():
            if stage not in stages:
                raise ValueError(f"align.interleave.{stage}: no stage of that name ({sorted(stages)})")  # fmt: skip
            if unknown := set(mix) - set(names):
                raise ValueError(f"align.interleave.{stage}: unknown sources {sorted(unknown)} (align.sources: {names})")  # fmt: skip
            if sum(mix.values()) <= 0:
                raise ValueError(f"align.interleave.{stage}: weights sum to 0")
        if a.sources and a.method in ("sft", "rdpo"):
            raise ValueError(
                f"align.sources: method {a.method!r} reads latent shards from data.shards "
                "(or stages.N.shards); sources are preference shards for dpo and kto"
            )
        if a.sources and sum(s.weight for s in a.sources) <= 0:
            raise ValueError("align.sources: weights sum to 0")
        return self


def preset_names() -> list[str]:
    return AlignConfig.preset_names()


def align_config_from_dict(tree: dict, source: str = "config") -> AlignConfig:
    return AlignConfig.from_dict(tree, source)


def load_align_config(source: str, overrides: list[str] | tuple[str, ...] = ()) -> AlignConfig:
    """A preset name, TOML or JSON path, plus `dotted.key=value` overrides -> validated config."""
    return AlignConfig.load(source, overrides)
