"""Spatial tiling with linear overlap blending, for the frame-wise 2D stage.

A frame is cut into overlapping square tiles; each tile runs through the stage on its own and the
outputs are averaged with weights that ramp linearly across every overlap band shared with a
neighbouring tile (and stay 1 on the image border), so seams fade instead of jumping.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Tile origins covering [0, size): stride tile−overlap, the last tile flush with the end."""
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, tile - overlap))
    return [*starts, size - tile]


def _ramp(length: int, ramp: int, at_start: bool, at_end: bool, ref: torch.Tensor) -> torch.Tensor:
    w = torch.ones(length, dtype=torch.float32, device=ref.device)
    ramp = min(ramp, length)
    if ramp > 0:
        up = (torch.arange(ramp, dtype=torch.float32, device=ref.device) + 0.5) / ramp
        if at_start:
            w[:ramp] = torch.minimum(w[:ramp], up)
        if at_end:
            w[length - ramp :] = torch.minimum(w[length - ramp :], up.flip(0))
    return w


def tiled_map(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile: int,
    overlap: int,
    scale: float,
) -> torch.Tensor:
    """Apply `fn` on overlapping tiles of x and blend.

    x: [N, C, H, W]; fn maps [N, C, h, w] → [N, C', h·scale, w·scale] (scale 1/8 for the encoder,
    8 for the decoder); `tile`/`overlap` are in x's pixels. Returns [N, C', H·scale, W·scale].
    """
    n, _, height, width = x.shape
    ys, xs = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    out = weight = None
    ramp = round(overlap * scale)
    for y0 in ys:
        for x0 in xs:
            y = fn(x[:, :, y0 : y0 + tile, x0 : x0 + tile])
            if out is None:
                shape = (n, y.shape[1], round(height * scale), round(width * scale))
                out = torch.zeros(shape, dtype=torch.float32, device=y.device)
                weight = torch.zeros(shape[2:], dtype=torch.float32, device=y.device)
            oy, ox = round(y0 * scale), round(x0 * scale)
            th, tw = y.shape[-2:]
            wy = _ramp(th, ramp, y0 > 0, y0 + tile < height, y)
            wx = _ramp(tw, ramp, x0 > 0, x0 + tile < width, y)
            w = wy[:, None] * wx[None, :]
            out[:, :, oy : oy + th, ox : ox + tw] += y.float() * w
            weight[oy : oy + th, ox : ox + tw] += w
    return (out / weight).to(x.dtype)
