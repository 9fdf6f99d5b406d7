"""3D patch discriminator and the GAN terms for the final fine-tuning stage."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchDiscriminator3D(nn.Module):
    """PatchGAN over space-time: video [B, 3, T, H, W] → logits [B, 1, T', H', W'].

    Convs of kernel 3×4×4 (time × space) with GroupNorm (batch-independent, unlike BatchNorm) and
    LeakyReLU(0.2); the first two halve time and space, the next `n_layers − 2` halve space only.
    Each logit judges one overlapping space-time patch. Frames need H, W ≥ 2^(n_layers+2).
    """

    def __init__(self, channels: int = 64, n_layers: int = 3, groups: int = 32) -> None:
        super().__init__()
        k, p = (3, 4, 4), (1, 1, 1)
        layers: list[nn.Module] = [nn.Conv3d(3, channels, k, (2, 2, 2), p), nn.LeakyReLU(0.2)]
        cin = channels
        for i in range(1, n_layers + 1):
            cout = channels * min(2**i, 8)
            stride = (2 if i == 1 else 1, 2, 2) if i < n_layers else (1, 1, 1)
            layers += [
                nn.Conv3d(cin, cout, k, stride, p, bias=False),
                nn.GroupNorm(min(groups, cout), cout),
                nn.LeakyReLU(0.2),
            ]
            cin = cout
        layers.append(nn.Conv3d(cin, 1, k, 1, p))
        self.net = nn.Sequential(*layers)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.net(video)


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: mean(relu(1 − real)) + mean(relu(1 + fake)), halved."""
    return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())


def generator_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating hinge generator loss: −mean(D(fake))."""
    return -logits_fake.mean()


def adaptive_gan_weight(
    rec_loss: torch.Tensor, g_loss: torch.Tensor, last_layer: torch.Tensor, max_weight: float = 1e4
) -> torch.Tensor:
    """‖∇_last rec‖ / (‖∇_last g‖ + 1e−4), clamped to [0, max_weight] and detached (VQGAN)."""
    rec_grad = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    weight = rec_grad.norm() / (g_grad.norm() + 1e-4)
    return weight.clamp(0.0, max_weight).detach()
