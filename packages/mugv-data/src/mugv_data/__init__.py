"""Video curation pipeline and WebDataset shard formats (raw and latent) for mugv.

What the README shows is exported here; the rest (video I/O, tar helpers, stages, rank
discovery) is importable from its module, e.g. `mugv_data.io.video.encode_mp4`.
"""

from mugv_data.__about__ import __version__
from mugv_data.config import CurateConfig, build_config
from mugv_data.curate import curate
from mugv_data.loader.loader import LatentLoader, LoaderConfig
from mugv_data.shards.latent import (
    LatentExpect,
    LatentFormatError,
    LatentSample,
    LatentShardWriter,
    iter_latent_shard,
)
from mugv_data.shards.raw import RawFormatError, RawSample, iter_raw_shard

__all__ = [  # noqa: RUF022 (__version__ first, then sorted)
    "__version__",
    "CurateConfig",
    "LatentExpect",
    "LatentFormatError",
    "LatentLoader",
    "LatentSample",
    "LatentShardWriter",
    "LoaderConfig",
    "RawFormatError",
    "RawSample",
    "build_config",
    "curate",
    "iter_latent_shard",
    "iter_raw_shard",
]
