"""`mugv-data` (also `python -m mugv_data`): curate videos into raw shards, inspect and validate.

    mugv-data curate --input videos/ --output out/ --preset default --workers 4 --set sharpness.min=150
    srun --array=0-99 mugv-data curate ...      # each array task curates its share (see dist.py)
    mugv-data inspect out/shards/raw-r00000-000000.tar
    mugv-data validate out/

Expected failures (a bad flag, override or value, a missing input, an output folder of another
run, an unreadable shard) print one line and exit 2. `curate` exits 1 when inputs are left
unfinished, `validate` when it finds a problem; Ctrl-C or SIGTERM exits 128 + the signal.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from typing import Any, NoReturn

from mugv_data.config import PRESETS, CurateConfig, build_config

# HelpFormatter and Parser mirror mugv_vae.cli_common on purpose: mugv-data sits at the bottom of
# the package graph and may import no other mugv package (tools/check_layers.py).


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the description's example lines as written and shows every option's default
    (not for required options, flags, or options whose unset value is None or empty)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        unset = action.default is None or action.default is False or action.default in ([], "")
        if action.required or unset:
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """Usage errors are one line and exit 2; subcommand parsers inherit this and `HelpFormatter`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    epilog = f"curate presets: {', '.join(PRESETS)}. Overrides: --set dotted.key=value (e.g. sharpness.min=150), repeatable."  # fmt: skip
    parser = Parser(prog="mugv-data", description=__doc__, epilog=epilog)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="cmd", required=True)
    cur = sub.add_parser("curate", help="videos -> raw shards + rejects + manifest")
    cur.add_argument("--input", required=True, help="folder, .txt list, .csv or .jsonl")
    cur.add_argument("--output", required=True, help="output folder (the same one resumes)")
    cur.add_argument("--preset", default="default", choices=list(PRESETS), help="named CurateConfig preset")  # fmt: skip
    cur.add_argument("--workers", type=int, default=1, help="processes on this machine")
    cur.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="dotted override of a CurateConfig field, repeatable, value parsed as JSON when it parses: --set sharpness.min=150 --set caption.model_path=/models/qwen2-vl-7b")  # fmt: skip
    cur.set_defaults(func=_curate)
    ins = sub.add_parser("inspect", help="print a shard's schema and first samples")
    ins.add_argument("shard", help="a raw or latent shard (.tar)")
    ins.add_argument("-n", type=int, default=3, help="samples to print")
    ins.set_defaults(func=_inspect)
    val = sub.add_parser("validate", help="validate every shard (and the accounting) in a folder")
    val.add_argument("directory", help="a curation output or latent shard folder")
    val.set_defaults(func=_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")  # fmt: skip
    try:
        return args.func(args)
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM (CurationInterrupted): no traceback
        signum = getattr(e, "signum", signal.SIGINT)
        print(
            f"mugv-data {args.cmd}: stopped by {signal.Signals(signum).name}; finished inputs are "
            "journaled, run the same command again to resume",
            file=sys.stderr,
        )
        return 128 + signum
    except (ValueError, OSError) as e:  # bad config, input, output folder or shard
        message = "; ".join(line.strip() for line in str(e).splitlines() if line.strip())
        print(f"mugv-data {args.cmd}: {message or type(e).__name__}", file=sys.stderr)
        return 2


def _curate(args: argparse.Namespace) -> int:
    from mugv_data.curate import curate

    fixed = [f"input={args.input}", f"output={args.output}", f"workers={args.workers}"]
    cfg = build_config(args.preset, [*fixed, *args.overrides])
    _check_devices(cfg)
    manifest = curate(cfg)
    print(json.dumps({k: manifest[k] for k in ("inputs", "clips_accepted", "rejects", "reject_reasons")}))  # fmt: skip
    return 0 if manifest["inputs_done"] == manifest["inputs"] else 1


def _check_devices(cfg: CurateConfig) -> None:
    """Model stages asked to run on a device this machine lacks fail before any input is read."""
    import torch

    for field, name in (("aesthetic.device", cfg.aesthetic.device), ("caption.device", cfg.caption.device), ("motion.device", cfg.motion.device)):  # fmt: skip
        try:
            device = torch.device(name)
        except RuntimeError:
            raise ValueError(f"{field}={name!r} is not a torch device (cpu, cuda, cuda:1)") from None  # fmt: skip
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"{field}={name}: CUDA is not available here; set it to cpu")


def _inspect(args: argparse.Namespace) -> int:
    from mugv_data.validate import inspect_shard

    print(json.dumps(inspect_shard(args.shard, args.n), indent=2, default=str))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from mugv_data.validate import validate_dir

    summary, problems = validate_dir(args.directory)
    print(json.dumps(summary, indent=2))
    for p in problems:
        print(f"PROBLEM: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
