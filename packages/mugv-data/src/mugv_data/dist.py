"""Rank and world size from the environment, so one command runs on a laptop or a cluster.

Priority: torchrun (`RANK`/`WORLD_SIZE`), a Slurm array (`SLURM_ARRAY_TASK_ID` minus
`SLURM_ARRAY_TASK_MIN`, `SLURM_ARRAY_TASK_COUNT`), Slurm tasks (`SLURM_PROCID`/`SLURM_NTASKS`),
else rank 0 of 1.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def rank_world(env: Mapping[str, str] | None = None) -> tuple[int, int]:
    """(rank, world_size) of this process; raises if the environment is inconsistent."""
    env = os.environ if env is None else env
    if "WORLD_SIZE" in env:
        rank, world = int(env.get("RANK", "0")), int(env["WORLD_SIZE"])
    elif "SLURM_ARRAY_TASK_COUNT" in env:
        task_min = int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
        rank = int(env["SLURM_ARRAY_TASK_ID"]) - task_min
        world = int(env["SLURM_ARRAY_TASK_COUNT"])
    elif "SLURM_NTASKS" in env:
        rank, world = int(env.get("SLURM_PROCID", "0")), int(env["SLURM_NTASKS"])
    else:
        rank, world = 0, 1
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"bad rank/world from the environment: rank={rank} world={world}")
    return rank, world
