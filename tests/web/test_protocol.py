"""The protocol's limits on a request head and body, on a real socket with a stub application."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator

import pytest
from starlette.types import Message, Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.server import ServerState

from podium.errors import InvalidInput
from podium.settings import Settings
from podium.web.protocol import connections_cut, protocol_with_limits


class Recorder:
    """An application that reads the whole body, then answers with its length."""

    def __init__(self) -> None:
        self.seen: list[Message] = []
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        size = 0
        while True:
            message = await receive()
            self.seen.append(message)
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = str(size).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})


@contextlib.asynccontextmanager
async def serving(app: Recorder, body_timeout_s: float = 0.3, max_head: int = 2048) -> AsyncIterator[int]:
    protocol = protocol_with_limits(5.0, body_timeout_s, max_head, 1024)
    config = Config(app, http=protocol)
    config.load()
    state = ServerState()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: protocol(config, state, {}, loop), "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def exchange(port: int, *pieces: bytes, pause_s: float = 0.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            # Real time on purpose: a slow client against the protocol's deadlines, which run on
            # the event loop's real clock (as a socket's do).
            await asyncio.sleep(pause_s)
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def statuses(answer: bytes) -> list[int]:
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]


async def test_a_body_that_stops_coming_is_answered_408_and_the_application_sees_the_client_go() -> None:
    app = Recorder()
    before = connections_cut()["body_timeout"]
    async with serving(app) as port:
        answer = await exchange(port, b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12")
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
    assert answer.endswith(b"The request body did not arrive within 0.3 seconds.\n")
    assert app.seen[-1]["type"] == "http.disconnect"
    assert connections_cut()["body_timeout"] == before + 1


async def test_bodies_and_heads_within_the_limits_pass_even_pipelined_in_one_write() -> None:
    app = Recorder()
    body = b"b" * 5000  # more than a head may be, in the same write as two heads
    data = (
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"
        + body
        + b"GET /b HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-Pad-%d: %s\r\n" % (n, b"p" * 500) for n in range(3))
        + b"Connection: close\r\n\r\n"
    )
    async with serving(app) as port:
        answer = await exchange(port, data)
        slow_but_in_time = await exchange(
            port, b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\n1", b"234", pause_s=0.1
        )
    assert statuses(answer) == [200, 200] and answer.endswith(b"0")
    assert b"\r\n\r\n5000" in answer
    assert statuses(slow_but_in_time) == [200]


async def test_a_head_past_its_limit_is_answered_431_without_reaching_the_application() -> None:
    app = Recorder()
    before = connections_cut()
    async with serving(app) as port:
        too_large = await exchange(port, b"GET / HTTP/1.1\r\n" + b"X-Pad: aaaaaaaaaa\r\n" * 200)
        too_long = await exchange(port, b"GET / HTTP/1.1\r\nCookie: " + b"c" * 1100 + b"\r\n\r\n")
        address = await exchange(port, b"GET /" + b"u" * 1100 + b" HTTP/1.1\r\n\r\n")
        # After a good request on a kept-alive connection, the next head is held to the same limit.
        good, huge = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"GET / HTTP/1.1\r\n" + b"X-Pad: a\r\n" * 400
        second = await exchange(port, good, huge, pause_s=0.2)
    assert too_large.startswith(b"HTTP/1.1 431 ") and too_large.endswith(b"larger than 2048 bytes.\n")
    assert too_long.startswith(b"HTTP/1.1 431 ") and too_long.endswith(b"longer than 1024 bytes.\n")
    assert address.startswith(b"HTTP/1.1 414 ") and address.endswith(b"address is longer than 1024 bytes.\n")
    assert statuses(second) == [200, 431]
    assert app.calls == 1
    after = connections_cut()
    assert after["head_too_large"] == before["head_too_large"] + 2
    assert after["line_too_long"] == before["line_too_long"] + 2


def test_the_edge_limits_are_settings_checked_at_start() -> None:
    settings = Settings.load({"PODIUM_BODY_TIMEOUT_S": "5", "PODIUM_MAX_HEAD_BYTES": "32768"})
    assert (settings.body_timeout_s, settings.max_head_bytes, settings.max_header_line_bytes) == (5.0, 32768, 8192)
    assert Settings().max_in_flight_per_address == 64
    for wrong in (
        {"PODIUM_BODY_TIMEOUT_S": "0"},
        {"PODIUM_MAX_IN_FLIGHT_PER_ADDRESS": "0"},
        {"PODIUM_MAX_HEADER_LINE_BYTES": "20000"},  # longer than the whole head may be
        {"PODIUM_MAX_HEADER_LINE_BYTES": "100"},
    ):
        with pytest.raises(InvalidInput, match="PODIUM_"):
            Settings.load(wrong)
