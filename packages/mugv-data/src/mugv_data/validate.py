"""Checks behind `mugv-data inspect` and `mugv-data validate`."""

from __future__ import annotations

import json
from pathlib import Path

from mugv_data.io.inputs import list_inputs
from mugv_data.shards.latent import LATENT_SCHEMA, LatentFormatError, iter_latent_shard
from mugv_data.shards.raw import RAW_SCHEMA, RawFormatError, iter_raw_shard
from mugv_data.shards.tar import iter_tar_samples


def shard_schema(path: str | Path) -> str | None:
    for _, files in iter_tar_samples(path):
        return json.loads(files["json"]).get("schema") if "json" in files else None
    return None


def inspect_shard(path: str | Path, limit: int = 5) -> dict:
    """Schema, sample count and the first `limit` samples' metadata of one shard."""
    schema = shard_schema(path)
    out: dict = {"shard": str(path), "schema": schema, "samples": 0, "first": []}
    if schema == LATENT_SCHEMA:
        for s in iter_latent_shard(path):
            out["samples"] += 1
            if len(out["first"]) < limit:
                out["first"].append(
                    {"key": s.key, **s.meta(), "text_tokens": int(s.text_mask.sum())}
                )
    else:
        for s in iter_raw_shard(path):
            out["samples"] += 1
            if len(out["first"]) < limit:
                out["first"].append({"key": s.key, "mp4_bytes": len(s.mp4), **s.meta})
    return out


def validate_dir(directory: str | Path) -> tuple[dict, list[str]]:
    """Validate every shard under `directory`; for a curation output also the accounting.

    Returns (summary, problems); no problems means valid.
    """
    d = Path(directory)
    problems: list[str] = []
    summary = {"shards": 0, "samples": 0, "by_schema": {}}
    shard_counts: dict[str, int] = {}
    found = sorted(d.rglob("*.tar"))
    for shard in found:
        try:
            schema = shard_schema(shard)
            it = iter_latent_shard(shard) if schema == LATENT_SCHEMA else iter_raw_shard(shard)
            n = sum(1 for _ in it)
        except (LatentFormatError, RawFormatError, OSError, ValueError) as e:
            problems.append(str(e))
            continue
        summary["shards"] += 1
        summary["samples"] += n
        summary["by_schema"][schema or RAW_SCHEMA] = (
            summary["by_schema"].get(schema or RAW_SCHEMA, 0) + n
        )
        shard_counts[shard.name] = n
    journals = sorted((d / "state").glob("journal-r*.jsonl"))
    if journals:
        records = {}
        for j in journals:
            for line in j.read_text().splitlines():
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:
                    continue
                records[r["input"]] = r
        config = json.loads((d / "config.json").read_text()) if (d / "config.json").exists() else {}
        if config.get("input") and Path(config["input"]).exists():
            missing = [it.path for it in list_inputs(config["input"]) if it.key not in records]
            summary["inputs"] = len(records) + len(missing)
            if missing:
                problems.append(
                    f"{len(missing)} inputs not accounted for (run curate again to finish): {missing[:5]}"
                )
        per_shard: dict[str, int] = {}
        for r in records.values():
            if r["shard"]:
                per_shard[r["shard"]] = per_shard.get(r["shard"], 0) + len(r["clips"])
        for name, n in per_shard.items():
            if shard_counts.get(name) != n:
                problems.append(
                    f"shard {name}: journal lists {n} clips, shard holds {shard_counts.get(name)}"
                )
        summary["accepted_inputs"] = sum(r["status"] == "accepted" for r in records.values())
        summary["rejected_inputs"] = sum(r["status"] == "rejected" for r in records.values())
    if not found and not journals:
        problems.append(f"{d}: no shards and no curation journal found")
    return summary, problems
