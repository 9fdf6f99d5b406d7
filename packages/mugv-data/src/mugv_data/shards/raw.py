"""Raw clip shards: per clip `<id>.mp4` (H.264) + `<id>.json` (schema `mugv-raw/1`).

The json holds every stage score, the caption and its source, and provenance (input path,
frame range, source video facts). See docs/shard-format.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mugv_data.shards.tar import iter_tar_samples

RAW_SCHEMA = "mugv-raw/1"
RAW_REQUIRED = (
    "schema",
    "id",
    "caption",
    "fps",
    "num_frames",
    "width",
    "height",
    "scores",
    "source",
)


class RawFormatError(ValueError):
    """A raw shard sample does not follow `mugv-raw/1`."""


@dataclass
class RawSample:
    key: str
    mp4: bytes
    meta: dict


def raw_index_meta(key: str, data: bytes) -> dict:
    meta = json.loads(data)
    return {k: meta.get(k) for k in ("num_frames", "fps", "width", "height")}


def validate_raw_meta(meta: dict, where: str) -> None:
    missing = [k for k in RAW_REQUIRED if k not in meta]
    if missing:
        raise RawFormatError(f"{where}: json lacks {missing} (not a {RAW_SCHEMA} sample?)")
    if meta["schema"] != RAW_SCHEMA:
        raise RawFormatError(f"{where}: schema {meta['schema']!r}, this reader knows {RAW_SCHEMA}")


def iter_raw_shard(path: str | Path) -> Iterator[RawSample]:
    """Validated samples of one raw shard."""
    for key, files in iter_tar_samples(path):
        where = f"shard {Path(path).name}: sample {key}"
        if "mp4" not in files or "json" not in files:
            raise RawFormatError(f"{where}: needs .mp4 and .json members, has {sorted(files)}")
        meta = json.loads(files["json"])
        validate_raw_meta(meta, where)
        yield RawSample(key, files["mp4"], meta)
