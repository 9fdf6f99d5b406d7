"""Motion: mean optical-flow magnitude over evenly spaced consecutive frame pairs, in [min, max].

Static clips (slideshows, frozen frames) fall below `min`; shaky or hectic ones above `max`.
Magnitudes are in pixels per frame at the analysis size (short side `analysis_short_side`).
"""

from __future__ import annotations

import numpy as np
import torch

from mugv_data.config import MotionConfig
from mugv_data.stages.base import Clip, evenly_spaced
from mugv_data.stages.flow import dense_flow


def mean_flow_magnitude(frames: np.ndarray, num_pairs: int = 3, levels: int = 6) -> float:
    """frames: [N, H, W] gray uint8 -> mean |flow| over `num_pairs` pairs (i, i+1), border cut."""
    if len(frames) < 2:
        return 0.0
    starts = evenly_spaced(0, len(frames) - 1, num_pairs)
    a = torch.from_numpy(np.stack([frames[i] for i in starts]))
    b = torch.from_numpy(np.stack([frames[i + 1] for i in starts]))
    flow = dense_flow(b, a, levels=levels)  # b(p) ≈ a(p + flow): flow is the motion a -> b
    h, w = flow.shape[-2:]
    mh, mw = h // 16, w // 16  # borders see content entering/leaving the frame
    mag = flow[..., mh : h - mh, mw : w - mw].norm(dim=1)
    return float(mag.mean())


class MotionStage:
    name = "motion"

    def __init__(self, cfg: MotionConfig) -> None:
        self.cfg = cfg

    def __call__(self, clips: list[Clip]) -> None:
        with torch.inference_mode():
            for clip in clips:
                if clip.reject is not None:
                    continue
                score = mean_flow_magnitude(
                    clip.analysis, self.cfg.num_pairs, self.cfg.pyramid_levels
                )
                clip.scores[self.name] = round(score, 3)
                if not self.cfg.min <= score <= self.cfg.max:
                    clip.reject_as(
                        self.name,
                        "filtered_out",
                        f"{score:.2f} not in [{self.cfg.min}, {self.cfg.max}]",
                    )
