"""Webhooks, the rules: what a subscription and a delivery attempt are, which URLs are accepted,
and how a delivery is signed (Standard Webhooks: https://www.standardwebhooks.com/). No I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from podium import urls
from podium.addresses import LOCAL_NAT64, embedded_ipv4
from podium.domain.space import Space
from podium.errors import InvalidInput
from podium.ids import SpaceId

# What a subscription gets. Not `space.scheduled`: it happens before any URL can be registered,
# and registering sends nothing (podium.webhooks says why).
EVENTS = ("space.started", "space.ended", "replay.ready")
MAX_URL_CHARS = 2048
MAX_HOOKS_PER_SPACE = 5
SECRET_PREFIX = "whsec_"


@dataclass(frozen=True)
class Hook:
    """A URL the host registered for one space's events, with the secret its deliveries are signed with."""

    id: str
    space_id: SpaceId
    url: str
    secret: str
    created_at: datetime


@dataclass(frozen=True)
class Attempt:
    """One try at delivering one event to one hook: `status` when it answered, else `error`."""

    event_id: str
    event_type: str
    hook_id: str
    url: str
    attempt: int  # 1 for the first try
    status: int | None
    error: str | None
    duration_ms: int
    at: datetime

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def new_hook_id() -> str:
    return "wh_" + secrets.token_hex(8)


def new_event_id() -> str:
    return "msg_" + secrets.token_hex(12)


def new_secret() -> str:
    """24 random bytes, base64, prefixed as Standard Webhooks libraries expect."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def sign(secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`,
    keyed with the secret's decoded bytes."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def check_url(url: object) -> str:
    """A webhook URL as given, if it is one: http(s), a host, a bounded length, nothing odd."""
    if not isinstance(url, str) or not url:
        raise InvalidInput('url is required: {"url": "https://example.org/hooks/podium"}')
    if len(url) > MAX_URL_CHARS:
        raise InvalidInput(f"the url is {len(url)} characters; the limit is {MAX_URL_CHARS}")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise InvalidInput("the url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as error:
        raise InvalidInput(f"the url cannot be read: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("the url must start with https:// (or http://)")
    if not parts.hostname:
        raise InvalidInput("the url has no host name")
    return url


def is_public(address: str) -> bool:
    """Whether an IP address is one on the public internet (not private, loopback, link-local,
    shared, reserved or multicast). An IPv6 address that carries an IPv4 address (NAT64, 6to4,
    Teredo, IPv4-compatible, -mapped or -translated) is public only if that IPv4 address is."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in LOCAL_NAT64:
            return False
        inner = embedded_ipv4(ip)
        if inner:
            return all(v4.is_global and not v4.is_multicast for v4 in inner)
    return ip.is_global and not ip.is_multicast


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def payload(event_type: str, space: Space, base_url: str, now: datetime) -> dict[str, Any]:
    """The JSON body of an event (Standard Webhooks' shape: type, timestamp, data). URLs are
    absolute when the instance knows its public address (PODIUM_PUBLIC_URL), else root-relative."""
    data: dict[str, Any] = {
        "space": {
            "id": space.id,
            "title": space.title,
            "state": space.state.value,
            "starts_at": _iso(space.starts_at),
            "started_at": _iso(space.started_at),
            "ended_at": _iso(space.ended_at),
            "page": base_url + urls.fill(urls.LISTEN_PAGE, space_id=space.id),
        }
    }
    if event_type == "replay.ready":
        data["replay"] = base_url + urls.fill(urls.HLS, space_id=space.id) + "index.m3u8"
        data["download"] = base_url + urls.fill(urls.DOWNLOAD, space_id=space.id)
    return {"type": event_type, "timestamp": _iso(now), "data": data}
