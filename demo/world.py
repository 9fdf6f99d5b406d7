"""The demo's world: coloured shapes moving in named directions, deterministic from a seed.

Every clip shows one shape (square or disc) of one colour on a dark grey background, moving half
a pixel per frame in one of four directions along a path near the frame's centre line; its caption
names exactly that ("a red square moving left"). Colour/direction combinations are split into training and held-out sets with a Latin
square, so every colour and every direction is seen in training, but held-out pairs never are.
"""

from __future__ import annotations

import itertools
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from demo.config import WorldConfig
from mugv_data.io.video import encode_mp4

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 40, 35),
    "yellow": (230, 205, 30),
    "green": (40, 190, 60),
    "blue": (45, 90, 235),
}
DIRECTIONS: dict[str, tuple[int, int]] = {
    "left": (-1, 0),
    "right": (1, 0),
    "up": (0, -1),
    "down": (0, 1),
}
SHAPES = ("square", "disc")
BACKGROUND = (40, 40, 40)
# One held-out direction per colour, each direction once: composition is needed to render them.
HELD_OUT: frozenset[tuple[str, str]] = frozenset(
    zip(COLOURS, ("left", "up", "right", "down"), strict=True)
)


@dataclass(frozen=True)
class ClipSpec:
    """One world clip: what it shows and how it is drawn."""

    colour: str
    direction: str
    shape: str
    size: int  # side (square) or diameter (disc) in pixels
    frames: int
    seed: int

    @property
    def caption(self) -> str:
        return f"a {self.colour} {self.shape} moving {self.direction}"

    @property
    def name(self) -> str:
        return f"{self.colour}-{self.direction}-{self.shape}{self.size}-f{self.frames}-s{self.seed}"

    @property
    def held_out(self) -> bool:
        return (self.colour, self.direction) in HELD_OUT


def render(spec: ClipSpec, world: WorldConfig) -> np.ndarray:
    """-> uint8 frames [T, side, side, 3], the shape moving `world.speed` pixels per frame and
    inside the frame for the whole clip, its path at most `world.spread` pixels off the centre."""
    side, speed, spread = world.side, world.speed, world.spread
    rng = np.random.default_rng(spec.seed)
    dx, dy = DIRECTIONS[spec.direction]
    travel, half = speed * (spec.frames - 1), spec.size / 2
    if travel > side - spec.size - 2:
        raise ValueError(f"{spec.name}: {travel:.0f} px of travel do not fit a {side} px frame")
    lo, hi = half + 1, side - half - 1
    # Start so that the whole path fits (along the motion axis this leaves little freedom);
    # across it the path keeps near the centre line.
    x0, y0 = (
        rng.uniform(lo + max(0, -d) * travel, hi - max(0, d) * travel)
        if d
        else rng.uniform(max(lo, side / 2 - spread), min(hi, side / 2 + spread))
        for d in (dx, dy)
    )
    yy, xx = np.mgrid[0:side, 0:side] + 0.5
    video = np.empty((spec.frames, side, side, 3), np.uint8)
    video[:] = BACKGROUND
    for t in range(spec.frames):
        cx, cy = x0 + dx * speed * t, y0 + dy * speed * t
        if spec.shape == "square":
            inside = (abs(xx - cx) <= half) & (abs(yy - cy) <= half)
        else:
            inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= half**2
        video[t][inside] = COLOURS[spec.colour]
    return video


def clip_specs(sizes: tuple[int, ...], lengths: tuple[int, ...], seeds: int) -> list[ClipSpec]:
    """Every colour x direction x shape x size x length, `seeds` random placements each."""
    specs = []
    for i, (c, d, s, z, n) in enumerate(
        itertools.product(COLOURS, DIRECTIONS, SHAPES, sizes, lengths)
    ):
        specs += [ClipSpec(c, d, s, z, n, seed=1000 * i + k) for k in range(seeds)]
    return specs


def write_world(
    specs: list[ClipSpec], world: WorldConfig, out: Path, real_videos: list[Path]
) -> Path:
    """Write the training inputs of the world as mp4s plus `inputs.jsonl` (path, caption, meta)
    for mugv-data, and return the list. Held-out clips are not inputs; a few deliberately bad
    inputs (a static shape, an exact duplicate, a file that is no video) exercise the rejects."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for spec in specs:
        if spec.held_out:
            continue
        path = out / f"{spec.name}.mp4"
        encode_mp4(render(spec, world), fps=world.fps, path=str(path))
        rows.append({"path": path.name, "caption": spec.caption, "meta": {"kind": "shape"}})
    # Deliberate rejects: no motion, an exact copy of the first clip, not a video at all.
    static = render(ClipSpec("red", "left", "square", max(s.size for s in specs), 1, 7), world)
    encode_mp4(
        np.repeat(static, specs[0].frames, axis=0), fps=world.fps, path=str(out / "static.mp4")
    )
    shutil.copy(out / rows[0]["path"], out / "duplicate.mp4")
    (out / "notes.txt").write_text("not a video\n")
    rows += [
        {"path": "static.mp4", "caption": "a red square standing still", "meta": {"kind": "bad"}},
        {"path": "duplicate.mp4", "caption": rows[0]["caption"], "meta": {"kind": "bad"}},
        {"path": "notes.txt", "caption": "notes", "meta": {"kind": "bad"}},
    ]
    for video in real_videos:
        rows.append({"path": str(video), "caption": "a real video", "meta": {"kind": "real"}})
    listing = out / "inputs.jsonl"
    listing.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return listing
