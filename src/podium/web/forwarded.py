"""A client's own address behind the cache tier, from the proxies' `X-Forwarded-For`. Each proxy
appends the address it was reached from, so whatever the client sent stands at the left: the client
is found by walking from the right past the trusted proxies (the leftmost entry would let every
client choose its address, and escape every per-address limit). `*` trusts whoever connects, for
one hop: only safe when nothing but the proxy can reach the node.

Invariant: the address comes from the peer itself or from an entry a trusted proxy appended;
never from an entry the client could have written.
"""

from __future__ import annotations

from starlette.datastructures import Headers
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
            headers = Headers(scope=scope)
            forwarded, proto = headers.getlist("x-forwarded-for"), headers.getlist("x-forwarded-proto")
            if (forwarded or proto) and self.trusted.trusts(ip_of(peer)):
                if forwarded:
                    scope["client"] = (client_address(peer, ",".join(forwarded), self.trusted), 0)
                scheme = proto[-1].strip().lower() if proto else ""  # the last one sent counts
                if scope["type"] == "http" and scheme in ("http", "https"):
                    scope["scheme"] = scheme
        await self.app(scope, receive, send)
