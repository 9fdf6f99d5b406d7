"""The mugv package graph, read from the pyprojects (the only place it is written).

`local_deps()` maps each package's short name (`dit`) to the mugv packages its pyproject declares;
`closure(name)` adds their own dependencies. The noxfile and tools/check_layers.py use these.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, packaged as tomli
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ROOT / "packages"
# Applications on top of the packages (mugv-serve); no package depends on one.
SERVICES = ROOT / "services"
_LOCAL = re.compile(r"^mugv-(\w+)")


def project_dir(name: str) -> Path:
    """packages/mugv-<name>, or services/mugv-<name> for a service."""
    package = PACKAGES / f"mugv-{name}"
    return package if package.is_dir() else SERVICES / f"mugv-{name}"


def pyproject(name: str) -> dict:
    """The parsed pyproject.toml of a package or service."""
    return tomllib.loads((project_dir(name) / "pyproject.toml").read_text())


def services() -> list[str]:
    """Short names of every service under services/, sorted."""
    return sorted(
        p.parent.name.removeprefix("mugv-") for p in SERVICES.glob("mugv-*/pyproject.toml")
    )


def names() -> list[str]:
    """Short names of every package under packages/, sorted."""
    return sorted(
        p.parent.name.removeprefix("mugv-") for p in PACKAGES.glob("mugv-*/pyproject.toml")
    )


def local_deps() -> dict[str, list[str]]:
    """Short name -> the mugv packages its `[project] dependencies` declare, in declared order."""
    graph = {}
    for name in names():
        deps = pyproject(name)["project"].get("dependencies", [])
        graph[name] = [m.group(1) for d in deps if (m := _LOCAL.match(d))]
    return graph


def closure(name: str, graph: dict[str, list[str]] | None = None) -> list[str]:
    """Every mugv package `name` needs installed next to it (transitively), without `name`."""
    graph = graph if graph is not None else local_deps()
    seen: list[str] = []
    stack = list(graph[name])
    while stack:
        dep = stack.pop(0)
        if dep not in seen:
            seen.append(dep)
            stack.extend(graph[dep])
    return seen
