#!/usr/bin/env python3
"""Enforce the package dependency direction of STYLE.md.

Each package may import only the mugv packages listed in ALLOWED, and must declare exactly those
it imports in its pyproject dependencies. Exits 1 with one line per violation.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
ALLOWED: dict[str, set[str]] = {
    "data": set(),
    "vae": set(),
    "dit": set(),
    "train": {"data", "vae", "dit"},
    "align": {"train", "data", "vae", "dit"},
    "infer": {"dit", "vae"},
}
_MUGV = re.compile(r"^mugv_(\w+?)(?:\.|$)")


def imported_packages(path: Path) -> dict[str, int]:
    """mugv package name -> first line importing it."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            if m := _MUGV.match(name):
                found.setdefault(m.group(1), node.lineno)
    return found


def declared(pkg: str) -> set[str]:
    project = tomllib.loads((ROOT / "packages" / f"mugv-{pkg}" / "pyproject.toml").read_text())
    deps = project["project"].get("dependencies", [])
    return {m.group(1) for d in deps if (m := re.match(r"^mugv-(\w+)", d))}


def main() -> int:
    errors = []
    for pkg, allowed in ALLOWED.items():
        src = ROOT / "packages" / f"mugv-{pkg}" / "src"
        used: set[str] = set()
        for path in sorted(src.rglob("*.py")):
            for other, line in imported_packages(path).items():
                used.add(other)
                if other != pkg and other not in allowed:
                    rel = path.relative_to(ROOT)
                    errors.append(f"{rel}:{line}: mugv-{pkg} may not import mugv-{other}")
        undeclared = used - {pkg} - declared(pkg)
        for other in sorted(undeclared):
            errors.append(
                f"packages/mugv-{pkg}/pyproject.toml: imports mugv-{other} but does not depend on it"
            )
        for other in sorted(declared(pkg) - allowed):
            errors.append(
                f"packages/mugv-{pkg}/pyproject.toml: depends on mugv-{other}, which the layering forbids"
            )
    print("\n".join(errors) if errors else f"import layers ok ({len(ALLOWED)} packages)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
