"""The deployment files and guides agree with the code: every PODIUM_* name they use is a setting, the
values they show are accepted, the commands they show parse, the systemd unit has what a node needs,
and the Compose example hangs together."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from podium.errors import InvalidInput
from podium.ops.cli import build_parser
from podium.settings import Settings

ROOT = Path(__file__).parent.parent
COMPOSE = ROOT / "deploy" / "compose.yaml"
UNIT = ROOT / "deploy" / "systemd" / "podium@.service"
ENV_EXAMPLE = ROOT / "deploy" / "systemd" / "podium.env.example"
GUIDES = [ROOT / "docs" / "deploy.md", ROOT / "docs" / "cdn.md"]
SETTINGS = {f.name for f in fields(Settings)}
# What every node of a cluster must be given (docs/deploy.md explains each).
CLUSTER = ["secret", "database_url", "bus_url", "limits_url", "storage_url", "node_id", "node_url", "public_url"]
_NAME = re.compile(r"\bPODIUM_[A-Z0-9_]+\b")


def setting_names(text: str) -> set[str]:
    return {name.removeprefix("PODIUM_").lower() for name in _NAME.findall(text)}


@pytest.mark.parametrize("path", [COMPOSE, ENV_EXAMPLE, UNIT, *GUIDES], ids=lambda p: p.name)
def test_every_podium_name_is_a_setting(path: Path) -> None:
    unknown = setting_names(path.read_text(encoding="utf-8")) - SETTINGS
    assert not unknown, f"{path.name} names settings that do not exist: {sorted(unknown)}"


@pytest.mark.parametrize("path", [COMPOSE, ENV_EXAMPLE, GUIDES[0]], ids=lambda p: p.name)
def test_what_a_cluster_needs_is_there(path: Path) -> None:
    missing = set(CLUSTER) - setting_names(path.read_text(encoding="utf-8"))
    assert not missing, f"{path.name} leaves out {sorted(missing)}"


def env_example() -> dict[str, str]:
    """The example as systemd reads it: NAME=value lines, comments, blank lines; nothing else."""
    values: dict[str, str] = {}
    for number, line in enumerate(ENV_EXAMPLE.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        found = re.fullmatch(r"([A-Z_][A-Z0-9_]*)=(\S*)", line)
        assert found, f"podium.env.example line {number} is not NAME=value: {line!r}"
        assert found.group(1) not in values, f"{found.group(1)} is set twice"
        values[found.group(1)] = found.group(2)
    return values


def test_the_environment_example_is_a_valid_configuration() -> None:
    values = env_example()
    settings = Settings.load({k: v for k, v in values.items() if k.startswith("PODIUM_")})
    assert len(settings.secret) >= 32
    assert settings.database_url.startswith("postgresql://")
    assert settings.bus_url.startswith("redis://") and settings.limits_url.startswith("redis://")
    assert settings.node_url.startswith(("http://", "https://"))
    # The nginx machines and the other nodes: without them, per-address limits hit everyone at once.
    assert settings.forwarded_allow_ips != Settings().forwarded_allow_ips


def unit_sections() -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        assert current is not None, f"a setting before any section: {line!r}"
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


def test_the_systemd_unit_has_what_a_node_needs() -> None:
    sections = unit_sections()
    assert set(sections) == {"Unit", "Service", "Install"}
    service: dict[str, list[str]] = {}
    for key, value in sections["Service"]:
        service.setdefault(key, []).append(value)

    def one(key: str) -> str:
        assert key in service, f"[Service] has no {key}="
        return service[key][-1]

    assert one("EnvironmentFile") == "/etc/podium/%i.env"
    assert one("ExecStart").endswith("/podium serve")
    assert one("User") not in ("", "root")
    assert one("Restart") == "on-failure"
    assert one("NoNewPrivileges") == "yes"
    assert one("ProtectSystem") == "strict"
    assert one("ProtectHome") == "yes" and one("PrivateTmp") == "yes"
    assert one("CapabilityBoundingSet") == ""
    # The data folder it defaults to is writable under ProtectSystem=strict: it is the StateDirectory.
    defaults = dict(item.split("=", 1) for item in shlex.split(one("Environment")))
    assert defaults["PODIUM_DATA_DIR"] == "/var/lib/" + one("StateDirectory")
    assert defaults["PODIUM_NODE_ID"] == "%i"
    # The shared media folder of the example environment is writable too.
    media = env_example()["PODIUM_STORAGE_URL"].removeprefix("file://")
    writable = [path.lstrip("-") for value in service["ReadWritePaths"] for path in value.split()]
    assert media in writable
    assert ("WantedBy", "multi-user.target") in sections["Install"]
    assert ("After", "network-online.target") in sections["Unit"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    # /opt/podium does not exist here: the same unit, running a program that does.
    unit = tmp_path / UNIT.name
    unit.write_text(re.sub(r"(?m)^ExecStart=.*$", "ExecStart=/bin/true", UNIT.read_text(encoding="utf-8")))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def _compose_value(raw: str) -> str:
    """A Compose value with its interpolations as Compose would fill them with nothing set."""
    raw = raw.strip().strip('"')
    raw = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", raw)
    return re.sub(r"\$\{[A-Z_]+:\?[^}]*\}", "x" * 48, raw)


def compose_environment_lines() -> dict[str, set[str]]:
    values: dict[str, set[str]] = {}
    for found in re.finditer(r"(?m)^\s+(PODIUM_[A-Z0-9_]+): (.+)$", COMPOSE.read_text(encoding="utf-8")):
        values.setdefault(found.group(1), set()).add(_compose_value(found.group(2)))
    return values


def test_the_compose_example_sets_valid_values() -> None:
    values = compose_environment_lines()
    for name, shown in values.items():
        for value in shown:
            try:
                Settings.load({name: value})
            except InvalidInput as error:
                pytest.fail(f"compose.yaml: {name}={value!r} is refused: {error.message}")
    # Three nodes, each its own id, port and address.
    for name in ("PODIUM_NODE_ID", "PODIUM_PORT", "PODIUM_NODE_URL"):
        assert len(values[name]) == 3, name


def test_the_compose_example_hangs_together() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    yaml: Any
    try:
        import yaml
    except ImportError:  # the virtual environment may not have it: the structure by its indentation
        top = re.findall(r"(?m)^([a-z][\w-]*):", text)
        services = re.search(r"(?ms)^services:\n(.*?)^\S", text)
        assert services is not None
        names = re.findall(r"(?m)^  ([a-z][\w-]*):\s*$", services.group(1))
        volumes = re.search(r"(?ms)^volumes:\n(.*)", text)
        assert volumes is not None
        declared = set(re.findall(r"(?m)^  ([a-z][\w-]*):", volumes.group(1)))
        lists = re.findall(r"(?m)^    volumes: \[(.*)\]$", text)
        used = {item.split(":")[0] for found in lists for item in re.findall(r'"([^"]+)"', found)}
        used = {name for name in used if not name.startswith(".")}
    else:
        document = yaml.safe_load(text)
        top = list(document)
        names = list(document["services"])
        declared = set(document["volumes"])
        used = {
            volume.split(":")[0]
            for service in document["services"].values()
            for volume in service.get("volumes", [])
            if not volume.startswith(".")
        }
        nodes = [s for s in document["services"].values() if s.get("image") == "podium:local"]
        assert len(nodes) == 3
        assert len({s["environment"]["PODIUM_SECRET"] for s in nodes}) == 1  # one secret for all
        assert all(s["environment"]["PODIUM_BUS_URL"].startswith("redis://") for s in nodes)
    assert {"services", "volumes"} <= set(top)
    assert {"nginx", "redis", "postgres"} <= set(names)
    assert len([n for n in names if n.startswith("podium-")]) == 3
    assert used <= declared, f"volumes used but not declared: {sorted(used - declared)}"
    # nginx runs the shipped configuration, rewritten only where the example must differ.
    shipped = (ROOT / "deploy" / "nginx" / "podium.conf").read_text(encoding="utf-8")
    assert "server 127.0.0.1:8000;" in shipped and "listen 80;" in shipped
    assert "./nginx/podium.conf:" in text


def shown_commands() -> list[str]:
    commands = []
    for guide in [*GUIDES, ENV_EXAMPLE, UNIT]:
        for line in guide.read_text(encoding="utf-8").splitlines():
            # In code blocks, and inline where arguments follow (a bare `podium plan` is a name).
            found = re.search(r"(?:^\s{4}|`)(podium (?:serve|plan|rehearse|verify) [^`]+)", line)
            if found:
                commands.append(found.group(1).strip())
    return commands


def test_the_commands_shown_are_commands() -> None:
    commands = shown_commands()
    assert any(c.startswith("podium plan --listeners") for c in commands)
    assert any(c.startswith("podium rehearse ") for c in commands)
    for command in commands:
        argv = shlex.split(re.sub(r"<[^>]+>", "x", command))[1:]
        try:
            build_parser().parse_args(argv)
        except SystemExit:
            pytest.fail(f"the guides show a command that does not parse: {command}")
