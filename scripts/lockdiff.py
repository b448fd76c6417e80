"""Says which packages two uv.lock files pin differently: `python3 scripts/lockdiff.py OLD NEW`.

One line a change (`name  old -> new`, `+ name  new`, `- name  old`); a package the lock pins at two
releases (one per range of Python versions) shows both. Exit status 0 whether or not anything changed.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def pins(path: Path) -> dict[str, str]:
    """Package name -> its locked release(s), leaving out the project itself (it has no registry source)."""
    lock = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    found: dict[str, set[str]] = {}
    for package in lock.get("package", []):
        if "registry" not in package.get("source", {}):
            continue
        found.setdefault(package["name"], set()).add(package["version"])
    return {name: " + ".join(sorted(versions)) for name, versions in found.items()}


def changes(old: dict[str, str], new: dict[str, str]) -> list[str]:
    lines = []
    for name in sorted(old.keys() | new.keys()):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        if before is None:
            lines.append(f"+ {name}  {after}")
        elif after is None:
            lines.append(f"- {name}  {before}")
        else:
            lines.append(f"  {name}  {before} -> {after}")
    return lines


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: lockdiff.py OLD_LOCK NEW_LOCK", file=sys.stderr)
        return 2
    lines = changes(pins(Path(argv[0])), pins(Path(argv[1])))
    print("\n".join(lines) if lines else "  (no package changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
