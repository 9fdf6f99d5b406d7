"""The one attention entry point of mugv-dit, and the kernel choice behind it.

Tensors are [B, N, H, D] (FlashAttention's native layout; SDPA takes transposed views of it
without a copy). The kernel is chosen once per process:

1. FlashAttention-4 (`flash_attn.cute`, the `mugv-dit[fa4]` extra) on Hopper/Blackwell GPUs.
2. FlashAttention-3 (`flash_attn_interface`) on Hopper, where installed.
3. torch SDPA otherwise, backend priority cuDNN -> flash -> memory-efficient -> math.

FlashAttention-4 also trains: its backward, checked against SDPA on a GPU, runs on q, k, v
zero-padded to a head_dim that is a multiple of 32 (below). FlashAttention-3 serves inference
only (inputs that need no gradient): its backward has not been checked here. The fast kernels
take only CUDA bf16/fp16 inputs; CPU and fp32 always take SDPA.
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
_TRAINS = frozenset({"fa4"})  # kernels whose backward was checked against SDPA on a GPU

# flash-attn-4 4.0.0b36's SM90 backward tiles head_dim in steps of 16 but sizes and reads dq's
# fp32 accumulator in steps of 32, so at head_dim 72 (80 vs 96) dq came back wrong (relative
# error 1.3; Dao-AILab/flash-attention#2896). Zero columns in q, k, v change no score and no
# output column, so padding to a multiple of 32 makes the two agree, as that fix does in-kernel.
_GRAD_HEAD_DIM_MULTIPLE = 32


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


def _use_fast(kernel_name: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> bool:
    half = q.dtype in (torch.bfloat16, torch.float16)
    backward = q.requires_grad or k.requires_grad or v.requires_grad
    return bool(kernel_name) and q.is_cuda and half and (kernel_name in _TRAINS or not backward)


@torch.compiler.disable
def _fast_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    head_dim = q.shape[-1]
    pad = -head_dim % _GRAD_HEAD_DIM_MULTIPLE if q.requires_grad else 0  # only dq is wrong
    if pad:
        q, k, v = (F.pad(t, (0, pad)) for t in (q, k, v))
    out = fast_kernel().fn(q, k, v, softmax_scale=head_dim**-0.5)
    out = out[0] if isinstance(out, tuple) else out  # some versions also return the LSE
    return out[..., :head_dim] if pad else out


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Softmax attention, scale 1/sqrt(D), no mask.

    q: [B, Nq, H, D]; k, v: [B, Nk, H, D] -> [B, Nq, H, D].
    """
    if _use_fast(_fast_kernel_name(), q, k, v):
        return _fast_attention(q, k, v)
    with sdpa_kernel(SDPA_PRIORITY, set_priority=True):
        out = F.scaled_dot_product_attention(*(t.transpose(1, 2) for t in (q, k, v)))
    return out.transpose(1, 2)


def attention_backend_name() -> str:
    kernel = fast_kernel()
    return kernel.name if kernel else "sdpa(cudnn>flash>efficient>math)"
