"""Measurements of the demo: generate held-out prompts with mugv-infer and read colour and
direction back with the tracker; compare preferred and rejected clips under a model."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from demo.config import DemoConfig
from demo.data import TEXT_LENGTH, first_frame
from demo.tracker import track
from demo.train import clips, pair_names
from demo.world import COLOURS, DIRECTIONS, ClipSpec
from mugv_dit import MUGDiT, T5TextEncoder
from mugv_dit.flow import FlowSchedule
from mugv_infer import VideoPipeline, resolve_size
from mugv_infer.pipeline import CONDITIONING_FPS
from mugv_vae import MUGVAE

log = logging.getLogger(__name__)
PIXELS_PER_LATENT = 8  # the VAE's spatial compression (the flow shift is defined in pixels)


@dataclass
class Sample:
    name: str
    mode: str  # t2v | ti2v
    spec: ClipSpec
    colour: str | None  # pixel tracker on the decoded video
    direction: str | None
    travel: float
    latent: torch.Tensor  # [24, T - 1, h, w]: the generated latents after the first
    probe: tuple[str, str] | None = None  # latent probe reading (colour, direction)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "mode": self.mode,
            "prompt": self.spec.caption,
            "colour": self.colour,
            "direction": self.direction,
            "colour_ok": self.colour == self.spec.colour,
            "direction_ok": self.direction == self.spec.direction,
            "travel_px": round(self.travel, 2),
            "probe": self.probe,
        }


class _KeepLatents:
    """Stands in for the pipeline VAE's `decode` and keeps the generated latents it is given
    (the last `frames`: latents 1.. of T2V and of TI2V alike) for the latent probe."""

    def __init__(self, decode: Callable[..., torch.Tensor], frames: int) -> None:
        self.decode, self.frames, self.kept = decode, frames, []

    def __call__(self, z: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        self.kept.append(z[0, :, -self.frames :].float().cpu())
        return self.decode(z, *args, **kwargs)


def generate(
    cfg: DemoConfig, release: dict[str, Path], specs: dict[str, list[ClipSpec]], out: Path
) -> list[Sample]:
    """Every prompt of `specs` (mode -> clips): T2V, or TI2V (first frame + prompt) for mode
    "ti2v"; each mp4 (and its settings json) goes to `out`, each is tracked."""
    pipe = VideoPipeline.from_pretrained(
        dit=release["dit"],
        vae=release["vae"],
        t5=release["t5"],
        dtype=torch.float32,
        text_dtype=torch.float32,
        text_length=TEXT_LENGTH,
    )
    pipe.schedule = FlowSchedule(shift_scale=cfg.flow_shift)
    w = cfg.world
    size = resolve_size(height=w.side, width=w.side, frames=w.long_frames)
    jobs = [(mode, s) for mode, group in specs.items() for s in group]
    samples = []
    out.mkdir(parents=True, exist_ok=True)
    keep = _KeepLatents(pipe.vae.decode, size.latent_frames - 1)
    pipe.vae.decode = keep
    for mode, spec in tqdm(jobs, desc="generate", disable=None):
        image = first_frame(spec, w) if mode == "ti2v" else None
        gen = pipe.generate(
            spec.caption,
            image=image,
            size=size,
            steps=cfg.sample_steps,
            cfg_scale=cfg.cfg_scale,
            seed=spec.seed,
            aesthetic_score=None,
        )
        name = f"{mode}-{spec.name}"
        gen.save(out / f"{name}.mp4")
        pixels = ((gen.video.permute(1, 2, 3, 0) + 1) * 127.5).clamp(0, 255).numpy()
        # TI2V's frame 0 is the reference image pasted back crisp: the tracker reads what the
        # model generated, frames 1.. (a crisp frame would also set its contrast threshold)
        t = track(pixels[int(mode == "ti2v") :].astype(np.uint8))
        samples.append(Sample(name, mode, spec, t.colour, t.direction, t.travel, keep.kept[-1]))
    return samples


@torch.no_grad()
def track_decoded(vae: Path, latents: torch.Tensor, frames: int) -> list[tuple[str | None, ...]]:
    """Decode latents [N, 24, T, h, w] with the VAE release and read each clip back with the
    pixel tracker: the judge's own accuracy on real clips after the VAE. -> (colour, direction)."""
    model = MUGVAE.from_pretrained(vae).eval()
    reads = []
    for z in latents:
        pixels = (model.decode(z[None], frames)[0].permute(1, 2, 3, 0) + 1) * 127.5
        t = track(pixels.clamp(0, 255).numpy().astype(np.uint8))
        reads.append((t.colour, t.direction))
    return reads


@torch.no_grad()
def caption_choice(
    dit: Path,
    t5: Path,
    latents: torch.Tensor,
    specs: list[ClipSpec],
    flow: FlowSchedule,
    draws: int = 6,
) -> list[tuple[str, str]]:
    """The DiT as a classifier of real clips: for latents [N, 24, T, h, w], the colour whose
    caption (shape and direction kept) gives the lowest mean flow error over `draws` shared
    (t, noise) draws, and likewise the direction (colour and shape kept). -> (colour, direction).

    This reads what the model learned from text in latent space, without the VAE decoder."""
    model = MUGDiT.from_pretrained(dit).eval()
    encoder = T5TextEncoder(str(t5), max_length=TEXT_LENGTH, dtype=torch.float32)
    colours, directions = list(COLOURS), list(DIRECTIONS)
    reads = []
    for i, (z, spec) in enumerate(zip(latents, specs, strict=True)):
        captions = [replace(spec, colour=c).caption for c in colours]
        captions += [replace(spec, direction=d).caption for d in directions]
        text, mask = encoder.encode(captions)
        n = len(captions)
        g = torch.Generator().manual_seed(i)
        height, width = (PIXELS_PER_LATENT * side for side in z.shape[2:])
        ratio = flow.shift_ratio(height, width, z.shape[1])
        errs = torch.zeros(n)
        for _ in range(draws):
            t = flow.sample_t(1, ratio, generator=g).expand(n)
            noise = torch.randn(z.shape, generator=g)
            x = z[None].expand(n, -1, -1, -1, -1)
            pred = model(
                flow.add_noise(x, noise.expand_as(x), t),
                flow.model_timestep(t),
                text,
                mask,
                torch.full((n,), CONDITIONING_FPS),
            )
            errs += flow.per_sample_loss(pred, flow.target(x, noise.expand_as(x)))
        k = len(colours)
        reads.append((colours[int(errs[:k].argmin())], directions[int(errs[k:].argmin())]))
    return reads


def chance() -> dict[str, float]:
    return {"colour": 1 / len(COLOURS), "direction": 1 / len(DIRECTIONS)}


@torch.no_grad()
def preference_accuracy(
    dit: Path, latents: Path, names: list[str], draws: int = 8
) -> tuple[int, int]:
    """Share of pairs (clip, clip played backwards; one prompt) whose preferred side the model
    denoises better: mean flow error over `draws` shared (t, noise) draws, T2V. -> (wins, pairs)."""
    model = MUGDiT.from_pretrained(dit).eval()
    flow = FlowSchedule()
    samples = clips(latents)
    wins = total = 0
    for name in pair_names(names, samples, samples):
        good, bad = samples[name], samples[f"{name}-rejected"]
        g = torch.Generator().manual_seed(total)
        x = torch.stack([good.latent, bad.latent])  # [2, C, T, H, W]
        errs = torch.zeros(2)
        for _ in range(draws):
            t = torch.rand(1, generator=g).expand(2)
            noise = torch.randn(x.shape[1:], generator=g).expand_as(x)
            pred = model(
                flow.add_noise(x, noise, t),
                flow.model_timestep(t),
                good.text.float()[None].expand(2, -1, -1),
                good.text_mask[None].expand(2, -1),
                torch.full((2,), good.fps),
            )
            errs += flow.per_sample_loss(pred, flow.target(x, noise))
        wins += int(errs[0] < errs[1])
        total += 1
    return wins, total
