"""Synthetic latent samples and shards."""

from __future__ import annotations

import torch

from mugv_data.shards.latent import LatentSample, LatentShardWriter, latent_frames

VAE, T5 = "mugv-vae-test", "t5-test"


def sample(
    key: str, frames: int = 17, h: int = 64, w: int = 96, text_len: int = 7, seed: int = 0
) -> LatentSample:
    g = torch.Generator().manual_seed(seed)
    t = latent_frames(frames)
    return LatentSample(
        key=key,
        latent=torch.randn(24, t, h // 8, w // 8, generator=g),
        text=torch.randn(text_len, 4096, generator=g).to(torch.bfloat16),
        text_mask=torch.ones(text_len, dtype=torch.bool),
        caption=f"caption {key}",
        fps=24.0,
        height=h,
        width=w,
        num_frames=frames,
        vae_id=VAE,
        text_encoder_id=T5,
    )


# (frames, h, w): two video buckets and one image bucket
SHAPES = [(17, 64, 96), (9, 64, 64), (1, 128, 128)]


def write_dataset(d, n: int = 60, per_shard: int = 16) -> list[str]:
    keys = []
    with LatentShardWriter(d, max_samples=per_shard) as w:
        for i in range(n):
            f, h, ww = SHAPES[i % 3]
            key = f"s{i:04d}"
            w.write(sample(key, f, h, ww, text_len=3 + i % 5, seed=i))
            keys.append(key)
    return keys
