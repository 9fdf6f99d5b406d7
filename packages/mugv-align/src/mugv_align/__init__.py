"""Preference alignment for MUG-DiT: KTO, Diffusion-DPO and RDPO."""

from mugv_align.__about__ import __version__

__all__ = ["__version__"]
