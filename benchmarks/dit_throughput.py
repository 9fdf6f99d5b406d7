#!/usr/bin/env python3
"""MUG-DiT training-step throughput and MFU, and the attention backends at MUG-V's head size.

    python benchmarks/dit_throughput.py --preset 10b --depth 2 --latent 14 90 160 --out results.json

Builds the preset's width with `--depth` blocks (MFU per block is what scales; the full 10B does
not fit one GPU without sharding), runs bf16 forward+backward of one sample with 300 real text
tokens, and reports step time, model TFLOP/s (mugv_dit.flops: no recompute counted) and MFU
against a 989 TFLOP/s bf16 peak. Then times SDPA per backend on [1, heads, N, 72].
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from mugv_dit import DiTConfig, MUGDiT
from mugv_dit.attention import attention_backend_name
from mugv_dit.flops import num_tokens, train_step_flops


def _time(fn, warmup: int, iters: int) -> float:
    for _ in range(warmup):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters


def step_benchmark(args, device) -> dict:
    cfg = DiTConfig.preset(args.preset, depth=args.depth)
    with torch.device(device):
        model = MUGDiT(cfg).to(torch.bfloat16)
    t, h, w = args.latent
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(1, 24, t, h, w, device=device, generator=g)
    text = torch.randn(1, 300, cfg.text_dim, device=device, generator=g)
    mask = torch.ones(1, 300, dtype=torch.bool, device=device)
    ts, fps = torch.full((1,), 500.0, device=device), torch.full((1,), 30.0, device=device)

    def step():
        model(x, ts, text, mask, fps).float().pow(2).mean().backward()

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds = _time(step, args.warmup, args.iters)
    flops = train_step_flops(cfg, t, h, w, text_len=300)
    return {
        "preset": args.preset,
        "depth": args.depth,
        "latent": [t, h, w],
        "tokens": num_tokens(cfg, t, h, w),
        "step_seconds": seconds,
        "model_tflops_per_s": flops / seconds / 1e12,
        "mfu": flops / seconds / 989e12,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None,
        "attention": attention_backend_name(),
    }


def attention_benchmark(args, device) -> dict:
    cfg = DiTConfig.preset(args.preset)
    n = num_tokens(cfg, *args.latent)
    q, k, v = (
        torch.randn(
            1,
            cfg.num_heads,
            n,
            cfg.head_dim,
            device=device,
            dtype=torch.bfloat16,
            requires_grad=True,
        )
        for _ in range(3)
    )
    flops = 3 * 4 * n * n * cfg.hidden_size  # forward + backward
    out = {}
    for backend in (
        SDPBackend.CUDNN_ATTENTION,
        SDPBackend.FLASH_ATTENTION,
        SDPBackend.EFFICIENT_ATTENTION,
    ):

        def run(backend=backend):
            with sdpa_kernel(backend):
                F.scaled_dot_product_attention(q, k, v).sum().backward()

        try:
            seconds = _time(run, args.warmup, args.iters)
            out[backend.name] = {"seconds": seconds, "tflops_per_s": flops / seconds / 1e12}
        except RuntimeError as err:  # backend does not support this shape/device
            out[backend.name] = {"error": str(err).splitlines()[0][:200]}
    return {"tokens": n, "heads": cfg.num_heads, "head_dim": cfg.head_dim, "backends": out}


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", default="10b")
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--latent", type=int, nargs=3, default=[14, 90, 160])
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--skip-attention", action="store_true")
    p.add_argument("--out")
    args = p.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "torch": torch.__version__,
    }
    result["step"] = step_benchmark(args, device)
    if not args.skip_attention:
        result["attention"] = attention_benchmark(args, device)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
