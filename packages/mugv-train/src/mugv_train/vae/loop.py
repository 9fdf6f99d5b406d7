"""VAE training on the mugv-train engine: stages of raw-shard pixel clips through MUGVAE and
mugv-vae's losses, with FSDP2, DCP checkpoints, exact resume, metrics and held-out PSNR/SSIM.

Contract:
* A step's result is a pure function of (config, checkpointed state, step): the batch comes from
  the resumable ClipLoader, the posterior sample from a generator seeded by (seed, step, rank),
  the decoder window ({1, 4, 8} latents) from DecoderWindowSchedule(seed) at the step, the
  learning rate from the stage table. A killed and resumed run reproduces the uninterrupted run's
  losses (with loss.perceptual_weight = 0: LPIPS picks its frames from the loss's own stream).
* Reconstruction stages take one AdamW step on MSE + saliency-ℓ1 (+ LPIPS) + KL. GAN stages
  (`stage.gan`) add γ·λ·GAN to that loss, λ the adaptive weight on the temporal decoder's
  `conv_out`; then the discriminator, after dropping the gradients the generator loss left in
  it, takes a hinge-loss step on (clip, detached reconstruction).
* The VAE is one FSDP2 unit: its forward reaches the spatial and temporal stages through
  methods other than `forward`, which FSDP2 only hooks on units, and at 0.4 B parameters the
  whole model gathers in 0.8 GB (bf16). Parameters, gradients and optimizer state are sharded
  over all ranks; `logvar` (a 0-d key kept for the released file, used by no loss) stays out of
  FSDP, frozen. The model is built whole on each rank's CPU (small enough) and then sharded.
* A step whose loss or gradient norm is not finite on any rank is skipped by every rank,
  counted, and `faults.max_nonfinite_in_row` in a row stop the run. SIGTERM: the step finishes,
  every rank saves, the run returns "preempted". A finished run writes RUN_DIR/release.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)
from torch.distributed.fsdp import FSDPModule

from mugv_train import checkpoint as ckpt
from mugv_train.config import ConfigError, dump_config
from mugv_train.curriculum import Curriculum
from mugv_train.dist import DistEnv, setup, teardown
from mugv_train.loop import step_seed
from mugv_train.parallelize import parallelize
from mugv_train.run import EngineRun, RunResult, peak_memory_gib, scalar
from mugv_train.vae.config import VAEStageConfig, VAETrainConfig
from mugv_train.vae.data import ClipLoader, heldout_clips
from mugv_train.vae.export import write_release
from mugv_vae import (
    LPIPS,
    MUGVAE,
    DecoderWindowSchedule,
    LossConfig,
    PatchDiscriminator3D,
    VAELoss,
    psnr,
    ssim,
)
from mugv_vae.discriminator import hinge_d_loss

log = logging.getLogger(__name__)
# Metrics averaged over ranks, in this order: loss terms as VAELoss names them ("total" is
# logged as "loss"), then the discriminator's hinge loss.
TERMS = ("total", "mse", "saliency_l1", "kl", "perceptual", "gan", "gan_adaptive_weight", "disc")


class VAETrainer(EngineRun):
    """One run of `VAETrainConfig` on a `DistEnv`: `run(resume)` trains, checkpoints, evaluates
    and exports; `train_step(batch)` is one optimiser step (both optimisers in GAN stages)."""

    always_log = ("skipped", "heldout_psnr")

    def __init__(self, cfg: VAETrainConfig, env: DistEnv) -> None:
        super().__init__(cfg, env, sum(s.steps for s in cfg.stages))
        self.vae_config = cfg.model.vae_config()
        self.loader = ClipLoader(cfg.data, env.dp_rank, env.dp_world)  # first: fails fast
        self.heldout = None
        if cfg.data.heldout is not None:
            self.heldout, keys = heldout_clips(cfg.data.heldout, cfg.data, cfg.eval.clips)
            if env.is_main:
                log.info("held-out clips: %s", ", ".join(keys))
        self.model = self._build_model()
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = self._adamw(self.trainable, cfg.optim.lr, cfg.optim.betas)
        self.disc = self.disc_optimizer = None
        if any(s.gan for s in cfg.stages):
            d = cfg.discriminator
            self.disc = parallelize(PatchDiscriminator3D(d.channels, d.n_layers, d.groups), env, cfg.parallel)  # fmt: skip
            self.disc_optimizer = self._adamw(self.disc.parameters(), d.lr, d.betas)
        perceptual = None
        if cfg.loss.perceptual_weight > 0:
            perceptual = LPIPS.from_file(cfg.model.lpips).to(env.device)
        self.losses = [VAELoss(self._stage_loss(s), perceptual) for s in cfg.stages]
        self.windows = DecoderWindowSchedule(cfg.loss.decoder_windows, cfg.seed)
        self.curriculum = Curriculum(cfg.stages, cfg.optim)  # type: ignore[arg-type] (same fields)
        self._batches = None

    # -- set-up ---------------------------------------------------------------------------------
    def _build_model(self) -> MUGVAE:
        cfg = self.cfg.model
        torch.manual_seed(self.cfg.seed)  # every rank initialises the same weights, then shards
        if cfg.init_from is None:
            model = MUGVAE(self.vae_config)
        elif Path(cfg.init_from).is_dir():
            model = MUGVAE.from_pretrained(cfg.init_from)
        else:
            model = MUGVAE.from_reference(cfg.init_from, self.vae_config)
        if model.config != self.vae_config:
            raise ConfigError(
                f"model.init_from {cfg.init_from}: its architecture is not the {cfg.preset!r} "
                "preset; set model.preset to the preset it was trained with"
            )
        model.tiling = model.tiling.model_copy(update={"frame_batch": cfg.frame_batch})
        model.logvar.requires_grad_(False)
        if cfg.freeze_spatial:
            model.spatial_vae.requires_grad_(False)
        parallelize(model, self.env, self.cfg.parallel, ignored_params={model.logvar})
        return model

    def _stage_loss(self, stage: VAEStageConfig) -> LossConfig:
        if stage.gan_weight is None:
            return self.cfg.loss
        return self.cfg.loss.model_copy(update={"gan_weight": stage.gan_weight})

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.env.device.type, torch.bfloat16, enabled=self.cfg.autocast)

    def _adamw(self, params, lr: float, betas: tuple[float, float]) -> torch.optim.AdamW:
        o = self.cfg.optim
        fused = self.env.device.type == "cuda" if o.fused is None else o.fused
        return torch.optim.AdamW(params, lr=lr, betas=betas, eps=o.eps, weight_decay=o.weight_decay, fused=fused)  # fmt: skip

    # -- checkpoints ----------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        model_sd, optim_sd = get_state_dict(self.model, self.optimizer)
        state: dict[str, Any] = {"model": model_sd, "optim": optim_sd}
        if self.disc is not None:
            disc_sd, disc_optim_sd = get_state_dict(self.disc, self.disc_optimizer)
            state["disc"] = {"model": disc_sd, "optim": disc_optim_sd}
        return state

    def _meta(self) -> dict[str, Any]:
        return {
            "config": json.loads(dump_config(self.cfg)),  # type: ignore[arg-type]
            "vae_config": self.vae_config.model_dump(mode="json"),
            "stage": self.curriculum.at(min(self.step, self.curriculum.total - 1)).index,
            "loader": self.loader.state_dict(),
        }

    def _restore(self, path: Path, meta: dict[str, Any], state: dict[str, Any]) -> None:
        if "vae_config" not in meta:
            raise ckpt.CheckpointError(f"{path}: not a VAE training checkpoint (no vae_config)")
        set_state_dict(self.model, self.optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])  # fmt: skip
        if self.disc is not None:
            if "disc" not in state:
                raise ckpt.CheckpointError(f"{path}: has no discriminator state")
            set_state_dict(self.disc, self.disc_optimizer, model_state_dict=state["disc"]["model"], optim_state_dict=state["disc"]["optim"])  # fmt: skip
        self.loader.load_state_dict(meta["loader"])

    # -- one step -------------------------------------------------------------------------------
    def train_step(self, batch: dict) -> dict[str, Any]:
        """batch["video"]: [B, 3, T, H, W] in [-1, 1] -> this step's metrics (rank-averaged)."""
        cfg, env = self.cfg, self.env
        pos = self.curriculum.at(self.step)
        if self.skip_empty(not batch["keys"]):
            return {"skipped": "empty", "stage": pos.index}
        lr = self.curriculum.lr(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        start = time.perf_counter()
        x = batch["video"].to(env.device)
        g = torch.Generator(env.device).manual_seed(step_seed(cfg.seed, self.step, 0, env.dp_rank))
        window = self.windows(self.step)
        gan = pos.stage.gan
        # 1. generator: round trip with this step's decoder window, VAE loss (+ GAN term)
        with self._autocast():
            out = self.model(x, window_latents=window, generator=g)
            logits = self.disc(out.recon) if gan else None
        last = self.model.adaptive_weight_layer() if gan else None
        terms = self.losses[pos.index](out.recon, x, out.posterior, logits, last)
        terms["total"].backward()
        norms = [scalar(torch.nn.utils.clip_grad_norm_(self.trainable, cfg.optim.grad_clip))]
        # 2. discriminator: hinge loss on real vs detached reconstructions, its own gradients only
        if gan:
            self.disc_optimizer.zero_grad(set_to_none=True)
            with self._autocast():
                real, fake = self.disc(torch.cat([x, out.recon.detach()])).chunk(2)
            terms["disc"] = hinge_d_loss(real, fake)
            terms["disc"].backward()
            norms.append(scalar(torch.nn.utils.clip_grad_norm_(self.disc.parameters(), cfg.optim.grad_clip)))  # fmt: skip
        # 3. average the terms over ranks; step only if everything is finite everywhere
        stats = torch.zeros(2 * len(TERMS), dtype=torch.float64)
        for j, name in enumerate(TERMS):
            if name in terms:
                stats[j], stats[len(TERMS) + j] = float(terms[name].detach()), 1.0
        totals = env.sum(stats)
        finite = all(math.isfinite(v) for v in [float(totals[0]), *norms])
        if finite:
            self.optimizer.step()
            if gan:
                self.disc_optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.disc_optimizer is not None:
            self.disc_optimizer.zero_grad(set_to_none=True)
        self.account(finite, norms)
        if env.device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        result: dict[str, Any] = {
            "lr": lr,
            "stage": pos.index,
            "window": window,
            "grad_norm": norms[0],
            "step_time": elapsed,
            "clips_per_s": env.dp_world * x.shape[0] / elapsed,
            "peak_mem_gib": peak_memory_gib(env.device),
        }
        if gan:
            result["disc_grad_norm"] = norms[1]
        for j, name in enumerate(TERMS):
            if totals[len(TERMS) + j] > 0:
                result["loss" if name == "total" else name] = float(totals[j] / totals[len(TERMS) + j])  # fmt: skip
        if not finite:
            result["skipped"] = "nonfinite"
        return result

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean PSNR/SSIM over the held-out clips: posterior mean, the release's decode window."""
        env, videos = self.env, self.heldout
        n = videos.shape[0]
        sums = torch.zeros(3, dtype=torch.float64)
        # Every rank runs the same number of forwards (each one all-gathers the parameters).
        for k in range(-(-n // env.world)):
            i = env.rank + k * env.world
            x = videos[min(i, n - 1)][None].to(env.device)
            with self._autocast():
                recon = self.model(x, sample=False).recon
            if i < n:
                sums += torch.tensor([float(psnr(recon, x)[0]), float(ssim(recon, x)[0]), 1.0], dtype=torch.float64)  # fmt: skip
        # A forward without backward leaves the root unsharded, and the next backward would
        # then add into stale unsharded gradients: reshard explicitly.
        if isinstance(self.model, FSDPModule):  # one-rank fp32 runs are unwrapped
            self.model.reshard()
        totals = env.sum(sums)
        return {"heldout_psnr": float(totals[0] / totals[2]), "heldout_ssim": float(totals[1] / totals[2])}  # fmt: skip

    def export(self, out: Path) -> None:
        """Collective: gather the full weights onto rank 0's CPU, which writes the release."""
        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        state = get_model_state_dict(self.model, options=options)
        if self.env.is_main:
            log.info("release %s", write_release(state, self.vae_config, out, "float32"))
        self.env.barrier()

    # -- the run -------------------------------------------------------------------------------
    def begin(self) -> None:
        self._batches = iter(self.loader)

    def one_step(self) -> dict[str, Any]:
        out = self.train_step(next(self._batches))
        last = self.step + 1 == self.total_steps
        if self.heldout is not None and ((self.step + 1) % self.cfg.eval.every == 0 or last):
            out.update(self.evaluate())
        return out

    def finish(self, status: str) -> None:
        if status == "done" and self.cfg.export:
            self.export(self.run_dir / "release")


def train_vae(cfg: VAETrainConfig, resume: str = "auto", device: str | None = None) -> RunResult:
    """Run (or continue) VAE training; `resume`: "auto" (newest valid checkpoint), "none" or a
    checkpoint folder. One process or under torchrun; RUN_DIR/release holds the result."""
    env = setup(cfg.parallel, device)
    try:
        return VAETrainer(cfg, env).run(resume)
    finally:
        teardown()
