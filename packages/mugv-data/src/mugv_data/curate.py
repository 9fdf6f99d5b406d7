"""The curation pipeline: videos in, accounted clips out (raw shards + rejects + manifest).

Stages, in this order (cheap and per-video first, model-based and stateful last):
    probe -> decode + scene split -> sharpness -> motion -> encode     (per video, in workers)
    -> dedup -> aesthetic -> caption -> balance -> write raw shard     (main process, batched)
Encoding happens before dedup/aesthetic because those need keyframes of the final clip; clips
rejected later cost one wasted encode, which is cheaper than decoding the video a third time.

Accounting and resume (journal.py): every finished input gets one journal line; shards are
published with an intent file so that a hard kill never doubles or loses clips. A re-run skips
journaled inputs and redoes the rest with dedup and balancing seeded from this rank's own
journal only, which is what an uninterrupted run had seen at that point (journaled inputs are a
prefix of the rank's accepted inputs), so it makes the same decisions.
"""

from __future__ import annotations

import functools
import json
import logging
import multiprocessing as mp
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from mugv_data.__about__ import __version__
from mugv_data.config import CurateConfig
from mugv_data.io.inputs import InputVideo, list_inputs
from mugv_data.io.video import (
    Mp4Writer,
    VideoError,
    iter_decoded,
    resized_shape,
    scaled_shape,
    to_array,
)
from mugv_data.journal import Journal, claim_output
from mugv_data.shards.raw import RAW_SCHEMA, raw_index_meta
from mugv_data.shards.tar import ShardWriter, atomic_write_text, clean_partial
from mugv_data.stages.aesthetic import AestheticStage
from mugv_data.stages.balance import BalanceStage
from mugv_data.stages.base import Clip, Reject, Stage, evenly_spaced
from mugv_data.stages.caption import CaptionStage
from mugv_data.stages.dedup import DedupStage
from mugv_data.stages.motion import MotionStage
from mugv_data.stages.probe import probe
from mugv_data.stages.scenes import DETECT_SHORT_SIDE, SceneSplitter
from mugv_data.stages.sharpness import SharpnessStage

log = logging.getLogger(__name__)
MANIFEST_SCHEMA = "mugv-curate-manifest/1"


@dataclass
class VideoResult:
    """What a worker returns for one input: surviving clips (encoded) and every reject."""

    item: InputVideo
    info: dict | None
    clips: list[Clip] = field(default_factory=list)
    rejects: list[dict] = field(default_factory=list)
    video_s: float = 0.0


def _reject_record(item: InputVideo, rej: Reject, clip: Clip | None = None, frames=None) -> dict:
    rec = {"input": item.key, "path": item.path, "clip": clip.id if clip else None}
    rec |= rej.to_dict()
    if clip is not None:
        rec |= {"frames": [clip.start, clip.end], "scores": clip.scores}
    elif frames is not None:
        rec["frames"] = list(frames)
    return rec


def local_stages(cfg: CurateConfig) -> list[Stage]:
    """Per-clip stages that need the decoded analysis frames (run in workers)."""
    stages: list[Stage] = []
    if cfg.sharpness.enabled:
        stages.append(SharpnessStage(cfg.sharpness))
    if cfg.motion.enabled:
        stages.append(MotionStage(cfg.motion))
    return stages


def global_stages(cfg: CurateConfig) -> list[Stage]:
    """Stateful or model-based stages on encoded clips (main process, batched)."""
    return [
        DedupStage(cfg.dedup),
        AestheticStage(cfg.aesthetic),
        CaptionStage(cfg.caption),
        BalanceStage(cfg.balance),
    ]


def _decode_analysis(path: str, info, cfg: CurateConfig) -> tuple[list, list, np.ndarray]:
    """1st decode: scene split and the analysis gray frames [N, H', W'] (short side exactly
    `analysis_short_side`) -> (clip ranges, too-short ranges, gray frames)."""
    fsize = (cfg.scenes.feature_height, cfg.scenes.feature_width)
    dsize = resized_shape(info.height, info.width, DETECT_SHORT_SIDE)
    asize = scaled_shape(info.height, info.width, cfg.analysis_short_side)
    splitter, grays = SceneSplitter(info.fps, cfg.scenes), []
    for frame in iter_decoded(path):
        grays.append(to_array(frame, asize, "gray"))
        splitter.add(to_array(frame, dsize), grays[-1], to_array(frame, fsize))
    if not grays:
        raise VideoError(path, "zero_frames", "the video stream has no decodable frame")
    if info.num_frames and len(grays) < info.num_frames * (1 - cfg.probe.truncation_tolerance):
        raise VideoError(
            path, "truncated", f"decoded {len(grays)} of {info.num_frames} announced frames"
        )
    return *splitter.split(), np.stack(grays)


def _encode_clips(path: str, info, clips: list[Clip], cfg: CurateConfig) -> None:
    """2nd decode: write each clip's frames to an in-memory mp4 and keep its keyframes (and
    the captioner's frames when a captioner is configured)."""
    h, w = resized_shape(info.height, info.width, cfg.output_format.max_short_side)
    kh, kw = resized_shape(info.height, info.width, cfg.keyframe_short_side)
    n_cap = cfg.caption.num_frames if cfg.caption.model_path else 0
    todo = iter(sorted(clips, key=lambda c: c.start))
    clip, writer, keys, caps = next(todo, None), None, set(), set()
    for t, frame in enumerate(iter_decoded(path)):
        if clip is None:
            break
        if t == clip.start:
            o = cfg.output_format
            writer = Mp4Writer(clip.fps, h, w, crf=o.crf, preset=o.preset)
            keys = set(evenly_spaced(clip.start, clip.end, cfg.keyframes))
            caps = set(evenly_spaced(clip.start, clip.end, n_cap)) if n_cap else set()
        if writer is not None:
            writer.write(to_array(frame, (h, w)))
            if t in keys or t in caps:
                small = to_array(frame, (kh, kw))
                if t in keys:
                    clip.keyframes.append(small)
                if t in caps:
                    clip.caption_frames.append(small)
            if t == clip.end - 1:
                writer.close()
                clip.mp4, clip.height, clip.width = writer.getvalue(), h - h % 2, w - w % 2
                clip, writer = next(todo, None), None


def analyze_video(item: InputVideo, cfg: CurateConfig) -> VideoResult:
    """Probe, split, score with the local stages and encode the survivors of one input."""
    info, rej = probe(item.path, cfg.probe)
    res = VideoResult(item, info.to_dict() if info else None)
    if rej is not None:
        res.rejects.append(_reject_record(item, rej))
        return res
    try:
        ranges, short, grays = _decode_analysis(item.path, info, cfg)
        res.video_s = len(grays) / info.fps
        for s, e in short:
            detail = f"scene of {e - s} frames < {cfg.scenes.min_clip_s}s"
            res.rejects.append(
                _reject_record(item, Reject("scenes", "too_short", detail), None, (s, e))
            )
        if not ranges:
            if not short:
                r = Reject("scenes", "no_scenes", "only fades/black frames")
                res.rejects.append(_reject_record(item, r))
            return res
        clips = [
            Clip(item, i, s, e, info.fps, analysis=grays[s:e]) for i, (s, e) in enumerate(ranges)
        ]
        for stage in local_stages(cfg):
            stage(clips)
        for c in clips:
            c.analysis = None
            if c.reject is not None:
                res.rejects.append(_reject_record(item, c.reject, c))
        res.clips = [c for c in clips if c.reject is None]
        if res.clips:
            _encode_clips(item.path, info, res.clips, cfg)
    except VideoError as e:
        res.clips = []
        res.rejects.append(_reject_record(item, Reject("decode", e.reason, e.detail)))
    except Exception as e:  # one broken input must not stop the run: account for it
        log.exception("unexpected error on %s", item.path)
        res.clips = []
        res.rejects.append(
            _reject_record(item, Reject("decode", "error", f"{type(e).__name__}: {e}"))
        )
    for c in res.clips:
        c.caption, c.caption_source = item.caption, ("input" if item.caption else None)
    return res


def _worker_init() -> None:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C


def clip_json(c: Clip) -> dict:
    return {
        "schema": RAW_SCHEMA,
        "id": c.id,
        "caption": c.caption,
        "caption_source": c.caption_source,
        "fps": c.fps,
        "num_frames": c.num_frames,
        "width": c.width,
        "height": c.height,
        "duration_s": round(c.num_frames / c.fps, 4),
        "scores": c.scores,
        "source": {
            "path": c.video.path,
            "input_key": c.video.key,
            "start_frame": c.start,
            "end_frame": c.end,
            "start_s": round(c.start / c.fps, 4),
            "end_s": round(c.end / c.fps, 4),
        },
        "meta": c.video.meta,
        "pipeline": {"mugv_data": __version__},
    }


class CurationInterrupted(KeyboardInterrupt):
    """SIGTERM (e.g. Slurm preemption) arrived; the journal makes the next run resume exactly."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _on_sigterm(signum: int, frame) -> None:
    raise CurationInterrupted(signum)


class Curator:
    """Runs the pipeline for this rank's share of the inputs, resumably."""

    def __init__(self, cfg: CurateConfig, rank: int = 0, world: int = 1) -> None:
        # Recorded absolute, so that validate finds the input from any working directory.
        self.cfg = cfg.model_copy(update={"input": os.path.abspath(cfg.input)})
        self.rank, self.world = rank, world
        self.out = Path(cfg.output)
        self.shard_dir, self.state_dir = self.out / "shards", self.out / "state"
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(self.state_dir, rank)
        self.prefix = f"raw-r{rank:05d}"
        self._pending: list[dict] = []

    def _on_prepare(self, path: Path, keys: list[str]) -> None:
        for r in self._pending:
            r["shard"] = path.name
        self.journal.prepare(path.name, self._pending)

    def _on_commit(self, path: Path, keys: list[str]) -> None:
        self.journal.commit(self._pending)
        self._pending = []

    # -- run -----------------------------------------------------------------------------------
    def run(self) -> dict:
        cfg = self.cfg
        t0 = time.time()
        local_stages(cfg)  # bad stage settings (e.g. RAFT weights) stop the run before any input
        claim_output(self.out, cfg.model_dump(), self.world)
        removed = clean_partial(self.shard_dir)
        if removed:
            log.info("removed %d partial files of an interrupted run", len(removed))
        self.journal.repair(self.shard_dir)
        done = {r["input"]: r for r in self.journal.read()}
        mine = list_inputs(cfg.input)[self.rank :: self.world]
        todo = [it for it in mine if it.key not in done]
        log.info(
            "rank %d/%d: %d inputs, %d already done",
            self.rank,
            self.world,
            len(mine),
            len(mine) - len(todo),
        )
        stages = global_stages(cfg)
        for r in done.values():  # this rank's earlier clips count for dedup and balancing
            for c in r.get("clips", []):
                stages[0].add(c["phash"])
                stages[-1].counts[c["category"]] += 1
        existing = sorted(self.shard_dir.glob(f"{self.prefix}-*.tar"))
        start = int(existing[-1].stem.rsplit("-", 1)[1]) + 1 if existing else 0
        o = cfg.output_format
        writer = ShardWriter(self.shard_dir, self.prefix, start, o.max_clips_per_shard, o.max_shard_bytes, raw_index_meta, self._on_commit, self._on_prepare)  # fmt: skip
        pool = None
        analyze = functools.partial(analyze_video, cfg=cfg)
        if cfg.workers > 1 and len(todo) > 1:
            pool = mp.get_context("spawn").Pool(cfg.workers, initializer=_worker_init)
            results = pool.imap(analyze, todo)
        else:
            results = map(analyze, todo)
        batch_clips = max(cfg.caption.batch_size, cfg.aesthetic.batch_size)
        old_term = signal.signal(signal.SIGTERM, _on_sigterm)  # Slurm preemption
        n_clips, bar = (
            0,
            tqdm(total=len(mine), initial=len(mine) - len(todo), unit="video", disable=None),
        )
        try:
            buffer: list[VideoResult] = []
            for res in results:
                buffer.append(res)
                if sum(len(r.clips) for r in buffer) >= batch_clips:
                    n_clips += self._finish(buffer, stages, writer)
                    bar.update(len(buffer))
                    bar.set_postfix(clips_per_s=f"{n_clips / (time.time() - t0):.2f}")
                    buffer = []
            n_clips += self._finish(buffer, stages, writer)
            bar.update(len(buffer))
            writer.commit()
        except BaseException:
            writer.abort()  # nothing half-written becomes visible; pending inputs are redone
            if pool is not None:
                pool.terminate()
            raise
        finally:
            signal.signal(signal.SIGTERM, old_term)
            bar.close()
        if pool is not None:
            pool.close()
            pool.join()
        return self._write_manifest(mine, time.time() - t0, n_clips)

    def _finish(self, results: list[VideoResult], stages: list[Stage], writer: ShardWriter) -> int:
        """Global stages on a batch of finished inputs, then write and journal them."""
        clips = [c for r in results for c in r.clips]
        for stage in stages:
            stage(clips)
        written = 0
        for res in results:
            kept = [c for c in res.clips if c.reject is None]
            rejects = res.rejects + [
                _reject_record(res.item, c.reject, c) for c in res.clips if c.reject
            ]
            for c in kept:
                writer.write(c.id, {"mp4": c.mp4, "json": json.dumps(clip_json(c)).encode()})
            record = {
                "input": res.item.key,
                "path": res.item.path,
                "status": "accepted" if kept else "rejected",
                "shard": None,
                "video_s": round(res.video_s, 3),
                "clips": [
                    {"id": c.id, "phash": c.scores["phash"], "category": c.scores["category"]}
                    for c in kept
                ],
                "rejects": rejects,
            }
            if kept:
                self._pending.append(record)
                writer.rotate_if_full()  # between inputs only: one input never spans two shards
            else:
                self.journal.append([record])
            written += len(kept)
        return written

    def _write_manifest(self, mine: list[InputVideo], wall_s: float, new_clips: int) -> dict:
        keys = {it.key for it in mine}
        records = {r["input"]: r for r in self.journal.read() if r["input"] in keys}
        reasons: Counter[str] = Counter()
        rejects = []
        for r in records.values():
            for rej in r["rejects"]:
                reasons[f"{rej['stage']}/{rej['reason']}"] += 1
                rejects.append(rej)
        shards: Counter[str] = Counter()
        for r in records.values():
            if r["shard"]:
                shards[r["shard"]] += len(r["clips"])
        # Invariants: inputs_done = accepted + rejected; clips_accepted = sum(shards.values()).
        manifest = {
            "schema": MANIFEST_SCHEMA,
            "mugv_data": __version__,
            "rank": self.rank,
            "world_size": self.world,
            "inputs": len(mine),
            "inputs_done": len(records),
            "inputs_accepted": sum(r["status"] == "accepted" for r in records.values()),
            "inputs_rejected": sum(r["status"] == "rejected" for r in records.values()),
            "clips_accepted": sum(shards.values()),
            "clips_this_run": new_clips,
            "rejects": len(rejects),
            "reject_reasons": dict(sorted(reasons.items())),
            "video_seconds": round(sum(r["video_s"] for r in records.values()), 3),
            "shards": dict(sorted(shards.items())),
            "wall_s_this_run": round(wall_s, 3),
        }
        atomic_write_text(
            self.out / f"rejects-r{self.rank:05d}.jsonl",
            "".join(json.dumps(r) + "\n" for r in rejects),
        )
        atomic_write_text(
            self.out / f"manifest-r{self.rank:05d}.json", json.dumps(manifest, indent=2)
        )
        log.info(
            "rank %d: %d clips accepted, %d rejects, %s",
            self.rank,
            manifest["clips_accepted"],
            len(rejects),
            dict(reasons),
        )
        return manifest


def curate(cfg: CurateConfig, rank: int | None = None, world: int | None = None) -> dict:
    """Curate this rank's share (rank/world default to the environment, see dist.py)."""
    from mugv_data.dist import rank_world

    env_rank, env_world = rank_world()
    return Curator(
        cfg, env_rank if rank is None else rank, env_world if world is None else world
    ).run()
