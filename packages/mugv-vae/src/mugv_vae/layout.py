"""Where each pixel frame sits among the 8-frame chunks that become latents.

Encode turns a clip of T frames into whole 8-frame chunks, each encoded on its own:
- T = 8k+1 (images too): frame 0 is replicated 7× in front, so latent 0 is an image latent;
- otherwise (−T mod 8) zero frames go in front of the last window of 8·window_latents frames
  (the front of the clip when T ≤ 8·window_latents), as the released pipeline does.
Decode produces 8 frames per latent and drops exactly those added frames again.
"""

from __future__ import annotations

from dataclasses import dataclass

TIME_COMPRESSION = 8


@dataclass(frozen=True)
class FrameLayout:
    """Chunk layout of a clip of `num_frames` frames (see module docstring)."""

    num_frames: int
    replicate: int  # copies of frame 0 placed in front
    pad: int  # zero frames inserted
    pad_at: int  # index in the clip before which the zero frames go

    @property
    def num_latents(self) -> int:
        return (self.num_frames + self.replicate + self.pad) // TIME_COMPRESSION

    def added_frames(self) -> range:
        """Indices, among the 8·num_latents chunked frames, of frames that are not in the clip."""
        if self.replicate:
            return range(0, self.replicate)
        return range(self.pad_at, self.pad_at + self.pad)


def frame_layout(num_frames: int, window_latents: int) -> FrameLayout:
    """Layout of a `num_frames`-frame clip for encode windows of `window_latents` latents."""
    if num_frames < 1:
        raise ValueError(f"num_frames={num_frames}: a clip needs at least one frame")
    if num_frames % TIME_COMPRESSION == 1:
        return FrameLayout(num_frames, TIME_COMPRESSION - 1, 0, 0)
    pad = -num_frames % TIME_COMPRESSION
    window = TIME_COMPRESSION * window_latents
    pad_at = (num_frames - 1) // window * window if pad else 0
    return FrameLayout(num_frames, 0, pad, pad_at)
