"""`mugv-align` (also `python -m mugv_align`): sft, dpo, kto, rdpo, build-pairs, export.

    mugv-align build-pairs --latents latents/ --labels labels.jsonl --out pairs/
    mugv-align dpo --config debug --set data.shards=pairs/ --set model.init_from=release/
    torchrun --nproc-per-node 8 -m mugv_align kto --config my-kto.toml
    mugv-align export runs/align/checkpoints/step-000001000 --weights ema --out release-aligned/

The method subcommand sets `align.method`; everything else comes from the config (a TOML file or
a shipped preset) and `--set dotted.key=value` overrides. Expected failures (a bad flag, override
or labels line, a missing or damaged file) print one line and exit 2; a run stopped by non-finite
losses exits 3; a preempted (SIGTERM) run saves and exits 0.
"""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Any

from mugv_align.config import METHODS, AlignConfig, load_align_config
from mugv_train.cli import Parser, add_export_parser, add_run_parser, run_command


def _load(method: str, source: str, overrides: list[str]) -> AlignConfig:
    return load_align_config(source, [*overrides, f"align.method={method}"])


def _align(cfg: AlignConfig, **kwargs: Any) -> Any:
    from mugv_align.align import align  # torch and the engine: not needed for --help

    return align(cfg, **kwargs)


def cmd_build(args: argparse.Namespace) -> int:
    from mugv_align.build import build_pairs

    report = build_pairs(args.latents, args.labels, args.out, args.max_samples)
    print(f"{report.pairs} pairs and {report.labelled} labelled samples in {len(report.shards)} shards under {args.out}")  # fmt: skip
    return 0


def build_parser() -> argparse.ArgumentParser:
    epilog = f"presets: {', '.join(AlignConfig.preset_names())}. Overrides: --set dotted.key=value, repeatable."  # fmt: skip
    parser = Parser(prog="mugv-align", description=__doc__, epilog=epilog)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for method in METHODS:
        help_ = f"align with {method} (one process or under torchrun)"
        load = functools.partial(_load, method)
        add_run_parser(sub, method, help_, load, _align, AlignConfig.preset_names(), "align.beta=2000")  # fmt: skip

    p = sub.add_parser("build-pairs", help="latent shards + labels (JSONL) -> preference shards")
    p.add_argument("--latents", required=True, help="latent shards: folder or glob")
    p.add_argument("--labels", required=True, help="JSONL: pairs and/or pass/fail labels")
    p.add_argument("--out", required=True, help="folder for the preference shards")
    p.add_argument("--max-samples", type=int, default=1000, help="samples per shard")
    p.set_defaults(func=cmd_build)

    add_export_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
