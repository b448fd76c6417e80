"""STUN and TURN servers (PODIUM_ICE_SERVERS, whose forms the README gives): parsed once, checked
with clear errors, then handed to aiortc's peer connections, to the browsers' and to WHIP clients
(RFC 9725 Link headers). Sans-IO: no aiortc import here, so the settings can check the value cheaply.

TURN relays traffic at its operator's expense, so its credentials go only to the people on the
stage; with PODIUM_TURN_SECRET each gets their own (the TURN REST scheme), which stops working at
its expiry and names who leaked it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote

from podium.errors import InvalidInput

SCHEMES = ("stun", "turn", "turns")
DEFAULT_PORTS = {"stun": 3478, "turn": 3478, "turns": 5349}
# What aiortc's ICE agent accepts: TURN over UDP or TCP, TURN-over-TLS over TCP only.
TRANSPORTS = {"turn": ("udp", "tcp"), "turns": ("tcp",)}
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
FORMAT_HINT = (
    "write PODIUM_ICE_SERVERS as comma-separated stun:host:port and turn:user:password@host:port?transport=udp "
    "(or turns:…) entries, or as a JSON array of {urls, username, credential}"
)


@dataclass(frozen=True)
class IceServer:
    """One STUN or TURN server: `uri` carries no credentials (stun:host:port, turn:host:port?transport=udp)."""

    scheme: str
    host: str
    port: int
    transport: str = ""  # TURN only: "udp" or "tcp"
    username: str = ""
    credential: str = ""

    @property
    def uri(self) -> str:
        query = f"?transport={self.transport}" if self.transport else ""
        return f"{self.scheme}:{self.host}:{self.port}{query}"

    @property
    def is_turn(self) -> bool:
        return self.scheme in ("turn", "turns")

    def browser_view(self) -> dict[str, Any]:
        """The RTCIceServer a browser's `new RTCPeerConnection({iceServers})` takes."""
        view: dict[str, Any] = {"urls": [self.uri]}
        if self.is_turn:
            view["username"] = self.username
            view["credential"] = self.credential
        return view

    def link_header(self) -> str:
        """RFC 9725 §4.6: the WHIP answer's Link header value for this server."""
        link = f'<{self.uri}>; rel="ice-server"'
        if self.is_turn:
            link += f'; username="{_quoted(self.username)}"; credential="{_quoted(self.credential)}"'
            link += '; credential-type="password"'
        return link


def parse_ice_servers(raw: str, *, shared_secret: bool = False) -> tuple[IceServer, ...]:
    """Every server the setting names, in order; InvalidInput naming the entry that is wrong.
    `shared_secret`: TURN credentials are made from a secret (`turn_rest_credentials`), so TURN
    entries may come without any."""
    text = raw.strip()
    if not text:
        return ()
    if text.startswith("["):
        return _parse_json(text, shared_secret)
    return tuple(_parse_uri(entry.strip(), "", "", shared_secret) for entry in text.split(",") if entry.strip())


def turn_rest_credentials(secret: str, member: str, now_s: float, lifetime_s: int) -> tuple[str, str]:
    """The TURN REST scheme's user name (`<expiry>:<member>`) and password (base64 HMAC-SHA1 of
    the user name, keyed with the shared secret), as coturn's `use-auth-secret` checks them."""
    username = f"{int(now_s) + lifetime_s}:{member}"
    password = base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode("ascii")
    return username, password


def with_credentials(
    servers: Sequence[IceServer], secret: str, member: str, now_s: float, lifetime_s: int
) -> tuple[IceServer, ...]:
    """`servers` for one member: with a shared secret, every TURN entry gets the member's own
    short-lived credentials (in place of any written in the setting); without one, as they are."""
    if not secret:
        return tuple(servers)
    username, password = turn_rest_credentials(secret, member, now_s, lifetime_s)
    return tuple(replace(s, username=username, credential=password) if s.is_turn else s for s in servers)


def _parse_json(text: str, shared_secret: bool) -> tuple[IceServer, ...]:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise InvalidInput(f"PODIUM_ICE_SERVERS is not valid JSON ({error}); {FORMAT_HINT}") from None
    servers: list[IceServer] = []
    for item in value:
        if not isinstance(item, dict) or "urls" not in item:
            raise InvalidInput(f"PODIUM_ICE_SERVERS: each JSON entry needs urls, not {item!r}; {FORMAT_HINT}")
        urls = item["urls"] if isinstance(item["urls"], list) else [item["urls"]]
        username, credential = item.get("username", ""), item.get("credential", "")
        if not all(isinstance(v, str) for v in (*urls, username, credential)):
            raise InvalidInput("PODIUM_ICE_SERVERS: urls, username and credential must be strings")
        servers.extend(_parse_uri(url.strip(), username, credential, shared_secret) for url in urls)
    return tuple(servers)


def _parse_uri(entry: str, username: str, credential: str, shared_secret: bool = False) -> IceServer:
    shown = _hide_credentials(entry)
    scheme, colon, rest = entry.partition(":")
    scheme = scheme.lower()
    if not colon or scheme not in SCHEMES:
        raise InvalidInput(f"PODIUM_ICE_SERVERS entry {shown!r} must start with stun:, turn: or turns:; {FORMAT_HINT}")
    rest = rest.removeprefix("//")
    address, _, query = rest.partition("?")
    if "@" in address:
        if scheme == "stun":
            raise InvalidInput(f"PODIUM_ICE_SERVERS entry {shown!r}: a STUN server takes no user name or password")
        userinfo, _, address = address.rpartition("@")
        user, has_password, password = userinfo.partition(":")
        if not has_password:
            raise InvalidInput(f"PODIUM_ICE_SERVERS entry {shown!r}: write the credentials as user:password@host")
        username, credential = unquote(user), unquote(password)
    host, _, port_text = address.partition(":")
    if not _HOST.fullmatch(host):
        raise InvalidInput(f"PODIUM_ICE_SERVERS entry {shown!r}: {host!r} is not a host name or IPv4 address")
    port = DEFAULT_PORTS[scheme]
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise InvalidInput(f"PODIUM_ICE_SERVERS entry {shown!r}: the port must be a number from 1 to 65535")
        port = int(port_text)
    transport = _transport(scheme, query, shown)
    if scheme != "stun" and not (username and credential) and not shared_secret:
        raise InvalidInput(
            f"PODIUM_ICE_SERVERS entry {shown!r}: a TURN server needs a user name and a password "
            f"({scheme}:user:password@{host}:{port}), or PODIUM_TURN_SECRET (coturn's static-auth-secret)"
        )
    if scheme == "stun":
        username = credential = ""
    return IceServer(scheme, host.lower(), port, transport, username, credential)


def _transport(scheme: str, query: str, shown: str) -> str:
    params = dict(part.partition("=")[::2] for part in query.split("&") if part)
    unknown = set(params) - {"transport"}
    if unknown or (scheme == "stun" and params):
        raise InvalidInput(f"PODIUM_ICE_SERVERS entry {shown!r}: only TURN entries take ?transport=udp or tcp")
    if scheme == "stun":
        return ""
    transport = params.get("transport", TRANSPORTS[scheme][0]).lower()
    if transport not in TRANSPORTS[scheme]:
        allowed = " or ".join(TRANSPORTS[scheme])
        raise InvalidInput(f"PODIUM_ICE_SERVERS entry {shown!r}: {scheme}: takes transport={allowed}")
    return transport


def _hide_credentials(entry: str) -> str:
    # Errors and logs name the entry, never its password.
    head, at, tail = entry.rpartition("@")
    if not at:
        return entry
    scheme, _, userinfo = head.partition(":")
    return f"{scheme}:{userinfo.partition(':')[0]}:***@{tail}"


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
