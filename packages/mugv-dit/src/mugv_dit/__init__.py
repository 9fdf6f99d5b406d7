"""MUG-DiT video diffusion transformer, rectified-flow schedule and T5 text encoder wrapper."""

from mugv_dit.__about__ import __version__
from mugv_dit.config import DiTConfig
from mugv_dit.model import MUGDiT

__all__ = ["DiTConfig", "MUGDiT", "__version__"]
