#!/usr/bin/env python3
"""Attention kernels at MUG-DiT's head_dim 72, forward + backward, one GPU: speed and correctness.

    PYTHONPATH=packages/mugv-dit/src python3 benchmarks/attention_kernels.py --out attention.json

For each shape, (a) 24 heads x 12,882 tokens (2B width, 360p 5 s) and (b) 48 heads x 50,402
tokens (10B width, 720p 5 s), times forward+backward of every kernel on bf16 [1, H, N, 72]
inputs: SDPA's cuDNN, flash and memory-efficient backends, FlexAttention (compiled, no mask) and
FlashAttention-4 where installed, both as it is and through `mugv_dit.attention` (heads
zero-padded to 96, its training path). TFLOP/s counts 4*N^2*D*H forward and twice that backward
(the convention of mugv_dit.flops and the rest of docs/performance.md). Each kernel's
out/dq/dk/dv are compared with an fp32 reference at 2,048 tokens (relative L2 error); a kernel
with an error above 2x cuDNN's (floor 1e-2) is marked wrong.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.flex_attention import flex_attention

from mugv_dit.attention import attention

log = logging.getLogger("attention_kernels")
SHAPES = {"a": (24, 12_882), "b": (48, 50_402)}
HEAD_DIM = 72
Kernel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # [B, H, N, D]


def _sdpa(backend: SDPBackend) -> Kernel:
    def run(q, k, v):
        with sdpa_kernel(backend):
            return F.scaled_dot_product_attention(q, k, v)

    return run


def kernels() -> dict[str, Kernel]:
    found: dict[str, Kernel] = {
        "sdpa_cudnn": _sdpa(SDPBackend.CUDNN_ATTENTION),
        "sdpa_flash": _sdpa(SDPBackend.FLASH_ATTENTION),
        "sdpa_efficient": _sdpa(SDPBackend.EFFICIENT_ATTENTION),
        "flex": torch.compile(flex_attention, dynamic=False),
    }
    try:
        from flash_attn.cute import flash_attn_func
    except ImportError:
        return found

    def fa4(q, k, v):  # FlashAttention's layout is [B, N, H, D]
        out = flash_attn_func(*(t.transpose(1, 2) for t in (q, k, v)))
        return (out[0] if isinstance(out, tuple) else out).transpose(1, 2)

    def mugv(q, k, v):  # mugv_dit.attention: FA4 on heads zero-padded to 96 when training
        return attention(*(t.transpose(1, 2) for t in (q, k, v))).transpose(1, 2)

    found["fa4"] = fa4
    found["fa4_padded"] = mugv
    return found


def _fwd_bwd(fn: Kernel, q, k, v, grad) -> list[torch.Tensor]:
    inputs = [t.detach().requires_grad_() for t in (q, k, v)]
    out = fn(*inputs)
    out.backward(grad)
    return [out] + [t.grad for t in inputs]


def errors(fn: Kernel, heads: int) -> dict[str, float]:
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v, grad = (torch.randn(1, heads, 2048, HEAD_DIM, device="cuda", generator=g) for _ in range(4))  # fmt: skip
    with sdpa_kernel(SDPBackend.MATH):
        exact = _fwd_bwd(F.scaled_dot_product_attention, q, k, v, grad)
    got = _fwd_bwd(fn, *(t.bfloat16() for t in (q, k, v, grad)))
    return {
        name: float((x.float() - e).norm() / e.norm())
        for name, x, e in zip(("out", "dq", "dk", "dv"), got, exact, strict=True)
    }


def seconds(fn: Kernel, heads: int, n: int, warmup: int, iters: int) -> float:
    q, k, v, grad = (torch.randn(1, heads, n, HEAD_DIM, device="cuda", dtype=torch.bfloat16) for _ in range(4))  # fmt: skip
    for _ in range(warmup):
        _fwd_bwd(fn, q, k, v, grad)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        _fwd_bwd(fn, q, k, v, grad)
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), default=sorted(SHAPES))
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--out")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not torch.cuda.is_available():
        raise SystemExit("attention_kernels needs a CUDA GPU")
    report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "shapes": {}}
    for name, fn in kernels().items():
        try:
            err = errors(fn, heads=4)
        except (RuntimeError, ValueError) as e:  # a backend that does not take head_dim 72
            report.setdefault("unavailable", {})[name] = str(e).splitlines()[0][:200]
            continue
        report.setdefault("errors", {})[name] = err
        for key in args.shapes:
            heads, n = SHAPES[key]
            flops = 3 * 4 * n * n * HEAD_DIM * heads
            try:
                s = seconds(fn, heads, n, args.warmup, args.iters)
                row = {"seconds": s, "tflops_per_s": flops / s / 1e12}
            except (RuntimeError, ValueError) as e:
                row = {"error": str(e).splitlines()[0][:200]}
            report["shapes"].setdefault(key, {})[name] = row
            log.info("%s %s: %s", key, name, row)
            torch.cuda.empty_cache()
        if args.out:
            Path(args.out).write_text(json.dumps(report, indent=2))
    ref = report["errors"]["sdpa_cudnn"]
    report["wrong"] = sorted(
        name
        for name, err in report["errors"].items()
        if any(err[t] > max(2 * ref[t], 1e-2) for t in err)
    )
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
