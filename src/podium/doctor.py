"""`podium doctor`: what breaks deployments, checked on this machine, each with how to fix it.

Each check is a pure function from gathered facts to a `Result`; the probes that gather the facts
are thin and talk to this machine only: loopback HTTP, UDP between two local sockets, DNS look-ups,
and the database and Redis that Podium itself is configured to use. Anything else is reported as
"not checked from here", with the command that checks it from elsewhere.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import ipaddress
import json
import os
import resource
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from podium.errors import InvalidInput
from podium.media.ice_servers import FORMAT_HINT, IceServer, parse_ice_servers
from podium.settings import Settings

Status = Literal["ok", "warn", "fail", "skip"]
MARKS: dict[Status, str] = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "-"}

# The listener stream's bitrate (AAC-LC), which is also what one space's recording costs on disk.
RECORDING_KBPS = 64
DEFAULT_MIN_FREE_GIB = 2.0
# Open files: one per listener connected straight to the node (behind a cache tier: far fewer).
MIN_OPEN_FILES = 4096
# Past these differences between clocks, signed not-before/expiry windows misjudge.
CLOCK_WARN_S = 0.5
CLOCK_FAIL_S = 2.0
PROBE_TIMEOUT_S = 3.0
# A well-formed space id that no space has: the doctor reads the answers to it, never creates a space.
PROBE_SPACE = "doctor000000"
NOT_HERE = "not checked from here (the doctor sends nothing off this machine)"


@dataclass(frozen=True)
class Result:
    check: str
    status: Status
    found: str
    fix: str = ""


# -- Facts the probes gather -----------------------------------------------------------------


@dataclass(frozen=True)
class HttpAnswer:
    """One GET: its status and headers, or why it got none (`error`)."""

    url: str
    status: int = 0
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str = ""

    def json(self) -> object:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass(frozen=True)
class ClockSync:
    """What the kernel (adjtimex) or timedatectl say about the clock's synchronisation."""

    source: str
    synchronised: bool | None  # None: the source could not tell
    max_error_s: float | None = None


# -- Pure checks -------------------------------------------------------------------------------


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def is_private(address: str) -> bool:
    """Reachable only inside some network: RFC 1918, ULA, link-local, CGNAT (100.64/10)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    return ip.is_private or ip in ipaddress.ip_network("100.64.0.0/10")


def check_host_candidates(mode: str, addresses: Sequence[str], servers: Sequence[IceServer]) -> Result:
    name = "UDP for WebRTC: candidates"
    outside = [a for a in addresses if not is_loopback(a)]
    if mode == "only":
        return Result(
            name,
            "warn",
            "PODIUM_ICE_LOOPBACK=only: the stage offers loopback alone, so only speakers on this machine can connect",
            "for speakers elsewhere, unset PODIUM_ICE_LOOPBACK (or set it to 0); keep `only` for tests and CI",
        )
    if not outside:
        return Result(
            name,
            "fail",
            f"the stage would offer {', '.join(addresses) or 'no address'}: no network interface address, "
            "so no speaker on another machine can reach it",
            "give the machine a network address speakers can reach (a container needs a published UDP range "
            "or host networking), or set PODIUM_ICE_SERVERS to a TURN server",
        )
    shown = ", ".join(f"{a} ({'private' if is_private(a) else 'public'})" for a in outside)
    if all(is_private(a) for a in outside) and not servers:
        return Result(
            name,
            "warn",
            f"host candidates {shown}: only private addresses, and no STUN/TURN server; speakers outside this "
            "network (behind NAT) cannot reach the stage",
            "set PODIUM_ICE_SERVERS=turn:user:password@turn.example.org:3478 (a TURN server such as coturn), "
            "or run Podium on a machine with a public address",
        )
    relay = " and STUN/TURN" if servers else ""
    return Result(
        name,
        "ok",
        f"host candidates {shown}{relay}; the firewall must let inbound UDP reach the ports aiortc picks "
        "(random, 1024-65535)",
    )


def check_udp_round_trip(outcomes: Mapping[str, str]) -> Result:
    """`outcomes`: address -> "" if a datagram went between two sockets bound there, else the error."""
    name = "UDP for WebRTC: round trip"
    if not outcomes:
        return Result(name, "skip", "no address to try")
    failed = {address: error for address, error in outcomes.items() if error}
    if failed:
        detail = "; ".join(f"{address}: {error}" for address, error in failed.items())
        return Result(
            name,
            "fail",
            f"UDP does not go through on this machine ({detail})",
            "a local firewall (nftables, iptables, ufw) or a sandbox blocks UDP: allow UDP to this machine's "
            "addresses, e.g. `ufw allow proto udp from any to any port 1024:65535`",
        )
    return Result(name, "ok", f"a datagram went between two sockets on {', '.join(outcomes)}")


def check_ice_servers(raw: str, public_url: str) -> tuple[Result, tuple[IceServer, ...]]:
    name = "TURN/STUN (PODIUM_ICE_SERVERS)"
    try:
        servers = parse_ice_servers(raw)
    except InvalidInput as error:
        return Result(name, "fail", error.message, FORMAT_HINT + "; `podium serve` refuses to start until then"), ()
    if not servers:
        return Result(name, "ok", "none set: the stage offers host candidates only and contacts no outside host"), ()
    shown = ", ".join(s.uri for s in servers)
    notes: list[str] = []
    fixes: list[str] = []
    turns = [s for s in servers if s.is_turn]
    status: Status = "ok"
    if public_url.startswith("https:") and turns and not any(s.scheme == "turns" for s in turns):
        status = "warn"
        notes.append("no turns: entry, so speakers on networks that allow only HTTPS cannot relay")
        fixes.append("add a TURN-over-TLS entry on port 443, e.g. turns:user:password@turn.example.org:443")
    if not turns:
        notes.append("STUN only: speakers behind symmetric NAT or strict firewalls need TURN")
        fixes.append("add turn:user:password@turn.example.org:3478 for them")
        status = "warn"
    if sum(1 for s in servers if s.scheme == "stun") > 1 or len(turns) > 1:
        notes.append("the stage's aiortc uses the first STUN and the first TURN entry (browsers use all)")
    found = shown + (": " + "; ".join(notes) if notes else "")
    return Result(name, status, found, "; ".join(fixes)), servers


def check_ice_server_names(resolved: Mapping[str, Sequence[str] | str]) -> Result:
    """`resolved`: host name -> its addresses, or the look-up's error."""
    name = "TURN/STUN names"
    failed = {host: error for host, error in resolved.items() if isinstance(error, str)}
    if failed:
        hosts = ", ".join(f"{host} ({error})" for host, error in failed.items())
        return Result(
            name,
            "fail",
            f"these do not resolve: {hosts}",
            "correct the host name in PODIUM_ICE_SERVERS, or add its DNS record",
        )
    shown = "; ".join(f"{host} -> {', '.join(addresses)}" for host, addresses in resolved.items())
    return Result(name, "ok", shown or "nothing to resolve")


def check_public_url(public_url: str, addresses: Sequence[str] | str) -> Result:
    """`addresses`: what the public host resolves to, or the look-up's error."""
    name = "Public URL (PODIUM_PUBLIC_URL)"
    if not public_url:
        return Result(
            name,
            "warn",
            "not set: answers carry root-relative URLs, fine behind one proxy that keeps paths, but webhooks, "
            "the podcast feed and invites shared elsewhere name no host",
            "set PODIUM_PUBLIC_URL=https://podium.example.org (the address people open)",
        )
    parts = urlsplit(public_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Result(
            name,
            "fail",
            f"{public_url!r} is not an http(s) address",
            "set PODIUM_PUBLIC_URL=https://podium.example.org",
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return Result(
            name,
            "fail",
            f"{public_url} has a path ({parts.path}): Podium's pages fetch /api/..., /hls/... from the root "
            "of the host, so under a path prefix they miss",
            f"serve Podium at the root of a host name of its own and set PODIUM_PUBLIC_URL="
            f"{parts.scheme}://{parts.netloc}",
        )
    if isinstance(addresses, str):
        return Result(
            name,
            "fail",
            f"{parts.hostname} does not resolve ({addresses})",
            "add the DNS record for it, or correct PODIUM_PUBLIC_URL",
        )
    local = bool(addresses) and all(is_loopback(a) for a in addresses)
    if parts.scheme == "http" and not local:
        return Result(
            name,
            "fail",
            f"{public_url} is plain http on a host other than this machine: browsers refuse the microphone "
            "on insecure origins, so no speaker can go on stage from a browser",
            f"serve it over TLS (nginx with a certificate, see deploy/nginx/podium.conf) and set "
            f"PODIUM_PUBLIC_URL=https://{parts.netloc}",
        )
    return Result(name, "ok", f"{public_url} ({parts.hostname} -> {', '.join(addresses)})")


def podium_node(answer: HttpAnswer) -> str | None:
    """The node id a /healthz answer names, or None if the answer is not Podium's."""
    body = answer.json()
    if answer.status == 200 and isinstance(body, dict) and body.get("alive") is True:
        return str(body.get("node", ""))
    return None


def check_running(answer: HttpAnswer) -> Result:
    name = "Podium answers"
    if answer.error:
        return Result(
            name,
            "warn",
            f"nothing answers at {answer.url} ({answer.error}): the health and CORS checks were skipped",
            "start `podium serve` (same settings), then run `podium doctor` again, or pass --url with its address",
        )
    node = podium_node(answer)
    if node is None:
        return Result(
            name,
            "fail",
            f"{answer.url} answers {answer.status}, but not as Podium's /healthz",
            "point --url (or PODIUM_HOST/PODIUM_PORT) at the address `podium serve` listens on",
        )
    return Result(name, "ok", f"{answer.url}: alive, node {node}")


def check_public_url_reaches(public_url: str, answer: HttpAnswer | None, own_node: str | None) -> Result:
    """`answer`: GET {public_url}/healthz from here, or None when it may not be sent from here."""
    name = "Public URL reaches Podium"
    if answer is None:
        return Result(
            name,
            "skip",
            f"{NOT_HERE}: {public_url} is not on this machine",
            f'from another machine, `curl -s {public_url.rstrip("/")}/healthz` must show {{"alive": true, ...}}; '
            "or run `podium doctor --url URL` with a loopback address of the proxy",
        )
    if answer.error:
        return Result(
            name,
            "fail",
            f"nothing answers at {answer.url} ({answer.error})",
            "make PODIUM_PUBLIC_URL the address people reach Podium at: check its port, and that the proxy "
            "(nginx) runs and passes requests to this node",
        )
    node = podium_node(answer)
    if node is None:
        return Result(
            name,
            "fail",
            f"{answer.url} answers {answer.status}, but not as Podium",
            "the proxy must pass every path (including /healthz) to Podium; or PODIUM_PUBLIC_URL names another site",
        )
    if own_node is not None and node != own_node:
        return Result(
            name,
            "warn",
            f"{answer.url} is answered by node {node}, not by this node ({own_node})",
            "fine behind a balancer over several nodes; otherwise the proxy passes requests to another Podium",
        )
    return Result(name, "ok", f"{answer.url} reaches Podium (node {node})")


def check_cors(kind: str, answer: HttpAnswer, needed_exposed: Sequence[str]) -> Result:
    name = f"CORS: {kind}"
    if answer.error:
        return Result(name, "skip", f"{answer.url}: {answer.error}")
    # Without --space the doctor reads the answers for a space that does not exist: the same headers.
    where = f"{answer.url} ({answer.status}{', no such space' if answer.status == 404 else ''})"
    origin = answer.headers.get("access-control-allow-origin", "")
    if not origin:
        return Result(
            name,
            "fail",
            f"{where} has no Access-Control-Allow-Origin: embeds and players on other sites cannot read it",
            "let the proxy pass Podium's CORS headers (do not hide or override Access-Control-* in nginx or the CDN)",
        )
    exposed = {h.strip().lower() for h in answer.headers.get("access-control-expose-headers", "").split(",")}
    missing = [h for h in needed_exposed if h.lower() not in exposed]
    if missing:
        return Result(
            name,
            "warn",
            f"{where}: Access-Control-Allow-Origin {origin}, but {', '.join(missing)} not in "
            "Access-Control-Expose-Headers: scripts on other sites cannot read them",
            "let the proxy pass Podium's Access-Control-Expose-Headers unchanged",
        )
    exposes = f", exposes {', '.join(needed_exposed)}" if needed_exposed else ""
    return Result(name, "ok", f"{where}: Access-Control-Allow-Origin {origin}{exposes}")


def check_clock(syncs: Sequence[ClockSync], offsets: Mapping[str, float]) -> Result:
    """`offsets`: seconds by which another clock (PostgreSQL, Redis) is ahead of this one."""
    name = "Clock"
    why = "scheduled starts, the pre-show and signed links (not-before, expiry) depend on it"
    worst = max(offsets.items(), key=lambda item: abs(item[1]), default=None)
    shown_offsets = ", ".join(f"{source} {offset:+.3f} s" for source, offset in offsets.items())
    if worst is not None and abs(worst[1]) > CLOCK_FAIL_S:
        return Result(
            name,
            "fail",
            f"this clock and {worst[0]}'s differ by {abs(worst[1]):.1f} s ({shown_offsets})",
            f"synchronise every machine with NTP (`timedatectl set-ntp true`, or chrony): {why}",
        )
    known = [s for s in syncs if s.synchronised is not None]
    unsynced = [s for s in known if not s.synchronised]
    extra = f"; {shown_offsets}" if shown_offsets else ""
    if unsynced or not known or (worst is not None and abs(worst[1]) > CLOCK_WARN_S):
        found = (
            f"not synchronised (says {', '.join(s.source for s in unsynced)})"
            if unsynced
            else "synchronisation unknown (no adjtimex, timedatectl or chronyc answer)"
            if not known
            else "synchronised, but another clock differs"
        )
        return Result(
            name,
            "warn",
            found + extra,
            f"enable NTP (`timedatectl set-ntp true`, or install chrony) on this machine: {why}",
        )
    errors = [s.max_error_s for s in known if s.max_error_s is not None]
    bound = f", within {min(errors) * 1000:.0f} ms" if errors else ""
    return Result(name, "ok", f"synchronised (says {', '.join(s.source for s in known)}{bound}){extra}")


def hours_of_recording(free_bytes: int, kbps: int = RECORDING_KBPS) -> float:
    return free_bytes * 8 / (kbps * 1000) / 3600


def check_disk(label: str, path: Path, free_bytes: int, min_free_bytes: int) -> Result:
    name = f"Disk: {label}"
    hours = hours_of_recording(free_bytes)
    found = (
        f"{path}: {free_bytes / 2**30:.1f} GiB free, about {hours:,.0f} hours of recording at {RECORDING_KBPS} kb/s "
        f"(all spaces together)"
    )
    fix = (
        f"free space on that filesystem, or move the {label} to a larger one "
        f"({'PODIUM_DATA_DIR' if label == 'data folder' else 'PODIUM_STORAGE_URL'}); recordings stop when it is full"
    )
    if free_bytes < min_free_bytes:
        return Result(name, "fail", f"{found}: below the minimum of {min_free_bytes / 2**30:.1f} GiB", fix)
    if free_bytes < 2 * min_free_bytes:
        return Result(name, "warn", f"{found}: less than twice the minimum of {min_free_bytes / 2**30:.1f} GiB", fix)
    return Result(name, "ok", found)


def check_writable(label: str, path: Path, error: str, exists: bool) -> Result:
    name = f"Writable: {label}"
    if error:
        return Result(
            name,
            "fail",
            f"{path}: cannot write, fsync and remove a file ({error})",
            f"give the user that runs `podium serve` write access: `chown -R USER {path}`",
        )
    note = "" if exists else " (does not exist yet: `podium serve` creates it; its parent is writable)"
    return Result(name, "ok", f"{path}: a file was written, fsynced and removed{note}")


def check_secret(secret_length: int, file_mode: int | None, secret_path: Path, several_nodes: bool) -> Result:
    name = "Secret"
    if secret_length:
        return Result(name, "ok", f"PODIUM_SECRET is set ({secret_length} characters)")
    if several_nodes:
        return Result(
            name,
            "fail",
            "a database or bus for several nodes is configured, but no PODIUM_SECRET: each node would sign "
            "with its own generated secret, and tokens from one would fail on the others",
            "give every node the same PODIUM_SECRET (`openssl rand -base64 48`)",
        )
    if file_mode is None:
        return Result(name, "ok", f"{secret_path} does not exist yet: generated (mode 0600) on first start")
    if file_mode & 0o077:
        return Result(
            name,
            "fail",
            f"{secret_path} has mode {file_mode:04o}: other users can read it and sign tokens",
            f"`chmod 600 {secret_path}`",
        )
    return Result(name, "ok", f"{secret_path}, mode {file_mode:04o}")


def check_codecs(missing: Sequence[str], version: str) -> Result:
    name = "FFmpeg (PyAV)"
    if missing:
        return Result(
            name,
            "fail",
            f"PyAV's FFmpeg {version} lacks {', '.join(missing)}: the stage cannot decode speakers or encode "
            "the stream",
            "install PyAV from its wheels (`pip install --force-reinstall av`), which bundle FFmpeg with libopus",
        )
    return Result(name, "ok", f"PyAV's FFmpeg {version}: libopus and the AAC encoder are there")


def check_hlsjs(folder: Path | None) -> Result:
    name = "hls.js"
    if folder is None:
        return Result(
            name,
            "fail",
            "not found: listeners outside Safari get no audio",
            "run `npm install` in the Podium folder (`scripts/setup` does), or set PODIUM_HLSJS_DIR",
        )
    return Result(name, "ok", str(folder / "hls.min.js"))


def check_service(label: str, url: str, error: str) -> Result:
    name = f"{label} reachable"
    shown = _hide_password(url)
    if error:
        setting = "PODIUM_DATABASE_URL" if label == "PostgreSQL" else "PODIUM_BUS_URL / PODIUM_LIMITS_URL"
        return Result(
            name,
            "fail",
            f"{shown}: {error}",
            f"start {label}, or correct {setting} (host, port, user, password)",
        )
    return Result(name, "ok", shown)


def check_open_files(soft: int, hard: int) -> Result:
    name = "Open files (ulimit -n)"
    shown = "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
    if soft != resource.RLIM_INFINITY and soft < MIN_OPEN_FILES:
        return Result(
            name,
            "warn",
            f"{shown}: at most about {max(soft - 100, 0)} listeners connected straight to this node "
            "(behind a cache tier only the proxy's connections count)",
            "raise it: LimitNOFILE=65536 in the systemd unit (deploy/systemd has it), or `ulimit -n 65536` "
            "before `podium serve`",
        )
    return Result(name, "ok", f"{shown} (hard limit {'unlimited' if hard == resource.RLIM_INFINITY else hard})")


def _hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


# -- Probes: thin, this machine only ------------------------------------------------------------


def resolve(host: str, timeout_s: float = PROBE_TIMEOUT_S) -> list[str] | str:
    """The addresses `host` resolves to, or the error (DNS only: nothing is sent to the host)."""
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(socket.getaddrinfo, host, None, type=socket.SOCK_STREAM)
        try:
            infos = future.result(timeout_s)
        except FutureTimeout:
            return f"no answer from DNS in {timeout_s:g} s"
        except OSError as error:
            return error.strerror or str(error)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_local_url(url: str) -> bool:
    """Whether every address the URL's host resolves to is loopback (traffic stays on this machine)."""
    host = urlsplit(url).hostname
    if not host:
        return False
    addresses = resolve(host)
    return isinstance(addresses, list) and bool(addresses) and all(is_loopback(a) for a in addresses)


def http_get(url: str) -> HttpAnswer:
    import httpx

    if not is_local_url(url):
        return HttpAnswer(url, error=NOT_HERE)
    try:
        response = httpx.get(url, timeout=PROBE_TIMEOUT_S, headers={"Origin": "https://embed.example"})
    except httpx.HTTPError as error:
        return HttpAnswer(url, error=str(error) or type(error).__name__)
    return HttpAnswer(url, response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content)


def udp_round_trip(address: str, timeout_s: float = 1.0) -> str:
    """The empty string if a datagram goes from one socket to another, both bound to `address`; else the error."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    payload = os.urandom(16)
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as receiver, socket.socket(family, socket.SOCK_DGRAM) as sender:
            receiver.bind((address, 0))
            sender.bind((address, 0))
            receiver.settimeout(timeout_s)
            sender.sendto(payload, receiver.getsockname())
            data = receiver.recv(64)
    except TimeoutError:
        return f"nothing arrived within {timeout_s:g} s"
    except OSError as error:
        return error.strerror or str(error)
    return "" if data == payload else "a different datagram arrived"


class _Timex(ctypes.Structure):
    # struct timex (Linux); the tail pads generously: the kernel writes no more than its own size.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("rest", ctypes.c_long * 64),
    ]


TIME_ERROR = 5  # adjtimex: the clock is not synchronised
STA_UNSYNC = 0x0040


def clock_sync_facts() -> list[ClockSync]:
    facts: list[ClockSync] = []
    libc_name = ctypes.util.find_library("c")
    if sys.platform == "linux" and libc_name:
        timex = _Timex()  # modes = 0: read only
        state = ctypes.CDLL(libc_name, use_errno=True).adjtimex(ctypes.byref(timex))
        if state >= 0:
            synced = state != TIME_ERROR and not timex.status & STA_UNSYNC
            facts.append(ClockSync("adjtimex", synced, timex.maxerror / 1e6))
    for command, parse in (
        (["timedatectl", "show", "-p", "NTPSynchronized", "--value"], _parse_timedatectl),
        (["chronyc", "-n", "tracking"], _parse_chronyc),
    ):
        if shutil.which(command[0]) is None:
            continue
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            facts.append(parse(done.stdout))
    return facts


def _parse_timedatectl(text: str) -> ClockSync:
    value = text.strip().lower()
    return ClockSync("timedatectl", True if value == "yes" else False if value == "no" else None)


def _parse_chronyc(text: str) -> ClockSync:
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    leap = fields.get("Leap status ", fields.get("Leap status", "")).strip().lower()
    return ClockSync("chronyc", None if not leap else leap == "normal")


def postgres_offset(url: str) -> tuple[float | None, str]:
    """Seconds the PostgreSQL server's clock is ahead of this one, or the connection's error."""
    import psycopg

    try:
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3) as conn:
            before = time.time()
            row = conn.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()
            after = time.time()
    except psycopg.Error as error:
        return None, str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (float(row[0]) - (before + after) / 2 if row else None), ""


def redis_offset(url: str) -> tuple[float | None, str]:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=PROBE_TIMEOUT_S, socket_connect_timeout=PROBE_TIMEOUT_S)
    try:
        before = time.time()
        seconds, micros = client.time()
        after = time.time()
    except redis.RedisError as error:
        return None, str(error)
    finally:
        client.close()
    return seconds + micros / 1e6 - (before + after) / 2, ""


def writable_probe(folder: Path) -> tuple[str, bool]:
    """Write, fsync and remove a file in `folder` (or its nearest existing parent): (error, folder exists)."""
    exists = folder.is_dir()
    target = folder
    while not target.exists() and target != target.parent:
        target = target.parent
    path = target / f".podium-doctor-{os.getpid()}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"podium doctor\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        path.unlink()
    except OSError as error:
        return error.strerror or str(error), exists
    return "", exists


def existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def media_folder(settings: Settings) -> Path | None:
    """Where media lands on a local disk; None for object storage (S3)."""
    if not settings.storage_url:
        return settings.data_dir / "media"
    parts = urlsplit(settings.storage_url)
    return Path(unquote(parts.path)) if parts.scheme == "file" else None


def codec_facts() -> tuple[list[str], str]:
    import av

    missing = []
    modes: tuple[tuple[str, Literal["r", "w"]], ...] = (("libopus", "r"), ("libopus", "w"), ("aac", "w"))
    for name, mode in modes:
        try:
            av.codec.Codec(name, mode)
        except ValueError:  # UnknownCodecError
            missing.append(f"{name} ({'decoder' if mode == 'r' else 'encoder'})")
    version = ".".join(str(n) for n in av.library_versions.get("libavcodec", ()))
    return missing, f"libavcodec {version}"


# -- The run ------------------------------------------------------------------------------------

Step = Callable[[], Iterable[Result]]


@dataclass
class Doctor:
    settings: Settings
    ice_servers_raw: str
    target: str
    min_free_bytes: int
    space: str = PROBE_SPACE
    servers: tuple[IceServer, ...] = ()
    own_node: str | None = None
    _services: list[tuple[str, str, tuple[float | None, str]]] | None = None

    def steps(self) -> list[tuple[str, Step]]:
        return [
            ("ICE servers", self.ice),
            ("host candidates and UDP", self.udp),
            ("public URL", self.public_url),
            ("the running server", self.http),
            ("PostgreSQL and Redis", self.services),
            ("the clock", self.clock),
            ("disk space", self.disk),
            ("the secret, codecs, hls.js, limits", self.misc),
        ]

    def ice(self) -> Iterable[Result]:
        result, self.servers = check_ice_servers(self.ice_servers_raw, self.settings.public_url)
        yield result
        if self.servers:
            yield check_ice_server_names({s.host: resolve(s.host) for s in self.servers})

    def udp(self) -> Iterable[Result]:
        from podium.media import ice

        addresses = ice.offered_addresses(self.settings.ice_loopback)
        yield check_host_candidates(self.settings.ice_loopback, addresses, self.servers)
        yield check_udp_round_trip({address: udp_round_trip(address) for address in addresses})

    def public_url(self) -> Iterable[Result]:
        url = self.settings.public_url
        host = urlsplit(url).hostname
        yield check_public_url(url, resolve(host) if host else [])

    def http(self) -> Iterable[Result]:
        if not is_local_url(self.target):
            yield Result(
                "Podium answers",
                "skip",
                f"{NOT_HERE}: {self.target} (nor its CORS headers)",
                "run `podium doctor --url http://127.0.0.1:PORT` on the node itself",
            )
            return
        health = http_get(self.target + "/healthz")
        yield check_running(health)
        own = self.settings.own_url
        self.own_node = podium_node(health if own == self.target else http_get(own + "/healthz"))
        public = self.settings.base_url
        if public:
            answer = None
            if is_local_url(public):
                answer = health if public == self.target else http_get(public + "/healthz")
            yield check_public_url_reaches(public, answer, self.own_node)
        if podium_node(health) is None:
            return
        api = http_get(f"{self.target}/api/spaces/{self.space}")
        hls = http_get(f"{self.target}/hls/{self.space}/index.m3u8")
        yield check_cors("API answer", api, ("Location", "Retry-After", "ETag"))
        yield check_cors("HLS playlist", hls, ())

    def services(self) -> Iterable[Result]:
        for label, url, (_, error) in self._service_facts():
            yield check_service(label, url, error)

    def clock(self) -> Iterable[Result]:
        offsets = {label: offset for label, _, (offset, _) in self._service_facts() if offset is not None}
        yield check_clock(clock_sync_facts(), offsets)

    def _service_facts(self) -> list[tuple[str, str, tuple[float | None, str]]]:
        """Each configured PostgreSQL and Redis: (label, URL, (clock offset, error)), asked once."""
        if self._services is None:
            found: list[tuple[str, str, tuple[float | None, str]]] = []
            if self.settings.database_url.startswith("postgresql"):
                found.append(("PostgreSQL", self.settings.database_url, postgres_offset(self.settings.database_url)))
            redis_urls = sorted({self.settings.bus_url, self.settings.limits_url} - {""})
            found.extend(("Redis", url, redis_offset(url)) for url in redis_urls if url.startswith("redis"))
            self._services = found
        return self._services

    def disk(self) -> Iterable[Result]:
        folders = [("data folder", self.settings.data_dir)]
        media = media_folder(self.settings)
        if media is not None:
            folders.append(("media folder", media))
        filesystems: set[int] = set()
        for label, folder in folders:
            device = existing(folder).stat().st_dev
            if device not in filesystems:  # one line per filesystem: the media folder is often inside
                filesystems.add(device)
                yield check_disk(label, folder, shutil.disk_usage(existing(folder)).free, self.min_free_bytes)
            error, exists = writable_probe(folder)
            yield check_writable(label, folder, error, exists)
        if media is None:
            yield Result("Disk: media", "skip", "media lives in object storage (PODIUM_STORAGE_URL=s3://...)")

    def misc(self) -> Iterable[Result]:
        from podium.app import SECRET_NAME
        from podium.web.pages import find_hlsjs

        secret_path = self.settings.data_dir / SECRET_NAME
        mode = stat.S_IMODE(secret_path.stat().st_mode) if secret_path.exists() else None
        several = bool(self.settings.bus_url) or self.settings.database_url.startswith("postgresql")
        yield check_secret(len(self.settings.secret), mode, secret_path, several)
        yield check_codecs(*codec_facts())
        yield check_hlsjs(find_hlsjs(self.settings.hlsjs_dir))
        yield check_open_files(*resource.getrlimit(resource.RLIMIT_NOFILE))


def _target(args_url: str | None, settings: Settings) -> str:
    if args_url:
        return args_url.rstrip("/")
    if settings.public_url and is_local_url(settings.public_url):
        return settings.base_url
    return settings.own_url


def _line(result: Result) -> str:
    text = f"{MARKS[result.status]} {result.check}: {result.found}"
    return text + (f"\n    fix: {result.fix}" if result.fix and result.status != "ok" else "")


def run(args: argparse.Namespace) -> int:
    environ = dict(os.environ)
    # The doctor reports a wrong PODIUM_ICE_SERVERS as one of its checks, not as a refusal to start.
    ice_raw = environ.pop("PODIUM_ICE_SERVERS", "")
    interactive = sys.stdout.isatty() and not args.json
    try:
        settings = Settings.load(environ, host=args.host, port=args.port, data_dir=args.data_dir)
    except InvalidInput as error:
        refused = Result("Settings", "fail", error.message, "correct that variable; `podium serve` refuses it too")
        if not args.json:
            print(_line(refused))
        return _finish([refused], args.json)
    doctor = Doctor(settings, ice_raw, _target(args.url, settings), int(args.min_free_gib * 2**30))
    if args.space:
        doctor.space = args.space
    if not args.json:
        print(f"podium doctor: settings from PODIUM_* (data folder {settings.data_dir}), server {doctor.target}")
    results: list[Result] = []
    for title, step in doctor.steps():
        if interactive:
            print(f"  ... {title}", end="\r", flush=True)
        for result in step():
            results.append(result)
            if not args.json:
                print(("\x1b[K" if interactive else "") + _line(result), flush=True)
    if interactive:
        print("\x1b[K", end="")
    return _finish(results, args.json)


def _finish(results: Sequence[Result], as_json: bool) -> int:
    counts = {status: sum(1 for r in results if r.status == status) for status in MARKS}
    failed = counts["fail"] > 0
    if as_json:
        print(json.dumps({"ok": not failed, "counts": counts, "results": [asdict(r) for r in results]}, indent=2))
    else:
        summary = f"{counts['ok']} ok, {counts['warn']} warnings, {counts['fail']} failed, {counts['skip']} not checked"
        verdict = "fix what failed before going live" if failed else "nothing failed"
        print(f"\n{summary}: {verdict}.")
    return 1 if failed else 0
