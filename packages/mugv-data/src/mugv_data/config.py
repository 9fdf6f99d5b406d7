"""Typed curation config with named presets and dotted overrides (`sharpness.min=150`)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
    feature_height: int = 9  # tiny on purpose: fine texture and motion average out
    feature_width: int = 16
    cut_threshold: float = 30.0  # mean |RGB difference| (0-255) between consecutive frames
    cut_ratio: float = 3.0  # ... and that many times the local average (fast motion is no cut)
    fade_window_s: float = 0.5  # half-window of the dissolve test
    fade_min_change: float = 20.0  # endpoints of a dissolve differ at least this much
    fade_linearity: float = 0.25  # |mid - mean(endpoints)| <= this * |endpoint difference|
    black_level: float = 16.0  # frames darker than this (mean luma) are fade frames
    min_clip_s: float = 2.0
    max_clip_s: float = 10.0


class SharpnessConfig(_Cfg):
    enabled: bool = True
    min: float = 200.0
    max: float = 2000.0
    num_frames: int = 3


class MotionConfig(_Cfg):
    enabled: bool = True
    min: float = 1.0
    max: float = 20.0
    num_pairs: int = 3
    pyramid_levels: int = 6


class AestheticConfig(_Cfg):
    clip_path: str | None = None  # local CLIPVisionModelWithProjection folder
    mlp_path: str | None = None  # LAION-style MLP head (.safetensors or .pth)
    min: float = 4.5
    batch_size: int = 16
    device: str = "cpu"


class CaptionConfig(_Cfg):
    model_path: str | None = None  # local transformers image-text-to-text model + processor
    prompt: str = "Describe this video in detail."
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
    input: str = ""
    output: str = ""
    workers: int = 1  # processes on this machine
    analysis_short_side: int = 256  # gray frames for sharpness and flow
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


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # Quick look at a folder: cheaper encoding, shorter clips allowed.
    "fast": {"output_format": {"preset": "ultrafast", "crf": 23}, "scenes": {"min_clip_s": 1.0}},
    # Small synthetic inputs (tests, benchmarks).
    "tiny": {
        "probe": {"min_short_side": 64, "min_duration_s": 0.5},
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


def build_config(preset: str = "default", overrides: list[str] | None = None) -> CurateConfig:
    """Preset, then `a.b=value` overrides (values parsed as JSON when they parse)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    data = CurateConfig().model_dump()
    data = _merge(data, PRESETS[preset])
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like section.field=value")
        dotted, value = item.split("=", 1)
        node = data
        *parents, leaf = dotted.split(".")
        for p in parents:
            if not isinstance(node.get(p), dict):
                raise ValueError(f"override {dotted!r}: {p!r} is not a config section")
            node = node[p]
        if leaf not in node:
            raise ValueError(f"override {dotted!r}: no field {leaf!r} (see CurateConfig)")
        node[leaf] = _parse_value(value)
    return CurateConfig.model_validate(data)
