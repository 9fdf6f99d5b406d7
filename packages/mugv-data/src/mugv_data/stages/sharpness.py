"""Sharpness: variance of the 4-neighbour Laplacian of gray frames, kept in [min, max].

Too low is blurry; too high is noise/compression grain. Computed on the analysis-size gray
frames (short side `analysis_short_side`), so scores are comparable across source resolutions.
"""

from __future__ import annotations

import numpy as np

from mugv_data.config import SharpnessConfig
from mugv_data.stages.base import Clip, evenly_spaced


def laplacian_variance(gray: np.ndarray) -> float:
    """gray: [H, W] (0-255) -> variance of the Laplacian (OpenCV `Laplacian(ksize=1)` kernel)."""
    g = gray.astype(np.float64)
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]
    return float(lap.var())


class SharpnessStage:
    name = "sharpness"

    def __init__(self, cfg: SharpnessConfig) -> None:
        self.cfg = cfg

    def __call__(self, clips: list[Clip]) -> None:
        for clip in clips:
            if clip.reject is not None:
                continue
            idx = evenly_spaced(0, clip.num_frames, self.cfg.num_frames)
            score = float(np.mean([laplacian_variance(clip.analysis[i]) for i in idx]))
            clip.scores[self.name] = round(score, 2)
            if not self.cfg.min <= score <= self.cfg.max:
                clip.reject_as(
                    self.name,
                    "filtered_out",
                    f"{score:.1f} not in [{self.cfg.min}, {self.cfg.max}]",
                )
