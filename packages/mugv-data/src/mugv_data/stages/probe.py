"""Probe: refuse inputs that cannot become clips before decoding them."""

from __future__ import annotations

from mugv_data.config import ProbeConfig
from mugv_data.io.video import VideoError, VideoInfo, probe_video
from mugv_data.stages.base import Reject


def check_info(info: VideoInfo, cfg: ProbeConfig) -> Reject | None:
    """Reject for codec / size / duration / fps outside the config, else None."""
    if info.codec not in cfg.allowed_codecs:
        return Reject("probe", "unsupported_codec", f"codec {info.codec!r} not in allowed_codecs")
    if min(info.width, info.height) < cfg.min_short_side:
        return Reject(
            "probe", "too_small", f"{info.width}x{info.height} < short side {cfg.min_short_side}"
        )
    if info.fps < cfg.min_fps:
        return Reject("probe", "low_fps", f"{info.fps:.2f} fps < {cfg.min_fps}")
    if info.duration_s and info.duration_s < cfg.min_duration_s:
        return Reject("probe", "too_short", f"{info.duration_s:.2f}s < {cfg.min_duration_s}s")
    if info.duration_s > cfg.max_duration_s:
        return Reject("probe", "too_long", f"{info.duration_s:.1f}s > {cfg.max_duration_s}s")
    return None


def probe(path: str, cfg: ProbeConfig) -> tuple[VideoInfo | None, Reject | None]:
    """(info, None) for a usable input, (info or None, reject) otherwise."""
    try:
        info = probe_video(path)
    except VideoError as e:
        return None, Reject("probe", e.reason, e.detail)
    return info, check_info(info, cfg)
