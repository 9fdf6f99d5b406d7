"""Input checks for MUGDiT.forward, with messages that say what to fix."""

from __future__ import annotations

import torch

from mugv_dit.config import DiTConfig


def check_inputs(
    cfg: DiTConfig,
    x: torch.Tensor,
    timestep: torch.Tensor,
    text: torch.Tensor,
    text_mask: torch.Tensor,
    fps: torch.Tensor,
    frame_mask: torch.Tensor | None,
) -> None:
    if x.ndim != 5 or x.shape[1] != cfg.in_channels:
        raise ValueError(
            f"x must be [B, {cfg.in_channels}, T, H, W] latents, got shape {tuple(x.shape)} "
            "(is it pixels, or latents of another VAE?)"
        )
    b, frames = x.shape[0], x.shape[2]
    if timestep.shape != (b,):
        raise ValueError(
            f"timestep must be [B]=[{b}] on the 0..1000 scale, got {tuple(timestep.shape)}"
        )
    if fps.shape != (b,):
        raise ValueError(f"fps must be [B]=[{b}], got {tuple(fps.shape)}")
    if text.ndim != 3 or text.shape[0] != b or text.shape[2] != cfg.text_dim:
        raise ValueError(
            f"text must be [B={b}, L, {cfg.text_dim}] text-encoder features, got {tuple(text.shape)}"
        )
    if text_mask.shape != text.shape[:2] or text_mask.dtype != torch.bool:
        raise ValueError(
            f"text_mask must be a bool tensor of shape {tuple(text.shape[:2])}, "
            f"got {text_mask.dtype} {tuple(text_mask.shape)}"
        )
    if frame_mask is not None and (
        frame_mask.shape != (b, frames) or frame_mask.dtype != torch.bool
    ):
        raise ValueError(
            f"frame_mask must be a bool tensor [B, T]=[{b}, {frames}] (True = generate), "
            f"got {frame_mask.dtype} {tuple(frame_mask.shape)}"
        )


def check_text_lengths(text_lens: list[int]) -> None:
    """text_lens: tokens per sample (text_mask.sum(1)), read once by the model for both uses."""
    empty = [i for i, n in enumerate(text_lens) if n == 0]
    if empty:
        raise ValueError(
            f"text_mask marks no token for samples {empty}; every prompt needs >= 1 token"
        )
