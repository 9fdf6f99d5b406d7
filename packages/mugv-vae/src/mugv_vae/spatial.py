"""The spatial stage: an SDXL-style 2D autoencoder applied frame by frame.

Module and parameter names follow the released `vae.pt` (`spatial_vae.module.encoder...`), including
the heads that MUG-V never runs (encoder `conv_norm_out`/`conv_out`, decoder `conv_in`): they are
kept so that the released state dict loads strictly.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from mugv_vae.config import SpatialConfig
from mugv_vae.tiling import Tiles

_EPS = 1e-6  # GroupNorm epsilon of every 2D block


class ResnetBlock2D(nn.Module):
    """GN → SiLU → conv3×3 → GN → SiLU → conv3×3, plus a 1×1 shortcut when widths differ."""

    def __init__(self, in_channels: int, out_channels: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=_EPS)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=_EPS)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_shortcut = (
            nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, C_in, H, W] → [N, C_out, H, W]."""
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self._skip(x) + h

    def tiled(self, x: Tiles) -> Tiles:
        """`forward` on tiles, each GroupNorm with whole-frame statistics."""
        h = x.group_norm(self.norm1, lambda t, _: self.conv1(F.silu(t)))
        return h.group_norm(self.norm2, lambda t, k: self._skip(x[k]) + self.conv2(F.silu(t)))

    def _skip(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.conv_shortcut is None else self.conv_shortcut(x)


class SelfAttention2D(nn.Module):
    """Single-head self-attention over all H·W positions with a residual connection."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, channels, eps=_EPS)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, C, H, W] → [N, C, H, W]."""
        n, c, h, w = x.shape
        tokens = self.group_norm(x).flatten(2).transpose(1, 2)  # [N, H·W, C]
        q, k, v = (proj(tokens).unsqueeze(1) for proj in (self.to_q, self.to_k, self.to_v))
        out = F.scaled_dot_product_attention(q, k, v).squeeze(1)
        out = self.to_out[0](out).transpose(1, 2).reshape(n, c, h, w)
        return x + out


class MidBlock2D(nn.Module):
    """ResNet → self-attention → ResNet at the deepest width."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.attentions = nn.ModuleList([SelfAttention2D(channels, groups)])
        self.resnets = nn.ModuleList([ResnetBlock2D(channels, channels, groups) for _ in range(2)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resnets[0](x)
        return self.resnets[1](self.attentions[0](x))


class Downsample2D(nn.Module):
    """Zero-pad one pixel right/bottom, then a stride-2 conv3×3: [N, C, H, W] → [N, C, H/2, W/2]."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample2D(nn.Module):
    """Nearest ×2, then conv3×3: [N, C, H, W] → [N, C, 2H, 2W]."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Level(nn.Module):
    """One resolution level: ResNet blocks, then an optional resampler."""

    def __init__(self, widths: list[int], groups: int, resample: str | None) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(
            ResnetBlock2D(cin, cout, groups) for cin, cout in pairwise(widths)
        )
        if resample == "down":
            self.downsamplers = nn.ModuleList([Downsample2D(widths[-1])])
        elif resample == "up":
            self.upsamplers = nn.ModuleList([Upsample2D(widths[-1])])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.resnets:
            x = block(x)
        for resampler in self._resamplers():
            x = resampler(x)
        return x

    def tiled(self, x: Tiles) -> Tiles:
        """`forward` on tiles, each GroupNorm with whole-frame statistics."""
        for block in self.resnets:
            x = block.tiled(x)
        for resampler in self._resamplers():
            x = x.map(resampler)
        return x

    def _resamplers(self) -> nn.ModuleList | list[nn.Module]:
        return getattr(self, "downsamplers", getattr(self, "upsamplers", []))


class Encoder2D(nn.Module):
    """Pixels [N, 3, H, W] → mid-block features [N, C_top, H/8, W/8] (no output head)."""

    def __init__(self, cfg: SpatialConfig) -> None:
        super().__init__()
        chans, g, n = cfg.block_out_channels, cfg.norm_groups, cfg.layers_per_block
        self.conv_in = nn.Conv2d(cfg.in_channels, chans[0], 3, padding=1)
        prev = chans[0]
        self.down_blocks = nn.ModuleList()
        for i, width in enumerate(chans):
            last = i == len(chans) - 1
            self.down_blocks.append(_Level([prev] + [width] * n, g, None if last else "down"))
            prev = width
        self.mid_block = MidBlock2D(chans[-1], g)
        # Unused SDXL head, kept for strict loading of the released weights.
        self.conv_norm_out = nn.GroupNorm(g, chans[-1], eps=_EPS)
        self.conv_out = nn.Conv2d(chans[-1], 2 * cfg.latent_channels, 3, padding=1)

    def high_res(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] → [N, C_3, H/8, W/8]: conv_in and the three downsampling levels."""
        x = self.conv_in(x)
        for level in self.down_blocks[:-1]:
            x = level(x)
        return x

    def high_res_tiled(self, x: Tiles) -> Tiles:
        """`high_res` on tiles, each GroupNorm with whole-frame statistics."""
        x = x.map(self.conv_in)
        for level in self.down_blocks[:-1]:
            x = level.tiled(x)
        return x

    def low_res(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C_3, h, w] → [N, C_top, h, w]: last level and the mid block (global attention)."""
        return self.mid_block(self.down_blocks[-1](x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.low_res(self.high_res(x))


class Decoder2D(nn.Module):
    """Mid-block features [N, C_top, h, w] → pixels [N, 3, 8h, 8w] (no input conv)."""

    def __init__(self, cfg: SpatialConfig) -> None:
        super().__init__()
        chans, g, n = cfg.block_out_channels[::-1], cfg.norm_groups, cfg.layers_per_block + 1
        # Unused SDXL input conv, kept for strict loading of the released weights.
        self.conv_in = nn.Conv2d(cfg.latent_channels, chans[0], 3, padding=1)
        self.mid_block = MidBlock2D(chans[0], g)
        prev = chans[0]
        self.up_blocks = nn.ModuleList()
        for i, width in enumerate(chans):
            last = i == len(chans) - 1
            self.up_blocks.append(_Level([prev] + [width] * n, g, None if last else "up"))
            prev = width
        self.conv_norm_out = nn.GroupNorm(g, chans[-1], eps=_EPS)
        self.conv_out = nn.Conv2d(chans[-1], cfg.in_channels, 3, padding=1)

    def low_res(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C_top, h, w] → [N, C_top, h, w]: the mid block (global attention)."""
        return self.mid_block(x)

    def high_res(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C_top, h, w] → [N, 3, 8h, 8w]: the upsampling levels and the output head."""
        for level in self.up_blocks:
            x = level(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))

    def high_res_tiled(self, x: Tiles) -> Tiles:
        """`high_res` on tiles, each GroupNorm with whole-frame statistics."""
        for level in self.up_blocks:
            x = level.tiled(x)
        return x.group_norm(self.conv_norm_out, lambda t, _: self.conv_out(F.silu(t)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.high_res(self.low_res(x))


class SpatialAutoencoder(nn.Module):
    """Holds the 2D encoder and decoder (the released file nests them under `module`)."""

    def __init__(self, cfg: SpatialConfig) -> None:
        super().__init__()
        self.encoder = Encoder2D(cfg)
        self.decoder = Decoder2D(cfg)


Tiler = Callable[[Callable[[Tiles], Tiles], torch.Tensor], torch.Tensor]


class SpatialStage(nn.Module):
    """Frame-wise 2D stage with the SD latent scaling: features = encoder(x) · scaling_factor.

    A `tiler(fn, x)` (tiling.tiled_map with a tile size) runs the full-resolution part of each
    network on tiles, with whole-frame GroupNorm statistics; the 1/8-resolution part, with its
    global self-attention, always sees the whole frame.
    """

    def __init__(self, cfg: SpatialConfig) -> None:
        super().__init__()
        self.scaling_factor = cfg.scaling_factor
        self.module = SpatialAutoencoder(cfg)

    def encode(self, frames: torch.Tensor, tiler: Tiler | None = None) -> torch.Tensor:
        """frames: [N, 3, H, W] in [-1, 1], H and W multiples of 8 → [N, C_top, H/8, W/8]."""
        encoder = self.module.encoder
        x = encoder.high_res(frames) if tiler is None else tiler(encoder.high_res_tiled, frames)
        return encoder.low_res(x) * self.scaling_factor

    def decode(self, feats: torch.Tensor, tiler: Tiler | None = None) -> torch.Tensor:
        """feats: [N, C_top, h, w] → pixels [N, 3, 8h, 8w]."""
        decoder = self.module.decoder
        x = decoder.low_res(feats / self.scaling_factor)
        return decoder.high_res(x) if tiler is None else tiler(decoder.high_res_tiled, x)
