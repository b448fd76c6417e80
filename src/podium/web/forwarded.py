"""A client's own address behind the cache tier, from the proxies' `X-Forwarded-For`. Each proxy
appends the address it was reached from, so whatever the client sent stands at the left: the client
is found by walking from the right past the trusted proxies (the leftmost entry would let every
client choose its address, and escape every per-address limit). `*` trusts whoever connects, for
one hop: only safe when nothing but the proxy can reach the node.

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
