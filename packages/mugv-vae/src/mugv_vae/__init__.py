"""The MUG-V video VAE (8x8x8, 24 channels): model, reference-weight loading, tiling, training losses."""

from mugv_vae.__about__ import __version__
from mugv_vae.config import TilingConfig, VAEConfig
from mugv_vae.model import MUGVAE, VAEOutput

__all__ = ["MUGVAE", "TilingConfig", "VAEConfig", "VAEOutput", "__version__"]
