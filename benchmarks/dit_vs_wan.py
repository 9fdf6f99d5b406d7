#!/usr/bin/env python3
"""MUG-DiT vs diffusers' Wan transformer: training-step speed on the same shapes, one GPU, one run.

    PYTHONPATH=packages/mugv-dit/src python3 benchmarks/dit_vs_wan.py --out vs_wan.json \\
        [--attention sdpa] [--profile DIR]

For each shape, (a) 2B width (1728, 24 heads) at 360p 5 s (latent 14x45x80, 12,882 tokens) and
(b) 10B width (3456, 48 heads) at 720p 5 s (latent 14x90x160, 50,402 tokens), builds a depth-4
MUGDiT and a depth-4 `WanTransformer3DModel` of the same width, heads, head_dim 72, FFN 4x and
text width 4096 (bf16 weights, one sample, 300 text tokens) and times forward+backward of the
whole model, eager and with each block compiled (`block.compile()`). Wan is timed with each of
`--wan-backends` in eager mode and compiled with the fastest. MFU counts MUG-DiT's model FLOPs
(mugv_dit.flops; Wan's matmuls are the same to 0.02%) against 989 TFLOP/s; the bf16 matmul rate
of this GPU, measured in the same run, is reported beside it. `--profile DIR` writes the
profiler's CUDA kernel table of one compiled step of each model and shape. Results are written to
`--out` after every measurement, so an interrupted run keeps what it finished.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from mugv_dit import DiTConfig, MUGDiT
from mugv_dit import attention as mugv_attention
from mugv_dit.flops import num_tokens, train_step_flops

log = logging.getLogger("dit_vs_wan")
PEAK = 989e12
TEXT_LEN = 300
SHAPES = {"a": ("2b", (14, 45, 80)), "b": ("10b", (14, 90, 160))}


def _time(step: Callable[[], None], warmup: int, iters: int) -> float:
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters


def matmul_tflops(n: int = 8192) -> float:
    a, b = (torch.randn(n, n, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    seconds = _time(lambda: a @ b, warmup=3, iters=20)
    return 2 * n**3 / seconds / 1e12


Built = tuple[torch.nn.Module, Callable[[], None]]  # the model and one training step of it


def sdpa_layouts(cfg: DiTConfig, n: int, args) -> dict:
    """cuDNN SDPA forward+backward TFLOP/s on contiguous [B, H, N, D] tensors vs [B, N, H, D]
    views (what mugv-dit passes: q, k, v sliced from the qkv output, transposed without a copy)."""
    flops = 3 * 4 * n * n * cfg.hidden_size
    h, d = cfg.num_heads, cfg.head_dim
    opts = {"device": "cuda", "dtype": torch.bfloat16, "requires_grad": True}

    def contiguous() -> list[torch.Tensor]:
        return [torch.randn(1, h, n, d, **opts) for _ in range(3)]

    def views() -> list[torch.Tensor]:
        return [t.transpose(1, 2) for t in torch.randn(1, n, 3, h, d, **opts).unbind(2)]

    out = {}
    for name, make in (("bhnd_contiguous", contiguous), ("bnhd_views", views)):
        tensors = make()

        def run(tensors=tensors) -> None:
            with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                F.scaled_dot_product_attention(*tensors).sum().backward()

        seconds = _time(run, args.warmup, args.iters)
        out[name] = {"seconds": seconds, "tflops_per_s": flops / seconds / 1e12}
    log.info("cuDNN SDPA layouts at %d tokens: %s", n, out)
    return out


def build_ours(cfg: DiTConfig, latent: tuple[int, int, int]) -> Built:
    with torch.device("cuda"):
        model = MUGDiT(cfg).to(torch.bfloat16)
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(1, cfg.in_channels, *latent, device="cuda", generator=g)
    text = torch.randn(1, TEXT_LEN, cfg.text_dim, device="cuda", generator=g)
    mask = torch.ones(1, TEXT_LEN, dtype=torch.bool)  # on the CPU, as mugv-train passes it
    ts, fps = torch.full((1,), 500.0, device="cuda"), torch.full((1,), 30.0, device="cuda")

    def step() -> None:
        model(x, ts, text, mask, fps).pow(2).mean().backward()

    return model, step


def build_wan(cfg: DiTConfig, latent: tuple[int, int, int], backend: str) -> Built:
    from diffusers import WanTransformer3DModel

    with torch.device("cuda"):
        model = WanTransformer3DModel(
            patch_size=cfg.patch_size,
            num_attention_heads=cfg.num_heads,
            attention_head_dim=cfg.head_dim,
            in_channels=cfg.in_channels,
            out_channels=cfg.out_channels,
            text_dim=cfg.text_dim,
            freq_dim=cfg.freq_dim,
            ffn_dim=int(cfg.hidden_size * cfg.mlp_ratio),
            num_layers=cfg.depth,
            cross_attn_norm=True,
        ).to(torch.bfloat16)
    model.set_attention_backend(backend)
    # Wan does not pad: round H, W up to the patch so both models see the same token grid.
    t, h, w = (-(-n // p) * p for n, p in zip(latent, cfg.patch_size, strict=True))
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(1, cfg.in_channels, t, h, w, device="cuda", generator=g, dtype=torch.bfloat16)
    text = torch.randn(1, TEXT_LEN, cfg.text_dim, device="cuda", generator=g, dtype=torch.bfloat16)
    ts = torch.full((1,), 500, device="cuda")

    def step() -> None:
        out = model(hidden_states=x, timestep=ts, encoder_hidden_states=text, return_dict=False)
        out[0].float().pow(2).mean().backward()

    return model, step


def measure(name: str, make: Callable[[], Built], compiled: bool, flops: float, args) -> dict:
    torch._dynamo.reset()
    torch.cuda.reset_peak_memory_stats()
    model, step = make()
    if compiled:
        for block in model.blocks:
            block.compile()
    try:
        seconds = _time(step, args.warmup, args.iters)
        result = {
            "seconds": seconds,
            "model_tflops_per_s": flops / seconds / 1e12,
            "mfu": flops / seconds / PEAK,
            "ratio_to_matmul": flops / seconds / 1e12 / args.matmul_tflops,
            "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
        }
    except (RuntimeError, ValueError) as err:  # a backend that does not take this shape
        result = {"error": str(err).splitlines()[0][:300]}
    if args.profile and compiled and "seconds" in result:
        result["profile"] = _profile(step, Path(args.profile) / f"{name}.txt")
    log.info("%s: %s", name, {k: v for k, v in result.items() if k != "profile"})
    del model, step
    gc.collect()
    torch.cuda.empty_cache()
    return result


def _profile(step: Callable[[], None], path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=activities) as prof:
        step()
        torch.cuda.synchronize()
    table = prof.key_averages().table(
        sort_by="cuda_time_total", row_limit=30, max_name_column_width=90
    )
    path.write_text(table)
    return str(path)


def run_shape(key: str, args, report: dict) -> None:
    preset, latent = SHAPES[key]
    cfg = DiTConfig.preset(preset, depth=args.depth)
    flops = train_step_flops(cfg, *latent, text_len=TEXT_LEN)
    res = report["shapes"][key] = {
        "preset_width": preset,
        "latent": list(latent),
        "tokens": num_tokens(cfg, *latent),
        "model_flops_per_step": flops,
    }
    res["sdpa_cudnn_layouts"] = sdpa_layouts(cfg, res["tokens"], args)
    attn = mugv_attention.attention_backend_name()
    for compiled in (False, True):
        mode = "compiled" if compiled else "eager"
        res[f"mugv_{mode}"] = {
            "attention": attn,
            **measure(f"{key}_mugv_{mode}", lambda: build_ours(cfg, latent), compiled, flops, args),
        }
        _write(report, args.out)
    wan_eager = {
        b: measure(
            f"{key}_wan_eager_{b}", lambda b=b: build_wan(cfg, latent, b), False, flops, args
        )
        for b in args.wan_backends
    }
    timed = {b: r["seconds"] for b, r in wan_eager.items() if "seconds" in r}
    if not timed:
        res["wan_eager"] = {"all_backends": wan_eager}
        _write(report, args.out)
        return
    best = min(timed, key=timed.get)
    res["wan_eager"] = {"attention": best, **wan_eager[best], "all_backends": wan_eager}
    _write(report, args.out)
    res["wan_compiled"] = {
        "attention": best,
        **measure(f"{key}_wan_compiled", lambda: build_wan(cfg, latent, best), True, flops, args),
    }
    for mode in ("eager", "compiled"):
        ours, wan = res[f"mugv_{mode}"], res[f"wan_{mode}"]
        if "seconds" in ours and "seconds" in wan:
            res[f"speedup_vs_wan_{mode}"] = wan["seconds"] / ours["seconds"]
    _write(report, args.out)


def _write(report: dict, path: str | None) -> None:
    text = json.dumps(report, indent=2)
    if path:
        Path(path).write_text(text)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), default=sorted(SHAPES))
    p.add_argument("--depth", type=int, default=4)
    p.add_argument(
        "--attention",
        choices=("auto", "sdpa"),
        default="auto",
        help="MUG-DiT's kernel: auto = FlashAttention-4 where installed, else SDPA",
    )
    p.add_argument(
        "--wan-backends",
        nargs="+",
        default=["native", "_native_cudnn"],
        help="diffusers attention backends to try for Wan (fastest eager one is compiled)",
    )
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--profile", help="folder for the profiler kernel tables of compiled steps")
    p.add_argument("--out")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not torch.cuda.is_available():
        raise SystemExit("dit_vs_wan needs a CUDA GPU")
    if args.attention == "sdpa":
        os.environ["MUGV_ATTENTION"] = "sdpa"
    args.matmul_tflops = matmul_tflops()
    report = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "bf16_matmul_tflops": args.matmul_tflops,
        "shapes": {},
    }
    log.info("bf16 matmul %.0f TFLOP/s", report["bf16_matmul_tflops"])
    for key in args.shapes:
        run_shape(key, args, report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
