"""What `podium doctor` concludes: pure checks from gathered facts to a `Result` with its fix.

No check does I/O; `podium.ops.doctor` gathers the facts on this machine and runs them.
"""

from __future__ import annotations

import ipaddress
import json
import resource
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from podium.errors import InvalidInput
from podium.media.ice_servers import FORMAT_HINT, IceServer, parse_ice_servers

Status = Literal["ok", "warn", "fail", "skip"]
MARKS: dict[Status, str] = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "-"}

# The listener stream's bitrate (AAC-LC), which is also what one space's recording costs on disk.
RECORDING_KBPS = 64
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
    result = partial(Result, "UDP for WebRTC: candidates")
    outside = [a for a in addresses if not is_loopback(a)]
    if mode == "only":
        return result(
            "warn",
            "PODIUM_ICE_LOOPBACK=only: the stage offers loopback alone, so only speakers on this machine can connect",
            "for speakers elsewhere, unset PODIUM_ICE_LOOPBACK (or set it to 0); keep `only` for tests and CI",
        )
    if not outside:
        return result(
            "fail",
            f"the stage would offer {', '.join(addresses) or 'no address'}: no network interface address, "
            "so no speaker on another machine can reach it",
            "give the machine a network address speakers can reach (a container needs a published UDP range "
            "or host networking), or set PODIUM_ICE_SERVERS to a TURN server",
        )
    shown = ", ".join(f"{a} ({'private' if is_private(a) else 'public'})" for a in outside)
    if all(is_private(a) for a in outside) and not servers:
        return result(
            "warn",
            f"host candidates {shown}: only private addresses, and no STUN/TURN server; speakers outside this "
            "network (behind NAT) cannot reach the stage",
            "set PODIUM_ICE_SERVERS=turn:user:password@turn.example.org:3478 (a TURN server such as coturn), "
            "or run Podium on a machine with a public address",
        )
    relay = " and STUN/TURN" if servers else ""
    return result(
        "ok",
        f"host candidates {shown}{relay}; the firewall must let inbound UDP reach the ports aiortc picks "
        "(random, 1024-65535)",
    )


def check_udp_round_trip(outcomes: Mapping[str, str]) -> Result:
    """`outcomes`: address -> "" if a datagram went between two sockets bound there, else the error."""
    result = partial(Result, "UDP for WebRTC: round trip")
    if not outcomes:
        return result("skip", "no address to try")
    failed = "; ".join(f"{address}: {error}" for address, error in outcomes.items() if error)
    if failed:
        return result(
            "fail",
            f"UDP does not go through on this machine ({failed})",
            "a local firewall (nftables, iptables, ufw) or a sandbox blocks UDP: allow UDP to this machine's "
            "addresses, e.g. `ufw allow proto udp from any to any port 1024:65535`",
        )
    return result("ok", f"a datagram went between two sockets on {', '.join(outcomes)}")


def check_ice_servers(raw: str, public_url: str, shared_secret: bool = False) -> tuple[Result, tuple[IceServer, ...]]:
    result = partial(Result, "TURN/STUN (PODIUM_ICE_SERVERS)")
    try:
        servers = parse_ice_servers(raw, shared_secret=shared_secret)
    except InvalidInput as error:
        return result("fail", error.message, FORMAT_HINT + "; `podium serve` refuses to start until then"), ()
    if not servers:
        return result("ok", "none set: the stage offers host candidates only and contacts no outside host"), ()
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
    return result(status, found, "; ".join(fixes)), servers


def check_ice_server_names(resolved: Mapping[str, Sequence[str] | str]) -> Result:
    """`resolved`: host name -> its addresses, or the look-up's error."""
    result = partial(Result, "TURN/STUN names")
    failed = ", ".join(f"{host} ({error})" for host, error in resolved.items() if isinstance(error, str))
    if failed:
        return result(
            "fail",
            f"these do not resolve: {failed}",
            "correct the host name in PODIUM_ICE_SERVERS, or add its DNS record",
        )
    shown = "; ".join(f"{host} -> {', '.join(addresses)}" for host, addresses in resolved.items())
    return result("ok", shown or "nothing to resolve")


def check_public_url(public_url: str, addresses: Sequence[str] | str) -> Result:
    """`addresses`: what the public host resolves to, or the look-up's error."""
    result = partial(Result, "Public URL (PODIUM_PUBLIC_URL)")
    if not public_url:
        return result(
            "warn",
            "not set: answers carry root-relative URLs, fine behind one proxy that keeps paths, but webhooks, "
            "the podcast feed and invites shared elsewhere name no host",
            "set PODIUM_PUBLIC_URL=https://podium.example.org (the address people open)",
        )
    parts = urlsplit(public_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return result(
            "fail", f"{public_url!r} is not an http(s) address", "set PODIUM_PUBLIC_URL=https://podium.example.org"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return result(
            "fail",
            f"{public_url} has a path ({parts.path}): Podium's pages fetch /api/..., /hls/... from the root "
            "of the host, so under a path prefix they miss",
            f"serve Podium at the root of a host name of its own and set PODIUM_PUBLIC_URL="
            f"{parts.scheme}://{parts.netloc}",
        )
    if isinstance(addresses, str):
        return result(
            "fail",
            f"{parts.hostname} does not resolve ({addresses})",
            "add the DNS record for it, or correct PODIUM_PUBLIC_URL",
        )
    local = bool(addresses) and all(is_loopback(a) for a in addresses)
    if parts.scheme == "http" and not local:
        return result(
            "fail",
            f"{public_url} is plain http on a host other than this machine: browsers refuse the microphone "
            "on insecure origins, so no speaker can go on stage from a browser",
            f"serve it over TLS (nginx with a certificate, see deploy/nginx/podium.conf) and set "
            f"PODIUM_PUBLIC_URL=https://{parts.netloc}",
        )
    return result("ok", f"{public_url} ({parts.hostname} -> {', '.join(addresses)})")


def podium_node(answer: HttpAnswer) -> str | None:
    """The node id a /healthz answer names, or None if the answer is not Podium's."""
    body = answer.json()
    if answer.status == 200 and isinstance(body, dict) and body.get("alive") is True:
        return str(body.get("node", ""))
    return None


def check_running(answer: HttpAnswer) -> Result:
    result = partial(Result, "Podium answers")
    if answer.error:
        return result(
            "warn",
            f"nothing answers at {answer.url} ({answer.error}): the health and CORS checks were skipped",
            "start `podium serve` (same settings), then run `podium doctor` again, or pass --url with its address",
        )
    node = podium_node(answer)
    if node is None:
        return result(
            "fail",
            f"{answer.url} answers {answer.status}, but not as Podium's /healthz",
            "point --url (or PODIUM_HOST/PODIUM_PORT) at the address `podium serve` listens on",
        )
    return result("ok", f"{answer.url}: alive, node {node}")


def check_public_url_reaches(public_url: str, answer: HttpAnswer | None, own_node: str | None) -> Result:
    """`answer`: GET {public_url}/healthz from here, or None when it may not be sent from here."""
    result = partial(Result, "Public URL reaches Podium")
    if answer is None:
        return result(
            "skip",
            f"{NOT_HERE}: {public_url} is not on this machine",
            f'from another machine, `curl -s {public_url.rstrip("/")}/healthz` must show {{"alive": true, ...}}; '
            "or run `podium doctor --url URL` with a loopback address of the proxy",
        )
    if answer.error:
        return result(
            "fail",
            f"nothing answers at {answer.url} ({answer.error})",
            "make PODIUM_PUBLIC_URL the address people reach Podium at: check its port, and that the proxy "
            "(nginx) runs and passes requests to this node",
        )
    node = podium_node(answer)
    if node is None:
        return result(
            "fail",
            f"{answer.url} answers {answer.status}, but not as Podium",
            "the proxy must pass every path (including /healthz) to Podium; or PODIUM_PUBLIC_URL names another site",
        )
    if own_node is not None and node != own_node:
        return result(
            "warn",
            f"{answer.url} is answered by node {node}, not by this node ({own_node})",
            "fine behind a balancer over several nodes; otherwise the proxy passes requests to another Podium",
        )
    return result("ok", f"{answer.url} reaches Podium (node {node})")


def check_cors(kind: str, answer: HttpAnswer, needed_exposed: Sequence[str]) -> Result:
    result = partial(Result, f"CORS: {kind}")
    if answer.error:
        return result("skip", f"{answer.url}: {answer.error}")
    # Without --space the doctor reads the answers for a space that does not exist: the same headers.
    where = f"{answer.url} ({answer.status}{', no such space' if answer.status == 404 else ''})"
    origin = answer.headers.get("access-control-allow-origin", "")
    if not origin:
        return result(
            "fail",
            f"{where} has no Access-Control-Allow-Origin: embeds and players on other sites cannot read it",
            "let the proxy pass Podium's CORS headers (do not hide or override Access-Control-* in nginx or the CDN)",
        )
    exposed = {h.strip().lower() for h in answer.headers.get("access-control-expose-headers", "").split(",")}
    missing = [h for h in needed_exposed if h.lower() not in exposed]
    if missing:
        return result(
            "warn",
            f"{where}: Access-Control-Allow-Origin {origin}, but {', '.join(missing)} not in "
            "Access-Control-Expose-Headers: scripts on other sites cannot read them",
            "let the proxy pass Podium's Access-Control-Expose-Headers unchanged",
        )
    exposes = f", exposes {', '.join(needed_exposed)}" if needed_exposed else ""
    return result("ok", f"{where}: Access-Control-Allow-Origin {origin}{exposes}")


def check_clock(syncs: Sequence[ClockSync], offsets: Mapping[str, float]) -> Result:
    """`offsets`: seconds by which another clock (PostgreSQL, Redis) is ahead of this one."""
    result = partial(Result, "Clock")
    why = "scheduled starts, the pre-show and signed links (not-before, expiry) depend on it"
    worst = max(offsets.items(), key=lambda item: abs(item[1]), default=None)
    shown_offsets = ", ".join(f"{source} {offset:+.3f} s" for source, offset in offsets.items())
    if worst is not None and abs(worst[1]) > CLOCK_FAIL_S:
        return result(
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
        return result(
            "warn", found + extra, f"enable NTP (`timedatectl set-ntp true`, or install chrony) on this machine: {why}"
        )
    errors = [s.max_error_s for s in known if s.max_error_s is not None]
    bound = f", within {min(errors) * 1000:.0f} ms" if errors else ""
    return result("ok", f"synchronised (says {', '.join(s.source for s in known)}{bound}){extra}")


def hours_of_recording(free_bytes: int, kbps: int = RECORDING_KBPS) -> float:
    return free_bytes * 8 / (kbps * 1000) / 3600


def check_disk(label: str, path: Path, free_bytes: int, min_free_bytes: int) -> Result:
    result = partial(Result, f"Disk: {label}")
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
        return result("fail", f"{found}: below the minimum of {min_free_bytes / 2**30:.1f} GiB", fix)
    if free_bytes < 2 * min_free_bytes:
        return result("warn", f"{found}: less than twice the minimum of {min_free_bytes / 2**30:.1f} GiB", fix)
    return result("ok", found)


def check_writable(label: str, path: Path, error: str, exists: bool) -> Result:
    result = partial(Result, f"Writable: {label}")
    if error:
        return result(
            "fail",
            f"{path}: cannot write, fsync and remove a file ({error})",
            f"give the user that runs `podium serve` write access: `chown -R USER {path}`",
        )
    note = "" if exists else " (does not exist yet: `podium serve` creates it; its parent is writable)"
    return result("ok", f"{path}: a file was written, fsynced and removed{note}")


def check_secret(secret_length: int, file_mode: int | None, secret_path: Path, several_nodes: bool) -> Result:
    result = partial(Result, "Secret")
    if secret_length:
        return result("ok", f"PODIUM_SECRET is set ({secret_length} characters)")
    if several_nodes:
        return result(
            "fail",
            "a database or bus for several nodes is configured, but no PODIUM_SECRET: each node would sign "
            "with its own generated secret, and tokens from one would fail on the others",
            "give every node the same PODIUM_SECRET (`openssl rand -base64 48`)",
        )
    if file_mode is None:
        return result("ok", f"{secret_path} does not exist yet: generated (mode 0600) on first start")
    if file_mode & 0o077:
        return result(
            "fail",
            f"{secret_path} has mode {file_mode:04o}: other users can read it and sign tokens",
            f"`chmod 600 {secret_path}`",
        )
    return result("ok", f"{secret_path}, mode {file_mode:04o}")


def check_codecs(missing: Sequence[str], version: str) -> Result:
    result = partial(Result, "FFmpeg (PyAV)")
    if missing:
        return result(
            "fail",
            f"PyAV's FFmpeg {version} lacks {', '.join(missing)}: the stage cannot decode speakers or encode "
            "the stream",
            "install PyAV from its wheels (`pip install --force-reinstall av`), which bundle FFmpeg with libopus",
        )
    return result("ok", f"PyAV's FFmpeg {version}: libopus and the AAC encoder are there")


def check_hlsjs(found: Path | None) -> Result:
    result = partial(Result, "hls.js")
    if found is None:
        return result(
            "fail",
            "not found: listeners outside Safari get no audio",
            "run `npm install` in the Podium folder (`scripts/setup` does), or set PODIUM_HLSJS_DIR",
        )
    return result("ok", str(found))


def check_service(label: str, url: str, error: str) -> Result:
    result = partial(Result, f"{label} reachable")
    shown = hide_password(url)
    if error:
        setting = "PODIUM_DATABASE_URL" if label == "PostgreSQL" else "PODIUM_BUS_URL / PODIUM_LIMITS_URL"
        return result("fail", f"{shown}: {error}", f"start {label}, or correct {setting} (host, port, user, password)")
    return result("ok", shown)


def check_open_files(soft: int, hard: int) -> Result:
    result = partial(Result, "Open files (ulimit -n)")
    shown = "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
    if soft != resource.RLIM_INFINITY and soft < MIN_OPEN_FILES:
        return result(
            "warn",
            f"{shown}: at most about {max(soft - 100, 0)} listeners connected straight to this node "
            "(behind a cache tier only the proxy's connections count)",
            "raise it: LimitNOFILE=65536 in the systemd unit (deploy/systemd has it), or `ulimit -n 65536` "
            "before `podium serve`",
        )
    return result("ok", f"{shown} (hard limit {'unlimited' if hard == resource.RLIM_INFINITY else hard})")


def hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)
