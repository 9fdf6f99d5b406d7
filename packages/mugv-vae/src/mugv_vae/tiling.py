"""Spatial tiling for the frame-wise 2D stage, with GroupNorm statistics shared across tiles.

A frame batch is cut into overlapping square tiles that advance through the network together:
local layers (convs, resamplers, SiLU) run tile by tile, and every GroupNorm first gathers its
per-group mean and variance over the whole frame, then normalises each tile with them. Each tile
contributes only its *core*, the part of the frame closer to it than to its neighbours (cut at
the middle of every overlap), so every pixel is counted once. At the end the tiles are averaged
with weights that ramp linearly across every overlap band shared with a neighbouring tile (1 on
the image border), so the seams left by the zero padding at tile borders fade instead of jumping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import torch
from torch import nn

TileFn = Callable[[torch.Tensor, int], torch.Tensor]  # (tile tensor, tile index) → tile tensor


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Tile origins covering [0, size): stride tile−overlap, the last tile flush with the end."""
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, tile - overlap))
    return [*starts, size - tile]


def _cores(starts: list[int], tile: int, size: int) -> list[tuple[int, int]]:
    """[lo, hi) of each tile's core: neighbours split their overlap at its middle."""
    cuts = [(nxt + prev + tile) // 2 for prev, nxt in pairwise(starts)]
    return list(zip([0, *cuts], [*cuts, size], strict=True))


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


@dataclass(frozen=True)
class _Grid:
    """Tile geometry in input pixels: per tile (y0, x0, core rows, core cols); frame and tile size."""

    boxes: list[tuple[int, int, tuple[int, int], tuple[int, int]]]
    size: tuple[int, int]
    extent: tuple[int, int]
    overlap: int


class Tiles:
    """Overlapping tiles of a frame batch [N, C, H, W], all at one resolution (`scale` × input).

    `tensors[k]` is tile k at the current layer; the geometry stays in input pixels.
    """

    def __init__(self, tensors: list[torch.Tensor], grid: _Grid) -> None:
        self.tensors, self.grid = tensors, grid

    @classmethod
    def split(cls, x: torch.Tensor, tile: int, overlap: int) -> Tiles:
        """Cut x [N, C, H, W] into `tile`² tiles (clipped to the frame), overlapping ≥ `overlap`."""
        height, width = x.shape[-2:]
        ys, xs = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
        th, tw = min(tile, height), min(tile, width)
        boxes = [
            (y0, x0, cy, cx)
            for y0, cy in zip(ys, _cores(ys, th, height), strict=True)
            for x0, cx in zip(xs, _cores(xs, tw, width), strict=True)
        ]
        tensors = [x[:, :, y0 : y0 + th, x0 : x0 + tw] for y0, x0, _, _ in boxes]
        return cls(tensors, _Grid(boxes, (height, width), (th, tw), overlap))

    @property
    def scale(self) -> float:
        return self.tensors[0].shape[-2] / self.grid.extent[0]

    def __getitem__(self, k: int) -> torch.Tensor:
        return self.tensors[k]

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Tiles:
        """Apply a local (pointwise or convolutional) map to every tile."""
        return self._with([fn(t) for t in self.tensors])

    def group_norm(self, norm: nn.GroupNorm, then: TileFn = lambda t, _: t) -> Tiles:
        """`norm` with each frame's statistics over the whole frame, then `then(tile, k)` per tile.

        Mean and (biased) variance take two float32 passes over the tiles' cores; tile k is then
        normalised and handed to `then` before tile k+1, so the normalised tiles never all exist.
        """
        groups, per_group = norm.num_groups, norm.num_channels // norm.num_groups

        def cores():
            for k in range(len(self.tensors)):
                yield self._core(k).float().unflatten(1, (groups, per_group))

        count = sum(self._core(k)[0].numel() for k in range(len(self.tensors))) // groups
        mean = sum(c.sum((2, 3, 4)) for c in cores()) / count  # [N, G]
        var = sum((c - mean[:, :, None, None, None]).square().sum((2, 3, 4)) for c in cores())
        rstd = (var / count + norm.eps).rsqrt()
        gain = rstd.repeat_interleave(per_group, 1) * norm.weight.float()  # [N, C]
        shift = norm.bias.float() - mean.repeat_interleave(per_group, 1) * gain
        gain, shift = gain[:, :, None, None], shift[:, :, None, None]
        return self._with(
            [
                then(torch.addcmul(shift, t.float(), gain).to(t.dtype), k)
                for k, t in enumerate(self.tensors)
            ]
        )

    def blend(self) -> torch.Tensor:
        """Average the tiles into one frame batch [N, C, H·scale, W·scale]."""
        first, s, grid = self.tensors[0], self.scale, self.grid
        n, c, th, tw = first.shape
        shape = (n, c, round(grid.size[0] * s), round(grid.size[1] * s))
        out = torch.zeros(shape, dtype=torch.float32, device=first.device)
        weight = torch.zeros(shape[2:], dtype=torch.float32, device=first.device)
        ramp = round(grid.overlap * s)
        for t, (y0, x0, _, _) in zip(self.tensors, grid.boxes, strict=True):
            wy = _ramp(th, ramp, y0 > 0, y0 + grid.extent[0] < grid.size[0], t)
            wx = _ramp(tw, ramp, x0 > 0, x0 + grid.extent[1] < grid.size[1], t)
            w = wy[:, None] * wx[None, :]
            oy, ox = round(y0 * s), round(x0 * s)
            out[:, :, oy : oy + th, ox : ox + tw] += t.float() * w
            weight[oy : oy + th, ox : ox + tw] += w
        return (out / weight).to(first.dtype)

    def _core(self, k: int) -> torch.Tensor:
        """Tile k's core, the region it alone accounts for, at the current resolution."""
        s = self.scale
        y0, x0, (ylo, yhi), (xlo, xhi) = self.grid.boxes[k]
        oy, ox = round(y0 * s), round(x0 * s)
        rows = slice(round(ylo * s) - oy, round(yhi * s) - oy)
        return self.tensors[k][:, :, rows, round(xlo * s) - ox : round(xhi * s) - ox]

    def _with(self, tensors: list[torch.Tensor]) -> Tiles:
        return Tiles(tensors, self.grid)


def tiled_map(
    fn: Callable[[Tiles], Tiles], x: torch.Tensor, tile: int, overlap: int
) -> torch.Tensor:
    """Run `fn` (a network written against `Tiles`) on overlapping tiles of x and blend.

    x: [N, C, H, W]; `tile`/`overlap` are in x's pixels; the output resolution follows fn's.
    """
    return fn(Tiles.split(x, tile, overlap)).blend()
