"""The load generators' HTTP/1.1 client: lean keep-alive connections (httptools parses; httpx would spend the
load generator's CPU on itself), one per client (`LeanClient`) or shared by many (`ConnectionPool`).

A connection carries one request at a time and keeps only the answer headers asked for."""

from __future__ import annotations

import asyncio
import collections
from typing import cast

import httptools

Answer = tuple[int, dict[bytes, bytes], bytes]  # status, the kept headers (lower-case names), body


class LeanConnection(asyncio.Protocol):
    keep_headers: tuple[bytes, ...] = (b"x-cache-status", b"retry-after")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Answer] | None = None
        self.alive = True
        self.keep_alive = True
        self.got_bytes = False  # since the last request was sent (a reused connection may be stale)
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        self._fail(ConnectionError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"bad response: {exc}"))
            self.close()

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def close(self) -> None:
        self.alive = False
        if self.transport is not None:
            self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._headers = {}
        self._body = []

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name in self.keep_headers:
            self._headers[name] = value

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((self.parser.get_status_code(), self._headers, b"".join(self._body)))


class LeanClient:
    """One client's keep-alive connection (optionally from its own source address), opened when needed and
    opened again when the server closed it; one request at a time."""

    def __init__(self, host: str, port: int, local: str | None = None, timeout_s: float = 15.0) -> None:
        self.host, self.port, self.local, self.timeout_s = host, port, local, timeout_s
        self.conn: LeanConnection | None = None
        self._host_header = f"Host: {host}:{port}\r\n".encode()

    async def request(self, method: str, path: str, body: bytes | None = None) -> Answer:
        """Send a request, wait for the whole answer (up to `timeout_s`); raises OSError, TimeoutError or
        ConnectionError. A kept-alive connection the server closed meanwhile is replaced once."""
        loop = asyncio.get_running_loop()
        head = f"{method} {path} HTTP/1.1\r\n".encode() + self._host_header
        if body is not None:
            head += b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
        data = head + b"\r\n" + (body or b"")
        for attempt in range(2):
            reused = self.conn is not None and self.conn.alive
            if not reused:
                local = (self.local, 0) if self.local else None
                _, self.conn = await asyncio.wait_for(
                    loop.create_connection(LeanConnection, self.host, self.port, local_addr=local), self.timeout_s
                )
            conn = self.conn
            assert conn is not None and conn.transport is not None
            waiter: asyncio.Future[Answer] = loop.create_future()
            conn.waiter, conn.got_bytes = waiter, False
            conn.transport.write(data)
            timer = loop.call_later(self.timeout_s, _expire, waiter)
            try:
                answer = await waiter
            except ConnectionError:
                conn.close()
                if reused and not conn.got_bytes and attempt == 0:
                    continue
                raise
            except TimeoutError:
                conn.close()
                raise
            finally:
                timer.cancel()
                conn.waiter = None
            if not conn.keep_alive:
                conn.close()
            return answer
        raise ConnectionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def _expire(waiter: asyncio.Future[Answer]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("no answer in time"))


class ConnectionPool:
    """Up to `size` keep-alive connections to one host, shared by any number of clients; a connection that
    failed or that the server will close is dropped, never retried."""

    def __init__(self, host: str, port: int, size: int, timeout_s: float = 15.0) -> None:
        self.host, self.port, self.size, self.timeout_s = host, port, size, timeout_s
        self._idle: list[LeanConnection] = []
        self._waiters: collections.deque[asyncio.Future[LeanConnection | None]] = collections.deque()
        self._open = 0
        self._host_header = f"Host: {host}:{port}\r\n".encode()

    async def _connect(self) -> LeanConnection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(LeanConnection, self.host, self.port)
        except BaseException:
            self._open -= 1
            self._hand_over(None)
            raise
        return conn

    async def _acquire(self) -> LeanConnection:
        while self._idle:
            conn = self._idle.pop()
            if conn.alive:
                return conn
            self._open -= 1
        if self._open < self.size:
            self._open += 1
            return await self._connect()
        waiter: asyncio.Future[LeanConnection | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        conn = await waiter
        # None: a connection was dropped and its slot passed on (already counted in `_open`).
        return conn if conn is not None else await self._connect()

    def _hand_over(self, conn: LeanConnection | None) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                if conn is None:
                    self._open += 1
                waiter.set_result(conn)
                return
        if conn is not None:
            self._idle.append(conn)

    def _release(self, conn: LeanConnection, reusable: bool) -> None:
        if reusable and conn.alive and conn.keep_alive:
            self._hand_over(conn)
        else:
            conn.close()
            self._open -= 1
            self._hand_over(None)

    async def get(self, path: bytes) -> Answer:
        """GET `path`, the whole answer within `timeout_s`; raises OSError (ConnectionError) or TimeoutError."""
        loop = asyncio.get_running_loop()
        conn = await self._acquire()
        waiter: asyncio.Future[Answer] = loop.create_future()
        conn.waiter = waiter
        assert conn.transport is not None
        conn.transport.write(b"GET " + path + b" HTTP/1.1\r\n" + self._host_header + b"\r\n")
        timer = loop.call_later(self.timeout_s, _expire, waiter)
        ok = False
        try:
            answer = await waiter
            ok = True
        finally:
            timer.cancel()
            conn.waiter = None
            self._release(conn, ok)
        return answer

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()
