"""The batch plan: which samples form global batch g, for every g, from (seed, dataset) only.

Stages of the plan, per stream (images, videos, or one mixed stream) and epoch:
    shuffle samples (seed, stream, epoch) -> group by bucket (latent T, H, W) -> cut each bucket
    into batches of `max_tokens // tokens` samples -> shuffle the batches -> sort each block of
    `balance_group` batches by cost
The streams are interleaved in runs of `balance_group` batches, a share `image_ratio` of the
runs being image runs (Bresenham spacing, no randomness). Global batch g goes to rank
`g % world` at step `g // world`, so the plan does not depend on the world size: a loader
that knows how many batches were consumed resumes exactly with any number of ranks.
Sorting blocks by cost puts batches of similar cost side by side, so the `world` batches of one
step cost about the same (exactly so when `world` divides `balance_group`).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np


def tokens_of(shape: tuple[int, int, int], patch: tuple[int, int, int]) -> int:
    """Patch tokens of a latent (T, H, W)."""
    return max(1, (shape[0] // patch[0]) * (shape[1] // patch[1]) * (shape[2] // patch[2]))


def batch_cost(n: int, tokens: int, crossover: int) -> float:
    """Compute of a batch: linear layers ∝ tokens, self-attention ∝ tokens², equal at crossover."""
    return n * tokens * (1.0 + tokens / crossover)


class Stream:
    """Batches over one pool of samples, epoch after epoch (epoch e's batches are indices
    e * batches_per_epoch ... ). `ids` are global sample ids, `shapes` their latent (T, H, W)."""

    def __init__(
        self,
        ids: np.ndarray,
        shapes: np.ndarray,
        *,
        seed: int,
        salt: int,
        max_tokens: int,
        max_batch_size: int,
        patch: tuple[int, int, int],
        balance_group: int,
        crossover: int,
    ) -> None:
        self.ids, self.seed, self.salt, self.group = ids, seed, salt, balance_group
        keys, self.bucket_of = np.unique(shapes, axis=0, return_inverse=True)
        self.bucket_of = self.bucket_of.reshape(-1)
        self.tokens = [tokens_of(tuple(k), patch) for k in keys]
        self.batch_size = [max(1, min(max_batch_size, max_tokens // t)) for t in self.tokens]
        self.crossover = crossover
        counts = np.bincount(self.bucket_of, minlength=len(keys))
        self.batches_per_epoch = int(
            sum(-(-c // b) for c, b in zip(counts, self.batch_size, strict=True))
        )
        self.epoch = lru_cache(maxsize=2)(self._epoch)

    def _epoch(self, e: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, self.salt, e])
        perm = rng.permutation(len(self.ids))
        batches: list[np.ndarray] = []
        for b, size in enumerate(self.batch_size):
            members = perm[self.bucket_of[perm] == b]
            batches += [members[i : i + size] for i in range(0, len(members), size)]
        batches = [batches[i] for i in rng.permutation(len(batches))]
        cost = [
            batch_cost(len(x), self.tokens[self.bucket_of[x[0]]], self.crossover) for x in batches
        ]
        out = []
        for s in range(0, len(batches), self.group):
            block = sorted(range(s, min(s + self.group, len(batches))), key=lambda i: -cost[i])
            out += [self.ids[batches[i]] for i in block]
        return out

    def batch(self, k: int) -> tuple[int, np.ndarray]:
        """(epoch, global sample ids) of this stream's k-th batch."""
        e, i = divmod(k, self.batches_per_epoch)
        return e, self.epoch(e)[i]


class BatchPlan:
    """Global batch index -> sample ids, for mixed image/video data."""

    def __init__(
        self,
        shapes: np.ndarray,
        is_image: np.ndarray,
        *,
        seed: int = 0,
        max_tokens: int = 65536,
        max_batch_size: int = 64,
        image_ratio: float | None = None,
        patch: tuple[int, int, int] = (1, 2, 2),
        balance_group: int = 32,
        crossover: int = 20736,
    ) -> None:
        if len(shapes) == 0:
            raise ValueError("no samples to plan batches for")
        kw = dict(
            seed=seed, max_tokens=max_tokens, max_batch_size=max_batch_size, patch=patch,
            balance_group=balance_group, crossover=crossover,
        )  # fmt: skip
        ids = np.arange(len(shapes))
        self.group, self.ratio = balance_group, image_ratio
        if image_ratio is None:
            self.streams = {"all": Stream(ids, shapes, salt=0, **kw)}
        else:
            if not 0.0 <= image_ratio <= 1.0:
                raise ValueError(f"image_ratio={image_ratio} must be in [0, 1]")
            img, vid = ids[is_image], ids[~is_image]
            if image_ratio > 0 and not len(img):
                raise ValueError(f"image_ratio={image_ratio} but the shards hold no image sample")
            if image_ratio < 1 and not len(vid):
                raise ValueError(f"image_ratio={image_ratio} but the shards hold no video sample")
            self.streams = {}
            if len(img) and image_ratio > 0:
                self.streams["image"] = Stream(img, shapes[img], salt=1, **kw)
            if len(vid) and image_ratio < 1:
                self.streams["video"] = Stream(vid, shapes[vid], salt=2, **kw)
        h = hashlib.sha1(np.ascontiguousarray(shapes).tobytes() + repr(sorted(kw.items())).encode())
        self.fingerprint = h.hexdigest()[:16] + f"-r{image_ratio}"

    def locate(self, g: int) -> tuple[str, int]:
        """(stream name, index in that stream) of global batch g."""
        if len(self.streams) == 1:
            return next(iter(self.streams)), g
        run, within = divmod(g, self.group)
        p = self.ratio
        image_runs_before = int(np.floor(run * p))
        if int(np.floor((run + 1) * p)) > image_runs_before:
            return "image", image_runs_before * self.group + within
        return "video", (run - image_runs_before) * self.group + within

    def batch(self, g: int) -> tuple[int, np.ndarray]:
        """(epoch of its stream, sample ids) of global batch g."""
        name, k = self.locate(g)
        return self.streams[name].batch(k)

    def epoch_at(self, g: int) -> int:
        """The epoch of the main stream (videos, else all/images) at global batch g."""
        name = "video" if "video" in self.streams else next(iter(self.streams))
        for h in range(g, g + 2 * self.group * 64):
            n, k = self.locate(h)
            if n == name:
                return k // self.streams[name].batches_per_epoch
        return 0
