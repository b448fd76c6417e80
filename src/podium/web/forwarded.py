"""A client's own address behind the cache tier, from the proxies' `X-Forwarded-For`.

Each proxy appends the address it was reached from, so only the right end of the header is
written by proxies; whatever the client sent arrives at the left, ahead of them (nginx's
`$proxy_add_x_forwarded_for` keeps it). The client is therefore found by walking from the right
past the trusted proxies: the first address that is not one of them is the one the nearest
trusted proxy saw. Taking the leftmost entry instead would let every client choose its own
address, and with it escape every per-address limit.

`*` trusts whoever connects, for one hop: the rightmost entry, the one the connecting proxy
appended. It is only safe when nothing but the proxy can reach the node.

Invariant: the address comes from the peer itself or from an entry a trusted proxy appended;
never from an entry the client could have written.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from podium.errors import InvalidInput

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_ENTRIES = 32  # proxies a request may have passed; more entries than this are not walked


@dataclass(frozen=True)
class TrustedProxies:
    """The proxies whose `X-Forwarded-For` is believed: networks, or everyone for one hop (`*`)."""

    networks: tuple[IpNetwork, ...]
    anyone: bool = False

    @classmethod
    def parse(cls, text: str) -> TrustedProxies:
        """`127.0.0.1,::1,10.0.0.0/8`, or `*` alone. Raises InvalidInput naming a wrong entry."""
        entries = [entry.strip() for entry in text.split(",") if entry.strip()]
        if entries == ["*"]:
            return cls((), anyone=True)
        networks: list[IpNetwork] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise InvalidInput(
                    f"PODIUM_FORWARDED_ALLOW_IPS: {entry!r} is not an address or network "
                    "(list the proxies' addresses, e.g. 127.0.0.1,10.0.0.0/24)"
                ) from None
        return cls(tuple(networks))

    def trusts(self, address: IpAddress | None) -> bool:
        if self.anyone:
            return True
        if address is None:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


def _ip(text: str) -> IpAddress | None:
    """An address from a header entry: `1.2.3.4`, `1.2.3.4:5678`, `::1` or `[::1]:80`; else None."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else text
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_address(peer: str, forwarded_for: str | None, trusted: TrustedProxies) -> str:
    """The client's address: `peer` (who connected) unless it is a trusted proxy that says whom it
    forwards for. The walk stops at the first entry that is not a trusted proxy; an entry that is
    no address at all stands for nothing better than the proxy that wrote it."""
    if forwarded_for is None or not trusted.trusts(_ip(peer)):
        return peer
    entries = [entry for entry in forwarded_for.split(",") if entry.strip()][-MAX_ENTRIES:]
    if not entries:
        return peer
    if trusted.anyone:
        entries = entries[-1:]  # one hop: only what the connecting proxy appended
    reporter = peer
    for entry in reversed(entries):
        address = _ip(entry)
        if address is None:
            return reporter
        if not trusted.trusts(address) or trusted.anyone:
            return str(address)
        reporter = str(address)
    return reporter  # proxies all the way: the request came from a trusted machine itself


class ForwardedFor:
    """ASGI: sets `scope["client"]` (and the scheme, from `X-Forwarded-Proto`) from a trusted
    proxy's headers; a request from anyone else keeps its own address and scheme."""

    def __init__(self, app: ASGIApp, trusted: TrustedProxies) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and scope.get("client"):
            peer: str = scope["client"][0]
            forwarded: list[bytes] = []
            proto: bytes | None = None
            for name, value in scope["headers"]:
                if name == b"x-forwarded-for":
                    forwarded.append(value)
                elif name == b"x-forwarded-proto":
                    proto = value
            if (forwarded or proto is not None) and self.trusted.trusts(_ip(peer)):
                if forwarded:
                    header = b",".join(forwarded).decode("latin-1")
                    scope["client"] = (client_address(peer, header, self.trusted), 0)
                scheme = (proto or b"").decode("latin-1").strip().lower()
                if scope["type"] == "http" and scheme in ("http", "https"):
                    scope["scheme"] = scheme
        await self.app(scope, receive, send)
