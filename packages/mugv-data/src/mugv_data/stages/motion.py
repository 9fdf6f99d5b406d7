"""Motion: mean optical-flow magnitude over evenly spaced consecutive frame pairs, in [min, max].

Static clips (slideshows, frozen frames) fall below `min`; shaky or hectic ones above `max`.
Flow comes from OpenCV's DIS (dense inverse search, `motion.method = "dis"`, the default) or
from RAFT with local weights (`"raft"`, `motion.raft_weights`), both run on the analysis-size
gray frames. Either way the magnitude is rescaled to pixels per frame at a 720-px short side
(`REFERENCE_SHORT_SIDE`), so it measures the same motion whatever the source or analysis size
(flow scales linearly with the frame), and one threshold band serves both methods.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from mugv_data.config import MotionConfig
from mugv_data.flow.load import load_raft
from mugv_data.flow.raft import RAFT
from mugv_data.stages.base import Clip, evenly_spaced

REFERENCE_SHORT_SIDE = 720
# Frame pairs [P, H, W] gray uint8 (first frames, second frames) -> flow [P, H, W, 2] in pixels.
FlowFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def dis_flow(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """OpenCV DIS flow (medium preset) of each pair, [P, H, W, 2] (x, y)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return np.stack([dis.calc(a, b, None) for a, b in zip(first, second, strict=True)])


class RaftFlow:
    """RAFT flow of gray frame pairs: the gray value goes to all three input channels (the
    analysis frames are gray), frames are edge-padded to multiples of 8 and at least 128 px as
    RAFT needs, and the flow is cropped back."""

    def __init__(self, model: RAFT, iters: int) -> None:
        self.model, self.iters = model, iters
        self.device = next(model.parameters()).device

    @torch.inference_mode()
    def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        h, w = first.shape[1:]
        ph, pw = max(128, -(-h // 8) * 8), max(128, -(-w // 8) * 8)

        def prepare(frames: np.ndarray) -> torch.Tensor:
            x = torch.from_numpy(frames).to(self.device, torch.float32)[:, None] / 127.5 - 1
            return F.pad(x, (0, pw - w, 0, ph - h), mode="replicate").expand(-1, 3, -1, -1)

        flow = self.model(prepare(first), prepare(second), self.iters)[:, :, :h, :w]
        return flow.permute(0, 2, 3, 1).float().cpu().numpy()


def mean_flow_magnitude(frames: np.ndarray, num_pairs: int = 3, flow: FlowFn = dis_flow) -> float:
    """frames: [N, H, W] gray uint8 -> mean |flow| over `num_pairs` pairs (i, i+1), border cut,
    in pixels per frame at a 720-px short side."""
    if len(frames) < 2:
        return 0.0
    h, w = frames.shape[1:]
    mh, mw = h // 16, w // 16  # borders see content entering/leaving the frame
    idx = np.asarray(evenly_spaced(0, len(frames) - 1, num_pairs))
    flows = flow(frames[idx], frames[idx + 1])[:, mh : h - mh, mw : w - mw]
    per_pair = np.linalg.norm(flows, axis=-1).mean(axis=(1, 2))
    return float(per_pair.mean()) * REFERENCE_SHORT_SIDE / min(h, w)


@functools.lru_cache(maxsize=2)
def _cached_raft(path: str, mtime_ns: int, device: str) -> RAFT:
    """One load per process and weights file (the stage is built for every input video)."""
    return load_raft(path, device)


def flow_for(cfg: MotionConfig) -> FlowFn:
    """The flow function `cfg` selects; RAFT weight errors name the file and the config field."""
    if cfg.method == "dis":
        return dis_flow
    path = os.path.abspath(cfg.raft_weights)
    mtime = os.stat(path).st_mtime_ns if os.path.isfile(path) else 0  # load_raft says what is wrong
    try:
        model = _cached_raft(path, mtime, cfg.device)
    except (OSError, ValueError) as e:
        raise type(e)(f"motion.raft_weights: {e}") from None
    return RaftFlow(model, cfg.raft_iters)


class MotionStage:
    name = "motion"

    def __init__(self, cfg: MotionConfig) -> None:
        self.cfg = cfg
        self.flow = flow_for(cfg)

    def __call__(self, clips: list[Clip]) -> None:
        for clip in clips:
            if clip.reject is not None:
                continue
            score = mean_flow_magnitude(clip.analysis, self.cfg.num_pairs, self.flow)
            clip.scores[self.name] = round(score, 3)
            if not self.cfg.min <= score <= self.cfg.max:
                clip.reject_as(
                    self.name,
                    "filtered_out",
                    f"{score:.2f} not in [{self.cfg.min}, {self.cfg.max}]",
                )
