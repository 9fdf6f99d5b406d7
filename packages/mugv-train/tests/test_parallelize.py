"""`parallelize` on one rank: fp32 leaves a plain module (FSDP2 would shard and cast nothing),
bf16 parameters keep FSDP2 for its mixed precision."""

from __future__ import annotations

import pytest
import torch
from torch.distributed.fsdp import FSDPModule
from torch.distributed.tensor import DTensor

from mugv_dit import DiTConfig, MUGDiT
from mugv_train.config import ParallelConfig
from mugv_train.dist import setup, teardown
from mugv_train.parallelize import is_unwrapped, parallelize


@pytest.mark.parametrize(("dtype", "wrapped"), [("float32", False), ("bfloat16", True)])
def test_one_rank_fp32_stays_a_plain_module(dtype, wrapped):
    cfg = ParallelConfig(param_dtype=dtype)
    env = setup(cfg, "cpu")
    try:
        model = MUGDiT(DiTConfig.preset("debug", text_dim=32, depth=2))
        parallelize(model, env, cfg)
        assert is_unwrapped(env, cfg) is not wrapped
        assert isinstance(model, FSDPModule) is wrapped
        assert all(isinstance(p, DTensor) is wrapped for p in model.parameters())
        x = torch.randn(1, 24, 2, 4, 4)
        text = torch.randn(1, 5, 32)
        args = (x, torch.tensor([500.0]), text, torch.ones(1, 5, dtype=torch.bool), torch.tensor([24.0]))  # fmt: skip
        model(*args).float().square().mean().backward()
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    finally:
        teardown()
