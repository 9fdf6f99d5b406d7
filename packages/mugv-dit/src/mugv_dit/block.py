"""The MUG-DiT transformer block and final layer, with per-segment adaLN modulation.

Modulation is per *segment* rather than per token: a segment is the start token, one latent frame
(all its patches) or the end token. Generated frames are modulated with the timestep t,
conditioning frames and the start/end tokens with t = 0. Broadcasting parameters of shape
[B, segments, C] over a frame's patches avoids materialising a [B, N, C] tensor per parameter.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from mugv_dit.layers import MLP, CrossAttention, SelfAttention


def segmented(
    fn: Callable[..., torch.Tensor], x: torch.Tensor, *params: torch.Tensor, brackets: bool
) -> torch.Tensor:
    """Apply fn(x_part, *param_parts) segment by segment.

    x: [B, N, C]. Each param: [B, K, C] with one row per segment: K = T + 2 (start, frames, end)
    when `brackets`, else K = T (patch tokens only). Returns [B, N, C].
    """
    if not brackets:
        frames = params[0].shape[1]
        out = fn(x.unflatten(1, (frames, -1)), *(p[:, :, None] for p in params))
        return out.flatten(1, 2)
    frames = params[0].shape[1] - 2
    start = fn(x[:, :1], *(p[:, :1] for p in params))
    body = fn(x[:, 1:-1].unflatten(1, (frames, -1)), *(p[:, 1:-1, None] for p in params))
    end = fn(x[:, -1:], *(p[:, -1:] for p in params))
    return torch.cat([start, body.flatten(1, 2), end], dim=1)


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


def _gate(x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    return gate * x


def select_modulation(
    table: torch.Tensor, cond: torch.Tensor, cond0: torch.Tensor, generate: torch.Tensor
) -> list[torch.Tensor]:
    """Per-segment modulation parameters.

    table: [K, C] learnable; cond, cond0: [B, K*C] for t and for t = 0; generate: [B, S] bool,
    True where a segment is generated. Returns K tensors of shape [B, S, C].
    """
    k = table.shape[0]
    p = (table + cond.unflatten(1, (k, -1)))[:, None]
    p0 = (table + cond0.unflatten(1, (k, -1)))[:, None]
    return list(torch.where(generate[:, :, None, None], p, p0).unbind(2))


class DiTBlock(nn.Module):
    """x += g1·SelfAttn(mod(LN x)); x += CrossAttn(LN_affine x, text); x += g2·MLP(mod(LN x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, eps: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps, elementwise_affine=False)
        self.attn = SelfAttention(dim, num_heads, eps)
        self.cross_attn_norm = nn.LayerNorm(dim, eps=eps)
        self.cross_attn = CrossAttention(dim, num_heads, eps)
        self.mlp = MLP(dim, int(dim * mlp_ratio))
        self.scale_shift_table = nn.Parameter(torch.randn(6, dim) / dim**0.5)

    def forward(
        self,
        x: torch.Tensor,
        text: torch.Tensor,
        text_lens: list[int],
        cond: torch.Tensor,
        cond0: torch.Tensor,
        generate: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
    ) -> torch.Tensor:
        """x: [B, N, C]; text: [sum(text_lens), C]; cond, cond0: [B, 6C]; generate: [B, T+2]."""
        shift1, scale1, gate1, shift2, scale2, gate2 = select_modulation(
            self.scale_shift_table, cond, cond0, generate
        )
        h = self.attn(segmented(_modulate, self.norm(x), shift1, scale1, brackets=True), rope)
        x = x + segmented(_gate, h, gate1, brackets=True)
        x = x + self.cross_attn(self.cross_attn_norm(x), text, text_lens)
        h = self.mlp(segmented(_modulate, self.norm(x), shift2, scale2, brackets=True))
        return x + segmented(_gate, h, gate2, brackets=True)


class FinalLayer(nn.Module):
    """LN -> modulate with (table + c) -> Linear to patch_volume * out_channels."""

    def __init__(self, dim: int, patch_volume: int, out_channels: int, eps: float) -> None:
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, eps=eps, elementwise_affine=False)
        self.linear = nn.Linear(dim, patch_volume * out_channels)
        self.scale_shift_table = nn.Parameter(torch.randn(2, dim) / dim**0.5)

    def forward(
        self, x: torch.Tensor, c: torch.Tensor, c0: torch.Tensor, generate: torch.Tensor
    ) -> torch.Tensor:
        """x: [B, T*S, C] patch tokens; c, c0: [B, C]; generate: [B, T] -> [B, T*S, out]."""
        shift, scale = select_modulation(
            self.scale_shift_table, c.repeat(1, 2), c0.repeat(1, 2), generate
        )
        return self.linear(segmented(_modulate, self.norm_final(x), shift, scale, brackets=False))
