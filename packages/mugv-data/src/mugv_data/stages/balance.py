"""Optional category balancing: keep at most `max_per_category` clips per category (per rank).

The category is the input metadata value under `key` ("unknown" when missing).
"""

from __future__ import annotations

from collections import Counter

from mugv_data.config import BalanceConfig
from mugv_data.stages.base import Clip


def clip_category(clip: Clip, key: str) -> str:
    return str(clip.video.meta.get(key, "unknown"))


class BalanceStage:
    name = "balance"

    def __init__(self, cfg: BalanceConfig) -> None:
        self.cfg = cfg
        self.counts: Counter[str] = Counter()

    def __call__(self, clips: list[Clip]) -> None:
        for clip in clips:
            if clip.reject is not None:
                continue
            cat = clip_category(clip, self.cfg.key)
            clip.scores["category"] = cat
            if self.cfg.enabled and self.counts[cat] >= self.cfg.max_per_category:
                clip.reject_as(self.name, "balanced_out", f"category {cat!r} is full")
                continue
            self.counts[cat] += 1
