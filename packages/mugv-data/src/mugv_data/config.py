"""Typed curation config with named presets and dotted overrides (`sharpness.min=150`)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProbeConfig(_Cfg):
    min_short_side: int = 256
    min_duration_s: float = 1.0
    max_duration_s: float = 600.0
    min_fps: float = 8.0
    allowed_codecs: list[str] = Field(
        default_factory=lambda: [
            "h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mpeg2video", "mpeg1video",
            "prores", "mjpeg", "dnxhd", "theora",
        ]
    )  # fmt: skip
    # A container announcing N frames that decodes fewer than N * (1 - tolerance) is truncated.
    truncation_tolerance: float = 0.02


class ScenesConfig(_Cfg):
    # Hard cuts: PySceneDetect's AdaptiveDetector. A cut's content score (mean HSV change) is at
    # least `cut_threshold` and `cut_ratio` times the average of `cut_window` frames each side,
    # so steady fast motion is no cut.
    cut_threshold: float = 15.0
    cut_ratio: float = 3.0
    cut_window: int = 2
    # Fades: PySceneDetect's ThresholdDetector bounds every dip of mean RGB below `black_level`;
    # only blank frames are dropped, so dark real content (stars, text on black) stays.
    black_level: float = 16.0
    blank_lit_fraction: float = 1e-3  # blank: fewer pixels than this brighter than black_level
    # Dissolves (PySceneDetect has no detector for them), on tiny area-averaged RGB features.
    feature_height: int = 9
    feature_width: int = 16
    fade_window_s: float = 0.5  # half-window of the dissolve test
    fade_min_change: float = 20.0  # endpoints of a dissolve differ at least this much
    fade_linearity: float = 0.25  # |mid - mean(endpoints)| <= this * |endpoint difference|
    min_clip_s: float = 2.0
    max_clip_s: float = 10.0


class SharpnessConfig(_Cfg):
    """Variance of cv2.Laplacian on gray frames with a short side of `analysis_short_side`."""

    enabled: bool = True
    min: float = 45.0  # calibrated on real footage, see docs/data.md (paper: 200 at source size)
    max: float = 2000.0
    num_frames: int = 3


class MotionConfig(_Cfg):
    """Mean optical-flow magnitude in pixels per frame of a 720-px short side, measured on the
    analysis frames with OpenCV's DIS or with RAFT (local torchvision weights)."""

    enabled: bool = True
    method: Literal["dis", "raft"] = "dis"
    # torchvision raft_large / raft_small state dict (.pth or .safetensors); needed for "raft"
    raft_weights: str | None = None
    raft_iters: int = Field(12, ge=1)  # refinement iterations (torchvision's default)
    device: str = "cpu"  # where RAFT runs
    min: float = 0.3  # calibrated on real footage, see docs/data.md (paper: RAFT, 1)
    max: float = 20.0
    num_pairs: int = 3

    @model_validator(mode="after")
    def _raft_needs_weights(self) -> MotionConfig:
        if self.method == "raft" and not self.raft_weights:
            raise ValueError(
                "motion.method='raft' needs motion.raft_weights: a local torchvision "
                "raft_large or raft_small state dict (.pth or .safetensors)"
            )
        return self


class AestheticConfig(_Cfg):
    clip_path: str | None = None  # local CLIPVisionModelWithProjection folder
    mlp_path: str | None = None  # LAION-style MLP head (.safetensors or .pth)
    min: float = 4.5
    batch_size: int = 16
    device: str = "cpu"


class CaptionConfig(_Cfg):
    model_path: str | None = None  # local transformers image-text-to-text model + processor
    prompt: str = (
        "Describe this video in detail: the objects, their appearance, their motion and the "
        "background."
    )
    num_frames: int = Field(8, ge=1)  # evenly spaced over the clip (a video or a frame grid)
    max_new_tokens: int = 128
    batch_size: int = 8
    device: str = "cpu"


class DedupConfig(_Cfg):
    enabled: bool = True
    max_distance: float = 6.0  # mean Hamming distance (bits of 64) over keyframes


class BalanceConfig(_Cfg):
    enabled: bool = False
    key: str = "category"  # metadata key of the input
    max_per_category: int = 1000  # per rank


class OutputConfig(_Cfg):
    max_clips_per_shard: int = 256
    max_shard_bytes: int = 1 << 30
    crf: int = 18
    preset: str = "veryfast"
    max_short_side: int | None = None  # downscale written clips (None: keep source size)


class CurateConfig(_Cfg):
    input: str  # folder, .txt list, .csv or .jsonl (recorded as an absolute path)
    output: str
    workers: int = 1  # processes on this machine (does not change any decision)
    # Sharpness and motion are measured on gray frames resampled to exactly this short side, so
    # their thresholds do not depend on the source size (see docs/data.md).
    analysis_short_side: int = Field(256, ge=32)
    keyframes: int = 3
    keyframe_short_side: int = 384
    probe: ProbeConfig = ProbeConfig()
    scenes: ScenesConfig = ScenesConfig()
    sharpness: SharpnessConfig = SharpnessConfig()
    motion: MotionConfig = MotionConfig()
    aesthetic: AestheticConfig = AestheticConfig()
    caption: CaptionConfig = CaptionConfig()
    dedup: DedupConfig = DedupConfig()
    balance: BalanceConfig = BalanceConfig()
    output_format: OutputConfig = OutputConfig()

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> CurateConfig:
        """A named preset with top-level fields replaced, like `DiTConfig.preset`:
        `CurateConfig.preset("default", input="videos/", output="curated/")`. Dotted
        overrides of nested fields: `build_config`."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls.model_validate({**_merge(_defaults(cls), PRESETS[name]), **overrides})


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # Quick look at a folder: cheaper encoding, shorter clips allowed.
    "fast": {"output_format": {"preset": "ultrafast", "crf": 23}, "scenes": {"min_clip_s": 1.0}},
    # Small synthetic inputs (tests, benchmarks).
    "tiny": {
        "analysis_short_side": 128,
        "probe": {"min_short_side": 64, "min_duration_s": 0.5},
        "sharpness": {"min": 10.0},
        "scenes": {"min_clip_s": 0.5, "max_clip_s": 4.0},
        "output_format": {"preset": "ultrafast"},
    },
}


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _defaults(model: type[BaseModel]) -> dict:
    """Every field that has a default, as plain data (required fields are left out)."""
    out = {}
    for name, f in model.model_fields.items():
        if not f.is_required():
            value = f.get_default(call_default_factory=True)
            out[name] = value.model_dump() if isinstance(value, BaseModel) else value
    return out


def build_config(preset: str = "default", overrides: list[str] | None = None) -> CurateConfig:
    """Preset, then `a.b=value` overrides (values parsed as JSON when they parse).

    `input=...` and `output=...` are required. Raises ValueError naming the bad field.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    data = _merge(_defaults(CurateConfig), PRESETS[preset])
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like section.field=value")
        dotted, value = item.split("=", 1)
        node, model = data, CurateConfig
        *parents, leaf = dotted.split(".")
        for p in parents:
            sub = model.model_fields.get(p)
            if sub is None or not (isinstance(sub.annotation, type) and issubclass(sub.annotation, _Cfg)):  # fmt: skip
                raise ValueError(f"override {dotted!r}: {p!r} is not a config section")
            node, model = node[p], sub.annotation
        if leaf not in model.model_fields:
            raise ValueError(f"override {dotted!r}: no field {leaf!r} (see CurateConfig)")
        node[leaf] = _parse_value(value)
    try:
        return CurateConfig.model_validate(data)
    except ValidationError as e:
        bad = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        raise ValueError(f"invalid curation config: {bad}") from None
