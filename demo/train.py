"""Training stages of the demo, each a call of the landed entry point a user would run:
`train_vae` (mugv-train vae), `train` (mugv-train train) through a two-stage curriculum,
then mugv-align's `align` for SFT and Diffusion-DPO, each exported as a safetensors release."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from demo.config import DemoConfig, StageSteps
from demo.data import NEGATIVE_TEXT, T5_ID, VAE_ID
from mugv_align import align, build_pairs
from mugv_align.config import align_config_from_dict
from mugv_data import LatentSample, iter_latent_shard
from mugv_data.loader.loader import resolve_shards
from mugv_train import RunResult, checkpoint
from mugv_train.config import config_from_dict
from mugv_train.export import export
from mugv_train.metrics import read_metrics
from mugv_train.train import train
from mugv_train.vae import load_vae_config, train_vae
from mugv_train.vae.config import ClipDataConfig
from mugv_train.vae.data import heldout_clips
from mugv_vae import MUGVAE

log = logging.getLogger(__name__)


def _finished(result: RunResult, run_dir: Path) -> None:
    """A run stopped by a signal saves and returns "preempted": the demo stops there too."""
    if result.status != "done":
        raise RuntimeError(f"{run_dir}: the run stopped at step {result.step} ({result.status})")


def train_tiny_vae(cfg: DemoConfig, raw: Path, run_dir: Path, out: Path) -> tuple[Path, float]:
    """The `vae-tiny` preset, briefly, on the world's clips, its latent statistics calibrated
    into the release written to `out`; -> (release, held-out PSNR in dB). Held-out clips are the
    `extra` set: combinations and reversed clips it never trained on."""
    side = cfg.world.side
    overrides = [
        f"run_dir={run_dir}",
        "data.shards="
        + json.dumps(resolve_shards(str(raw / "short")) + resolve_shards(str(raw / "long"))),
        f"data.heldout={raw / 'extra' / 'shards'}",
        f"data.width={side}",
        f"data.height={side}",
        f"optim.lr={cfg.vae_lr}",
        f"loss.saliency_l1_weight={cfg.vae_saliency_l1}",
        f"stages.0.steps={cfg.vae_steps}",
        f"checkpoint.every={cfg.vae_steps + 10}",
        f"eval.every={cfg.vae_steps + 10}",
        "eval.clips=8",
    ]
    _finished(
        train_vae(load_vae_config("vae-tiny", overrides), resume="none", device="cpu"), run_dir
    )
    psnr = [r["heldout_psnr"] for r in read_metrics(run_dir) if "heldout_psnr" in r]
    long = resolve_shards(str(raw / "long"))
    data = ClipDataConfig(shards=long, width=side, height=side, frames=cfg.world.long_frames)
    clips, _ = heldout_clips(long, data, count=10**9)  # every long clip, from frame 0
    return calibrate(run_dir / "release", clips, out), psnr[-1]


@torch.no_grad()
def calibrate(release: Path, clips: torch.Tensor, out: Path) -> Path:
    """Write `release` to `out` with latent_shift / latent_scale set to the per-channel mean and
    std of its posterior samples on `clips` [N, 3, T, H, W] in [-1, 1]: the DiT then sees latents
    of unit scale, as the released VAE's constants give for its own latents. A fresh `vae-tiny`
    carries those released constants, and its latents came out 3-4x wider than unit noise
    (docs/demo.md)."""
    model = MUGVAE.from_pretrained(release).eval()
    g = torch.Generator().manual_seed(0)
    z = torch.cat([model.encode_posterior(c[None]).sample(g) for c in clips])  # [N, 24, T', h, w]
    mean, std = z.mean((0, 2, 3, 4)), z.std((0, 2, 3, 4))
    config = model.config.model_copy(
        update={"latent_shift": tuple(mean.tolist()), "latent_scale": tuple(std.tolist())}
    )
    calibrated = MUGVAE(config)
    calibrated.load_state_dict(
        model.state_dict() | {"shift": mean.view_as(model.shift), "scale": std.view_as(model.scale)}
    )
    log.info("VAE latents: per-channel std %.2f to %.2f", float(std.min()), float(std.max()))
    return calibrated.save_pretrained(out)


def _common(cfg: DemoConfig, run_dir: Path, shards: str, latents: Path) -> dict:
    """Sections shared by the pretraining and alignment runs (tiny DiT, fp32, CPU)."""
    total = cfg.stage1.steps + cfg.stage2.steps
    return {
        "run_dir": str(run_dir),
        "seed": 0,
        "model": {"preset": "debug", "overrides": dict(cfg.dit_overrides)},
        "data": {
            "shards": shards,
            "num_workers": 0,
            "vae_id": VAE_ID,
            "text_encoder_id": T5_ID,
            "text_buckets": [8, 64],
        },
        "objective": {
            "caption_dropout": 0.1,
            "null_text": str(latents / NEGATIVE_TEXT),
            "flow": {"shift_scale": cfg.flow_shift},
        },
        "optim": {
            "lr": cfg.stage1.lr,
            "warmup_steps": 20,
            "schedule": "cosine",
            "min_lr_ratio": 0.1,
        },
        "parallel": {"param_dtype": "float32"},
        "checkpoint": {"every": total, "keep": 1},
        "ema": {"decay": 0.98},
        "metrics": {"tensorboard": False},
    }


def _export(run_dir: Path, out: Path) -> Path:
    latest = checkpoint.resolve(run_dir / "checkpoints", "auto")
    if latest is None:
        raise RuntimeError(f"{run_dir}: the run wrote no checkpoint")
    return export(latest, out, weights="ema")


def pretrain(cfg: DemoConfig, latents: Path, run_dir: Path, out: Path) -> Path:
    """Stage 1: images + short clips; stage 2: long clips. -> release folder."""
    tree = _common(cfg, run_dir, str(latents / "short"), latents)
    tree["stages"] = [
        {
            "name": "images+short",
            "steps": cfg.stage1.steps,
            "shards": str(latents / "short"),
            "image_ratio": 0.3,
            "max_tokens": cfg.max_tokens,
            "lr": cfg.stage1.lr,
        },
        {
            "name": "long",
            "steps": cfg.stage2.steps,
            "shards": str(latents / "long"),
            "max_tokens": cfg.max_tokens,
            "lr": cfg.stage2.lr,
        },
    ]
    _finished(train(config_from_dict(tree, "demo pretrain"), resume="none", device="cpu"), run_dir)
    return _export(run_dir, out)


def _align(
    cfg: DemoConfig,
    method: str,
    stage: StageSteps,
    init: Path,
    shards: Path,
    latents: Path,
    run_dir: Path,
    out: Path,
) -> Path:
    tree = _common(cfg, run_dir, str(shards), latents)
    tree["model"]["init_from"] = str(init)
    tree["optim"] |= {"lr": stage.lr, "warmup_steps": 0}
    tree["checkpoint"]["every"] = stage.steps
    tree["stages"] = [{"name": method, "steps": stage.steps, "max_tokens": cfg.max_tokens}]
    tree["align"] = {"method": method}
    _finished(
        align(align_config_from_dict(tree, f"demo {method}"), resume="none", device="cpu"), run_dir
    )
    return _export(run_dir, out)


def sft(cfg: DemoConfig, init: Path, latents: Path, run_dir: Path, out: Path) -> Path:
    """Annealed SFT (cosine decay) on the long clips."""
    return _align(cfg, "sft", cfg.sft, init, latents / "long", latents, run_dir, out)


def clips(folder: Path) -> dict[str, LatentSample]:
    """World clip name -> its latent sample (keys are `<file stem>-<hash>-<clip>`)."""
    return {
        sample.key.rsplit("-", 2)[0]: sample
        for shard in resolve_shards(str(folder))
        for sample in iter_latent_shard(shard)
    }


def pair_names(names: list[str], preferred: dict, rejected: dict) -> list[str]:
    """Names whose clip and reversed clip both survived curation whole (same latent shape)."""
    return [
        n
        for n in names
        if n in preferred
        and f"{n}-rejected" in rejected
        and preferred[n].latent.shape == rejected[f"{n}-rejected"].latent.shape
    ]


def make_pairs(names: list[str], preferred: Path, rejected: Path, out: Path) -> int:
    """Preference shards: each clip (preferred) against itself played backwards (rejected), one
    prompt. -> pairs written."""
    good, bad = clips(preferred), clips(rejected)
    rows = [
        {"preferred": good[n].key, "rejected": bad[f"{n}-rejected"].key, "source": "demo-reversed"}
        for n in pair_names(names, good, bad)
    ]
    out.mkdir(parents=True, exist_ok=True)
    labels = out / "labels.jsonl"
    labels.write_text("".join(json.dumps(r) + "\n" for r in rows))
    shards = sorted(set(resolve_shards(str(preferred)) + resolve_shards(str(rejected))))
    build_pairs(shards, labels, out)
    return len(rows)


def dpo(cfg: DemoConfig, init: Path, pairs: Path, latents: Path, run_dir: Path, out: Path) -> Path:
    """Diffusion-DPO on the reversed-clip pairs, the SFT loss kept as a regulariser."""
    return _align(cfg, "dpo", cfg.preference, init, pairs, latents, run_dir, out)
