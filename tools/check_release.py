#!/usr/bin/env python3
"""Release metadata that must agree before any package or service is tagged (docs/releasing.md).

- every package's and service's CHANGELOG.md has a `## <version>` section for the version in its __about__.py;
- every dependency on a sibling mugv package carries a version range, and that range admits the
  sibling's current version (a bump of mugv-dit to 0.3.0 fails here until its dependents move).
Exits 1 with one line per problem.
"""

from __future__ import annotations

import re
import sys

from graph import names, project_dir, pyproject, services
from packaging.requirements import Requirement

_VERSION = re.compile(r'^__version__ = "([^"]+)"$', re.M)


def version(name: str) -> str:
    """The version hatchling reads for mugv-<name>."""
    path = pyproject(name)["tool"]["hatch"]["version"]["path"]
    return _VERSION.search((project_dir(name) / path).read_text()).group(1)


def changelog_versions(name: str) -> list[str]:
    """Versions with a `## 0.2.0 — ...` section in the project's CHANGELOG.md."""
    text = (project_dir(name) / "CHANGELOG.md").read_text()
    return re.findall(r"^## (\d+\.\d+\.\d+\S*)", text, re.M)


def rel(name: str) -> str:
    return f"{project_dir(name).parent.name}/mugv-{name}"


def problems() -> list[str]:
    versions = {name: version(name) for name in names() + services()}
    errors = []
    for name, current in versions.items():
        if current not in changelog_versions(name):
            errors.append(f"{rel(name)}/CHANGELOG.md: no '## {current}' section for the version in __about__.py")  # fmt: skip
        for dep in pyproject(name)["project"].get("dependencies", []):
            req = Requirement(dep)
            other = req.name.removeprefix("mugv-")
            if not req.name.startswith("mugv-"):
                continue
            where = f"{rel(name)}/pyproject.toml: {dep}"
            if not req.specifier:
                errors.append(f"{where}: give the range of {req.name} versions it works with")
            elif versions[other] not in req.specifier:
                errors.append(f"{where}: excludes the current {req.name} {versions[other]}")
    return errors


def main() -> int:
    errors = problems()
    print(
        "\n".join(errors)
        if errors
        else f"release metadata ok ({len(names())} packages, {len(services())} services)"
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
