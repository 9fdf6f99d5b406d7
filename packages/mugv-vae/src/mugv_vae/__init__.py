"""The MUG-V video VAE (8x8x8, 24 channels): model, reference-weight loading, tiling, training losses."""

from mugv_vae.__about__ import __version__
from mugv_vae.config import TilingConfig, VAEConfig
from mugv_vae.discriminator import PatchDiscriminator3D
from mugv_vae.losses import DecoderWindowSchedule, LossConfig, VAELoss
from mugv_vae.metrics import lpips, psnr, ssim
from mugv_vae.model import MUGVAE, VAEOutput
from mugv_vae.perceptual import LPIPS

__all__ = [
    "LPIPS",
    "MUGVAE",
    "DecoderWindowSchedule",
    "LossConfig",
    "PatchDiscriminator3D",
    "TilingConfig",
    "VAEConfig",
    "VAELoss",
    "VAEOutput",
    "__version__",
    "lpips",
    "psnr",
    "ssim",
]
