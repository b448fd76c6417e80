"""The locks hold: the environment the tests run in is exactly uv.lock, hls.js is the version
package-lock.json names, and a pyproject.toml that disagrees with uv.lock stops the set-up with a
message that says what to do."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parent.parent
UV = ROOT / "scripts" / "uv"
# pip leaves its own tools out of `pip freeze`; the venv's copies of them are not Podium's.
PIP_TOOLS = {"pip", "setuptools", "wheel", "distribute"}


def uv(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    # --offline wherever uv could reach for the network: tests talk to loopback only.
    return subprocess.run([str(cwd / "scripts" / "uv"), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def locked_for_this_python() -> dict[str, str]:
    """name -> version of what uv.lock installs here with every extra (the project itself left out)."""
    exported = uv(
        "export", "--frozen", "--offline", "--all-extras", "--no-emit-project", "--no-hashes", "--no-header",
        "--no-annotate", "--quiet",
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    pins: dict[str, str] = {}
    for line in exported.stdout.splitlines():
        requirement, _, marker = line.partition(";")
        if not requirement.strip() or requirement.startswith("#"):
            continue
        if marker.strip() and not Marker(marker.strip()).evaluate():
            continue
        name, _, version = requirement.strip().partition("==")
        pins[canonicalize_name(name)] = version
    return {name: version for name, version in pins.items() if name not in PIP_TOOLS}


def frozen() -> dict[str, str]:
    """name -> version of what `pip freeze` lists in the environment running the tests, but Podium."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "freeze"], capture_output=True, text=True, timeout=120, check=True
    )
    installed: dict[str, str] = {}
    for line in listed.stdout.splitlines():
        # "-e <checkout>" and pip's comment above it: Podium itself, installed from the tree under test.
        if line.startswith(("#", "-e ")) or "==" not in line:
            continue
        name, _, version = line.partition("==")
        installed[canonicalize_name(name)] = version
    return installed


def test_the_environment_is_exactly_the_lock() -> None:
    locked, installed = locked_for_this_python(), frozen()
    assert len(locked) > 50, "uv export listed too little to be the lock"
    missing = {name: version for name, version in locked.items() if installed.get(name) != version}
    extra = {name: version for name, version in installed.items() if name not in locked}
    assert not missing and not extra, (
        f"the environment is not uv.lock: locked but not installed at that version {missing}, "
        f"installed but not locked {extra}; run scripts/setup --test"
    )


def test_hls_js_is_the_locked_version() -> None:
    lock = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))
    locked = lock["packages"]["node_modules/hls.js"]["version"]
    installed = json.loads((ROOT / "node_modules" / "hls.js" / "package.json").read_text(encoding="utf-8"))["version"]
    assert installed == locked


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of what the lock check reads, with the checkout's pinned uv (nothing to download)."""
    uv("--version")  # installs the pinned uv into .tools if this checkout has none yet
    (tmp_path / "scripts").mkdir()
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    for name in ("uv", "uv-requirements.txt", "check-lock", "lock_agrees.py"):
        shutil.copy2(ROOT / "scripts" / name, tmp_path / "scripts" / name)
    os.symlink(ROOT / ".tools", tmp_path / ".tools")
    return tmp_path


def check_lock(checkout: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(checkout / "scripts" / "check-lock"), "--offline"], capture_output=True, text=True, timeout=120
    )


def edit_dependencies(checkout: Path, old: str, new: str) -> None:
    pyproject = checkout / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    assert old in text
    pyproject.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_the_committed_lock_agrees_with_pyproject(checkout: Path) -> None:
    result = check_lock(checkout)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        # A dependency added to pyproject.toml and not to the lock.
        ('  "jinja2>=3.1",\n', '  "jinja2>=3.1",\n  "packaging>=24",\n', "packaging>=24"),
        # One taken out of pyproject.toml and left in the lock.
        ('  "icalendar>=6",\n', "", "icalendar>=6"),
        # A range changed in pyproject.toml alone (the locked release still meets it).
        ('"redis>=6"', '"redis>=6.2"', "redis>=6.2"),
    ],
    ids=["added", "removed", "range-changed"],
)
def test_a_lock_that_disagrees_stops_the_setup_with_what_to_do(checkout: Path, old: str, new: str, named: str) -> None:
    edit_dependencies(checkout, old, new)
    result = check_lock(checkout)
    assert result.returncode == 1
    assert "uv.lock and pyproject.toml disagree" in result.stderr, result.stderr
    assert "scripts/lock" in result.stderr
    # What differs is named, read from the two files (no resolver: it works offline, uncached).
    assert named in result.stderr


def test_lockdiff_says_what_moved(tmp_path: Path) -> None:
    registry = 'source = { registry = "https://pypi.org/simple" }'

    def lock(name: str, packages: dict[str, list[str]]) -> Path:
        entries = ['[[package]]\nname = "podium"\nversion = "0.1.0"\nsource = { editable = "." }\n']
        for package, versions in packages.items():
            entries += [f'[[package]]\nname = "{package}"\nversion = "{v}"\n{registry}\n' for v in versions]
        path = tmp_path / name
        path.write_text("version = 1\n\n" + "\n".join(entries), encoding="utf-8")
        return path

    old = lock("old.lock", {"redis": ["8.1.0"], "numpy": ["2.4.6"], "six": ["1.16.0"], "idna": ["3.10"]})
    new = lock("new.lock", {"redis": ["8.2.0"], "numpy": ["2.4.6", "2.5.5"], "idna": ["3.10"], "rich": ["14.0.0"]})
    script = ROOT / "scripts" / "lockdiff.py"
    result = subprocess.run(
        [sys.executable, str(script), str(old), str(new)], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == [
        "  numpy  2.4.6 -> 2.4.6 + 2.5.5",
        "  redis  8.1.0 -> 8.2.0",
        "+ rich  14.0.0",
        "- six  1.16.0",
    ]
    same = subprocess.run([sys.executable, str(script), str(old), str(old)], capture_output=True, text=True, check=True)
    assert same.stdout.strip() == "(no package changed)"
