"""The demo's main job, stage by stage; `run(cfg, out)` returns the numbers and their checks.

world -> curate (mugv-data) -> VAE (mugv-train vae) -> precompute (tiny T5) -> DiT pretraining,
two-stage curriculum (mugv-train) -> SFT -> DPO (mugv-align) -> releases -> T2V/TI2V of held-out
prompts (mugv-infer) -> tracker, binomial scores, preference accuracy -> report folder.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from demo import data, evaluate, probe, report
from demo import train as stages
from demo.config import DemoConfig
from demo.stats import Score
from demo.world import COLOURS, DIRECTIONS, HELD_OUT, SHAPES, ClipSpec
from mugv_dit.flow import FlowSchedule
from mugv_train.metrics import read_metrics
from mugv_train.plot import plot_run

log = logging.getLogger("demo")


def prompts(cfg: DemoConfig) -> dict[str, list[ClipSpec]]:
    """Held-out colour/direction combinations (never captioned together in training), every
    shape, seeds no training clip used: T2V and TI2V. Plus T2V of the training combinations with
    unseen seeds, which tells a model that composes nothing from one that learned nothing."""
    size, frames = cfg.world.sizes[-1], cfg.world.long_frames
    seen = sorted({(c, d) for c in COLOURS for d in DIRECTIONS} - HELD_OUT)

    def specs(pairs: list[tuple[str, str]], seeds: int, offset: int) -> list[ClipSpec]:
        return [
            ClipSpec(c, d, s, size, frames, seed=offset + 97 * i + k)
            for i, (c, d) in enumerate(pairs)
            for s in SHAPES
            for k in range(seeds)
        ]

    return {
        "t2v": specs(sorted(HELD_OUT), cfg.t2v_seeds, 20_000),
        "ti2v": specs(sorted(HELD_OUT), cfg.i2v_seeds, 30_000),
        "t2v-seen": specs(seen, cfg.seen_seeds, 40_000),
    }


def _scores(reads: list[tuple[str | None, str | None]], truth: list[ClipSpec]) -> dict[str, dict]:
    """(colour, direction) readings against the clips they should show -> binomial scores."""
    chance = evaluate.chance()
    ok_c = sum(r[0] == s.colour for r, s in zip(reads, truth, strict=True))
    ok_d = sum(r[1] == s.direction for r, s in zip(reads, truth, strict=True))
    return {
        "colour": Score(ok_c, len(truth), chance["colour"]).to_dict(),
        "direction": Score(ok_d, len(truth), chance["direction"]).to_dict(),
    }


def _labelled(folder: Path, specs: list[ClipSpec]) -> tuple[torch.Tensor, list[ClipSpec]]:
    """Latents [N, 24, T, h, w] of the world clips in `folder` that curation kept whole."""
    by_name = {s.name: s for s in specs}
    found = [(by_name[n], c) for n, c in stages.clips(folder).items() if n in by_name]
    whole = [(s, c) for s, c in found if c.num_frames == s.frames]
    return torch.stack([c.latent for _, c in whole]), [s for s, _ in whole]


def judge(
    cfg: DemoConfig,
    work: Path,
    release: dict[str, Path],
    specs: dict[str, list[ClipSpec]],
    samples: list[evaluate.Sample],
) -> dict:
    """Every reading, scored. Real clips first: held-out combinations and training combinations
    at unseen placements, read by the DiT's caption choice (latent space, no decoder) and by the
    probe (trained on the training clips' latents 1..) on their latents 1..; the held-out ones
    also by the pixel tracker on their VAE round trip. Then the generated clips."""
    x, train_specs = _labelled(work / "latents" / "long", specs["long"])
    p = probe.fit(x[:, :, 1:], [s.colour for s in train_specs], [s.direction for s in train_specs])
    hx, held_specs = _labelled(work / "latents" / "extra", specs["heldout"])
    fx, fresh_specs = _labelled(work / "latents" / "extra", specs["fresh"])
    flow = FlowSchedule(shift_scale=cfg.flow_shift)
    tracking = {
        "real held-out clips, caption choice": _scores(
            evaluate.caption_choice(release["dit"], release["t5"], hx, held_specs, flow),
            held_specs,
        ),
        "real seen combinations, unseen seeds, caption choice": _scores(
            evaluate.caption_choice(release["dit"], release["t5"], fx, fresh_specs, flow),
            fresh_specs,
        ),
        "real held-out clips, probe": _scores(probe.read(p, hx[:, :, 1:]), held_specs),
        "real seen combinations, unseen seeds, probe": _scores(
            probe.read(p, fx[:, :, 1:]), fresh_specs
        ),
        "real held-out clips through the VAE, pixel tracker": _scores(
            evaluate.track_decoded(release["vae"], hx, held_specs[0].frames), held_specs
        ),
    }
    gen = probe.read(p, torch.stack([s.latent for s in samples]))
    for s, r in zip(samples, gen, strict=True):
        s.probe = r
    for mode, label in (("t2v", "T2V"), ("ti2v", "TI2V"), ("t2v-seen", "T2V seen combinations")):
        mine = [s for s in samples if s.mode == mode]
        truth = [s.spec for s in mine]
        tracking[f"{label}, probe"] = _scores([s.probe for s in mine], truth)
        tracking[f"{label}, pixel tracker"] = _scores([(s.colour, s.direction) for s in mine], truth)  # fmt: skip
    return tracking


def run(cfg: DemoConfig, out: Path) -> tuple[dict, list[dict]]:
    """Run every stage into `out` (work/ holds the intermediate files, the rest is the report)."""
    if out.exists():
        shutil.rmtree(out)
    work = out / "work"
    work.mkdir(parents=True)
    torch.manual_seed(0)
    timings: dict[str, float] = {}
    start = time.perf_counter()

    @contextmanager
    def stage(name: str):
        t0 = time.perf_counter()
        log.info("== %s", name)
        yield
        timings[name] = round(time.perf_counter() - t0, 1)
        log.info("== %s done in %.0f s", name, timings[name])

    specs = data.world_specs(cfg.world)
    with stage("curate"):
        manifests = data.make_raw(cfg.world, specs, work)
    with stage("vae"):
        vae, psnr = stages.train_tiny_vae(
            cfg, work / "raw", work / "runs" / "vae", work / "releases" / "vae"
        )
    with stage("precompute"):
        t5 = data.make_t5(work / "t5")
        data.make_latents(
            work / "raw", vae, t5, work / "latents", cfg.world.side, cfg.world.long_frames
        )
    rel = work / "releases"
    with stage("pretrain"):
        pre = stages.pretrain(cfg, work / "latents", work / "runs" / "pretrain", rel / "pretrain")
    with stage("sft"):
        sft = stages.sft(cfg, pre, work / "latents", work / "runs" / "sft", rel / "sft")
    with stage("preference"):
        pair_names = [s.name for s in specs["pairs"]]
        n_pairs = stages.make_pairs(
            pair_names, work / "latents" / "long", work / "latents" / "extra", work / "pairs"
        )
        final = stages.dpo(
            cfg, sft, work / "pairs", work / "latents", work / "runs" / "dpo", rel / "dpo"
        )
        held = [s.name for s in specs["heldout"]]
        before = evaluate.preference_accuracy(sft, work / "latents" / "extra", held)
        after = evaluate.preference_accuracy(final, work / "latents" / "extra", held)
    with stage("generate"):
        release = {"dit": final, "vae": vae, "t5": t5}
        samples = evaluate.generate(cfg, release, prompts(cfg), out / "samples")

    plots = []
    losses = {}
    for name in ("pretrain", "sft", "dpo"):
        run_dir = work / "runs" / name
        plots.append(plot_run(run_dir, out / f"loss-{name}.png").name)
        losses[name] = report.stage_losses(read_metrics(run_dir))
    dpo_rows = [r for r in read_metrics(work / "runs" / "dpo") if "pref_acc" in r]
    tail = dpo_rows[-max(1, int(len(dpo_rows) * report.WINDOW)) :]
    numbers = {
        "tracking": judge(cfg, work, release, specs, samples),
        "vae_psnr": psnr,
        "losses": losses,
        "preference": {
            "pairs_trained": n_pairs,
            # policy vs frozen reference on the same training batches, end of the DPO run
            "train_policy": sum(r["pref_acc"] for r in tail) / len(tail),
            "train_reference": sum(r["pref_acc_ref"] for r in tail) / len(tail),
            "before": {
                "correct": before[0],
                "total": before[1],
                "accuracy": before[0] / max(before[1], 1),
            },
            "after": {
                "correct": after[0],
                "total": after[1],
                "accuracy": after[0] / max(after[1], 1),
            },
        },
        "curation": {
            k: {"accepted": m["clips_accepted"], "rejects": m["reject_reasons"]}
            for k, m in manifests.items()
        },
        "chance": evaluate.chance(),
        "colours": list(COLOURS),
        "directions": list(DIRECTIONS),
        "samples": [s.to_dict() for s in samples],
        "timings": timings,
        "wall_s": time.perf_counter() - start,
        "device": f"{platform.machine()} CPU, {torch.get_num_threads()} threads, {os.cpu_count()} cores",
        "plots": plots,
    }
    rows = report.checks(numbers, cfg.thresholds)
    report.write(out, numbers, rows)
    return numbers, rows
