"""Euler sampling on the shifted rectified-flow grid with batched classifier-free guidance."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from mugv_dit.flow import FlowSchedule

NEGATIVE_PROMPT = (
    "ugly, blurry, lowres, bad anatomy, bad hands, text, error, missing fingers, extra digit, "
    "fewer digits, cropped, worst quality, low quality, normal quality, jpeg artifacts, signature, "
    "watermark, username, blurry"
)


def _pad_to(x: torch.Tensor, length: int) -> torch.Tensor:
    """Pad dim 1 of [B, L, ...] with zeros (or False) to `length`."""
    pad = [0, 0] * (x.ndim - 2) + [0, length - x.shape[1]]
    return F.pad(x, pad)


@torch.no_grad()
def sample(
    model: torch.nn.Module,
    schedule: FlowSchedule,
    noise: torch.Tensor,
    text: torch.Tensor,
    text_mask: torch.Tensor,
    negative_text: torch.Tensor,
    negative_mask: torch.Tensor,
    fps: torch.Tensor,
    clean: torch.Tensor | None = None,
    frame_mask: torch.Tensor | None = None,
    cfg_scale: float = 4.0,
    steps: int | None = None,
    spatial_stride: int = 8,
    progress: bool = False,
) -> torch.Tensor:
    """Generate latents from `noise` [B, C, T, H, W].

    text/text_mask: [B, L, D]/[B, L] prompt features; negative_text/negative_mask: the
    unconditional branch (the encoded NEGATIVE_PROMPT), [B or 1, L', D]. For I2V/TI2V pass `clean`
    latents [B, C, T, H, W] and `frame_mask` [B, T] (True = generate): conditioning frames start
    clean and are reset to their clean latents after every step. `spatial_stride` converts latent
    H/W to pixels for the resolution shift.
    """
    b, _, frames, height, width = noise.shape
    if frame_mask is None:
        frame_mask = torch.ones(b, frames, dtype=torch.bool, device=noise.device)
    elif clean is None:
        raise ValueError("frame_mask marks conditioning frames but no `clean` latents were given")
    keep = frame_mask[:, None, :, None, None]
    z = noise if clean is None else torch.where(keep, noise, clean.to(noise.dtype))

    negative_text = negative_text.expand(b, -1, -1)
    negative_mask = negative_mask.expand(b, -1)
    length = max(text.shape[1], negative_text.shape[1])
    text_in = torch.cat([_pad_to(text, length), _pad_to(negative_text, length)])
    mask_in = torch.cat([_pad_to(text_mask, length), _pad_to(negative_mask, length)])
    fps_in, frame_mask_in = fps.repeat(2), frame_mask.repeat(2, 1)

    ratio = schedule.shift_ratio(height * spatial_stride, width * spatial_stride, frames)
    grid = schedule.timesteps(ratio, steps).tolist()
    for t, t_next in tqdm(list(itertools.pairwise(grid)), disable=not progress, desc="sampling"):
        timestep = torch.full((2 * b,), schedule.model_timestep(t), device=noise.device)
        v_cond, v_uncond = model(
            torch.cat([z, z]), timestep, text_in, mask_in, fps_in, frame_mask_in
        ).chunk(2)
        velocity = v_uncond + cfg_scale * (v_cond - v_uncond)
        z = schedule.step(z, velocity.to(z.dtype), t, t_next)
        if clean is not None:
            z = torch.where(keep, z, clean.to(z.dtype))
    return z
