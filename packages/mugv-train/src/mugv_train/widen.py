"""Width expansion of MUG-DiT: a d-wide model becomes e·d wide and computes the same function.

    mugv-train widen --from runs/2b/checkpoints/step-000200000 --out runs/10b-init --noise-snr 40

This is how MUG-V grew its 2B proxy (1728 wide, 24 heads) into the 10B (3456, 48 heads).
The invariant (derivation in docs/widen.md): the wide residual stream is the narrow one tiled
e times, h' = [h, h, ..., h]. Each tensor is mapped so that the invariant holds layer by layer:

* a Linear reading the hidden stream repeats its input columns e times and divides them by e
  (W' h' = sum_j W h / e = W h); one writing the hidden stream, or k hidden-wide chunks of it
  (qkv k = 3, cross-attention kv k = 2, adaLN k = 6), repeats each chunk's rows e times;
* per-channel vectors (biases, start/end tokens, affine LayerNorm, modulation tables) repeat;
* LayerNorm of h' has the mean and variance of LayerNorm of h: norms need no change;
* head_dim stays 72, so a chunk of n heads tiled e times is e·n heads whose copies attend exactly
  like their originals; QK-RMSNorm (over head_dim) and RoPE are unchanged.

Copies get identical gradients, so training would keep them identical: optional Gaussian noise
at a signal-to-noise ratio (dB, per tensor) breaks the symmetry at a small cost in fidelity.
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path

import torch
from tqdm import tqdm

from mugv_dit import DiTConfig, MUGDiT
from mugv_train.checkpoint import META, read_model_state

log = logging.getLogger(__name__)

# Linear/conv layers: (output chunks tiled e times or None if the output keeps its width,
# whether the input is the hidden stream). Block indices are written as "*".
_LINEARS: dict[str, tuple[int | None, bool]] = {
    "x_embedder.proj": (1, False),
    "t_embedder.mlp.0": (1, False),
    "t_embedder.mlp.2": (1, True),
    "fps_embedder.mlp.0": (1, False),
    "fps_embedder.mlp.2": (1, True),
    "t_block.1": (6, True),
    "y_embedder.y_proj.fc1": (1, False),
    "y_embedder.y_proj.fc2": (1, True),
    "blocks.*.attn.qkv": (3, True),
    "blocks.*.attn.proj": (1, True),
    "blocks.*.cross_attn.q_linear": (1, True),
    "blocks.*.cross_attn.kv_linear": (2, True),
    "blocks.*.cross_attn.proj": (1, True),
    "blocks.*.mlp.fc1": (1, True),
    "blocks.*.mlp.fc2": (1, True),
    "final_layer.linear": (None, True),
}
# Per-channel tensors whose last dim is the hidden width: repeated e times along it.
_VECTORS = frozenset(
    {
        "start_token",
        "end_token",
        "blocks.*.scale_shift_table",
        "blocks.*.cross_attn_norm.weight",
        "blocks.*.cross_attn_norm.bias",
        "final_layer.scale_shift_table",
    }
)
# QK-RMSNorm weights act per head_dim, which widening keeps.
_KEPT = frozenset(
    f"blocks.*.{attn}.{qk}_norm.weight" for attn in ("attn", "cross_attn") for qk in ("q", "k")
)


def _pattern(key: str) -> str:
    return re.sub(r"^blocks\.\d+\.", "blocks.*.", key)


def _tile_rows(t: torch.Tensor, chunks: int, e: int) -> torch.Tensor:
    """[chunks*n, ...] -> [chunks*e*n, ...]: each chunk of n rows repeated e times in place."""
    stacked = t.unflatten(0, (chunks, -1))
    return stacked.repeat(1, e, *[1] * (t.ndim - 1)).flatten(0, 1)


def _widen_tensor(key: str, t: torch.Tensor, e: int) -> torch.Tensor:
    pattern = _pattern(key)
    if pattern in _KEPT:
        return t.clone()
    if pattern in _VECTORS:
        return t.repeat(*[1] * (t.ndim - 1), e)
    layer, _, kind = pattern.rpartition(".")
    if layer not in _LINEARS:
        raise ValueError(
            f"widen: no rule for parameter {key!r}; the model has a parameter this module does "
            "not know, so add its rule to mugv_train/widen.py"
        )
    chunks, hidden_in = _LINEARS[layer]
    out = t if chunks is None else _tile_rows(t, chunks, e)
    if kind == "weight" and hidden_in:  # [out, in, *kernel]: columns read the tiled stream
        out = out.repeat(1, e, *[1] * (t.ndim - 2)) / e
    return out.clone() if out is t else out


def _check_shapes(
    expected: dict[str, torch.Size], state: dict[str, torch.Tensor], what: str
) -> None:
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    shapes = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(expected[k])})"
        for k in expected.keys() & state.keys()
        if state[k].shape != expected[k]
    ]
    problems = [
        f"{title}: {', '.join(sorted(items)[:5])}{' ...' if len(items) > 5 else ''}"
        for title, items in (("missing", missing), ("unexpected", unexpected), ("shape", shapes))
        if items
    ]
    if problems:
        raise ValueError(f"{what}: " + "; ".join(problems))


def _expected_shapes(config: DiTConfig) -> dict[str, torch.Size]:
    with torch.device("meta"):
        return {k: v.shape for k, v in MUGDiT(config).state_dict().items()}


def _add_noise(t: torch.Tensor, snr_db: float, generator: torch.Generator | None) -> torch.Tensor:
    """t + N(0, σ²) with σ = rms(t)·10^(-snr/20): the noise power is snr dB below the signal's."""
    tf = t.float()
    sigma = tf.pow(2).mean().sqrt() * 10 ** (-snr_db / 20)
    device = generator.device if generator is not None else t.device
    noise = torch.randn(t.shape, generator=generator, device=device).to(t.device)
    return (tf + sigma * noise).to(t.dtype)


def widen_state_dict(
    state: dict[str, torch.Tensor],
    config: DiTConfig,
    factor: int,
    noise_snr_db: float | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> tuple[DiTConfig, dict[str, torch.Tensor]]:
    """Widen a MUG-DiT state dict by `factor`: hidden size and heads ×factor, head_dim kept.

    state: the narrow model's tensors (any dtype/device), matching `config` exactly.
    noise_snr_db: if given, every widened tensor gets Gaussian noise this many dB below its own
    power (40 dB: noise rms 1% of the tensor's rms); tensors drawn in key order from `generator`.
    Returns (wide config, wide state dict in the input dtype).
    """
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 2:
        raise ValueError(
            f"widen factor must be an integer >= 2, got {factor!r} (width and heads are "
            "multiplied by it; head_dim stays the same)"
        )
    expected = _expected_shapes(config)
    _check_shapes(
        expected,
        state,
        f"the state dict does not match its config (hidden {config.hidden_size}, "
        f"{config.num_heads} heads, depth {config.depth})",
    )
    fields = config.model_dump()
    fields["hidden_size"] *= factor
    fields["num_heads"] *= factor
    wide_config = DiTConfig(**fields)
    wide: dict[str, torch.Tensor] = {}
    for key in tqdm(expected, desc="widen", unit="tensor", disable=not progress):
        t = _widen_tensor(key, state[key], factor)
        if noise_snr_db is not None and t.shape != state[key].shape:
            t = _add_noise(t, noise_snr_db, generator)
        wide[key] = t
    _check_shapes(_expected_shapes(wide_config), wide, "widen produced wrong shapes (a bug)")
    return wide_config, wide


def _assemble(config: DiTConfig, state: dict[str, torch.Tensor]) -> MUGDiT:
    """A MUGDiT built on the meta device that takes the tensors' storage (no copy)."""
    with torch.device("meta"):
        model = MUGDiT(config)
    model.load_state_dict(state, strict=True, assign=True)
    return model


def widen_model(
    model: MUGDiT,
    factor: int,
    noise_snr_db: float | None = None,
    generator: torch.Generator | None = None,
) -> MUGDiT:
    """A new MUGDiT `factor` times wider than `model` computing the same function (without noise)."""
    config, state = widen_state_dict(
        model.state_dict(), model.config, factor, noise_snr_db, generator
    )
    return _assemble(config, state).train(model.training)


def read_source(path: Path, weights: str = "model") -> tuple[DiTConfig, dict[str, torch.Tensor]]:
    """(config, state dict) of a training checkpoint (DCP, `weights` = model | ema), a release
    folder (`save_pretrained`) or the released `dit.pt`."""
    if (path / META).is_file():
        return read_model_state(path, weights=weights)
    if path.is_dir():
        model = MUGDiT.from_pretrained(path)
    elif path.is_file():
        model = MUGDiT.from_reference(path)
    else:
        raise FileNotFoundError(
            f"{path}: not found; --from takes a training checkpoint (checkpoints/step-N), "
            "a release folder or the released dit.pt"
        )
    return model.config, model.state_dict()


def _billions(state: dict[str, torch.Tensor]) -> float:
    return sum(t.numel() for t in state.values()) / 1e9


def run(args: argparse.Namespace) -> int:
    """`mugv-train widen`: read, widen, write a release folder. Errors propagate to the CLI,
    which prints them as one line."""
    if args.out.exists():
        raise ValueError(f"--out {args.out}: already exists; choose a new folder")
    config, state = read_source(args.source, args.weights)
    generator = torch.Generator().manual_seed(args.seed)
    wide_config, wide = widen_state_dict(
        state, config, args.factor, args.noise_snr, generator, progress=True
    )
    if args.noise_snr is None:
        log.warning("no --noise-snr: the copies get identical gradients and stay identical")
    _assemble(wide_config, wide).save_pretrained(args.out)
    log.info(
        "widened %s (%d wide, %d heads, %.3fB parameters) -> %s (%d wide, %d heads, %.3fB)",
        args.source,
        config.hidden_size,
        config.num_heads,
        _billions(state),
        args.out,
        wide_config.hidden_size,
        wide_config.num_heads,
        _billions(wide),
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `widen` subcommand; its handler is `args.func(args) -> exit code`."""
    p = subparsers.add_parser(
        "widen",
        help="widen a MUG-DiT (e.g. 2B -> 10B) preserving its function",
        description=__doc__.splitlines()[0],
    )
    p.add_argument(
        "--from",
        dest="source",
        type=Path,
        required=True,
        help="training checkpoint (checkpoints/step-N), release folder, or the released dit.pt",
    )
    p.add_argument("--factor", type=int, default=2, help="width and head multiplier")
    p.add_argument("--out", type=Path, required=True, help="new release folder (must not exist)")
    p.add_argument(
        "--noise-snr",
        type=float,
        default=None,
        metavar="DB",
        help="symmetry-breaking noise this many dB below each widened tensor (e.g. 40)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the noise")
    p.add_argument(
        "--weights",
        choices=["model", "ema"],
        default="model",
        help="which weights of a training checkpoint to widen",
    )
    p.set_defaults(func=run)
