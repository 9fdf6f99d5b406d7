"""The training loop: curriculum stages of latent-shard batches through the flow objective,
with FSDP2, online EMA, metrics, DCP checkpoints, exact resume and fault handling.

Contract:
* A step's result is a pure function of (config, checkpointed state, step): batches come from the
  resumable loader, random draws from a generator seeded by (seed, step, micro-batch, rank), and
  the learning rate from the step. Killing a run and resuming it from a checkpoint reproduces the
  uninterrupted run's losses bit for bit (same world size) and consumes the same samples.
* Resuming onto another world size reshards model/optimizer/EMA (DCP) and continues with exactly
  the batches not yet consumed (the loader's plan does not depend on the world size).
* A step whose loss or gradient norm is not finite on any rank is skipped by every rank (no
  optimizer or EMA update), counted and logged; `faults.max_nonfinite_in_row` in a row stop the
  run with an error. A step where any rank got only corrupt samples is skipped the same way.
* SIGTERM (preemption): the current step finishes, every rank saves, the run returns "preempted".
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_model_state_dict,
    set_state_dict,
)
from torch.distributed.fsdp import FSDPModule

from mugv_data import LatentLoader, LoaderConfig
from mugv_data.loader.loader import resolve_shards
from mugv_dit import MUGDiT
from mugv_train import checkpoint as ckpt
from mugv_train.config import TrainConfig, dump_config
from mugv_train.curriculum import Curriculum, Position
from mugv_train.dist import DistEnv
from mugv_train.ema import OnlineEMA
from mugv_train.metrics import SampleLog
from mugv_train.objective import TASKS, Objective
from mugv_train.parallelize import parallelize
from mugv_train.run import EngineRun, peak_memory_gib, scalar

log = logging.getLogger(__name__)


@dataclass
class MicroStep:
    loss: torch.Tensor  # scalar with grad
    metrics: dict[str, tuple[float, float]]  # name -> (sum, count), averaged over ranks and steps
    tokens: int
    model_flops: float


_COMPILE_HINT = (
    "; with parallel.compile and activation_checkpointing none/full (or attention with "
    "FlashAttention-4), or with parallel.float8, "
    "FSDP2 gave NaN gradients on torch 2.11 (docs/performance.md): use "
    "activation_checkpointing=selective without float8, or compile=false"
)


def step_seed(seed: int, step: int, micro: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, step, micro, rank]).generate_state(1)[0])


def load_initial_weights(path: str) -> dict[str, torch.Tensor]:
    """Full state dict of a mugv release folder or the released MUG-V dit.pt."""
    model = MUGDiT.from_pretrained(path) if Path(path).is_dir() else MUGDiT.from_reference(path)
    return model.state_dict()


class Trainer(EngineRun):
    def __init__(self, cfg: TrainConfig, env: DistEnv) -> None:
        super().__init__(cfg, env, cfg.total_steps)
        for stage in cfg.stages:  # a wrong data path fails now, not after building the model
            resolve_shards(stage.shards or cfg.data.shards)
        self.dit_cfg = cfg.model.dit_config()
        self.model = self._build_model()
        cuda = env.device.type == "cuda"
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=cfg.optim.lr,
            betas=cfg.optim.betas,
            eps=cfg.optim.eps,
            weight_decay=cfg.optim.weight_decay,
            fused=cuda if cfg.optim.fused is None else cfg.optim.fused,
        )
        self.ema = OnlineEMA(self.model, cfg.ema.decay) if cfg.ema.enabled else None
        self.objective = Objective(cfg.objective, self.dit_cfg, cfg.data.text_buckets)
        self.curriculum = Curriculum(cfg.stages, cfg.optim)
        self.loader: LatentLoader | None = None
        self._loader_stage = -1
        self._loader_state: dict | None = None
        self._batches = None
        self._samples: SampleLog | None = None

    # -- set-up ---------------------------------------------------------------------------------
    def _build_model(self) -> torch.nn.Module:
        with torch.device("meta"):
            model = MUGDiT(self.dit_cfg)
        parallelize(model, self.env, self.cfg.parallel)
        model.to_empty(device=self.env.device)
        torch.manual_seed(self.cfg.seed)
        if self.cfg.model.init_from:
            full = load_initial_weights(self.cfg.model.init_from)
            set_model_state_dict(model, full, options=StateDictOptions(full_state_dict=True))
        else:
            model.init_weights()
        return model

    def _ensure_loader(self, pos: Position) -> None:
        if self._loader_stage == pos.index:
            return
        self.loader = self.make_loader(pos)
        if self._loader_state is not None and self._loader_state.get("stage") == pos.index:
            self.loader.load_state_dict(self._loader_state["state"])
        self._loader_state = None
        self._loader_stage = pos.index
        self._batches = iter(self.loader)
        if self.env.is_main:
            log.info("stage %d %r from step %d", pos.index, pos.stage.name, self.step)

    # -- checkpoints ----------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        model_sd, optim_sd = get_state_dict(self.model, self.optimizer)
        state: dict[str, Any] = {"model": model_sd, "optim": optim_sd}
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        return state

    def _meta(self) -> dict[str, Any]:
        loader = None
        if self.loader is not None:
            loader = {"stage": self._loader_stage, "state": self.loader.state_dict()}
        return {
            "config": json.loads(dump_config(self.cfg)),
            "stage": self.curriculum.at(min(self.step, self.curriculum.total - 1)).index,
            "loader": loader,
        }

    def snapshot(self) -> None:
        meta = {"config": json.loads(dump_config(self.cfg)), "kind": "snapshot"}
        state = {"model": get_model_state_dict(self.model)}
        ckpt.save(self.run_dir / "snapshots", self.step, state, meta, self.env.is_main, self.env.barrier)  # fmt: skip

    def _restore(self, path: Path, meta: dict[str, Any], state: dict[str, Any]) -> None:
        set_state_dict(self.model, self.optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])  # fmt: skip
        if self.ema is not None:
            if "ema" not in state:
                raise ckpt.CheckpointError(f"{path}: has no EMA; set ema.enabled=false to resume")
            self.ema.load_state_dict(state["ema"])
        self._loader_state = meta.get("loader")

    # -- one step (subclasses override `make_loader`, `metric_names` and `micro_step`) ----------
    def make_loader(self, pos: Position) -> LatentLoader:
        """The resumable batch source of a stage (`state_dict`/`load_state_dict`, iterable)."""
        cfg, st = self.cfg, pos.stage
        return LatentLoader(
            LoaderConfig(
                shards=st.shards or cfg.data.shards,
                seed=cfg.data.seed + pos.index,
                max_tokens=st.max_tokens,
                max_batch_size=st.max_batch_size,
                image_ratio=st.image_ratio,
                patch=self.dit_cfg.patch_size,
                num_workers=cfg.data.num_workers,
                vae_id=cfg.data.vae_id,
                text_encoder_id=cfg.data.text_encoder_id,
            ),
            rank=self.env.dp_rank,
            world=self.env.dp_world,
        )

    def metric_names(self) -> list[str]:
        """Averaged metrics that `micro_step` reports; the same list on every rank."""
        return ["loss", *(f"loss_{t}" for t in TASKS)]

    def micro_step(self, batch: dict, micro: int, pos: Position, g: torch.Generator) -> MicroStep:
        """Forward + loss of one micro-batch (the caller runs the backward)."""
        mix = pos.stage.task_mix or self.cfg.objective.task_mix
        p = self.objective.prepare(batch, mix, g, self.env.device)
        loss, per_sample = self.objective.loss(self.model, p)
        metrics = {"loss": (float(loss.detach()), 1.0)}
        for t, name in enumerate(TASKS):
            sel = p.task == t
            if sel.any():
                metrics[f"loss_{name}"] = (float(per_sample[sel].sum()), float(sel.sum()))
        return MicroStep(loss, metrics, p.tokens, p.model_flops)

    def train_step(self) -> dict[str, Any]:
        cfg, env = self.cfg, self.env
        pos = self.curriculum.at(self.step)
        self._ensure_loader(pos)
        accum = cfg.optim.grad_accum
        batches = [next(self._batches) for _ in range(accum)]
        keys = [k for b in batches for k in b["keys"]]
        if self.skip_empty(any(not b["keys"] for b in batches)):
            return {"skipped": "empty", "keys": keys, "stage": pos.index}

        lr = self.curriculum.lr(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        names = self.metric_names()
        start = time.perf_counter()
        stats = torch.zeros(2 * len(names) + 2, dtype=torch.float64)  # sums, counts, tokens, flops
        for i, batch in enumerate(batches):
            g = torch.Generator().manual_seed(step_seed(cfg.seed, self.step, i, env.dp_rank))
            if isinstance(self.model, FSDPModule):  # one-rank fp32 runs are unwrapped
                self.model.set_requires_gradient_sync(i == accum - 1)
            micro = self.micro_step(batch, i, pos, g)
            (micro.loss * (env.cp / accum)).backward()  # x cp: see parallelize.py
            for name, (total, count) in micro.metrics.items():
                stats[names.index(name)] += total
                stats[len(names) + names.index(name)] += count
            stats[-2] += micro.tokens
            stats[-1] += micro.model_flops
        grad_norm = scalar(torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip))  # fmt: skip
        totals = env.sum(stats)
        finite = math.isfinite(float(totals[0])) and math.isfinite(grad_norm)
        if finite:
            self.optimizer.step()
            if self.ema is not None:
                self.ema.update(self.step)
        self.optimizer.zero_grad(set_to_none=True)
        if env.device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        par = cfg.parallel
        compile_risk = par.compile and (par.activation_checkpointing != "selective" or par.float8)
        self.account(finite, [grad_norm], _COMPILE_HINT if compile_risk else "")
        tokens, flops = totals[-2] / env.cp, totals[-1] / env.cp
        out: dict[str, Any] = {
            "grad_norm": grad_norm,
            "lr": lr,
            "stage": pos.index,
            "step_time": elapsed,
            "tokens_per_s": float(tokens / elapsed),
            "mfu": float(flops / elapsed / (env.world * cfg.metrics.peak_flops)),
            "peak_mem_gib": peak_memory_gib(env.device),
            "keys": keys,
        }
        for j, name in enumerate(names):
            if totals[len(names) + j] > 0:
                out[name] = float(totals[j] / totals[len(names) + j])
        if not finite:
            out["skipped"] = "nonfinite"
        return out

    # -- the run -------------------------------------------------------------------------------
    def begin(self) -> None:
        log_keys = self.cfg.metrics.sample_keys and self.env.mesh["cp"].get_local_rank() == 0
        self._samples = SampleLog(self.run_dir, self.env.dp_rank, self.step, log_keys)

    def one_step(self) -> dict[str, Any]:
        out = self.train_step()
        self._samples.log(self.step, out.pop("keys"))
        return out
