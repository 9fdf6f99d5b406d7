"""Process group and DeviceMesh of a run, launched by torchrun (any world size) or as one plain
process, which gets a one-rank group of its own so that both take exactly the same code path.

Mesh dimensions: `dp_replicate` (HSDP replicas, e.g. nodes) x `dp_shard` (FSDP shards) x `cp`
(context parallel). FSDP2 shards parameters over `dp_shard` x `cp` flattened (context-parallel
ranks hold the same parameters and sum their gradients), and replicates over `dp_replicate`.
The data loader sees the data-parallel rank: ranks of one CP group read the same batch.
"""

from __future__ import annotations

import datetime
import logging
import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh

from mugv_train.config import ParallelConfig

log = logging.getLogger(__name__)


@dataclass
class DistEnv:
    rank: int
    world: int
    device: torch.device
    mesh: DeviceMesh
    dp_rank: int
    dp_world: int
    cp: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def fsdp_mesh(self) -> DeviceMesh:
        with warnings.catch_warnings():
            # torch >= 2.11 announces that slicing a flattened dim from the root mesh will be
            # deprecated; its replacement (`_unflatten`) is missing from the torch >= 2.7 we support.
            warnings.filterwarnings("ignore", message="Slicing a flattened dim")
            return self.mesh["dp_replicate", "dp_shard_cp"]

    @property
    def cp_group(self) -> dist.ProcessGroup | None:
        return self.mesh["cp"].get_group() if self.cp > 1 else None

    def all_true(self, flag: bool) -> bool:
        """True on every rank iff `flag` is true on every rank."""
        t = torch.tensor([0.0 if flag else 1.0], device=self.device)
        dist.all_reduce(t)
        return bool(t.item() == 0)

    def any_true(self, flag: bool) -> bool:
        return not self.all_true(not flag)

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum over all ranks of a small tensor (metrics), in fp64, returned on the CPU."""
        values = values.to(self.device, torch.float64).clone()
        dist.all_reduce(values)
        return values.cpu()

    def barrier(self) -> None:
        dist.barrier()


def setup(cfg: ParallelConfig, device: str | None = None) -> DistEnv:
    """Initialise torch.distributed when launched by torchrun, and build the mesh."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    launched = "WORLD_SIZE" in os.environ
    rank, world = (int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])) if launched else (0, 1)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if world % (cfg.dp_replicate * cfg.cp):
        raise ValueError(
            f"world size {world} is not divisible by parallel.dp_replicate ({cfg.dp_replicate}) "
            f"x parallel.cp ({cfg.cp})"
        )
    dev = torch.device(device, local) if device == "cuda" else torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        timeout = datetime.timedelta(minutes=30)
        if launched:
            dist.init_process_group(backend, timeout=timeout)
        else:  # a one-rank group needs no rendezvous: an in-memory store
            dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1, timeout=timeout)  # fmt: skip
    shard = world // (cfg.dp_replicate * cfg.cp)
    mesh = init_device_mesh(
        dev.type,
        (cfg.dp_replicate, shard, cfg.cp),
        mesh_dim_names=("dp_replicate", "dp_shard", "cp"),
    )
    mesh["dp_shard", "cp"]._flatten("dp_shard_cp")
    dp = mesh["dp_replicate", "dp_shard"]._flatten("dp")
    return DistEnv(rank, world, dev, mesh, dp.get_local_rank(), dp.size(), cfg.cp)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
