"""Near-duplicate removal: DCT perceptual hash (64 bits) of each keyframe.

A clip is a near duplicate when the mean Hamming distance of its keyframe hashes to those of an
already accepted clip is at most `max_distance` bits. The index covers every clip this rank has
accepted (also across resumes); ranks do not see each other's clips.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mugv_data.config import DedupConfig
from mugv_data.stages.base import Clip

_N = 32
_DCT = np.cos(np.pi * (2 * np.arange(_N)[None, :] + 1) * np.arange(_N)[:, None] / (2 * _N))


def phash(rgb: np.ndarray) -> int:
    """rgb: [H, W, 3] uint8 -> 64-bit perceptual hash (low 8x8 DCT band vs its median)."""
    gray = torch.from_numpy(rgb.astype(np.float32).mean(axis=2))[None, None]
    small = F.interpolate(gray, size=(_N, _N), mode="area")[0, 0].numpy().astype(np.float64)
    band = (_DCT @ small @ _DCT.T)[:8, :8].flatten()
    bits = band > np.median(band[1:])
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise distance of uint64 hashes (broadcasting)."""
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int64)


class DedupStage:
    name = "dedup"

    def __init__(self, cfg: DedupConfig) -> None:
        self.cfg = cfg
        self._seen: list[np.ndarray] = []

    def add(self, hashes: list[str]) -> None:
        """Register an accepted clip's keyframe hashes (hex strings, as stored in metadata)."""
        self._seen.append(np.array([int(h, 16) for h in hashes], dtype=np.uint64))

    def __call__(self, clips: list[Clip]) -> None:
        for clip in clips:
            if clip.reject is not None:
                continue
            hashes = [f"{phash(k):016x}" for k in clip.keyframes]
            clip.scores["phash"] = hashes
            if not self.cfg.enabled:
                continue
            mine = np.array([int(h, 16) for h in hashes], dtype=np.uint64)
            same_len = [s for s in self._seen if len(s) == len(mine)]
            if same_len:
                dist = hamming(np.stack(same_len), mine[None]).mean(axis=1)
                best = int(np.argmin(dist))
                if dist[best] <= self.cfg.max_distance:
                    clip.reject_as(self.name, "duplicate", f"mean distance {dist[best]:.1f} bits")
                    continue
            self._seen.append(mine)
