"""Pixel clips from raw shards (mugv-raw/1: mp4 + json) for VAE training, resumable exactly.

    loader = ClipLoader(cfg.data, rank=0, world=1)
    for batch in loader:                     # infinite: epochs follow each other
        batch["video"]                       # [B, 3, T, H, W] in [-1, 1]; batch["keys"]
    state = loader.state_dict()              # saved with the checkpoint; load_state_dict(state)

Stages, in order:
1. shard indexes -> the clips with at least `frames` frames (shorter ones are counted, logged);
2. one global stream of clips: epoch e is a permutation of them seeded by (seed, e);
3. global batch g holds stream positions [g·B, (g+1)·B); rank r of W reads batches
   g = cursor + r and the cursor advances by W per step. The stream does not depend on W, so a
   run resumed on another number of ranks continues with exactly the batches not yet consumed;
4. DataLoader workers take every n-th batch of the rank (decoding is the costly stage);
5. decode the mp4 only up to the clip's end, take `frames` consecutive frames from a start drawn
   from (seed, stream position), resize the short side and centre-crop to width x height.
A clip that cannot be decoded is dropped from its batch, counted and logged; it never stops a run.
"""

from __future__ import annotations

import functools
import itertools
import logging
import tempfile
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from mugv_data.io.video import VideoError, iter_frames
from mugv_data.loader.loader import resolve_shards
from mugv_data.shards.raw import raw_index_meta
from mugv_data.shards.tar import load_index, read_member
from mugv_train.precompute import fit_frames
from mugv_train.vae.config import ClipDataConfig

log = logging.getLogger(__name__)
STATE_VERSION = 1


@dataclass(frozen=True)
class Clip:
    shard: str
    key: str
    files: dict  # ext -> [offset, size] in the shard
    num_frames: int


def index_clips(spec: str | list[str], frames: int) -> list[Clip]:
    """Every clip of the shards with at least `frames` frames, in shard order."""
    try:
        shards = resolve_shards(spec)
    except FileNotFoundError:
        raise FileNotFoundError(f"no raw shards (*.tar) found for {spec!r}") from None
    clips, short = [], 0
    for shard in shards:
        for e in load_index(shard, raw_index_meta):
            meta = e["meta"] or raw_index_meta(e["key"], read_member(shard, *e["files"]["json"]))
            n = int(meta.get("num_frames") or 0)
            if n < frames:
                short += 1
                continue
            clips.append(Clip(shard, e["key"], e["files"], n))
    if short:
        log.warning("%d clips shorter than %d frames are not used", short, frames)
    if not clips:
        raise ValueError(f"{spec}: no raw clip has {frames} frames or more (data.frames)")
    return clips


def read_clip(clip: Clip, start: int, frames: int, size: tuple[int, int]) -> torch.Tensor:
    """Frames [start, start + frames) of a clip, fitted to size (width, height): [3, T, H, W]."""
    with tempfile.NamedTemporaryFile(suffix=".mp4") as f:
        f.write(read_member(clip.shard, *clip.files["mp4"]))
        f.flush()
        got = list(itertools.islice(iter_frames(f.name), start, start + frames))
    if len(got) < frames:
        raise VideoError(clip.key, "truncated", f"{len(got)} of frames {start}..{start + frames}")
    x = torch.from_numpy(np.stack(got)).permute(0, 3, 1, 2).float()
    return (fit_frames(x, size) / 127.5 - 1).clamp(-1, 1).permute(1, 0, 2, 3)


@functools.lru_cache(maxsize=4)
def _permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def stream_batch(g: int, batch: int, n: int, seed: int) -> list[tuple[int, int]]:
    """(stream position, clip index) of global batch g."""
    return [(p, int(_permutation(seed, p // n, n)[p % n])) for p in range(g * batch, (g + 1) * batch)]  # fmt: skip


class _RankClips(IterableDataset):
    """This rank's batches from global index `start` on, split over DataLoader workers."""

    def __init__(self, clips: list[Clip], cfg: ClipDataConfig, rank: int, world: int, start: int):
        self.clips, self.cfg, self.rank, self.world, self.start = clips, cfg, rank, world, start

    def __iter__(self):
        info = get_worker_info()
        step, stride = (info.id, info.num_workers) if info else (0, 1)
        cfg = self.cfg
        while True:
            g = self.start + step * self.world + self.rank
            videos, keys, skipped = [], [], 0
            for p, i in stream_batch(g, cfg.batch_size, len(self.clips), cfg.seed):
                clip = self.clips[i]
                first = np.random.default_rng([cfg.seed, p]).integers(clip.num_frames - cfg.frames + 1)  # fmt: skip
                try:
                    videos.append(read_clip(clip, int(first), cfg.frames, (cfg.width, cfg.height)))
                    keys.append(clip.key)
                except (VideoError, OSError, ValueError) as e:
                    skipped += 1
                    log.warning("skipping clip %s of %s: %s", clip.key, clip.shard, e)
            video = torch.stack(videos) if videos else torch.zeros(0, 3, cfg.frames, cfg.height, cfg.width)  # fmt: skip
            yield {"video": video, "keys": keys, "skipped": skipped, "batch_index": g}
            step += stride


class ClipLoader:
    """Iterate batches forever; `state_dict()` counts consumed batches, not prefetched ones."""

    def __init__(self, cfg: ClipDataConfig, rank: int, world: int) -> None:
        self.cfg, self.rank, self.world = cfg, rank, world
        self.clips = index_clips(cfg.shards, cfg.frames)
        self.cursor = 0  # global index of the next batch of rank 0
        self.skipped = 0
        log.info("%d training clips of >= %d frames", len(self.clips), cfg.frames)

    def __iter__(self):
        nw = self.cfg.num_workers
        ds = _RankClips(self.clips, self.cfg, self.rank, self.world, self.cursor)
        dl = DataLoader(ds, batch_size=None, num_workers=nw, prefetch_factor=2 if nw else None)
        for batch in dl:
            self.cursor += self.world
            self.skipped += batch["skipped"]
            yield batch

    def state_dict(self) -> dict:
        return {
            "version": STATE_VERSION,
            "cursor": self.cursor,
            "seed": self.cfg.seed,
            "batch_size": self.cfg.batch_size,
            "num_clips": len(self.clips),
            "world_size": self.world,
            "skipped": self.skipped,
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"clip loader state version {state.get('version')}, expected {STATE_VERSION}")  # fmt: skip
        saved = (state["seed"], state["batch_size"], state["num_clips"])
        if saved != (self.cfg.seed, self.cfg.batch_size, len(self.clips)):
            raise ValueError(
                f"clip loader state (seed, batch_size, clips) = {saved} does not match this run's "
                f"{(self.cfg.seed, self.cfg.batch_size, len(self.clips))}: exact resume is "
                "impossible; restore data.seed/data.batch_size/data.shards or start a new run_dir"
            )
        if state["cursor"] % self.world:
            raise ValueError(f"cursor {state['cursor']} is not a step boundary for {self.world} ranks")  # fmt: skip
        self.cursor, self.skipped = int(state["cursor"]), int(state["skipped"])


def heldout_clips(
    spec: str | list[str], cfg: ClipDataConfig, count: int
) -> tuple[torch.Tensor, list[str]]:
    """The first `count` clips of `spec` from frame 0: ([N, 3, T, H, W] in [-1, 1], keys)."""
    clips = index_clips(spec, cfg.frames)[:count]
    videos = [read_clip(c, 0, cfg.frames, (cfg.width, cfg.height)) for c in clips]
    return torch.stack(videos), [c.key for c in clips]
