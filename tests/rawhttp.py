"""A small keep-alive HTTP/1.1 client for load tests: tens of thousands of requests from one test
process, which httpx would spend most of its CPU on. Content-Length bodies only (Podium's)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any


class RawConnection:
    def __init__(self, host: str, port: int, local_host: str | None = None) -> None:
        self.host, self.port, self.local_host = host, port, local_host
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()  # one request at a time on a connection

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None or self._writer.is_closing():
            local = (self.local_host, 0) if self.local_host else None
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port, local_addr=local)
        return self._reader, self._writer

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        async with self._lock:
            return await self._request(method, path, body, headers)

    async def _request(
        self, method: str, path: str, body: Any, headers: dict[str, str] | None
    ) -> tuple[int, dict[str, str], bytes]:
        for attempt in range(2):  # a kept-alive connection the server closed meanwhile: once more
            reader, writer = await self._connect()
            data = b"" if body is None else json.dumps(body).encode()
            head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(data)}"]
            if body is not None:
                head.append("Content-Type: application/json")
            head += [f"{k}: {v}" for k, v in (headers or {}).items()]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
            try:
                await writer.drain()
                status_line = await reader.readuntil(b"\r\n")
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt:
                    raise
                continue
            status = int(status_line.split()[1])
            answer_headers: dict[str, str] = {}
            while True:
                line = await reader.readuntil(b"\r\n")
                if line == b"\r\n":
                    break
                name, _, value = line.decode("latin-1").partition(":")
                answer_headers[name.strip().lower()] = value.strip()
            length = int(answer_headers.get("content-length", "0"))
            content = await reader.readexactly(length) if length else b""
            if answer_headers.get("connection", "").lower() == "close":
                await self.close()
            return status, answer_headers, content
        raise ConnectionError("unreachable")

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None
