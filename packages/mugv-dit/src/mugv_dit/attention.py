"""The one attention entry point of mugv-dit, and the kernel choice behind it.

Tensors are [B, N, H, D] (FlashAttention's native layout; SDPA takes transposed views of it
without a copy). The kernel is chosen once per process:

1. FlashAttention-4 (`flash_attn.cute`, the `mugv-dit[fa4]` extra) on Hopper/Blackwell GPUs.
2. FlashAttention-3 (`flash_attn_interface`) on Hopper, where installed.
3. torch SDPA otherwise, backend priority cuDNN -> flash -> memory-efficient -> math.

The fast kernels serve inference only (inputs that need no gradient): flash-attn-4 4.0.0b36's
backward at head_dim 72 returned a wrong dq on H100 (relative error 1.3 against fp32, cuDNN
0.005; docs/performance.md), so anything that back-propagates takes SDPA. They also take only
CUDA bf16/fp16 inputs; CPU and fp32 always take SDPA.
`MUGV_ATTENTION=sdpa` forces SDPA. FlashAttention's kernels are opaque to `torch.compile`, so
a compiled block runs them between two graphs.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

SDPA_PRIORITY = [
    SDPBackend.CUDNN_ATTENTION,
    SDPBackend.FLASH_ATTENTION,
    SDPBackend.EFFICIENT_ATTENTION,
    SDPBackend.MATH,
]

# module, name, the compute capabilities (major) it has a forward and backward for
_FAST_KERNELS = (("flash_attn.cute", "fa4", (9, 10)), ("flash_attn_interface", "fa3", (9,)))


class FastKernel(NamedTuple):
    name: str
    fn: Callable[..., torch.Tensor]  # (q, k, v) in [B, N, H, D] -> [B, N, H, D] (or (out, lse))


@functools.cache
def fast_kernel() -> FastKernel | None:
    """The FlashAttention kernel used on this machine's GPU, if one is installed and fits."""
    if os.environ.get("MUGV_ATTENTION", "auto") == "sdpa" or not torch.cuda.is_available():
        return None
    major = torch.cuda.get_device_capability()[0]
    for module, name, majors in _FAST_KERNELS:
        if major not in majors:
            continue
        try:
            fn = importlib.import_module(module).flash_attn_func
        except (ImportError, AttributeError):
            continue
        return FastKernel(name, fn)
    return None


@torch.compiler.assume_constant_result  # torch.compile bakes the choice in, tracing no import
def _fast_kernel_name() -> str:
    kernel = fast_kernel()
    return kernel.name if kernel else ""


def _use_fast(q: torch.Tensor, kernel_name: str) -> bool:
    half = q.dtype in (torch.bfloat16, torch.float16)
    return bool(kernel_name) and q.is_cuda and half and not q.requires_grad


@torch.compiler.disable
def _fast_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    out = fast_kernel().fn(q, k, v)
    return out[0] if isinstance(out, tuple) else out  # some versions also return the LSE


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Softmax attention, scale 1/sqrt(D), no mask.

    q: [B, Nq, H, D]; k, v: [B, Nk, H, D] -> [B, Nq, H, D].
    """
    if _use_fast(q, _fast_kernel_name()):
        return _fast_attention(q, k, v)
    with sdpa_kernel(SDPA_PRIORITY, set_priority=True):
        out = F.scaled_dot_product_attention(*(t.transpose(1, 2) for t in (q, k, v)))
    return out.transpose(1, 2)


def attention_backend_name() -> str:
    kernel = fast_kernel()
    return kernel.name if kernel else "sdpa(cudnn>flash>efficient>math)"
