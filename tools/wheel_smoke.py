#!/usr/bin/env python3
"""Check one installed mugv wheel from inside its own fresh environment (run by `nox -s wheels`).

    python tools/wheel_smoke.py dit packages/mugv-dit/src/mugv_dit base
    python tools/wheel_smoke.py dit packages/mugv-dit/src/mugv_dit full
    python tools/wheel_smoke.py serve services/mugv-serve/src/mugv_serve base

`base` (only the wheel and its required dependencies installed): every source file is in the
wheel and no test or demo helper is, the public API (`__all__`) imports without any extra, every
console script answers `--help`, and a tiny call works (a preset builds, a checkpoint
round-trips, shipped configs load).
`full` (the non-test extras installed too): every module of the package imports, so a missing
dependency or an import of an undeclared sibling package fails here, not on a user's machine.
Exits 1 with one line per failure.
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import torch


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys(), "state dict keys differ after save/load"
    assert all(torch.equal(sa[k], sb[k]) for k in sa), "weights differ after save/load"


def _dit() -> None:
    from mugv_dit import DiTConfig, FlowSchedule, MUGDiT

    model = MUGDiT(DiTConfig.preset("debug"))
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        _same_weights(model, MUGDiT.from_pretrained(tmp))
    assert FlowSchedule().shift_ratio(720, 1280, latent_frames=14) > 1


def _vae() -> None:
    from mugv_vae import MUGVAE, VAEConfig

    model = MUGVAE(VAEConfig.preset("tiny"))
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        _same_weights(model, MUGVAE.from_pretrained(tmp))


def _data() -> None:
    from mugv_data import build_config
    from mugv_data.shards.latent import latent_frames

    assert [latent_frames(t) for t in (1, 9, 17, 121)] == [1, 2, 3, 16]
    cfg = build_config("default", ["input=in", "output=out", "sharpness.min=1"])
    assert cfg.sharpness.min == 1, cfg.sharpness


def _train() -> None:
    from mugv_train import load_config
    from mugv_train.config import preset_names

    assert preset_names(), "the wheel ships no mugv_train/configs/*.toml"
    for name in preset_names():
        load_config(name)


def _align() -> None:
    from mugv_align import load_align_config
    from mugv_align.config import preset_names

    assert preset_names(), "the wheel ships no mugv_align/configs/*.toml"
    for name in preset_names():
        load_align_config(name)


def _infer() -> None:
    from mugv_infer import resolve_size

    size = resolve_size("16:9", 5)  # height:width, as in the release
    assert (size.height, size.width, size.num_frames) == (1280, 720, 105), size


def _serve() -> None:
    from mugv_serve import ServeSettings, create_app

    with tempfile.TemporaryDirectory() as tmp:  # the app over a runner that is never called
        app = create_app(ServeSettings(workdir=Path(tmp)), lambda *_: Path(tmp))
        (page,) = [r for r in app.routes if getattr(r, "path", None) == "/"]
        assert "<video" in page.endpoint(), "the page (static/index.html) has no video player"


SMOKE: dict[str, Callable[[], None]] = {
    "dit": _dit,
    "vae": _vae,
    "data": _data,
    "train": _train,
    "align": _align,
    "infer": _infer,
    "serve": _serve,
}


HELPERS = {"testing", "demo", "conftest"}  # test and demo code stays out of library wheels


def shipped_files(name: str) -> set[str]:
    return {str(f) for f in metadata.files(f"mugv-{name}") or []}


def missing_files(name: str, src: Path) -> list[str]:
    """Source files of the package (caches aside) that the installed wheel does not hold."""
    shipped = shipped_files(name)
    found = (p for p in src.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return sorted(
        rel for p in found if (rel := p.relative_to(src.parent).as_posix()) not in shipped
    )


def base(name: str, src: Path) -> list[str]:
    errors = [f"{f}: in the source tree but not in the wheel" for f in missing_files(name, src)]
    helpers = sorted(f for f in shipped_files(name) if Path(f).stem in HELPERS)
    errors += [f"{f}: a test or demo helper in the library wheel" for f in helpers]
    module = importlib.import_module(f"mugv_{name}")
    errors += [
        f"mugv_{name}.{n}: in __all__ but missing" for n in module.__all__ if not hasattr(module, n)
    ]
    scripts = metadata.distribution(f"mugv-{name}").entry_points.select(group="console_scripts")
    for script in scripts:
        run = subprocess.run([Path(sys.executable).parent / script.name, "--help"], capture_output=True, text=True)  # fmt: skip
        if run.returncode != 0 or "usage:" not in run.stdout:
            errors.append(f"{script.name} --help failed: {run.stderr.strip()[-300:]}")
    try:
        SMOKE[name]()
    except Exception as err:  # report every failure, not just the first
        errors.append(f"mugv-{name} smoke call: {type(err).__name__}: {err}")
    return errors


def full(name: str) -> list[str]:
    errors = []
    root = importlib.import_module(f"mugv_{name}")
    for info in pkgutil.walk_packages(root.__path__, f"mugv_{name}."):
        if info.name.endswith(".__main__"):  # runs the CLI; `--help` covers it
            continue
        try:
            importlib.import_module(info.name)
        except ImportError as err:
            errors.append(f"{info.name}: {err}")
    return errors


def main(argv: list[str]) -> int:
    name, src, mode = argv[0], Path(argv[1]), argv[2]
    errors = base(name, src) if mode == "base" else full(name)
    for line in errors:
        print(f"mugv-{name} ({mode}): {line}")
    if not errors:
        print(f"mugv-{name} ({mode}): ok")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
