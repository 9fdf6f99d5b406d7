"""Training throughput of the mugv-train engine on synthetic latent shards: step time, tokens/s,
MFU (model FLOPs from mugv_dit.flops, no recompute, over 989 TFLOP/s per GPU) and peak memory.

    python benchmarks/train_throughput.py --preset 2b --latent 14 45 80 --ac selective --compile
    torchrun --nproc-per-node 2 benchmarks/train_throughput.py --preset 2b --latent 14 45 80 ...

Runs the real Trainer (FSDP2 on every GPU, bf16 params / fp32 reduce, online EMA, AdamW, the
flow objective) for `--warmup` + `--steps` steps, one sample per GPU per step, 300 real text
tokens; reports the median of the measured steps. Rank 0 writes a JSON summary to `--out`.
`--profile DIR` traces one more step on every rank (Chrome trace per rank) and adds to the summary
how much of the NCCL kernel time (FSDP2 all-gather / reduce-scatter, CP all-to-all) ran while a
compute kernel was running on the same GPU, i.e. how well communication is hidden.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from mugv_data.shards.latent import LatentSample, LatentShardWriter
from mugv_dit import DiTConfig
from mugv_dit.flops import num_tokens
from mugv_train.config import config_from_dict
from mugv_train.dist import setup, teardown
from mugv_train.loop import Trainer


def _union(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[list[float]] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def comm_overlap(trace: Path) -> dict[str, float]:
    """Communication vs compute kernels of one Chrome trace: NCCL kernel time (union, ms), the part
    of it that coincides with some compute kernel, and the exposed remainder."""
    events = json.loads(trace.read_text())["traceEvents"]
    kernels = [e for e in events if e.get("cat") == "kernel" and "dur" in e]
    comm = _union([(e["ts"], e["ts"] + e["dur"]) for e in kernels if "nccl" in e["name"].lower()])
    compute = _union([(e["ts"], e["ts"] + e["dur"]) for e in kernels if "nccl" not in e["name"].lower()])  # fmt: skip
    overlap, j = 0.0, 0
    for a, b in comm:  # both lists sorted and disjoint: one sweep
        while j < len(compute) and compute[j][1] <= a:
            j += 1
        k = j
        while k < len(compute) and compute[k][0] < b:
            overlap += min(b, compute[k][1]) - max(a, compute[k][0])
            k += 1
    total = sum(b - a for a, b in comm)
    busy = sum(b - a for a, b in compute)
    return {
        "comm_ms": total / 1e3, "compute_ms": busy / 1e3, "comm_overlapped_ms": overlap / 1e3,
        "comm_exposed_ms": (total - overlap) / 1e3, "overlap_fraction": overlap / total if total else 1.0,
    }  # fmt: skip


def write_shards(root: Path, latent: tuple[int, int, int], samples: int, text_len: int) -> None:
    t, h, w = latent
    g = torch.Generator().manual_seed(0)
    with LatentShardWriter(root, prefix="bench") as writer:
        for i in range(samples):
            writer.write(LatentSample(
                key=f"s{i:04d}", latent=torch.randn(24, t, h, w, generator=g),
                text=torch.randn(text_len, 4096, generator=g).to(torch.bfloat16),
                text_mask=torch.ones(text_len, dtype=torch.bool), caption="bench", fps=30.0,
                height=8 * h, width=8 * w, num_frames=8 * (t - 1) + 1, vae_id="bench", text_encoder_id="bench",
            ))  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--preset", default="2b")
    p.add_argument("--depth", type=int, default=None, help="override the preset's depth")
    p.add_argument("--latent", type=int, nargs=3, default=(14, 45, 80), metavar=("T", "H", "W"))
    p.add_argument("--text-len", type=int, default=300)
    p.add_argument("--ac", choices=["none", "full", "attention", "selective"], default="selective")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--float8", action="store_true", help="torchao fp8 matmuls in the blocks")
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--cp", type=int, default=1)
    p.add_argument("--no-reshard", action="store_true", help="keep unsharded params after forward")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=4)
    p.add_argument("--out", default=None)
    p.add_argument("--profile", default=None, help="trace one extra step per rank into DIR")
    args = p.parse_args()

    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    root = (
        Path(tempfile.gettempdir()) / f"mugv-bench-{args.preset}-{'x'.join(map(str, args.latent))}"
    )
    if rank == 0 and not (root / "done").exists():
        write_shards(root, tuple(args.latent), samples=8, text_len=args.text_len)
        (root / "done").write_text("ok")
    while not (root / "done").exists():
        time.sleep(0.5)

    tokens = num_tokens(DiTConfig.preset(args.preset), *args.latent)
    overrides = {"depth": args.depth} if args.depth else {}
    cfg = config_from_dict({
        "run_dir": str(root / f"run-{world}"),
        "model": {"preset": args.preset, "overrides": overrides},
        "data": {"shards": str(root), "num_workers": 2},
        "optim": {"lr": args.lr, "warmup_steps": 0, "schedule": "constant"},
        "stages": [{"name": "bench", "steps": args.warmup + args.steps + bool(args.profile), "max_tokens": tokens, "max_batch_size": 1}],
        "parallel": {"activation_checkpointing": args.ac, "compile": args.compile, "float8": args.float8, "cp": args.cp, "reshard_after_forward": not args.no_reshard},
        "metrics": {"tensorboard": False, "progress": False},
    })  # fmt: skip
    env = setup(cfg.parallel)
    trainer = Trainer(cfg, env)
    rows = []
    for _ in range(args.warmup + args.steps):
        out = trainer.train_step()
        trainer.step += 1
        out.pop("keys")
        rows.append(out)
        if env.is_main:
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}), flush=True)  # fmt: skip
    measured = rows[args.warmup :]
    overlap = None
    if args.profile:
        activities = [torch.profiler.ProfilerActivity.CPU]
        if torch.cuda.is_available():
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        with torch.profiler.profile(activities=activities) as prof:
            trainer.train_step()
        trace = Path(args.profile) / f"trace-w{env.world}-cp{args.cp}-r{env.rank}.json"
        trace.parent.mkdir(parents=True, exist_ok=True)
        prof.export_chrome_trace(str(trace))
        overlap = comm_overlap(trace)
    summary = {
        "preset": args.preset, "depth": trainer.dit_cfg.depth, "latent": args.latent,
        "tokens_per_sample": tokens, "world": env.world, "cp": args.cp, "ac": args.ac,
        "compile": args.compile, "float8": args.float8, "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "step_time_s": statistics.median(r["step_time"] for r in measured),
        "tokens_per_s": statistics.median(r["tokens_per_s"] for r in measured),
        "mfu": statistics.median(r["mfu"] for r in measured),
        "peak_mem_gib": max(r["peak_mem_gib"] for r in measured),
        "params": sum(p.numel() for p in trainer.model.parameters()),  # DTensor numel is global
        "comm_overlap_rank0": overlap,
        "losses": [r.get("loss") for r in rows],  # every step, warm-up included (parity checks)
    }  # fmt: skip
    if env.is_main:
        print("SUMMARY", json.dumps(summary), flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(summary, indent=2))
    teardown()


if __name__ == "__main__":
    main()
