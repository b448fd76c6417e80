"""Slow clients against a real `podium serve`: a request head that trickles in is cut at the deadline."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import resource
import statistics
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.server import ServerState

from podium.web.protocol import HeaderDeadlineProtocol, connections_cut, protocol_with_limits
from tests.conftest import Server, free_port

DEADLINE_S = 3.0
# Generous: a loaded machine may be slow to accept 500 connections and to run their timers.
MARGIN_S = 8.0
SLOW_CONNECTIONS = 500


@pytest.fixture(scope="module")
def impatient_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # 500 client sockets in this process, and as many in the server, which inherits the limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    root: Path = tmp_path_factory.mktemp("slow-clients")
    env = {
        "PODIUM_HEADER_TIMEOUT_S": str(DEADLINE_S),
        # The load governor sheds listings for 2 s after one event-loop stall of 75 ms, which a shared
        # test machine produces by itself now and then; here we measure latency, not shedding.
        "PODIUM_MAX_LAG_MS": "2000",
    }
    srv = Server(root / "data", free_port(), root / "podium.log", env=env)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@dataclass
class Ending:
    """How a slow connection ended, as its client saw it."""

    lived_s: float | None  # None: still open when the client gave up
    answer: bytes
    closed_at: float  # loop time


async def slow_connection(port: int, connected: asyncio.Event | None = None, *, silent: bool = False) -> Ending:
    """Starts a request, then sends its headers a byte a second (or nothing) until the server closes it."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = loop.time()
    if connected is not None:
        connected.set()

    async def drip() -> None:
        if silent:
            return
        writer.write(b"GET / HTTP/1.1\r\n")
        for byte in itertools.cycle(b"X-Slow: still coming\r\n"):
            # Real time on purpose: a slow client against the server's header deadline (real sockets).
            await asyncio.sleep(1)
            writer.write(bytes([byte]))

    dripping = asyncio.create_task(drip())
    try:
        answer = await asyncio.wait_for(reader.read(), DEADLINE_S + MARGIN_S)  # everything up to EOF
    except TimeoutError:
        return Ending(None, b"", loop.time())
    except ConnectionResetError:
        answer = b""
    finally:
        dripping.cancel()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return Ending(loop.time() - started, answer, loop.time())


@contextlib.asynccontextmanager
async def slow_connections_held(port: int) -> AsyncIterator[list[asyncio.Task[Ending]]]:
    """The slow connections, all connected; any still running when the block ends are dropped."""
    events = [asyncio.Event() for _ in range(SLOW_CONNECTIONS)]
    tasks = [asyncio.create_task(slow_connection(port, event)) for event in events]
    try:
        await asyncio.gather(*(event.wait() for event in events))
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def assert_cut_at_deadline(endings: list[Ending]) -> None:
    still_open = [e for e in endings if e.lived_s is None]
    assert not still_open, f"{len(still_open)} of {len(endings)} slow connections were still open after {MARGIN_S} s"
    lives = sorted(e.lived_s for e in endings if e.lived_s is not None)
    answered = sum(e.answer.startswith(b"HTTP/1.1 408 ") for e in endings)
    print(
        f"\n{len(endings)} slow connections closed by the server after {lives[0]:.2f}-{lives[-1]:.2f} s "
        f"(median {statistics.median(lives):.2f} s, deadline {DEADLINE_S} s); {answered} got a 408"
    )
    for ending in endings:
        assert ending.answer == b"" or ending.answer.startswith(b"HTTP/1.1 408 "), ending.answer[:200]
    # Not long before the deadline (the client's clock starts late when it is busy opening 500 sockets).
    assert lives[0] >= DEADLINE_S / 2


async def test_slow_connections_are_closed_at_the_header_deadline(impatient_server: Server) -> None:
    silent = asyncio.create_task(slow_connection(impatient_server.port, silent=True))
    async with slow_connections_held(impatient_server.port) as tasks:
        endings = await asyncio.gather(*tasks)
    assert_cut_at_deadline(endings)
    nothing_sent = await silent
    assert nothing_sent.lived_s is not None, "a connection that sent nothing was never closed"
    assert nothing_sent.answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"connection: close" in nothing_sent.answer.lower()
    assert nothing_sent.answer.endswith(f"did not arrive within {DEADLINE_S:g} seconds.\n".encode())


async def test_legitimate_requests_stay_fast_while_slow_connections_are_held(impatient_server: Server) -> None:
    latencies_ms: list[float] = []

    async def visitor(client: httpx.AsyncClient, requests: int) -> None:
        for _ in range(requests):
            began = time.perf_counter()
            response = await client.get("/api/spaces")
            latencies_ms.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200, response.text

    loop = asyncio.get_running_loop()
    async with slow_connections_held(impatient_server.port) as tasks:
        all_connected = loop.time()
        async with httpx.AsyncClient(base_url=impatient_server.base, timeout=10) as client:
            await asyncio.gather(*(visitor(client, 20) for _ in range(10)))
        served_by = loop.time()
        endings = await asyncio.gather(*tasks)

    quantiles = statistics.quantiles(latencies_ms, n=100)
    print(
        f"\n{len(latencies_ms)} legitimate requests beside {SLOW_CONNECTIONS} slow connections, "
        f"in {served_by - all_connected:.2f} s: p50 {quantiles[49]:.1f} ms, p99 {quantiles[98]:.1f} ms, "
        f"max {max(latencies_ms):.1f} ms"
    )
    assert len(latencies_ms) == 200
    # The figures mean something only if the slow connections were all still held meanwhile.
    assert served_by < min(e.closed_at for e in endings), "slow connections were cut before the visitors were done"
    assert quantiles[98] < 500
    assert_cut_at_deadline(endings)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
    return int(lines[0].split()[1]), await reader.readexactly(length)


async def test_a_kept_alive_connection_may_idle_and_send_its_head_in_pieces(impatient_server: Server) -> None:
    request = f"GET /api/spaces HTTP/1.1\r\nHost: 127.0.0.1:{impatient_server.port}\r\n\r\n".encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", impatient_server.port)
    try:
        for turn in range(3):
            if turn:
                # Idle longer than the header deadline, shorter than the keep-alive timeout (15 s):
                # real time on purpose, the server's deadlines are on its real clock.
                await asyncio.sleep(DEADLINE_S + 0.5)
            # The head in two halves, together well within the deadline.
            writer.write(request[:10])
            await asyncio.sleep(DEADLINE_S / 3)  # real time on purpose: a head that comes in pieces
            writer.write(request[10:])
            status, _ = await read_response(reader)
            assert status == 200
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_the_next_request_on_a_kept_alive_connection_has_the_same_deadline(impatient_server: Server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", impatient_server.port)
    try:
        writer.write(f"GET /api/spaces HTTP/1.1\r\nHost: 127.0.0.1:{impatient_server.port}\r\n\r\n".encode())
        assert (await read_response(reader))[0] == 200
        writer.write(b"GET /api/spaces HTTP/1.1\r\nX-Slow: ")
        began = time.monotonic()
        for byte in itertools.cycle(b"still coming "):
            with contextlib.suppress(TimeoutError):
                answer = await asyncio.wait_for(reader.read(), 1)
                break
            assert time.monotonic() - began < DEADLINE_S + MARGIN_S, "the trickling second request was never cut"
            writer.write(bytes([byte]))
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_connections_cut_are_counted() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("no request should reach the application")

    base = HeaderDeadlineProtocol
    protocol = protocol_with_limits(0.2, base.body_timeout_s, base.max_head_bytes, base.max_line_bytes)
    config = Config(app, http=protocol)
    config.load()
    state = ServerState()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: protocol(config, state, {}, loop), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    before = connections_cut()["head_timeout"]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\n")
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert connections_cut()["head_timeout"] == before + 1


def test_podium_serve_listens_with_the_configured_backlog(tmp_path: Path) -> None:
    """The kernel's accept queue in front of Podium is as deep as PODIUM_LISTEN_BACKLOG says (`ss`
    shows a listening socket's backlog as its Send-Q), so a cache tier's burst of new connections
    waits there instead of having its SYNs dropped."""
    import shutil
    import subprocess

    if shutil.which("ss") is None:
        pytest.fail("ss (iproute2) is needed to read the listening socket's backlog")
    server = Server(tmp_path / "data", free_port(), tmp_path / "podium.log", env={"PODIUM_LISTEN_BACKLOG": "333"})
    server.start()
    try:
        shown = subprocess.run(
            ["ss", "-Hltn", f"sport = :{server.port}"], capture_output=True, text=True, check=True
        ).stdout.split()
        assert shown[0] == "LISTEN" and shown[2] == "333", shown
    finally:
        server.stop()
    refused = Server(tmp_path / "data2", free_port(), tmp_path / "refused.log", env={"PODIUM_LISTEN_BACKLOG": "0"})
    with pytest.raises(RuntimeError, match="PODIUM_LISTEN_BACKLOG must be between 1 and 1,000,000"):
        refused.start()
