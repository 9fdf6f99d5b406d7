"""`mugv-train vae` (train the video VAE) and `mugv-train vae-export` (checkpoint -> release).

mugv-train vae --config vae-tiny --set data.shards=raw/ --set data.heldout=raw-heldout/
torchrun --nproc-per-node 8 -m mugv_train vae --config vae-mugv --set data.shards=/data/raw
mugv-train vae-export runs/vae/checkpoints/step-000002000 --out releases/vae
"""

from __future__ import annotations

import argparse
from typing import Any

from mugv_train.vae.config import VAETrainConfig, load_vae_config


def _train(cfg: VAETrainConfig, **kwargs: Any) -> Any:
    from mugv_train.vae.loop import train_vae  # torch and the engine: not needed for --help

    return train_vae(cfg, **kwargs)


def _export(args: argparse.Namespace) -> int:
    from mugv_train.vae.export import export_vae

    print(f"wrote {export_vae(args.checkpoint, args.out, args.dtype)}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `vae` and `vae-export` subcommands; handlers are `args.func(args) -> exit code`."""
    from mugv_train.cli import add_run_parser  # here: mugv_train.cli imports this module on load

    add_run_parser(subparsers, "vae", "train the video VAE (MUGVAE) on raw shards", load_vae_config, _train, VAETrainConfig.preset_names(), "optim.lr=1e-4")  # fmt: skip

    p = subparsers.add_parser("vae-export", help="VAE checkpoint -> mugv-vae release folder")
    p.add_argument("checkpoint", help="a checkpoints/step-N folder of a VAE run")
    p.add_argument("--out", required=True, help="release folder to write")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32", help="dtype of the saved weights")  # fmt: skip
    p.set_defaults(func=_export)
