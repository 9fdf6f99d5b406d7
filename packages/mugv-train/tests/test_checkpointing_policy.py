"""Activation-checkpointing modes: same gradients as no checkpointing, and `attention` / `selective`
keep the attention outputs so the backward pass does not run attention forward again."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from mugv_dit import DiTConfig, MUGDiT
from mugv_train.parallelize import apply_activation_checkpointing

_ATTN_FWD = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu.default


class _CountAttention(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.forwards = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.forwards += func is _ATTN_FWD
        return func(*args, **(kwargs or {}))


def _grads(mode: str) -> tuple[dict[str, torch.Tensor], int]:
    torch.manual_seed(0)
    model = MUGDiT(DiTConfig.preset("debug", text_dim=32, depth=2))
    for p in model.parameters():  # released init zeroes some heads: give every path a gradient
        torch.nn.init.normal_(p, std=0.05)
    apply_activation_checkpointing(model, mode)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 24, 2, 4, 4, generator=g)
    text = torch.randn(1, 5, 32, generator=g)
    args = (x, torch.tensor([500.0]), text, torch.ones(1, 5, dtype=torch.bool), torch.tensor([24.0]))  # fmt: skip
    with _CountAttention() as counter:
        model(*args).square().mean().backward()
    grads = {n.replace("_checkpoint_wrapped_module.", ""): p.grad for n, p in model.named_parameters()}  # fmt: skip
    return grads, counter.forwards


@pytest.mark.parametrize(("mode", "attention_forwards"), [("full", 2), ("attention", 1), ("selective", 1)])  # fmt: skip
def test_checkpointing_keeps_gradients_and_saves_attention(mode, attention_forwards):
    reference, plain = _grads("none")
    grads, forwards = _grads(mode)
    assert grads.keys() == reference.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, reference[name], rtol=1e-5, atol=1e-7, msg=name)
    # self- and cross-attention per block: `full` runs both again in the backward pass
    assert plain == 2 * 2
    assert forwards == attention_forwards * plain
