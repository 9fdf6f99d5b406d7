"""Read a clip's colour and motion direction back from its pixels: the demo's judge.

The world draws one flat-coloured shape on a uniform dark background, so a pixel belongs to the
shape when it departs from the frame's median colour (the background covers most of the frame)
by at least half that frame's largest departure: a tiny VAE redraws shapes blurred and faded,
more in some frames than in others, so a fixed contrast would miss them. Colour is the palette entry whose direction from the background
is closest (cosine) to the mean departure of the shape pixels, which survives fading; direction
is the dominant axis and sign of the displacement of the contrast-weighted centroid between the
first and last quarter of the frames that show a shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from demo.world import BACKGROUND, COLOURS, DIRECTIONS

MIN_CONTRAST = 12.0  # RGB distance below which nothing counts as a shape (codec noise)
MIN_PIXELS = 4  # fewer shape pixels than this in a frame: the frame shows no shape
MIN_TRAVEL = 1.0  # pixels of centroid displacement below which no direction is read


@dataclass(frozen=True)
class Track:
    colour: str | None
    direction: str | None
    travel: float  # pixels the centroid moved along the dominant axis
    frames_seen: int  # frames in which a shape was found


def track(video: np.ndarray) -> Track:
    """video: uint8 or float [T, H, W, 3] in 0..255 -> what it shows (None where unreadable)."""
    frames = video.astype(np.float32)
    background = np.median(frames.reshape(len(frames), -1, 3), axis=1)  # [T, 3]
    departure = frames - background[:, None, None]  # [T, H, W, 3]
    distance = np.linalg.norm(departure, axis=-1)  # [T, H, W]
    # per frame: a decoded shape's contrast changes from frame to frame
    peak = distance.reshape(len(frames), -1).max(1)[:, None, None]
    mask = distance >= np.maximum(MIN_CONTRAST, 0.5 * peak)
    seen = mask.reshape(len(frames), -1).sum(1) >= MIN_PIXELS
    if not seen.any():
        return Track(None, None, 0.0, 0)
    # 1. colour: mean departure of the shape pixels against each palette entry's departure
    mean = departure[mask].mean(0)
    names = list(COLOURS)
    palette = np.array([COLOURS[n] for n in names], np.float32) - np.array(BACKGROUND, np.float32)
    cosine = palette @ mean / (np.linalg.norm(palette, axis=1) * np.linalg.norm(mean) + 1e-8)
    colour = names[int(cosine.argmax())]
    # 2. contrast-weighted centroids of the frames that show the shape, early vs late quarter
    yy, xx = np.mgrid[0 : video.shape[1], 0 : video.shape[2]]
    idx = np.flatnonzero(seen)
    weight = np.where(mask, distance, 0.0)[idx]  # [N, H, W]
    total = weight.sum((1, 2))
    cents = np.stack([(weight * xx).sum((1, 2)), (weight * yy).sum((1, 2))], 1) / total[:, None]
    q = max(1, len(idx) // 4)
    move = cents[-q:].mean(0) - cents[:q].mean(0)
    axis = int(np.abs(move).argmax())
    travel = float(abs(move[axis]))
    direction = None
    if travel >= MIN_TRAVEL and len(idx) >= 2:
        step = [0, 0]
        step[axis] = int(np.sign(move[axis]))
        direction = next(n for n, d in DIRECTIONS.items() if list(d) == step)
    return Track(colour, direction, travel, int(seen.sum()))
