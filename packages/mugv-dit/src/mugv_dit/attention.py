"""The one attention entry point of mugv-dit, and the kernel choice behind it.

Tensors are [B, N, H, D] (FlashAttention's native layout; SDPA takes transposed views of it
without a copy). The kernel is chosen once per process:

1. FlashAttention-4 (`flash_attn.cute`, the `mugv-dit[fa4]` extra) on Hopper/Blackwell GPUs, for
   CUDA bf16/fp16 inputs, training and inference.
2. torch SDPA otherwise (CPU, fp32, no FA4), backend priority cuDNN -> flash -> efficient -> math.

`MUGV_ATTENTION=sdpa` forces SDPA. FA4 runs as two torch custom ops (`mugv::flash_attention`
and its backward), so `torch.compile` traces a block in one graph and activation checkpointing
can keep FA4's output as it keeps SDPA's.
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
_FA4_MAJORS = (9, 10)  # compute capabilities FA4 has a forward and a backward for

# flash-attn-4 4.0.0b36's SM90 backward tiles head_dim in steps of 16 but sizes and reads dq's
# fp32 accumulator in steps of 32, so at head_dim 72 (80 vs 96) dq came back wrong (relative
# error 1.3; Dao-AILab/flash-attention#2896). Zero columns in q, k, v change no score and no
# output column, so padding to a multiple of 32 makes the two agree, as that fix does in-kernel.
_GRAD_HEAD_DIM_MULTIPLE = 32


class FastKernel(NamedTuple):
    name: str
    # (q, k, v, softmax_scale) -> (out, lse [B, H, N] fp32); all [B, N, H, D]
    forward: Callable[..., tuple[torch.Tensor, torch.Tensor]]
    # (q, k, v, out, dout, lse, softmax_scale) -> (dq, dk, dv)
    backward: Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def _load_fa4() -> FastKernel:
    interface = importlib.import_module("flash_attn.cute.interface")
    # The public flash_attn_func is an autograd.Function; the custom ops need its two halves, so
    # the backward is FA4's private one, looked up here so that a release without it falls back
    # to SDPA at start-up rather than failing in a backward (the extra caps the version too).
    fwd, bwd = interface.flash_attn_func, interface._flash_attn_bwd

    def forward(q, k, v, softmax_scale):
        return fwd(q, k, v, softmax_scale=softmax_scale, return_lse=True)

    def backward(q, k, v, out, dout, lse, softmax_scale):
        return bwd(q, k, v, out, dout, lse, softmax_scale)[:3]

    return FastKernel("fa4", forward, backward)


@functools.cache
def fast_kernel() -> FastKernel | None:
    """FlashAttention-4 where it is installed and fits this machine's GPU, else None."""
    if os.environ.get("MUGV_ATTENTION", "auto") == "sdpa" or not torch.cuda.is_available():
        return None
    if torch.cuda.get_device_capability()[0] not in _FA4_MAJORS:
        return None
    try:
        return _load_fa4()
    except (ImportError, AttributeError):
        return None


@torch.compiler.assume_constant_result  # torch.compile bakes the choice in, tracing no import
def _fast_kernel_name() -> str:
    kernel = fast_kernel()
    return kernel.name if kernel else ""


def _use_fast(kernel_name: str, q: torch.Tensor) -> bool:
    return bool(kernel_name) and q.is_cuda and q.dtype in (torch.bfloat16, torch.float16)


@torch.library.custom_op("mugv::flash_attention", mutates_args=())
def _flash(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, softmax_scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    out, lse = fast_kernel().forward(q, k, v, softmax_scale)
    return out, lse


@_flash.register_fake
def _(q, k, v, softmax_scale):
    b, n, h, _ = q.shape
    return q.new_empty(b, n, h, v.shape[-1]), q.new_empty(b, h, n, dtype=torch.float32)


@torch.library.custom_op("mugv::flash_attention_backward", mutates_args=())
def _flash_backward(
    dout: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    out: torch.Tensor,
    lse: torch.Tensor,
    softmax_scale: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    dq, dk, dv = fast_kernel().backward(q, k, v, out, dout, lse, softmax_scale)
    return dq, dk, dv


@_flash_backward.register_fake
def _(dout, q, k, v, out, lse, softmax_scale):
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


def _flash_setup_context(ctx, inputs, output) -> None:
    q, k, v, ctx.softmax_scale = inputs
    ctx.save_for_backward(q, k, v, *output)


def _flash_autograd(ctx, dout, dlse):
    q, k, v, out, lse = ctx.saved_tensors
    dq, dk, dv = _flash_backward(dout.contiguous(), q, k, v, out, lse, ctx.softmax_scale)
    return dq, dk, dv, None


_flash.register_autograd(_flash_autograd, setup_context=_flash_setup_context)


def _fast_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    head_dim = q.shape[-1]
    pad = -head_dim % _GRAD_HEAD_DIM_MULTIPLE if q.requires_grad else 0  # only dq is wrong
    if pad:
        q, k, v = (F.pad(t, (0, pad)) for t in (q, k, v))
    out, _ = _flash(q.contiguous(), k.contiguous(), v.contiguous(), head_dim**-0.5)
    return out[..., :head_dim] if pad else out


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Softmax attention, scale 1/sqrt(D), no mask.

    q: [B, Nq, H, D]; k, v: [B, Nk, H, D] -> [B, Nq, H, D].
    """
    if _use_fast(_fast_kernel_name(), q):
        return _fast_attention(q, k, v)
    with sdpa_kernel(SDPA_PRIORITY, set_priority=True):
        out = F.scaled_dot_product_attention(*(t.transpose(1, 2) for t in (q, k, v)))
    return out.transpose(1, 2)


def attention_backend_name() -> str:
    kernel = fast_kernel()
    return kernel.name if kernel else "sdpa(cudnn>flash>efficient>math)"
