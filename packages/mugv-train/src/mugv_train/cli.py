"""`mugv-train` (also `python -m mugv_train`): train, config, precompute, export, posthoc-ema, plot,
widen, and VAE training (vae, vae-export).

    mugv-train config debug --set optim.lr=1e-4            # print the resolved config
    torchrun --nproc-per-node 8 -m mugv_train train --config 2b-360p --set data.shards=/data/lat
    mugv-train export runs/x/checkpoints/step-000010000 --weights ema --out release/
    mugv-train posthoc-ema runs/x --profile power --sigma-rel 0.05 --out release-phema/
    mugv-train precompute --raw raw/ --out latents/ --vae vae.pt --text-encoder t5-v1_1-xxl/
    mugv-train plot runs/x
    mugv-train widen --from release-2b/ --factor 2 --noise-snr 40 --out release-10b-init/
    mugv-train vae --config vae-tiny --set data.shards=raw/     # docs/vae-training.md

Expected failures (a bad flag or override, a missing or damaged file) print one line and exit 2;
a run stopped by non-finite losses exits 3; a preempted (SIGTERM) run saves and exits 0.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

from mugv_train.config import ConfigError, TrainConfig, dump_config, load_config
from mugv_train.vae.cli import register as register_vae
from mugv_train.vae.config import VAETrainConfig
from mugv_train.widen import register as register_widen
from mugv_vae.cli_common import Parser, device_arg, one_line

log = logging.getLogger("mugv_train")


def add_config_args(p: argparse.ArgumentParser, presets: list[str], example: str, positional: bool = False) -> None:  # fmt: skip
    """`--config SOURCE` (or positional) and repeatable `--set dotted.key=value` overrides."""
    help_ = f"TOML/JSON file or shipped preset: {', '.join(presets)}"
    if positional:
        p.add_argument("config", help=help_)
    else:
        p.add_argument("--config", required=True, help=help_)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help=f"dotted override with a TOML value, repeatable: --set {example} (list items by index: --set stages.0.steps=50)")  # fmt: skip


def add_run_parser(
    sub: argparse._SubParsersAction,
    name: str,
    help_: str,
    load: Callable[[str, list[str]], Any],
    run: Callable[..., Any],
    presets: list[str],
    example: str,
) -> argparse.ArgumentParser:
    """A training subcommand (`--config`, `--set`, `--resume`, `--device`) whose handler loads the
    config with `load(source, overrides)`, runs `run(cfg, resume=..., device=...) -> RunResult`
    and logs how the run ended; `run_command` maps a non-finite stop to exit 3."""
    p = sub.add_parser(name, help=help_)
    add_config_args(p, presets, example)
    p.add_argument("--resume", default="auto", help="auto (newest valid checkpoint), none, or a checkpoint folder")  # fmt: skip
    p.add_argument("--device", type=device_arg, choices=["cuda", "cpu"], default=None, help="default: cuda if available")  # fmt: skip
    p.set_defaults(func=functools.partial(_run_training, load, run))
    return p


def _run_training(load: Callable[[str, list[str]], Any], run: Callable[..., Any], args: argparse.Namespace) -> int:  # fmt: skip
    result = run(load(args.config, args.overrides), resume=args.resume, device=args.device)
    log.info("%s at step %d (%d non-finite and %d empty steps skipped)", result.status, result.step, result.nonfinite_steps, result.empty_steps)  # fmt: skip
    return 0


def _train(cfg: TrainConfig, **kwargs: Any) -> Any:
    from mugv_train.train import train  # torch and the engine: not needed for --help

    return train(cfg, **kwargs)


def cmd_config(args: argparse.Namespace) -> int:
    print(dump_config(load_config(args.config, args.overrides)))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from mugv_train.export import export

    out = export(args.checkpoint, args.out, args.weights, args.dtype)
    print(f"wrote {out} ({args.weights} weights, {args.dtype})")
    return 0


def cmd_posthoc(args: argparse.Namespace) -> int:
    from mugv_train.posthoc import posthoc_ema

    out, weights = posthoc_ema(args.run, args.out, args.profile, args.decay, args.sigma_rel)
    print(f"wrote {out}: {len(weights)} snapshots, weights {[round(w, 4) for w in weights]}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from mugv_train.plot import plot_run

    print(f"wrote {plot_run(args.run, args.out)}")
    return 0


def cmd_precompute(args: argparse.Namespace) -> int:
    import torch

    from mugv_train.precompute import Options, load_encoders, precompute

    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16}
    size = None
    if args.size:
        w, _, h = args.size.partition("x")
        if not (w.isdigit() and h.isdigit()) or int(w) % 16 or int(h) % 16:
            raise ConfigError(f"--size {args.size}: expected WIDTHxHEIGHT, multiples of 16")
        size = (int(w), int(h))
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    enc = load_encoders(args.vae, args.text_encoder, device, dtypes[args.dtype], dtypes[args.text_dtype], args.vae_id, args.text_encoder_id)  # fmt: skip
    report = precompute(args.raw, args.out, enc, Options(size, args.max_frames, args.images_per_clip, args.seed))  # fmt: skip
    print(f"{report.written} samples written, {len(report.failed)} failed, "
          f"{report.shards_done} shards done, {report.shards_skipped} already done")  # fmt: skip
    return 0


def add_export_parser(sub: argparse._SubParsersAction) -> None:
    """`export CHECKPOINT --out DIR`: shared with mugv-align, whose checkpoints are the same."""
    p = sub.add_parser("export", help="checkpoint -> safetensors release folder")  # fmt: skip
    p.add_argument("checkpoint", help="a checkpoints/step-N folder")
    p.add_argument("--weights", choices=["ema", "model"], default="ema", help="which weights to export")  # fmt: skip
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32", help="dtype of the saved weights")  # fmt: skip
    p.add_argument("--out", required=True, help="release folder to write")
    p.set_defaults(func=cmd_export)


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    """Parse, set up logging, run `args.func(args) -> exit code`. Expected failures (a bad
    config, override or value, a missing or damaged file) print one line and exit 2; a run
    stopped by non-finite losses exits 3."""
    args = parser.parse_args(argv)
    # force: an entry point owns logging (and a second in-process call must not keep a closed stream)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s: %(message)s", force=True)  # fmt: skip
    from mugv_train.checkpoint import CheckpointError
    from mugv_train.run import NonFiniteError

    try:
        return args.func(args)
    except NonFiniteError as e:
        print(f"{parser.prog} {args.command}: {one_line(e)}", file=sys.stderr)
        return 3
    except (ConfigError, CheckpointError, OSError, ValueError) as e:
        print(f"{parser.prog} {args.command}: {one_line(e)}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    presets = TrainConfig.preset_names()
    epilog = f"presets: {', '.join(presets)} (train, config); {', '.join(VAETrainConfig.preset_names())} (vae). Overrides: --set dotted.key=value, repeatable."  # fmt: skip
    parser = Parser(prog="mugv-train", description=__doc__, epilog=epilog)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    add_run_parser(sub, "train", "train MUG-DiT (one process or under torchrun)", load_config, _train, presets, "optim.lr=1e-4")  # fmt: skip

    p = sub.add_parser("config", help="print the resolved config")
    add_config_args(p, presets, "optim.lr=1e-4", positional=True)
    p.set_defaults(func=cmd_config)

    add_export_parser(sub)

    p = sub.add_parser("posthoc-ema", help="average saved snapshots with a chosen EMA profile")  # fmt: skip
    p.add_argument("run", help="run folder (with snapshots/)")
    p.add_argument("--profile", choices=["exponential", "power"], default="exponential", help="EMA profile")  # fmt: skip
    p.add_argument("--decay", type=float, default=0.9, help="exponential: weight ratio between consecutive snapshots")  # fmt: skip
    p.add_argument("--sigma-rel", type=float, default=0.05, help="power: EDM2 relative width")
    p.add_argument("--out", required=True, help="release folder to write")
    p.set_defaults(func=cmd_posthoc)

    p = sub.add_parser("plot", help="loss curve PNG of a run")
    p.add_argument("run", help="run folder (with metrics.jsonl)")
    p.add_argument("--out", default=None, help="default: RUN/loss.png")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("precompute", help="raw shards -> latent shards (VAE + text encoder)")  # fmt: skip
    p.add_argument("--raw", required=True, help="raw shard folder or glob")
    p.add_argument("--out", required=True, help="folder for the latent shards")
    p.add_argument("--vae", required=True, help="mugv-vae release folder or the released vae.pt")
    p.add_argument("--text-encoder", required=True, help="local T5 folder (tokenizer + weights)")
    p.add_argument("--vae-id", default=None, help="recorded in the shards; default: the file/folder name")  # fmt: skip
    p.add_argument("--text-encoder-id", default=None, help="recorded in the shards; default: the folder name")  # fmt: skip
    p.add_argument("--size", default=None, help="WIDTHxHEIGHT (multiples of 16) to resize+crop to; default: crop to multiples of 16")  # fmt: skip
    p.add_argument("--max-frames", type=int, default=None, help="cut longer clips; default: keep all frames")  # fmt: skip
    p.add_argument("--images-per-clip", type=int, default=0, help="extra text-to-image samples per clip")  # fmt: skip
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32", help="VAE dtype")
    p.add_argument("--text-dtype", choices=["float32", "bfloat16"], default="bfloat16", help="T5 dtype (MUG-V's data preparation used bf16)")  # fmt: skip
    p.add_argument("--device", type=device_arg, default=None, help="default: cuda if available")
    p.add_argument("--seed", type=int, default=0, help="seed of the VAE posterior sampling")
    p.set_defaults(func=cmd_precompute)

    register_widen(sub)
    register_vae(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
