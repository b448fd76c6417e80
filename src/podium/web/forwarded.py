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

from starlette.types import ASGIApp, Receive, Scope, Send

from podium.addresses import TrustedProxies, client_address, ip_of


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
            if (forwarded or proto is not None) and self.trusted.trusts(ip_of(peer)):
                if forwarded:
                    header = b",".join(forwarded).decode("latin-1")
                    scope["client"] = (client_address(peer, header, self.trusted), 0)
                scheme = (proto or b"").decode("latin-1").strip().lower()
                if scope["type"] == "http" and scheme in ("http", "https"):
                    scope["scheme"] = scheme
        await self.app(scope, receive, send)
