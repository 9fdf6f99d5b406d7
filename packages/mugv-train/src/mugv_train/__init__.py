"""FSDP2 training for MUG-DiT: latent precompute, curriculum, checkpoints, EMA export."""

from mugv_train.__about__ import __version__

__all__ = ["__version__"]
