"""The door every request passes: a body-size cap and load shedding by request class.

An ASGI middleware in front of everything else, so a shed or oversized request costs a few string
operations: no routing, no body read, no token check, no database. The event-loop lag the governor
needs is sampled by `sample_lag`, a task the application runs for its lifetime.
"""

from __future__ import annotations

import asyncio
import json
import random

from starlette.types import ASGIApp, Receive, Scope, Send

from podium.admission.classes import RequestClass, classify
from podium.admission.load import Governor

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


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return None


class Gate:
    def __init__(self, app: ASGIApp, governor: Governor, max_body_bytes: int) -> None:
        self.app = app
        self.governor = governor
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared < 0:
            await _answer(send, 400, "Content-Length is not a number")
            return
        if declared is not None and declared > self.max_body_bytes:
            message = f"the body is {declared} bytes; the limit is {self.max_body_bytes}"
            await _answer(send, 413, message)
            return
        kind = classify(scope["method"], scope["path"])
        if not self.governor.admit(kind):
            retry = random.randint(*RETRY_AFTER_S)
            await _answer(send, 503, _SHED_MESSAGES[kind].format(s=retry), retry)
            return
        scope.setdefault("state", {})["request_class"] = kind
        try:
            await self.app(scope, receive, send)
        finally:
            self.governor.done(kind)


async def sample_lag(governor: Governor, interval_s: float = LAG_SAMPLE_S) -> None:
    """Forever: how late the event loop wakes a sleeper, reported to the governor."""
    loop = asyncio.get_running_loop()
    while True:
        expected = loop.time() + interval_s
        await asyncio.sleep(interval_s)
        governor.observe_lag(max(0.0, (loop.time() - expected) * 1000))
