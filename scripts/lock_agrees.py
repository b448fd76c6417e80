"""Whether uv.lock was made from the dependencies pyproject.toml declares, read from both files alone.

uv records the project's own requirements in the lock (`[package.metadata] requires-dist`); a
dependency added, taken out or given another range in pyproject.toml without `scripts/lock` shows
as a difference here, with no resolver and no network. Exit 0: they agree (uv then checks the rest);
1: they disagree (printed); 2: a file could not be read as expected (uv decides instead).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)")
_EXTRA = re.compile(r"""extra\s*==\s*['"]([^'"]+)['"]""")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _specifier(text: str) -> str:
    return ",".join(sorted(part.strip().replace(" ", "") for part in text.split(",") if part.strip()))


def declared(pyproject: dict[str, object]) -> set[tuple[str, str, str]]:
    """(group, name, specifier) for every requirement; group "" for the main ones, else the extra."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    groups: dict[str, list[str]] = {"": list(project.get("dependencies", []))}
    groups.update({extra: list(reqs) for extra, reqs in project.get("optional-dependencies", {}).items()})
    found = set()
    for group, requirements in groups.items():
        for requirement in requirements:
            match = _NAME.fullmatch(requirement.split(";", 1)[0])
            if match is None:
                raise ValueError(f"cannot read the requirement {requirement!r}")
            found.add((_normal(group), _normal(match.group(1)), _specifier(match.group(3))))
    return found


def locked(lock: dict[str, object], project_name: str) -> set[tuple[str, str, str]]:
    packages = lock["package"]
    assert isinstance(packages, list)
    root = next(p for p in packages if _normal(p["name"]) == _normal(project_name))
    found = set()
    for entry in root["metadata"]["requires-dist"]:
        extra = _EXTRA.search(entry.get("marker", ""))
        found.add(
            (_normal(extra.group(1)) if extra else "", _normal(entry["name"]), _specifier(entry.get("specifier", "")))
        )
    return found


def main(root: Path) -> int:
    try:
        pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
        lock = tomllib.loads((root / "uv.lock").read_text(encoding="utf-8"))
        want = declared(pyproject)
        have = locked(lock, pyproject["project"]["name"])
    except (KeyError, StopIteration, ValueError, AssertionError, tomllib.TOMLDecodeError) as error:
        print(f"could not compare the files ({error!r}); uv decides", file=sys.stderr)
        return 2
    if want == have:
        return 0
    for group, name, spec in sorted(want - have):
        print(f"in pyproject.toml, not in uv.lock: {name}{spec}" + (f" (extra {group})" if group else ""))
    for group, name, spec in sorted(have - want):
        print(f"in uv.lock, not in pyproject.toml: {name}{spec}" + (f" (extra {group})" if group else ""))
    return 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()))
