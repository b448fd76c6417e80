"""The door every request passes, an ASGI middleware before any routing, body read or database:
a body-size cap, a cap on requests in flight per address, and load shedding by request class.

A STAGE-class request is served as STAGE only with a member token of its space, checked by its
signature alone (see `admission.classes`): strangers never hold the capacity the stage is promised.
Per address (an IPv4 address, an IPv6 /64) at most `max_per_address` requests are in the works at
once (`429` past it), listeners' reads aside (a whole audience behind one NAT reads the same
playlist). A client that goes away before its request was read is counted (`ClassStats.abandoned`)
and logged at debug, never a traceback. `sample_lag` samples the event-loop lag the governor needs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from podium.admission.classes import Credential, Door, RequestClass
from podium.admission.limits import network_of
from podium.admission.load import Governor
from podium.admission.tickets import TicketSigner
from podium.domain.tokens import TokenSigner
from podium.errors import PodiumError
from podium.ids import SpaceId

log = logging.getLogger(__name__)

LAG_SAMPLE_S = 0.05
RETRY_AFTER_S = (2, 6)  # spread, so the shed do not all come back in the same second

_SHED_MESSAGES = {
    RequestClass.REACTION: "Podium is very busy: reactions are paused for a moment; try again in {s} s",
    RequestClass.POST: "Podium is very busy: your message was not sent; try again in {s} s (the conversation goes on)",
    RequestClass.OTHER: "Podium is very busy right now; try again in {s} s",
}


async def _answer(send: Send, status: int, message: str, retry_after_s: int | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"access-control-allow-origin", b"*"),
        (b"access-control-expose-headers", b"Location, Link, ETag, Retry-After"),
    ]
    if retry_after_s is not None:
        headers.append((b"retry-after", str(retry_after_s).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return network_of(client[0]) if client else "unknown"


# How the door treats a method and path (the route table's `door`), and the space the path names.
DoorOf = Callable[[str, str], tuple[Door, SpaceId | None]]


@dataclass(eq=False)
class Gate:
    app: ASGIApp
    governor: Governor
    max_body_bytes: int
    door_of: DoorOf
    tokens: TokenSigner
    passes: TicketSigner
    max_per_address: int

    def __post_init__(self) -> None:
        # Requests in the works per address. Invariant: only addresses with one or more are kept.
        self._per_address: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None and not declared.isdecimal():  # ASCII 0-9 only, in latin-1 ("²" is a digit)
            await _answer(send, 400, "Content-Length is not a number")
            return
        if declared is not None and int(declared) > self.max_body_bytes:
            message = f"the body is {declared} bytes; the limit is {self.max_body_bytes}"
            await _answer(send, 413, message)
            return
        method, path = scope["method"], scope["path"]
        door, space = self.door_of(method, path)
        kind = door.klass
        if door.credential is not None and not self._holds(door.credential, headers, space):
            kind = door.without
        address = _address(scope)
        counted = kind is not RequestClass.LISTENING
        if counted and self._per_address[address] >= self.max_per_address:
            self.governor.stats.crowded[kind] += 1
            message = (
                f"too many requests at once from your network (at most {self.max_per_address}); "
                "try again when one has been answered"
            )
            await _answer(send, 429, message, 1)
            return
        if not self.governor.admit(kind):
            retry = random.randint(*RETRY_AFTER_S)
            await _answer(send, 503, _SHED_MESSAGES[kind].format(s=retry), retry)
            return
        scope.setdefault("state", {})["request_class"] = kind
        if counted:
            self._per_address[address] += 1
        try:
            await self.app(scope, receive, send)
        except ClientDisconnect:
            # The client hung up while sending its request: nobody is left to answer.
            self.governor.stats.abandoned[kind] += 1
            log.debug("%s %s from %s: the client went away before its request was read", method, path, address)
        finally:
            self.governor.done(kind)
            if counted:
                self._per_address[address] -= 1
                if self._per_address[address] <= 0:
                    del self._per_address[address]

    def _holds(self, credential: Credential, headers: Headers, space: SpaceId | None) -> bool:
        """The credential for the space the path names, by its signature alone."""
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or space is None:
            return False
        if credential is Credential.PASS:
            return self.passes.pass_is_for(token.strip(), space)
        try:
            self.tokens.verify_for(token.strip(), space)
        except PodiumError:
            return False
        return True


async def sample_lag(governor: Governor, interval_s: float = LAG_SAMPLE_S) -> None:
    """Forever: how late the event loop wakes a sleeper, reported to the governor.

    On the loop's own real clock, not the injected one: what is measured is the real loop."""
    loop = asyncio.get_running_loop()
    while True:
        expected = loop.time() + interval_s
        await asyncio.sleep(interval_s)
        governor.observe_lag(max(0.0, (loop.time() - expected) * 1000))
