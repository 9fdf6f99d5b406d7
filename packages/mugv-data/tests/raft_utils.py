"""RAFT weights and frames made without a random generator, so that the torchvision golden
(`data/raft_golden.safetensors`, made by `data/make_raft_golden.py`) can be re-made anywhere."""

from __future__ import annotations

import numpy as np
import torch

from mugv_data.flow.raft import RAFT, RAFTSpec

GOLDEN_SIZE = (128, 160)  # H, W of the golden frames
GOLDEN_SHIFT = (3, 5)  # frame 2 is frame 1 rolled by (rows, columns)
GOLDEN_ITERS = 3
GOLDEN_STRIDE = 4  # the golden keeps every 4th flow pixel in each direction


def _hash_uniform(n: int, salt: int) -> np.ndarray:
    """n deterministic values spread over [-0.5, 0.5) (a sine hash of the index)."""
    i = np.arange(n, dtype=np.float64)
    return np.modf(np.abs(np.sin(i * 12.9898 + salt * 78.233)) * 43758.5453)[0] - 0.5


def deterministic_state(spec: RAFTSpec) -> dict[str, torch.Tensor]:
    """A state dict in torchvision's layout: convs with variance 2/fan_in, small biases,
    BatchNorm affine near 1/0 and running variance in [0.75, 1.25)."""
    state = RAFT(spec).state_dict()
    out = {}
    for salt, (key, t) in enumerate(sorted(state.items())):
        if "num_batches" in key:
            out[key] = t
            continue
        u = torch.from_numpy(_hash_uniform(t.numel(), salt)).float().reshape(t.shape)
        if t.dim() == 4:
            v = u * (24.0 / t[0].numel()) ** 0.5
        elif key.endswith("running_var"):
            v = 1 + 0.5 * u
        elif key.endswith("weight"):  # BatchNorm scale
            v = 1 + 0.2 * u
        else:
            v = 0.2 * u
        out[key] = v
    return out


def golden_frames() -> tuple[torch.Tensor, torch.Tensor]:
    """Two [1, 3, H, W] frames in [-1, 1]: a smooth multi-scale pattern and its shifted copy."""
    h, w = GOLDEN_SIZE
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = [
        np.sin(x / (5 + c) + c) * np.cos(y / (7 - c)) + 0.5 * np.sin((x + 2 * y) / (2.5 + c))
        for c in range(3)
    ]
    noise = _hash_uniform(3 * h * w, 7).reshape(3, h, w)
    img = torch.from_numpy(np.stack(chans) / 1.5 * 0.8 + 0.4 * noise).float().clamp(-1, 1)[None]
    return img, torch.roll(img, GOLDEN_SHIFT, dims=(2, 3))
