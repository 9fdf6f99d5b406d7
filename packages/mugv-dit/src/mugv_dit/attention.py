"""The one attention entry point of mugv-dit, and the kernel choice behind it.

Torch SDPA is the default, with backend priority cuDNN -> flash -> memory-efficient -> math (cuDNN
is the fastest on H100). A FlashAttention-3 kernel is used instead when `flash_attn_interface` is
importable; a FlashAttention-4 kernel (`flash_attn.cute`) only for inference, since we do not rely
on its backward. The choice is made once per process; `MUGV_ATTENTION=sdpa` forces SDPA.
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


class FastKernel(NamedTuple):
    name: str
    fn: Callable[..., torch.Tensor]  # (q, k, v) in [B, N, H, D] -> [B, N, H, D]
    has_backward: bool


@functools.cache
def fast_kernel() -> FastKernel | None:
    """The optional FlashAttention kernel found in this environment, if any."""
    if os.environ.get("MUGV_ATTENTION", "auto") == "sdpa":
        return None
    for module, name, has_backward in (
        ("flash_attn_interface", "fa3", True),
        ("flash_attn.cute", "fa4", False),
    ):
        try:
            fn = importlib.import_module(module).flash_attn_func
        except (ImportError, AttributeError):
            continue
        return FastKernel(name, fn, has_backward)
    return None


def _use_fast(q: torch.Tensor, kernel: FastKernel | None) -> bool:
    if kernel is None or not q.is_cuda or q.dtype not in (torch.bfloat16, torch.float16):
        return False
    return kernel.has_backward or not (torch.is_grad_enabled() and q.requires_grad)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Softmax attention, scale 1/sqrt(D), no mask.

    q: [B, H, Nq, D]; k, v: [B, H, Nk, D] -> [B, H, Nq, D].
    """
    kernel = fast_kernel()
    if _use_fast(q, kernel):
        out = kernel.fn(*(x.transpose(1, 2) for x in (q, k, v)))
        out = out[0] if isinstance(out, tuple) else out  # some versions also return the LSE
        return out.transpose(1, 2)
    with sdpa_kernel(SDPA_PRIORITY, set_priority=True):
        return F.scaled_dot_product_attention(q, k, v)


def attention_backend_name() -> str:
    kernel = fast_kernel()
    return kernel.name if kernel else "sdpa(cudnn>flash>efficient>math)"
