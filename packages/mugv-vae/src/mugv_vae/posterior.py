"""Diagonal Gaussian posterior over the raw (un-normalised) temporal latents."""

from __future__ import annotations

import torch


class DiagonalGaussian:
    """moments: [B, 2·C, T', h, w] split into mean and log-variance (clamped to `logvar_clamp`)."""

    def __init__(self, moments: torch.Tensor, logvar_clamp: tuple[float, float] = (-30.0, 20.0)):
        self.mean, logvar = moments.chunk(2, dim=1)
        self.logvar = logvar.clamp(*logvar_clamp)
        self.std = torch.exp(0.5 * self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterised draw mean + std·ε, [B, C, T', h, w]; differentiable in mean and std."""
        eps = torch.randn(
            self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype
        )
        return self.mean + self.std * eps

    def mode(self) -> torch.Tensor:
        return self.mean

    def kl(self) -> torch.Tensor:
        """KL(q ‖ N(0, I)) summed over every latent element of each sample: [B]."""
        var = torch.exp(self.logvar)
        return 0.5 * (self.mean.pow(2) + var - 1.0 - self.logvar).flatten(1).sum(1)
