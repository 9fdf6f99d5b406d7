"""Checkpoint formats of MUG-DiT.

* Ours: a folder with `config.json` and safetensors shards plus `model.safetensors.index.json`
  (the Hugging Face layout), readable with `safetensors` alone.
* The released MUG-V `dit.pt`: a plain state dict whose keys are exactly our parameter names;
  the architecture is inferred from the shapes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from mugv_dit.__about__ import __version__
from mugv_dit.config import DiTConfig

CONFIG_NAME = "config.json"
INDEX_NAME = "model.safetensors.index.json"
DEFAULT_SHARD_BYTES = 5 * 1024**3


def _shards(state: dict[str, torch.Tensor], max_bytes: int) -> list[dict[str, torch.Tensor]]:
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > max_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = tensor
        size += nbytes
    return shards


def write_pretrained(
    directory: str | os.PathLike[str],
    state: dict[str, torch.Tensor],
    config: dict[str, Any],
    max_shard_bytes: int = DEFAULT_SHARD_BYTES,
) -> Path:
    """Write config + sharded safetensors atomically: a crash leaves the old folder intact."""
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        shards = _shards(
            {k: v.detach().contiguous().cpu() for k, v in state.items()}, max_shard_bytes
        )
        weight_map = {}
        for i, shard in enumerate(shards):
            name = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
            save_file(shard, tmp / name, metadata={"format": "pt"})
            weight_map.update(dict.fromkeys(shard, name))
        total = sum(t.numel() * t.element_size() for t in state.values())
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (tmp / INDEX_NAME).write_text(json.dumps(index, indent=2))
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2))
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
        tmp.rename(target)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def read_pretrained(
    directory: str | os.PathLike[str],
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(config dict, state dict) from a folder written by `write_pretrained`."""
    folder = Path(directory)
    for name in (CONFIG_NAME, INDEX_NAME):
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"{folder}: missing {name}; is this a mugv save_pretrained folder?"
            )
    config = json.loads((folder / CONFIG_NAME).read_text())
    weight_map: dict[str, str] = json.loads((folder / INDEX_NAME).read_text())["weight_map"]
    state: dict[str, torch.Tensor] = {}
    for shard in sorted(set(weight_map.values())):
        with safe_open(folder / shard, framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 (safe_open is not a Mapping)
                state[key] = f.get_tensor(key)
    return config, state


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Raise one error naming every missing, unexpected and mis-shaped key."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    missing = sorted(expected.keys() - got.keys())
    unexpected = sorted(got.keys() - expected.keys())
    shapes = [
        f"{k}: checkpoint {got[k]} vs model {expected[k]}"
        for k in sorted(expected.keys() & got.keys())
        if expected[k] != got[k]
    ]
    problems = []
    for title, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shapes)):
        if items:
            shown = ", ".join(items[:10]) + (
                f", ... ({len(items)} in all)" if len(items) > 10 else ""
            )
            problems.append(f"{title} keys: {shown}")
    if problems:
        raise ValueError(f"{source} does not match the model: " + "; ".join(problems))


def load_into(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Strictly load `state` into a (possibly meta-device) model, taking the tensors' storage."""
    check_state_dict(model, state, source)
    model.load_state_dict(state, strict=True, assign=True)


def infer_reference_config(state: dict[str, torch.Tensor], source: str) -> DiTConfig:
    """Width, depth, heads, channels and patch of a released MUG-V state dict, from shapes."""
    try:
        hidden = state["start_token"].shape[0]
        head_dim = state["blocks.0.attn.q_norm.weight"].shape[0]
        proj = state["x_embedder.proj.weight"]  # [d, C, pt, ph, pw]
        fc1 = state["blocks.0.mlp.fc1.weight"]
        text_dim = state["y_embedder.y_proj.fc1.weight"].shape[1]
        freq_dim = state["t_embedder.mlp.0.weight"].shape[1]
    except KeyError as err:
        raise ValueError(f"{source}: not a MUG-V DiT state dict (no key {err})") from None
    blocks = {int(k.split(".")[1]) for k in state if k.startswith("blocks.")}
    return DiTConfig(
        hidden_size=hidden,
        num_heads=hidden // head_dim,
        depth=max(blocks) + 1,
        in_channels=proj.shape[1],
        patch_size=tuple(proj.shape[2:]),
        mlp_ratio=fc1.shape[0] / hidden,
        text_dim=text_dim,
        freq_dim=freq_dim,
    )


def load_reference_state(
    path_or_state: str | os.PathLike[str] | dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], str]:
    if isinstance(path_or_state, dict):
        return path_or_state, "state dict"
    path = Path(path_or_state)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file (expected the released dit.pt)")
    # mmap keeps a 21 GB checkpoint out of RAM until each tensor is used.
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, found {type(state).__name__}")
    return state, str(path)


def _materialise(
    model: nn.Module, state: dict[str, torch.Tensor], source: str, device, dtype
) -> nn.Module:
    if dtype is not None:
        state = {k: v.to(dtype) for k, v in state.items()}
    load_into(model, state, source)
    return model.to(device)


class PretrainedMixin:
    """save_pretrained / from_pretrained / from_reference for MUGDiT."""

    config: DiTConfig
    MODEL_TYPE = "mugv-dit"

    def save_pretrained(
        self, directory: str | os.PathLike[str], max_shard_bytes: int = DEFAULT_SHARD_BYTES
    ) -> Path:
        config = {"model_type": self.MODEL_TYPE, "mugv_dit_version": __version__}
        config |= self.config.model_dump(mode="json")
        return write_pretrained(directory, self.state_dict(), config, max_shard_bytes)  # type: ignore[attr-defined]

    @classmethod
    def from_pretrained(
        cls,
        directory: str | os.PathLike[str],
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
    ):
        raw, state = read_pretrained(directory)
        if raw.pop("model_type", None) != cls.MODEL_TYPE:
            raise ValueError(f"{directory}: config.json is not a {cls.MODEL_TYPE} config")
        raw.pop("mugv_dit_version", None)
        with torch.device("meta"):
            model = cls(DiTConfig(**raw))
        return _materialise(model, state, str(directory), device, dtype)

    @classmethod
    def from_reference(
        cls,
        path_or_state: str | os.PathLike[str] | dict[str, torch.Tensor],
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
    ):
        """Load the released MUG-V `dit.pt` (or its state dict); the architecture comes from shapes."""
        state, source = load_reference_state(path_or_state)
        with torch.device("meta"):
            model = cls(infer_reference_config(state, source))
        return _materialise(model, state, source, device, dtype)
