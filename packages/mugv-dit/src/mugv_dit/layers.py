"""Building blocks of MUG-DiT: norms, attention layers, MLP and the embedders."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from mugv_dit.attention import attention
from mugv_dit.rope import apply_rope


class RMSNorm(nn.Module):
    """RMSNorm over the last dim, computed in fp32 and scaled in the input dtype."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        normed = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * normed.to(x.dtype)


class MLP(nn.Module):
    """fc1 -> tanh-GELU -> fc2."""

    def __init__(self, dim: int, hidden: int, out: int | None = None) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, out or dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class SelfAttention(nn.Module):
    """Multi-head self-attention with QK-RMSNorm and 3D RoPE applied after the norm."""

    def __init__(self, dim: int, num_heads: int, eps: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = RMSNorm(dim // num_heads, eps)
        self.k_norm = RMSNorm(dim // num_heads, eps)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """x: [B, N, C]; rope: cos, sin [N, head_dim/2] -> [B, N, C]."""
        q, k, v = rearrange(
            self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.num_heads
        )
        q = apply_rope(self.q_norm(q), *rope)
        k = apply_rope(self.k_norm(k), *rope)
        return self.proj(rearrange(attention(q, k, v), "b h n d -> b n (h d)"))


class CrossAttention(nn.Module):
    """Video tokens attend to their own sample's text tokens, padding already removed."""

    def __init__(self, dim: int, num_heads: int, eps: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_linear = nn.Linear(dim, dim)
        self.kv_linear = nn.Linear(dim, 2 * dim)
        self.q_norm = RMSNorm(dim // num_heads, eps)
        self.k_norm = RMSNorm(dim // num_heads, eps)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, text: torch.Tensor, text_lens: list[int]) -> torch.Tensor:
        """x: [B, N, C]; text: [sum(text_lens), C] packed tokens of all samples -> [B, N, C]."""
        q = self.q_norm(rearrange(self.q_linear(x), "b n (h d) -> b h n d", h=self.num_heads))
        k, v = rearrange(self.kv_linear(text), "l (two h d) -> two h l d", two=2, h=self.num_heads)
        k = self.k_norm(k)
        if len(set(text_lens)) == 1:  # equal lengths: one batched call
            k, v = (rearrange(t, "h (b l) d -> b h l d", b=len(text_lens)) for t in (k, v))
            out = attention(q, k, v)
        else:  # ragged: one call per sample keeps unmasked (fast) kernels eligible
            outs, start = [], 0
            for i, n in enumerate(text_lens):
                ki, vi = k[None, :, start : start + n], v[None, :, start : start + n]
                outs.append(attention(q[i : i + 1], ki, vi))
                start += n
            out = torch.cat(outs)
        return self.proj(rearrange(out, "b h n d -> b n (h d)"))


def sinusoid(x: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """[cos | sin] features of scalars x [B] -> [B, dim], fp32."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = x.float()[:, None] * freqs.to(x.device)[None]
    emb = torch.cat([args.cos(), args.sin()], dim=-1)
    return F.pad(emb, (0, dim % 2))


class ScalarEmbedder(nn.Module):
    """sinusoid(s) -> Linear -> SiLU -> Linear, for the timestep and the fps."""

    def __init__(self, dim: int, freq_dim: int) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        """s: [B] -> [B, dim]."""
        return self.mlp(sinusoid(s, self.freq_dim).to(self.mlp[0].weight.dtype))


class TextEmbedder(nn.Module):
    """LN (no affine) -> MLP(text_dim -> d -> d, tanh-GELU) -> LN (no affine)."""

    def __init__(self, text_dim: int, dim: int, eps: float) -> None:
        super().__init__()
        self.pre_norm = nn.LayerNorm(text_dim, eps=eps, elementwise_affine=False)
        self.y_proj = MLP(text_dim, dim, dim)
        self.post_norm = nn.LayerNorm(dim, eps=eps, elementwise_affine=False)

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        return self.post_norm(self.y_proj(self.pre_norm(text)))


class PatchEmbed3D(nn.Module):
    """Conv3d with kernel = stride = patch; zero-pads T/H/W on the far side to a patch multiple."""

    def __init__(self, patch: tuple[int, int, int], in_channels: int, dim: int) -> None:
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv3d(in_channels, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, C, T, H, W] -> [B, T'*H'*W', dim]."""
        pads = [(-n) % p for n, p in zip(x.shape[2:], self.patch, strict=True)]
        x = F.pad(x, (0, pads[2], 0, pads[1], 0, pads[0]))
        return self.proj(x).flatten(2).transpose(1, 2)
