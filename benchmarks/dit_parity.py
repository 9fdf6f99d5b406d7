#!/usr/bin/env python3
"""Reference parity of MUGDiT on the available device and dtypes.

    python benchmarks/dit_parity.py

Runs the golden case of packages/mugv-dit/tests/data (reference-implementation outputs) on CUDA
when present, in fp32 and bf16, and prints the max/mean abs difference and the attention path.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from mugv_dit import MUGDiT
from mugv_dit.attention import attention_backend_name

GOLDEN = Path(__file__).parents[1] / "packages/mugv-dit/tests/data/reference_golden.safetensors"


def main() -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tensors = load_file(GOLDEN)
    weights = {
        k.removeprefix("weight."): v.float() for k, v in tensors.items() if k.startswith("weight.")
    }
    inputs = {
        k.removeprefix("input."): v.to(device) for k, v in tensors.items() if k.startswith("input.")
    }
    expected = tensors["output.velocity"].to(device)
    report = {"device": device, "attention": attention_backend_name()}
    for dtype in (torch.float32, torch.bfloat16):
        model = MUGDiT.from_reference(weights, device=device, dtype=dtype).eval()
        with torch.no_grad():
            diff = (model(**inputs) - expected).abs()
        report[str(dtype)] = {
            "max_abs": diff.max().item(),
            "mean_abs": diff.mean().item(),
            "output_mean_abs": expected.abs().mean().item(),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
