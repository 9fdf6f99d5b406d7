"""The one typed configuration of a training run, read from TOML with dotted overrides.

    cfg = load_config("2b-360p", overrides=["optim.lr=2e-4", "stages.0.steps=500"])

A config names a shipped preset (`debug`, `2b-360p`, `10b-720p`: files in `mugv_train/configs/`)
or a TOML path. Overrides are `dotted.path=value` with TOML values (`1e-4`, `true`, `"text"`,
`[1, 2]`); list items are addressed by index (`stages.1.lr=5e-5`). Unknown fields are errors
that name the field. The resolved config is written into every run folder and checkpoint.
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mugv_dit import DiTConfig
from mugv_dit.flow import FlowSchedule

if sys.version_info >= (3, 11):
    from typing import Self

    import tomllib
else:  # pragma: no cover
    import tomli as tomllib
    from typing_extensions import Self


class ConfigError(ValueError):
    """A config file or override is wrong; the message says which field and what to do."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(_Strict):
    preset: str = "debug"
    overrides: dict[str, Any] = Field(default_factory=dict, description="DiTConfig fields")
    init_from: str | None = Field(
        None, description="start from a mugv release folder or the released dit.pt"
    )

    def dit_config(self) -> DiTConfig:
        return DiTConfig.preset(self.preset, **self.overrides)  # type: ignore[arg-type]


class DataConfig(_Strict):
    shards: str | list[str] = Field(..., description="latent shards: folder, glob or list")
    seed: int = 0
    num_workers: int = Field(2, ge=0)
    vae_id: str | None = Field(None, description="refuse shards encoded with another VAE")
    text_encoder_id: str | None = None
    text_buckets: tuple[int, ...] = Field(
        (64, 128, 192, 256, 300),
        description="text is padded to the smallest bucket that fits (stable compiled shapes)",
    )


class TaskMix(_Strict):
    """Relative weights of the video tasks (images are always text-to-image)."""

    t2v: float = Field(0.7, ge=0)
    i2v: float = Field(0.2, ge=0, description="first latent frame given clean")
    random_frame: float = Field(0.1, ge=0, description="one random latent frame given clean")

    @model_validator(mode="after")
    def _check(self) -> TaskMix:
        if self.t2v + self.i2v + self.random_frame <= 0:
            raise ValueError("task_mix weights sum to 0; give at least one task a weight")
        return self


class ObjectiveConfig(_Strict):
    flow: FlowSchedule = Field(default_factory=FlowSchedule)
    task_mix: TaskMix = Field(default_factory=TaskMix)
    caption_dropout: float = Field(
        0.0, ge=0, le=1, description="share of samples trained with the null text"
    )
    null_text: str | None = Field(
        None,
        description="safetensors file with 'text' [L, D] (e.g. precompute's null_text.safetensors); "
        "None: one all-zero token",
    )


class OptimConfig(_Strict):
    """AdamW; the defaults are MUG-V's released fine-tuning settings (SPEC §6)."""

    lr: float = Field(1e-5, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-10
    weight_decay: float = 0.0
    grad_clip: float = Field(1.0, gt=0)
    warmup_steps: int = Field(100, ge=0)
    schedule: Literal["cosine", "constant"] = "cosine"
    min_lr_ratio: float = Field(0.0, ge=0, le=1)
    grad_accum: int = Field(1, ge=1, description="micro-batches per optimizer step")
    fused: bool | None = Field(None, description="fused AdamW; None = when on CUDA")


class StageConfig(_Strict):
    """One row of the curriculum. Unset fields fall back to data/optim/objective."""

    name: str
    steps: int = Field(..., gt=0)
    shards: str | list[str] | None = None
    image_ratio: float | None = Field(None, ge=0, le=1, description="share of image batches")
    max_tokens: int = Field(65536, gt=0, description="latent patch tokens per batch and rank")
    max_batch_size: int = Field(64, gt=0)
    lr: float | None = Field(None, gt=0)
    task_mix: TaskMix | None = None


class ParallelConfig(_Strict):
    dp_replicate: int = Field(1, ge=1, description="HSDP replicas (e.g. nodes); 1 = plain FSDP")
    cp: int = Field(1, ge=1, description="context-parallel degree (Ulysses)")
    param_dtype: Literal["bfloat16", "float32"] = "bfloat16"
    reduce_dtype: Literal["bfloat16", "float32"] = "float32"
    activation_checkpointing: Literal["none", "full", "attention", "selective"] = Field(
        "none",
        description="per block: full = keep only its input; attention = also keep attention "
        "outputs; selective = also keep matmul outputs",
    )
    ac_every: int = Field(1, ge=1, description="checkpoint every k-th block")
    compile: bool = Field(False, description="torch.compile each block")
    float8: bool = Field(
        False, description="fp8 matmuls in the blocks' linear layers (torchao; SM 8.9+ GPUs)"
    )
    reshard_after_forward: bool = True


class CheckpointConfig(_Strict):
    every: int = Field(1000, gt=0, description="steps between checkpoints")
    keep: int = Field(3, ge=1, description="checkpoints kept (older ones are deleted)")
    snapshot_every: int = Field(
        0, ge=0, description="steps between weight snapshots for post-hoc EMA; 0 = none"
    )


class EMAConfig(_Strict):
    enabled: bool = True
    decay: float = Field(0.9999, gt=0, lt=1)


class MetricsConfig(_Strict):
    log_every: int = Field(1, ge=1)
    tensorboard: bool = True
    progress: bool = True
    sample_keys: bool = Field(False, description="log every consumed sample key (audit)")
    peak_flops: float = Field(989e12, gt=0, description="per-GPU dense bf16 peak for MFU")


class FaultConfig(_Strict):
    max_nonfinite_in_row: int = Field(
        10, ge=1, description="non-finite steps in a row before the run stops"
    )


class PresetConfig(_Strict):
    """A run config read from a TOML/JSON file or a preset shipped as `<name>.toml` in the package
    `presets_package`, with `dotted.key=value` overrides. One API for the DiT, VAE and alignment
    run configs: `preset(name, **fields)`, `preset_names()`, `load(source, overrides)`."""

    presets_package: ClassVar[str]

    @classmethod
    def preset_names(cls) -> list[str]:
        files = resources.files(cls.presets_package).iterdir()  # type: ignore[attr-defined]
        return sorted(p.name.removesuffix(".toml") for p in files if p.name.endswith(".toml"))

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> Self:
        """A shipped preset with top-level fields replaced, like `DiTConfig.preset`:
        `TrainConfig.preset("debug", run_dir="runs/try")`. Dotted overrides: `load`."""
        if name not in cls.preset_names():
            raise ConfigError(f"unknown preset {name!r}; choose one of {cls.preset_names()}")
        return cls.from_dict({**cls.read(name), **overrides}, name)

    @classmethod
    def read(cls, source: str) -> dict[str, Any]:
        """The raw tree of a TOML/JSON file or a shipped preset (a file of that name wins)."""
        path = Path(source)
        if path.is_file():
            text = path.read_text()
            if path.suffix == ".json":  # what `config` subcommands print and runs record
                try:
                    return json.loads(text)
                except json.JSONDecodeError as e:
                    raise ConfigError(f"{source}: not valid JSON ({e})") from None
        elif source in cls.preset_names():
            text = resources.files(cls.presets_package).joinpath(f"{source}.toml").read_text()
        else:
            raise ConfigError(
                f"{source}: no such config file and no shipped {cls.__name__} preset of that name "
                f"(presets: {', '.join(cls.preset_names())})"
            )
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{source}: not valid TOML ({e})") from None

    @classmethod
    def from_dict(cls, tree: dict[str, Any], source: str = "config") -> Self:
        try:
            return cls.model_validate(tree)
        except ValidationError as e:
            raise ConfigError(format_validation_error(e, source)) from None

    @classmethod
    def load(cls, source: str, overrides: list[str] | tuple[str, ...] = ()) -> Self:
        """A preset name or TOML/JSON path, plus `dotted.key=value` overrides -> validated."""
        tree = cls.read(source)
        for override in overrides:
            apply_override(tree, override)
        return cls.from_dict(tree, source)


class TrainConfig(PresetConfig):
    presets_package: ClassVar[str] = "mugv_train.configs"

    run_dir: str = "runs/train"
    seed: int = 0
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    stages: list[StageConfig] = Field(..., min_length=1)
    parallel: ParallelConfig = Field(default_factory=ParallelConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    ema: EMAConfig = Field(default_factory=EMAConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    faults: FaultConfig = Field(default_factory=FaultConfig)

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.stages)

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        try:
            dit = self.model.dit_config()
        except (ValueError, TypeError) as e:
            raise ValueError(f"model: {e}") from None
        if dit.num_heads % self.parallel.cp:
            raise ValueError(
                f"parallel.cp={self.parallel.cp} must divide the model's {dit.num_heads} heads "
                "(Ulysses context parallelism splits heads across ranks)"
            )
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique, got {names}")
        return self


# -- loading ------------------------------------------------------------------------------------
def preset_names() -> list[str]:
    return TrainConfig.preset_names()


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word is a string


def apply_override(tree: dict[str, Any], override: str) -> None:
    """Set `a.b.0.c=value` in a nested dict/list tree, creating dicts as needed."""
    key, sep, raw = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {override!r}: expected dotted.key=value")
    parts = key.strip().split(".")
    node: Any = tree
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"override {key}: {where} is not an index of a {len(node)}-item list")  # fmt: skip
            if last:
                node[int(part)] = _parse_value(raw.strip())
            else:
                node = node[int(part)]
        elif last:
            node[part] = _parse_value(raw.strip())
        else:
            node = node.setdefault(part, {})
            if not isinstance(node, dict | list):
                raise ConfigError(f"override {key}: {where} is a value, not a section")


def format_validation_error(e: ValidationError, source: str) -> str:
    """One line: `SOURCE: invalid config: a.b: message; c: message`."""
    errors = "; ".join(f"{'.'.join(map(str, x['loc'])) or '(top level)'}: {x['msg']}" for x in e.errors())  # fmt: skip
    return f"{source}: invalid config: {errors}"


def config_from_dict(tree: dict[str, Any], source: str = "config") -> TrainConfig:
    return TrainConfig.from_dict(tree, source)


def load_config(source: str, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """A preset name or TOML path, plus `dotted.key=value` overrides -> validated config."""
    return TrainConfig.load(source, overrides)


def dump_config(cfg: TrainConfig) -> str:
    return json.dumps(cfg.model_dump(mode="json"), indent=2)
