"""Video curation pipeline and WebDataset shard formats (raw and latent) for mugv."""

from mugv_data.__about__ import __version__

__all__ = ["__version__"]
