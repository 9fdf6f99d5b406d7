"""Everything that turns the architecture-only MUGDiT into a trainable distributed model, in
order: context parallelism -> activation checkpointing -> per-block torch.compile -> FSDP2 per
unit of `model.fsdp_units`, then the root.

The order matters: context parallelism swaps the attention kernels inside the blocks, so it goes
first and the compiled, checkpointed region includes its all-to-alls; checkpoint wrappers go
inside compile so the compiled graph is the recomputed region; FSDP2 wraps last so its
all-gathers bracket exactly one block, which lets it prefetch the next block's parameters while
this one computes. With context parallelism every rank of a CP group computes the same loss and
its tokens' share of the gradients; FSDP2 averages over data-parallel x CP ranks, so the trainer
scales the loss by the CP degree to get the data-parallel mean of whole-sample gradients (a
custom FSDP divide factor would do the same but needs PREMUL_SUM, which gloo lacks).
"""

from __future__ import annotations

import functools

import torch
from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
from torch.utils.checkpoint import CheckpointPolicy, create_selective_checkpoint_contexts

import mugv_dit.attention  # noqa: F401  (registers torch.ops.mugv.flash_attention)
from mugv_dit.context_parallel import apply_context_parallel
from mugv_train.config import ConfigError, ParallelConfig
from mugv_train.dist import DistEnv

_DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}

# Attention outputs are the costliest to recompute (most of a block's FLOPs at 720p) and cheap to
# keep ([B, N, d] plus the log-sum-exp). `attention` keeps only them; `selective` also keeps the
# matmul outputs. Both recompute the elementwise ops (norms, modulation, GELU, RoPE).
_ATTENTION_OPS = {
    torch.ops.aten._scaled_dot_product_efficient_attention.default,
    torch.ops.aten._scaled_dot_product_flash_attention.default,
    torch.ops.aten._scaled_dot_product_cudnn_attention.default,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu.default,
    torch.ops.mugv.flash_attention.default,  # FlashAttention-4 (mugv_dit.attention)
}
_SAVED_OPS = {
    "attention": _ATTENTION_OPS,
    "selective": _ATTENTION_OPS
    | {
        torch.ops.aten.mm.default,
        torch.ops.aten.addmm.default,
        torch.ops.aten.bmm.default,
        torch.ops.aten._scaled_mm.default,  # float8 linears
    },
}


def _policy(saved: set, ctx, op, *args, **kwargs) -> CheckpointPolicy:
    return CheckpointPolicy.MUST_SAVE if op in saved else CheckpointPolicy.PREFER_RECOMPUTE


def units(model: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """(parent, name, module) of every FSDP/AC unit the model declares in `fsdp_units`."""
    found = []
    for attr in getattr(model, "fsdp_units", ()):
        holder = getattr(model, attr)
        if isinstance(holder, nn.ModuleList):
            found += [(holder, str(i), m) for i, m in enumerate(holder)]
        else:
            found.append((model, attr, holder))
    return found


def apply_activation_checkpointing(model: nn.Module, mode: str, every: int = 1) -> None:
    if mode == "none":
        return
    kwargs = {}
    if mode in _SAVED_OPS:
        policy = functools.partial(_policy, _SAVED_OPS[mode])
        kwargs["context_fn"] = functools.partial(create_selective_checkpoint_contexts, policy)
    for i, (parent, name, module) in enumerate(units(model)):
        if i % every == 0:
            parent.register_module(name, checkpoint_wrapper(module, preserve_rng_state=False, **kwargs))  # fmt: skip


def _float8_eligible(module: nn.Module, fqn: str) -> bool:
    # fp8 GEMMs need both dimensions divisible by 16; tiny layers gain nothing from them.
    return isinstance(module, nn.Linear) and module.in_features % 16 == 0 and module.out_features % 16 == 0  # fmt: skip


def apply_float8(model: nn.Module) -> None:
    """Swap the linear layers of every unit for torchao's float8 training linears (e4m3 forward,
    e5m2 gradients, dynamic tensor-wise scales); weights stay in their dtype, so checkpoints,
    EMA and export are unchanged. Needs a GPU with fp8 tensor cores (compute capability 8.9+)."""
    if not torch.cuda.is_available() or torch.cuda.get_device_capability() < (8, 9):
        raise ConfigError(
            "parallel.float8 needs a CUDA GPU with fp8 tensor cores (compute capability 8.9+, "
            "e.g. L40S, H100, H200); set parallel.float8=false"
        )
    try:
        from torchao.float8 import Float8LinearConfig, convert_to_float8_training
    except ImportError as err:
        raise ConfigError("parallel.float8 needs torchao: pip install 'mugv-train[fp8]'") from err
    # The weight gradient contracts over tokens (e.g. 12,882 at 360p 5 s), which fp8 GEMMs need
    # in multiples of 16: torchao pads that inner dimension.
    config = Float8LinearConfig(pad_inner_dim=True)
    for _, _, module in units(model):
        convert_to_float8_training(module, config=config, module_filter_fn=_float8_eligible)


def apply_compile(model: nn.Module) -> None:
    for _, _, module in units(model):
        module.compile(fullgraph=False)


def is_unwrapped(env: DistEnv, cfg: ParallelConfig) -> bool:
    """Whether `apply_fsdp` leaves the model a plain module (one rank, fp32 parameters)."""
    return env.fsdp_mesh.size() == 1 and cfg.param_dtype == "float32"


def apply_fsdp(
    model: nn.Module,
    env: DistEnv,
    cfg: ParallelConfig,
    ignored_params: set[nn.Parameter] | None = None,
) -> None:
    """FSDP2 per unit, then the root; `ignored_params` stay whole on every rank, unsharded and
    unsynchronised (FSDP2 cannot shard 0-d parameters such as MUGVAE's unused `logvar`).

    One rank in fp32 is left unwrapped, only moved to the device: FSDP2 would shard nothing and
    cast nothing there, and its DTensor bookkeeping (per-op sharding propagation, per-tensor
    optimizer dispatch) more than doubled a small model's CPU step (docs/performance.md).
    Checkpoints keep one format: DCP reshards on load (two FSDP2 ranks resume on one, tested).
    """
    if is_unwrapped(env, cfg):
        if not any(p.is_meta for p in model.parameters()):  # meta: the caller materialises it
            model.to(env.device)  # as fully_shard would
        return
    policy = MixedPrecisionPolicy(
        param_dtype=_DTYPES[cfg.param_dtype], reduce_dtype=_DTYPES[cfg.reduce_dtype]
    )
    mesh = env.fsdp_mesh
    blocks = units(model)
    for i, (_, _, module) in enumerate(blocks):
        # The last unit's parameters are needed again right away by the backward: keep them.
        reshard = cfg.reshard_after_forward and i < len(blocks) - 1
        fully_shard(module, mesh=mesh, mp_policy=policy, reshard_after_forward=reshard, ignored_params=ignored_params)  # fmt: skip
    fully_shard(model, mesh=mesh, mp_policy=policy, reshard_after_forward=cfg.reshard_after_forward, ignored_params=ignored_params)  # fmt: skip


def parallelize(
    model: nn.Module,
    env: DistEnv,
    cfg: ParallelConfig,
    ignored_params: set[nn.Parameter] | None = None,
) -> nn.Module:
    """Apply float8 -> CP -> AC -> compile -> FSDP2 in place; returns the model."""
    if cfg.float8:
        apply_float8(model)
    if env.cp_group is not None:
        apply_context_parallel(model, env.cp_group)
    apply_activation_checkpointing(model, cfg.activation_checkpointing, cfg.ac_every)
    if cfg.compile:
        apply_compile(model)
    apply_fsdp(model, env, cfg, ignored_params)
    return model
