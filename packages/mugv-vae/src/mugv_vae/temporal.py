"""The temporal stage: an attention-free 3D-conv VAE on the spatial features (÷8 in time).

Every conv pads time symmetrically (kernel 3, stride 1: one frame each side; stride 2: none in
front, one behind), so despite the released name "causal" a frame sees its successor. Spatial
resolution never changes here. Names follow the released `temporal_vae.*` keys.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from mugv_vae.config import TemporalConfig


class PaddedConv3d(nn.Module):
    """Conv3d with explicit zero padding: `same` in space, (k−stride) frames split front/back."""

    def __init__(
        self, cin: int, cout: int, kernel: int, time_stride: int = 1, bias: bool = True
    ) -> None:
        super().__init__()
        time_pad = kernel - time_stride
        front = time_pad // 2
        self._pad = (kernel // 2, kernel // 2, kernel // 2, kernel // 2, front, time_pad - front)
        self.conv = nn.Conv3d(cin, cout, kernel, stride=(time_stride, 1, 1), bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, C_in, T, H, W] → [N, C_out, T/stride, H, W]."""
        return self.conv(F.pad(x, self._pad))


class ResBlock3d(nn.Module):
    """GN → SiLU → conv3³ → GN → SiLU → conv3³ (no biases), 1×1×1 shortcut on width change."""

    def __init__(self, cin: int, cout: int, groups: int, upsample_time: bool = False) -> None:
        super().__init__()
        self.upsample_time = upsample_time
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = PaddedConv3d(cin, cout, 3, bias=False)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = PaddedConv3d(cout, cout, 3, bias=False)
        if cin != cout:
            self.conv3 = PaddedConv3d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, C_in, T, H, W] → [N, C_out, T (×2 if upsample_time), H, W]."""
        if self.upsample_time:
            x = F.interpolate(x, scale_factor=(2.0, 1.0, 1.0), mode="nearest")
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        skip = self.conv3(x) if hasattr(self, "conv3") else x
        return h + skip


class TemporalEncoder(nn.Module):
    """[N, C_feat, 8, h, w] → moments [N, 2·latent, 1, h, w] (one latent per 8-frame chunk)."""

    def __init__(self, feat_channels: int, cfg: TemporalConfig) -> None:
        super().__init__()
        widths = [cfg.filters * m for m in cfg.channel_multipliers]
        g, n = cfg.norm_groups, cfg.num_res_blocks
        self.conv_in = PaddedConv3d(feat_channels, widths[0], 3, bias=False)
        prev = widths[0]
        self.block_res_blocks = nn.ModuleList()
        self.conv_blocks = nn.ModuleList()
        for i, width in enumerate(widths):
            blocks = nn.ModuleList()
            for _ in range(n):
                blocks.append(ResBlock3d(prev, width, g))
                prev = width
            self.block_res_blocks.append(blocks)
            if i < len(widths) - 1:
                self.conv_blocks.append(PaddedConv3d(width, width, 3, time_stride=2))
        self.res_blocks = nn.ModuleList(ResBlock3d(prev, prev, g) for _ in range(n))
        self.norm1 = nn.GroupNorm(g, prev)
        self.conv2 = PaddedConv3d(prev, 2 * cfg.latent_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for i, blocks in enumerate(self.block_res_blocks):
            for block in blocks:
                x = block(x)
            if i < len(self.conv_blocks):
                x = self.conv_blocks[i](x)  # time ÷2
        for block in self.res_blocks:
            x = block(x)
        return self.conv2(F.silu(self.norm1(x)))


class TemporalDecoder(nn.Module):
    """Latents [N, latent, n, h, w] → features [N, C_feat, 8n, h, w]."""

    def __init__(self, feat_channels: int, cfg: TemporalConfig) -> None:
        super().__init__()
        widths = [cfg.filters * m for m in cfg.channel_multipliers]
        g, n = cfg.norm_groups, cfg.num_res_blocks
        prev = widths[-1]
        self.conv1 = PaddedConv3d(cfg.latent_channels, prev, 3)
        self.res_blocks = nn.ModuleList(ResBlock3d(prev, prev, g) for _ in range(n))
        self.upsample_block = ResBlock3d(prev, prev, g, upsample_time=True)  # time ×2 (nearest)
        levels: list[nn.ModuleList] = []
        for width in reversed(widths):
            blocks = nn.ModuleList()
            for _ in range(n):
                blocks.append(ResBlock3d(prev, width, g))
                prev = width
            levels.insert(0, blocks)
        self.block_res_blocks = nn.ModuleList(levels)
        # Depth-to-space time ×2 after levels 2 and 1; level 1 → 0 keeps the frame count.
        self.conv_blocks = nn.ModuleList(
            [nn.Identity()] + [PaddedConv3d(w, 2 * w, 3) for w in widths[2:]]
        )
        self.norm1 = nn.GroupNorm(g, widths[0])
        self.conv_out = PaddedConv3d(widths[0], feat_channels, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.conv1(z)
        for block in self.res_blocks:
            x = block(x)
        x = self.upsample_block(x)
        for i in reversed(range(len(self.block_res_blocks))):
            for block in self.block_res_blocks[i]:
                x = block(x)
            if i > 1:
                x = rearrange(self.conv_blocks[i - 1](x), "n (c s) t h w -> n c (t s) h w", s=2)
        return self.conv_out(F.silu(self.norm1(x)))


class TemporalVAE(nn.Module):
    """Encoder/decoder pair with the 1×1×1 quant convs of the released model."""

    def __init__(self, feat_channels: int, cfg: TemporalConfig) -> None:
        super().__init__()
        self.encoder = TemporalEncoder(feat_channels, cfg)
        self.quant_conv = PaddedConv3d(2 * cfg.latent_channels, 2 * cfg.latent_channels, 1)
        self.post_quant_conv = PaddedConv3d(cfg.latent_channels, cfg.latent_channels, 1)
        self.decoder = TemporalDecoder(feat_channels, cfg)

    def encode_chunks(self, chunks: torch.Tensor) -> torch.Tensor:
        """chunks: [N, C_feat, 8, h, w], each encoded alone → moments [N, 2·latent, 1, h, w]."""
        return self.quant_conv(self.encoder(chunks)).to(chunks.dtype)

    def decode_window(self, z: torch.Tensor) -> torch.Tensor:
        """z: [B, latent, n, h, w] (one decode window) → features [B, C_feat, 8n, h, w]."""
        return self.decoder(self.post_quant_conv(z))
