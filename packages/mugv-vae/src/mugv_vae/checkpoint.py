"""Checkpoint formats: ours (config.json + safetensors) and the released MUG-V `vae.pt`.

Ours, readable without mugv installed:
    DIR/config.json                      {"format": "mugv-vae", "format_version": 1, "config": {...}}
    DIR/model.safetensors                one file when the weights fit in `max_shard_bytes`, else
    DIR/model-0000i-of-0000n.safetensors + DIR/model.safetensors.index.json ({"weight_map": ...})
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

FORMAT = "mugv-vae"
FORMAT_VERSION = 1
_INDEX = "model.safetensors.index.json"


def save_state(
    state: Mapping[str, torch.Tensor],
    config_json: dict,
    directory: str | Path,
    max_shard_bytes: int = 2 * 1024**3,
) -> None:
    """Write `config.json` and the weights, sharded when larger than `max_shard_bytes`.

    Atomic: everything is written to a temporary sibling folder that then replaces `directory`,
    so a crash mid-write leaves the previous checkpoint intact and no partial one visible.
    """
    out = Path(directory)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _write(tmp, state, config_json, max_shard_bytes)
        old = out.with_name(f".{out.name}.old")
        if out.exists():
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write(
    out: Path, state: Mapping[str, torch.Tensor], config_json: dict, max_shard_bytes: int
) -> None:
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": config_json}
    (out / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, value in state.items():
        value = value.detach().contiguous().cpu()
        nbytes = value.numel() * value.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = value
        size += nbytes
    if len(shards) == 1:
        save_file(shards[0], out / "model.safetensors", metadata={"format": "pt"})
        return
    weight_map = {}
    for i, shard in enumerate(shards, start=1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, out / name, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, name))
    (out / _INDEX).write_text(json.dumps({"weight_map": weight_map}, indent=2) + "\n")


def load_state(directory: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read a directory written by `save_state`: (config dict, state dict)."""
    src = Path(directory)
    cfg_path = src / "config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(
            f"{cfg_path} not found: is {src} a directory written by MUGVAE.save_pretrained? "
            "(for the released vae.pt use MUGVAE.from_reference)"
        )
    meta = json.loads(cfg_path.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{cfg_path}: format is {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{cfg_path}: format_version {meta['format_version']} is newer than this mugv-vae "
            f"reads ({FORMAT_VERSION}); upgrade mugv-vae"
        )
    if (src / _INDEX).is_file():
        weight_map = json.loads((src / _INDEX).read_text())["weight_map"]
        state: dict[str, torch.Tensor] = {}
        for name in sorted(set(weight_map.values())):
            state.update(load_file(src / name))
    else:
        state = load_file(src / "model.safetensors")
    return meta["config"], state


def read_reference(source: str | Path | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The released `vae.pt` (loaded with weights_only=True) or an already loaded state dict."""
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"reference VAE weights {path} not found (expected MUG-V vae.pt)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise ValueError(f"{path} holds a {type(state).__name__}, expected a state dict")
    return dict(state)


def check_state_dict(
    expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor], origin: str
) -> None:
    """Raise ValueError naming every missing, unexpected or mis-shaped key (up to 10 of each)."""
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    misshaped = [
        f"{k}: file {tuple(given[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(given))
        if tuple(given[k].shape) != tuple(expected[k].shape)
    ]
    if not (missing or unexpected or misshaped):
        return
    parts = []
    for label, items in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("mis-shaped", misshaped),
    ):
        if items:
            more = f" (+{len(items) - 10} more)" if len(items) > 10 else ""
            parts.append(f"{len(items)} {label} keys: {', '.join(items[:10])}{more}")
    raise ValueError(
        f"{origin} does not match the VAE architecture: " + "; ".join(parts) + ". Is the config "
        "the right preset (VAEConfig.preset('mugv') for the released vae.pt)?"
    )
