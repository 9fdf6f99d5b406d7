"""The MUG-V video VAE (8x8x8, 24 channels): model, reference-weight loading, tiling, training losses."""

from mugv_vae.__about__ import __version__

__all__ = ["__version__"]
