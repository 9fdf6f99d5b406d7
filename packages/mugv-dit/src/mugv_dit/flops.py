"""Model FLOPs of MUG-DiT for MFU, as MUG-V accounts them.

Counts every matmul (2 FLOPs per multiply-add): linears on the video tokens, the key/value
projection on the real text tokens only, self-attention quadratic in the sequence (no causal
halving: it is bidirectional), cross-attention against the real text length. Backward costs twice
the forward. Recomputation (activation checkpointing) is deliberately NOT counted: it is extra
hardware work, not model work. Norms, activations and RoPE are negligible and left out.
"""

from __future__ import annotations

import math

from mugv_dit.config import DiTConfig


def num_tokens(config: DiTConfig, latent_frames: int, latent_height: int, latent_width: int) -> int:
    """Sequence length: patches plus the start and end tokens."""
    dims = (latent_frames, latent_height, latent_width)
    return math.prod(math.ceil(n / p) for n, p in zip(dims, config.patch_size, strict=True)) + 2


def forward_flops(
    config: DiTConfig, latent_frames: int, latent_height: int, latent_width: int, text_len: int
) -> float:
    """FLOPs of one forward pass for one sample with `text_len` real (unpadded) text tokens."""
    d, lt = config.hidden_size, text_len
    s = num_tokens(config, latent_frames, latent_height, latent_width)
    mlp = int(d * config.mlp_ratio)
    # qkv, proj, cross-attention q and proj, mlp
    per_token = 3 * d * d + d * d + d * d + d * d + 2 * d * mlp
    per_block = 2 * s * per_token + 2 * lt * 2 * d * d  # + cross-attention kv on the text
    per_block += 4 * s * s * d + 4 * s * lt * d  # QK^T and AV, self and cross
    patches = s - 2
    embed = 2 * patches * config.in_channels * math.prod(config.patch_size) * d
    text = 2 * lt * (config.text_dim * d + d * d)
    cond = 2 * 2 * (config.freq_dim * d + d * d) + 2 * 6 * d * d  # t, fps embedders, t_block
    head = 2 * patches * d * math.prod(config.patch_size) * config.out_channels
    return config.depth * per_block + embed + text + cond + head


def train_step_flops(
    config: DiTConfig, latent_frames: int, latent_height: int, latent_width: int, text_len: int
) -> float:
    """Forward + backward (3x forward) model FLOPs for one sample."""
    return 3 * forward_flops(config, latent_frames, latent_height, latent_width, text_len)


def mfu(model_flops_per_second: float, peak_flops: float = 989e12) -> float:
    """Model FLOPs utilisation; the default peak is H100 SXM dense bf16."""
    return model_flops_per_second / peak_flops
