"""List curation inputs from a folder, a list file, a CSV or a JSONL file.

- folder: every file with a video extension below it (sorted, recursive);
- `.txt` / `.lst`: one path per line (`#` comments);
- `.csv`: a header with `path` (or `video`), optional `caption` and any other columns (metadata);
- `.jsonl`: one object per line with `path`, optional `caption` and `meta` (or other keys).
Relative paths in list files are relative to the list file.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".ts")


@dataclass(frozen=True)
class InputVideo:
    """One input: `key` is stable across runs (derived from the resolved path)."""

    path: str
    caption: str | None = None
    meta: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        digest = hashlib.sha1(os.path.abspath(self.path).encode()).hexdigest()[:12]
        stem = "".join(c if c.isalnum() else "-" for c in Path(self.path).stem)[:40]
        return f"{stem}-{digest}"


def _resolve(base: Path, p: str) -> str:
    return str(p if os.path.isabs(p) else base / p)


def list_inputs(source: str | os.PathLike) -> list[InputVideo]:
    """Inputs in a deterministic order (the order ranks partition by)."""
    src = Path(source)
    if src.is_dir():
        files = sorted(p for p in src.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS)
        return [InputVideo(str(p)) for p in files]
    if not src.exists():
        raise FileNotFoundError(f"input {src} does not exist (give a folder, .txt, .csv or .jsonl)")
    base, suffix = src.parent, src.suffix.lower()
    items: list[InputVideo] = []
    if suffix == ".csv":
        with src.open(newline="") as f:
            for i, row in enumerate(csv.DictReader(f)):
                path = row.pop("path", None) or row.pop("video", None)
                if not path:
                    raise ValueError(f"{src}: row {i + 2} has no 'path' column value")
                caption = row.pop("caption", None) or None
                items.append(InputVideo(_resolve(base, path), caption, dict(row)))
    elif suffix == ".jsonl":
        for i, line in enumerate(src.read_text().splitlines()):
            if not line.strip():
                continue
            obj = json.loads(line)
            if "path" not in obj:
                raise ValueError(f"{src}: line {i + 1} has no 'path' key")
            path, caption = obj.pop("path"), obj.pop("caption", None) or None
            meta = obj.pop("meta", {}) | obj
            items.append(InputVideo(_resolve(base, path), caption, meta))
    else:
        for line in src.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                items.append(InputVideo(_resolve(base, line)))
    return items
