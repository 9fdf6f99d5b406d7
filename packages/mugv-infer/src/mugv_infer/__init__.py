"""Inference pipelines for MUG-V: T2V, I2V and TI2V, with offloading."""

from mugv_infer.__about__ import __version__

__all__ = ["__version__"]
