"""MUG-DiT video diffusion transformer, rectified-flow schedule and T5 text encoder wrapper."""

from mugv_dit.__about__ import __version__

__all__ = ["__version__"]
