"""uvicorn's httptools protocol with a deadline on the request head, against slow (slowloris) clients.

uvicorn times idle keep-alive connections but not a request head that trickles in: a client that sends
its headers a byte at a time, or connects and sends nothing, would hold its connection forever.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

_closed_at_deadline = 0


def connections_closed_at_header_deadline() -> int:
    """How many connections this process has closed because their request head came too slowly."""
    return _closed_at_deadline


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """Answers 408 and closes the connection when a request head is not complete in `header_timeout_s`.

    The clock starts when the connection opens, and on a kept-alive connection when the first bytes of
    the next request arrive (the wait before them is uvicorn's keep-alive timeout, not ours).
    """

    header_timeout_s: ClassVar[float] = 10.0

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # Invariant: pending exactly while a request head is being awaited and no request is in progress.
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def data_received(self, data: bytes) -> None:
        # Bytes that arrive while a request is in progress are its body (or a pipelined head that waits
        # its turn, which the keep-alive timeout bounds); only a new request's first bytes start the clock.
        if self._head_deadline is None and (self.cycle is None or self.cycle.response_complete):
            self._arm_head_deadline()
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._disarm_head_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        self._head_deadline = self.loop.call_later(self.header_timeout_s, self._head_too_slow)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        global _closed_at_deadline
        self._head_deadline = None
        if self.transport.is_closing():
            return
        _closed_at_deadline += 1
        message = f"The request headers did not arrive within {self.header_timeout_s:g} seconds.\n".encode()
        head = [STATUS_LINE[408]]
        for name, value in self.server_state.default_headers:  # Date and Server, as on every answer
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: " + str(len(message)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + message)
        self.transport.close()


def protocol_with_header_deadline(timeout_s: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class to give uvicorn as `http=`; uvicorn builds it itself, so the deadline is a class attribute."""
    if timeout_s <= 0:
        raise ValueError(f"the header deadline must be positive, not {timeout_s}")

    class Configured(HeaderDeadlineProtocol):
        header_timeout_s = timeout_s

    return Configured
