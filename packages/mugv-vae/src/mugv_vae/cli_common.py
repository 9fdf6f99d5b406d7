"""Argparse pieces shared by the mugv command lines that may import mugv-vae (mugv-vae,
mugv-train, mugv-align, mugv-infer, mugv-serve): one-line usage errors, defaults in `--help`, a
`--device` that this machine has, one-line exception messages. mugv-data keeps its own copy of
the parser pieces: it imports no other mugv package.
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn


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


def device_arg(name: str) -> str:
    """`--device` type: a torch device this machine has (cuda without CUDA is a usage error)."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"{name!r} is not a torch device (cpu, cuda, cuda:1)") from None  # fmt: skip
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{name}: CUDA is not available here (torch {torch.__version__}); use --device cpu")  # fmt: skip
    return name


def one_line(err: BaseException) -> str:
    """An exception's message on one line (multi-line messages joined with '; ')."""
    lines = (line.strip() for line in str(err).splitlines())
    return "; ".join(line for line in lines if line) or type(err).__name__
