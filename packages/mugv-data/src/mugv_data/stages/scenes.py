"""Scene splitting: hard cuts, dissolves and fades to/from black.

Works on tiny RGB frames (area-averaged) (`feature_height` x `feature_width`, 0-255):
- a hard cut at t: the consecutive difference d1[t] = mean|f[t] - f[t-1]| is above
  `cut_threshold` AND `cut_ratio` times its neighbours' average (so steady fast motion is no cut);
- a dissolve centred at t (window w): the endpoints f[t-w], f[t+w] differ by more than
  `fade_min_change` while f[t] lies close to their mean (|f[t] - mean| <= `fade_linearity` *
  endpoint difference). Linear blends satisfy this, motion and cuts do not. The frames
  [t-w, t+w] around every dissolve centre are dropped;
- frames darker than `black_level` (fade to/from black, black gaps) are dropped.
What remains is split into scenes, long scenes are cut into `max_clip_s` pieces and scenes
shorter than `min_clip_s` are reported as too short.
"""

from __future__ import annotations

import numpy as np

from mugv_data.config import ScenesConfig


def _mean_abs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b).reshape(len(a), -1).mean(axis=1)


def transition_mask(features: np.ndarray, fps: float, cfg: ScenesConfig) -> tuple[np.ndarray, list]:
    """features: [N, h, w, 3] uint8 -> (drop mask [N] bool, hard cut indices).

    A hard cut index t means frame t starts a new scene.
    """
    f = features.astype(np.float32)
    n = len(f)
    drop = f.mean(axis=(1, 2, 3)) < cfg.black_level
    cuts: list[int] = []
    if n < 2:
        return drop, cuts
    d1 = np.concatenate([[0.0], _mean_abs(f[1:], f[:-1])])
    for t in range(1, n):
        nb = np.concatenate([d1[max(1, t - 2) : t], d1[t + 1 : t + 3]])
        local = nb.mean() if len(nb) else 0.0
        if d1[t] > cfg.cut_threshold and d1[t] > cfg.cut_ratio * local:
            cuts.append(t)
    w = max(1, round(cfg.fade_window_s * fps))
    if n > 2 * w:
        left, mid, right = f[: n - 2 * w], f[w : n - w], f[2 * w :]
        change = _mean_abs(left, right)
        residual = _mean_abs(mid, (left + right) / 2)
        centres = (
            np.nonzero((change > cfg.fade_min_change) & (residual <= cfg.fade_linearity * change))[
                0
            ]
            + w
        )
        for c in centres:
            # A hard cut inside the window makes the test meaningless: one side is the other scene.
            if not any(c - w < k <= c + w for k in cuts):
                drop[c - w : c + w + 1] = True
    return drop, cuts


def split_scenes(features: np.ndarray, fps: float, cfg: ScenesConfig) -> tuple[list, list]:
    """-> (clips [(start, end)], too_short [(start, end)]) in frame indices, end exclusive."""
    drop, cuts = transition_mask(features, fps, cfg)
    cut_set = set(cuts)
    scenes, start = [], None
    for t in range(len(drop) + 1):
        boundary = t == len(drop) or drop[t] or t in cut_set
        if boundary and start is not None:
            scenes.append((start, t))
            start = None
        if t < len(drop) and not drop[t] and start is None:
            start = t
    min_len = max(2, round(cfg.min_clip_s * fps))
    max_len = max(min_len, round(cfg.max_clip_s * fps))
    clips, short = [], []
    for s, e in scenes:
        if e - s < min_len:
            short.append((s, e))
            continue
        while e - s >= min_len:
            clips.append((s, min(e, s + max_len)))
            s += max_len
    return clips, short
