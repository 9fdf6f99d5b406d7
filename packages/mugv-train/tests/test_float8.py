"""`parallel.float8`: which layers torchao's float8 linears replace, and the error without an fp8 GPU."""

from __future__ import annotations

import pytest
import torch
from torchao.float8.float8_linear import Float8Linear

from mugv_dit import DiTConfig, MUGDiT
from mugv_train.config import ConfigError
from mugv_train.parallelize import _float8_eligible, apply_float8


def test_float8_replaces_the_blocks_linears_and_keeps_the_weights(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))
    model = MUGDiT(DiTConfig.preset("debug", text_dim=32))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    eligible = {n for n, m in model.blocks.named_modules() if _float8_eligible(m, n)}
    apply_float8(model)
    swapped = {n for n, m in model.blocks.named_modules() if isinstance(m, Float8Linear)}
    assert swapped == eligible and len(eligible) >= 6 * model.config.depth  # qkv, proj, cross, MLP
    outside = [n for n, m in model.named_modules() if isinstance(m, Float8Linear) and not n.startswith("blocks.")]  # fmt: skip
    assert outside == []  # embedders and the final layer keep bf16 matmuls
    after = model.state_dict()  # checkpoints, EMA and export see the same tensors
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], v) for k, v in before.items())


def test_float8_needs_an_fp8_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"parallel\.float8=false"):
        apply_float8(MUGDiT(DiTConfig.preset("debug", text_dim=32)))
