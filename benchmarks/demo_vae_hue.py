"""How fast the demo's tiny VAE learns to redraw colour and motion (docs/demo.md, "Hue").

A direct training loop over the pieces the demo's VAE stage uses (`MUGVAE` "tiny", `VAELoss` with
MSE + KL, AdamW, gradient clipping, the decoder-window schedule) on the demo world's clips rendered
in memory, so one variant runs in minutes on a GPU and many run side by side. Every `--every`
steps the held-out clips (colour/direction combinations training never shows) are encoded with a
posterior sample, decoded and read by the demo's pixel tracker; one JSON line per reading, and
the colour confusion at the end.

    python benchmarks/demo_vae_hue.py --seed 1 --logvar-max -6
    python benchmarks/demo_vae_hue.py --background 128 --steps 1200
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from dataclasses import replace

import numpy as np
import torch

import demo.tracker
import demo.world
from demo.config import WorldConfig
from demo.world import clip_specs, render
from mugv_vae import MUGVAE, DecoderWindowSchedule, LossConfig, VAEConfig, VAELoss

PALETTES = {  # alternatives to the world's palette, by colour name (docs/demo.md)
    "world": dict(demo.world.COLOURS),
    "white": demo.world.COLOURS | {"yellow": (235, 235, 235)},
    "isoluminant": {
        "red": (255, 80, 80),
        "yellow": (170, 150, 0),
        "green": (40, 170, 40),
        "blue": (80, 110, 255),
    },
    "centred": {
        "red": (248, 48, 88),
        "yellow": (168, 208, 8),
        "green": (8, 208, 168),
        "blue": (88, 48, 248),
    },
}


def pixels(video: np.ndarray) -> torch.Tensor:
    """uint8 [T, H, W, 3] -> [3, T, H, W] in [-1, 1]."""
    return torch.from_numpy(video).permute(3, 0, 1, 2).float() / 127.5 - 1


@torch.no_grad()
def read_back(model: MUGVAE, clips: torch.Tensor, specs: list) -> tuple[int, int, dict]:
    """Round trips of `clips` [N, 3, T, H, W] read by the tracker -> (colours right, directions
    right, {true colour: Counter of read colours})."""
    model.eval()
    g = torch.Generator(clips.device).manual_seed(0)
    colours = directions = 0
    confusion: dict[str, Counter] = {}
    for x, spec in zip(clips, specs, strict=True):
        recon = model.decode(model.encode(x[None], generator=g), x.shape[1])[0]
        frames = ((recon.permute(1, 2, 3, 0) + 1) * 127.5).clamp(0, 255).byte().cpu().numpy()
        seen = demo.tracker.track(frames)
        colours += seen.colour == spec.colour
        directions += seen.direction == spec.direction
        confusion.setdefault(spec.colour, Counter())[str(seen.colour)] += 1
    model.train()
    return colours, directions, confusion


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--every", type=int, default=200)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--frames", type=int, default=9)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--logvar-max", type=float, help="cap the posterior log-variance (e.g. -6)")
    ap.add_argument("--posterior-mean", action="store_true", help="train on the mean, no sample")
    ap.add_argument("--palette", choices=sorted(PALETTES), default="world")
    ap.add_argument("--background", type=int, help="grey level of the background (world: 40)")
    ap.add_argument("--sizes", default="8,12", help="shape sizes in pixels")
    ap.add_argument("--speed", type=float, default=0.5, help="pixels per frame")
    args = ap.parse_args()

    # The tracker reads the palette and background from demo.world: change them in place.
    demo.world.COLOURS.update(PALETTES[args.palette])
    if args.background is not None:
        demo.world.BACKGROUND = demo.tracker.BACKGROUND = (args.background,) * 3
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(args.seed)
    world = WorldConfig(sizes=tuple(int(v) for v in args.sizes.split(",")), speed=args.speed)
    every = clip_specs(world.sizes, (world.short_frames, world.long_frames), world.seeds)
    clips = [pixels(render(s, world)).to(device) for s in every if not s.held_out]
    held = [
        replace(s, seed=s.seed + 500)
        for s in clip_specs(world.sizes, (world.long_frames,), world.heldout_seeds)
        if s.held_out
    ]
    held_x = torch.stack([pixels(render(s, world)) for s in held]).to(device)

    config = VAEConfig.preset("tiny")
    if args.logvar_max is not None:
        temporal = config.temporal.model_copy(update={"logvar_clamp": (-30.0, args.logvar_max)})
        config = config.model_copy(update={"temporal": temporal})
    model = MUGVAE(config).to(device)
    model.logvar.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    loss = VAELoss(LossConfig(saliency_l1_weight=0.0, perceptual_weight=0.0))
    windows = DecoderWindowSchedule()
    rng = random.Random(args.seed)
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        for group in optimizer.param_groups:  # the vae-tiny preset's 3 warm-up steps
            group["lr"] = args.lr * min(1.0, step / 3)
        batch = []
        for _ in range(args.batch):
            clip = rng.choice(clips)
            t0 = rng.randrange(clip.shape[1] - args.frames + 1)
            batch.append(clip[:, t0 : t0 + args.frames])
        x = torch.stack(batch)
        g = torch.Generator(device).manual_seed(step)
        out = model(x, sample=not args.posterior_mean, window_latents=windows(step), generator=g)
        optimizer.zero_grad(set_to_none=True)
        loss(out.recon, x, out.posterior)["total"].backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if step % args.every == 0 or step == args.steps:
            colours, directions, confusion = read_back(model, held_x, held)
            row = {"step": step, "colour": colours, "direction": directions, "clips": len(held)}
            print(json.dumps(row | {"seconds": round(time.perf_counter() - start)}), flush=True)
    print(json.dumps({"confusion": {k: dict(v) for k, v in confusion.items()}}))


if __name__ == "__main__":
    main()
