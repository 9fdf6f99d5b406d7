"""Dense optical flow on CPU: pyramidal, iterative Lucas–Kanade in torch.

Good enough to measure how much a clip moves (the motion filter), not for warping-quality flow.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _blur(x: torch.Tensor) -> torch.Tensor:
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
    x = F.conv2d(F.pad(x, (2, 2, 0, 0), mode="replicate"), k.view(1, 1, 1, 5))
    return F.conv2d(F.pad(x, (0, 0, 2, 2), mode="replicate"), k.view(1, 1, 5, 1))


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    gx = (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]) / 2
    gy = (p[..., 2:, 1:-1] - p[..., :-2, 1:-1]) / 2
    return gx, gy


def _warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample x at (p + flow(p)). x: [B, 1, H, W], flow: [B, 2, H, W] in pixels."""
    _, _, h, w = x.shape
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    gx = (xs + flow[:, 0]) / max(w - 1, 1) * 2 - 1
    gy = (ys + flow[:, 1]) / max(h - 1, 1) * 2 - 1
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


def dense_flow(
    a: torch.Tensor, b: torch.Tensor, levels: int = 6, iters: int = 3, window: int = 9
) -> torch.Tensor:
    """Flow from frame a to frame b.

    a, b: [B, H, W] gray (any scale) -> flow [B, 2, H, W] in pixels (x, y), b(p + flow) ≈ a(p).
    """
    a = _blur(a[:, None].float() / 255.0)
    b = _blur(b[:, None].float() / 255.0)
    pyr = [(a, b)]
    for _ in range(levels - 1):
        if min(pyr[-1][0].shape[-2:]) < 16:
            break
        pyr.append((F.avg_pool2d(pyr[-1][0], 2), F.avg_pool2d(pyr[-1][1], 2)))
    flow = torch.zeros(a.shape[0], 2, *pyr[-1][0].shape[-2:])
    reg = 1e-4  # Tikhonov term: textureless pixels get no update instead of noise
    for level, (pa, pb) in enumerate(reversed(pyr)):
        if level:
            flow = 2 * F.interpolate(flow, size=pa.shape[-2:], mode="bilinear", align_corners=True)
        gx, gy = _gradients(pa)
        box = lambda t: F.avg_pool2d(t, window, 1, window // 2, count_include_pad=False)  # noqa: E731
        sxx, syy, sxy = box(gx * gx) + reg, box(gy * gy) + reg, box(gx * gy)
        det = sxx * syy - sxy * sxy
        for _ in range(iters):
            it = _warp(pb, flow) - pa
            sxt, syt = box(gx * it), box(gy * it)
            du = -(syy * sxt - sxy * syt) / det
            dv = -(sxx * syt - sxy * sxt) / det
            flow = flow + torch.cat([du, dv], dim=1).clamp(-2.0, 2.0)
    return flow
