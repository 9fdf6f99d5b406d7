#!/usr/bin/env python3
"""Regenerate tests/data/reference_golden.safetensors from the reference implementation.

    python tools/make_reference_golden.py --mugv-repo /path/to/MUG-V

needs a checkout of github.com/Shopee-MUG/MUG-V (commit b2fe748 was used). Its DiT imports
flash-attn and xformers at module level; both are shimmed here with exact torch SDPA equivalents
so that the reference runs on a CPU. Weights are random (seeded) in the released `dit.pt` layout.
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = Path(__file__).parents[1] / "tests" / "data" / "reference_golden.safetensors"


def _install_shims() -> None:
    def flash_attn_func(q, k, v, dropout_p=0.0, softmax_scale=None):  # [B, N, H, D]
        out = F.scaled_dot_product_attention(
            *(x.transpose(1, 2) for x in (q, k, v)), scale=softmax_scale
        )
        return out.transpose(1, 2)

    class BlockDiagonalMask:
        def __init__(self, q_lens, kv_lens):
            self.q_lens, self.kv_lens = q_lens, kv_lens

        @classmethod
        def from_seqlens(cls, q_lens, kv_lens):
            return cls(list(q_lens), list(kv_lens))

    def memory_efficient_attention(q, k, v, p=0.0, attn_bias=None):  # [1, N, H, D] packed
        if attn_bias is None:
            return flash_attn_func(q, k, v)
        outs, qs, ks = [], 0, 0
        for nq, nk in zip(attn_bias.q_lens, attn_bias.kv_lens, strict=True):
            outs.append(flash_attn_func(q[:, qs : qs + nq], k[:, ks : ks + nk], v[:, ks : ks + nk]))
            qs, ks = qs + nq, ks + nk
        return torch.cat(outs, dim=1)

    ops = types.ModuleType("xformers.ops")
    ops.memory_efficient_attention = memory_efficient_attention
    ops.fmha = types.SimpleNamespace(
        attn_bias=types.SimpleNamespace(BlockDiagonalMask=BlockDiagonalMask)
    )
    sys.modules["xformers"] = types.ModuleType("xformers")
    sys.modules["xformers.ops"] = ops
    sys.modules["flash_attn"] = types.ModuleType("flash_attn")
    sys.modules["flash_attn"].flash_attn_func = flash_attn_func


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mugv-repo", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    _install_shims()
    sys.path.insert(0, str(args.mugv_repo))
    from mug_v.dit.model import MUGDiT as ReferenceDiT

    ref = ReferenceDiT(
        input_channels=24, hidden_size=144, depth=1, num_heads=2, text_input_channels=32
    )
    g = torch.Generator().manual_seed(1234)
    weights = {}
    for key, value in sorted(ref.state_dict().items()):
        w = torch.randn(value.shape, generator=g) * 0.1
        weights[key] = (1 + w if key.endswith("norm.weight") else w).half()
    ref.load_state_dict({k: v.float() for k, v in weights.items()})
    b, t, h, w, length = 2, 3, 5, 7, 6
    inputs = {
        "x": torch.randn(b, 24, t, h, w, generator=g),
        "timestep": torch.tensor([700.25, 25.0]),
        "text": torch.randn(b, length, 32, generator=g),
        "text_mask": torch.tensor([[1, 1, 1, 1, 0, 0], [1] * 6], dtype=torch.bool),
        "fps": torch.tensor([30.0, 24.0]),
        "frame_mask": torch.tensor([[False, True, True], [True, True, True]]),
    }
    with torch.no_grad():
        out = ref(
            inputs["x"],
            inputs["timestep"],
            inputs["text"][:, None],
            mask=inputs["text_mask"][:, None, None].long(),
            x_mask=inputs["frame_mask"],
            fps=inputs["fps"],
            frame_indice=torch.arange(t + 2)[None].repeat(b, 1),
        )
    tensors = {f"weight.{k}": v for k, v in weights.items()}
    tensors |= {f"input.{k}": v for k, v in inputs.items()}
    tensors["output.velocity"] = out[:, :24].contiguous()
    save_file(tensors, args.out, metadata={"source": "Shopee-MUG/MUG-V mug_v/dit", "seed": "1234"})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
