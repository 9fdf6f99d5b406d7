"""A latent-space judge: a small conv probe that reads colour and direction from latents.

The pixel tracker needs a VAE that redraws the shape; the tiny VAE trained for minutes on CPU
redraws its motion but not its hue (docs/demo.md). The DiT, though, generates latents, and the
encoder does keep colour and position in them. The probe learns colour and direction (two heads)
from the training clips' latents only; its accuracy on the encoded held-out clips, whose
combinations it never saw, is reported beside its readings of generated latents and says which
readings can be trusted (measured: direction yes; colour not across combinations, where the
colour head leans on the direction each colour was seen with).
"""

from __future__ import annotations

import torch
from torch import nn

from demo.world import COLOURS, DIRECTIONS


class Probe(nn.Module):
    """latents [B, 24, T, h, w] (frames 1.., the moving part) -> colour and direction logits."""

    def __init__(self, channels: int = 24, width: int = 32) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv3d(channels, width, (2, 3, 3), padding=(0, 1, 1)),
            nn.GELU(),
            nn.Conv3d(width, width, (2, 3, 3), padding=(0, 1, 1)),
            nn.GELU(),
        )
        self.colour = nn.Linear(width, len(COLOURS))
        self.direction = nn.Linear(width, len(DIRECTIONS))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(z).amax(dim=(2, 3, 4))  # [B, width]: where the shape is does not matter
        return self.colour(h), self.direction(h)


def fit(
    latents: torch.Tensor,
    colours: list[str],
    directions: list[str],
    steps: int = 300,
    seed: int = 0,
) -> Probe:
    """Train on labelled latents [N, 24, T, h, w] (full-batch AdamW)."""
    torch.manual_seed(seed)
    probe = Probe(latents.shape[1])
    c = torch.tensor([list(COLOURS).index(x) for x in colours])
    d = torch.tensor([list(DIRECTIONS).index(x) for x in directions])
    opt = torch.optim.AdamW(probe.parameters(), lr=3e-3, weight_decay=1e-2)
    for _ in range(steps):
        lc, ld = probe(latents)
        loss = nn.functional.cross_entropy(lc, c) + nn.functional.cross_entropy(ld, d)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return probe.eval()


@torch.no_grad()
def read(probe: Probe, latents: torch.Tensor) -> list[tuple[str, str]]:
    """latents [N, 24, T, h, w] -> (colour, direction) per clip."""
    lc, ld = probe(latents.float())
    colours, directions = list(COLOURS), list(DIRECTIONS)
    return [
        (colours[i], directions[j])
        for i, j in zip(lc.argmax(1).tolist(), ld.argmax(1).tolist(), strict=True)
    ]
