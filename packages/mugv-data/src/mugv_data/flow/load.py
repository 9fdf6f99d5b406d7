"""Load RAFT weights from a local file: torchvision's published `raft_large` / `raft_small`
state dicts (`.pth`, read with `weights_only=True`) or the same tensors as `.safetensors`.

The variant is recognised from the tensors themselves, and the load is strict: every key and
shape of that variant must be there, nothing else. Nothing is ever downloaded.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from mugv_data.flow.raft import RAFT, VARIANTS, RAFTSpec


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a `.pth` or `.safetensors` file; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (RAFT weights are read from local files)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's message would suggest weights_only=False: never
        raise ValueError(
            f"{path} is not a readable checkpoint: not a torch.save file of plain tensors "
            "(pickled objects other than tensors are never loaded)"
        ) from None
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise ValueError(
            f"{path} is not a readable checkpoint ({type(e).__name__}: {first})"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} holds no state dict of tensors (a torchvision RAFT .pth?)")
    return state


def _expected(spec: RAFTSpec) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in RAFT(spec).state_dict().items()}


def _mismatch(state: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]]) -> list[str]:
    """What keeps `state` from loading strictly (BatchNorm's step counter may be absent)."""
    problems = [f"missing {k}" for k in expected if k not in state and "num_batches" not in k]
    problems += [f"unexpected {k}" for k in state if k not in expected]
    problems += [
        f"{k} is {tuple(v.shape)}, expected {expected[k]}"
        for k, v in state.items()
        if k in expected and tuple(v.shape) != expected[k]
    ]
    return problems


def load_raft(path: str | Path, device: str | torch.device = "cpu") -> RAFT:
    """A RAFT in eval mode with the weights of `path` (raft_large or raft_small layout)."""
    state = read_state_dict(path)
    if any(k.startswith(("module.fnet.", "fnet.")) for k in state):
        raise ValueError(
            f"{path} is in the original princeton-vl/RAFT layout; use torchvision's raft_large or "
            "raft_small weights (e.g. raft_large_C_T_SKHT_V2-ff5fadd5.pth)"
        )
    problems = {}
    for name, spec in VARIANTS.items():
        problems[name] = _mismatch(state, _expected(spec))
        if not problems[name]:
            model = RAFT(spec)
            # Every key and shape was checked above; only BatchNorm step counters (unused in
            # eval) may be absent, which a strict load would refuse for a versioned .pth.
            model.load_state_dict(state, strict=False)
            return model.eval().to(device)
    closest = min(problems, key=lambda n: len(problems[n]))
    listed = "; ".join(problems[closest][:3])
    raise ValueError(
        f"{path} is no torchvision RAFT state dict: against {closest}, {len(problems[closest])} "
        f"differences ({listed})"
    )
