"""uvicorn's httptools protocol with limits on the request head and body: uvicorn times neither a
head nor a body that trickles in, and takes a head of any size. Per request, the head must arrive
within `header_timeout_s` (else 408) and be at most `max_head_bytes` (else 431), its request line and
each header at most `max_line_bytes` (else 414, 431); the body must arrive within `body_timeout_s` of
the head's end (else 408, and the application's request ends as if the client had gone). Each
refusal answers in plain text (when no answer is under way) and closes the connection;
`connections_cut` counts them by reason, for `/metrics`.

Invariant: httptools never holds more of one request head than `max_head_bytes` plus one read
from the socket (a head that starts in the same read as the end of the previous body is counted
from the next read on).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, ClassVar

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

_cut: Counter[str] = Counter()

HEAD_TIMEOUT = "head_timeout"
BODY_TIMEOUT = "body_timeout"
HEAD_TOO_LARGE = "head_too_large"
LINE_TOO_LONG = "line_too_long"


def connections_cut() -> dict[str, int]:
    """Connections this process answered and closed itself, by reason (every reason, even at 0)."""
    return {reason: _cut[reason] for reason in (HEAD_TIMEOUT, BODY_TIMEOUT, HEAD_TOO_LARGE, LINE_TOO_LONG)}


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a head past its limits."""

    def __init__(self, reason: str, status: int, message: str) -> None:
        super().__init__(message)
        self.reason, self.status, self.message = reason, status, message


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """The head clock starts when the connection opens, and on a kept-alive connection when the next
    request's first bytes arrive (the wait before them is uvicorn's keep-alive timeout, not ours)."""

    header_timeout_s: ClassVar[float] = 10.0
    body_timeout_s: ClassVar[float] = 60.0
    max_head_bytes: ClassVar[int] = 16 * 1024
    max_line_bytes: ClassVar[int] = 8 * 1024

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
        # Invariant: pending exactly while a request's body is still arriving.
        self._body_deadline: asyncio.TimerHandle | None = None
        self._body_pending = False  # a head is complete and its message is not
        # Between two messages and in a head: its bytes so far, and how many heads were complete.
        self._reading_head = True
        self._head_bytes = 0
        self._heads_completed = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def data_received(self, data: bytes) -> None:
        # Bytes that arrive while a request is in progress are its body (or a pipelined head that waits
        # its turn, which the keep-alive timeout bounds); only a new request's first bytes start the clock.
        idle = self.cycle is None or self.cycle.response_complete
        if self._head_deadline is None and self._body_deadline is None and idle:
            self._arm_head_deadline()
        try:
            self._feed(data)
        except _Refused as refusal:
            self._refuse(refusal.reason, refusal.status, refusal.message, for_current=False)
            return
        if self._body_pending and self._body_deadline is None and not self.transport.is_closing():
            self._body_deadline = self.loop.call_later(self.body_timeout_s, self._body_too_slow)

    def _feed(self, data: bytes) -> None:
        """Gives the parser what the head may still take, then the rest once the head is complete."""
        while data:
            if not self._reading_head:
                self._parse(data)
                return
            room = self.max_head_bytes - self._head_bytes
            if len(data) <= room:
                self._head_bytes += len(data)
                self._parse(data)
                return
            heads = self._heads_completed
            self._head_bytes += room
            self._parse(data[:room])
            if self.transport.is_closing():
                return
            if self._heads_completed == heads:
                limit = self.max_head_bytes
                raise _Refused(HEAD_TOO_LARGE, 431, f"The request headers are larger than {limit} bytes.\n")
            data = data[room:]

    def _parse(self, data: bytes) -> None:
        """uvicorn's own `data_received`, with a refusal from a callback told apart from bad HTTP."""
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            if isinstance(error.__context__, _Refused):
                raise error.__context__ from None
            self._bad_request()
        except httptools.HttpParserError:
            self._bad_request()
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def _bad_request(self) -> None:
        message = "Invalid HTTP request received."
        self.logger.warning(message)
        self.send_400_response(message)

    # -- parser callbacks ----------------------------------------------------------------------
    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > self.max_line_bytes:
            raise _Refused(LINE_TOO_LONG, 414, f"The request's address is longer than {self.max_line_bytes} bytes.\n")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) + len(value) > self.max_line_bytes:
            message = f"A request header is longer than {self.max_line_bytes} bytes.\n"
            raise _Refused(LINE_TOO_LONG, 431, message)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_head_deadline()
        self._reading_head = False
        self._heads_completed += 1
        self._body_pending = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._body_pending = False
        self._disarm_body_deadline()
        self._reading_head = True
        self._head_bytes = 0

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        self._disarm_body_deadline()
        super().connection_lost(exc)

    # -- deadlines -------------------------------------------------------------------------------
    def _arm_head_deadline(self) -> None:
        self._head_deadline = self.loop.call_later(self.header_timeout_s, self._head_too_slow)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _disarm_body_deadline(self) -> None:
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        message = f"The request headers did not arrive within {self.header_timeout_s:g} seconds.\n"
        self._refuse(HEAD_TIMEOUT, 408, message, for_current=False)

    def _body_too_slow(self) -> None:
        self._body_deadline = None
        message = f"The request body did not arrive within {self.body_timeout_s:g} seconds.\n"
        self._refuse(BODY_TIMEOUT, 408, message, for_current=True)

    def _refuse(self, reason: str, status: int, message: str, *, for_current: bool) -> None:
        """Answers `status` and closes the connection. `for_current`: the refusal is about the request
        in progress (its body), which may be answered if its application has not answered yet;
        otherwise about a head, answered only if no other request's answer is under way."""
        if self.transport.is_closing():
            return
        _cut[reason] += 1
        cycle = self.cycle
        busy = cycle is not None and not cycle.response_complete
        answer = (for_current and cycle is not None and not cycle.response_started) or (not for_current and not busy)
        if busy:
            # The application's request ends here: receive() tells it the client is gone, and
            # whatever it sends after goes nowhere.
            cycle.disconnected = True
            cycle.message_event.set()
        if answer:
            self.transport.write(self._plain(status, message.encode()))
        self.transport.close()

    def _plain(self, status: int, body: bytes) -> bytes:
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:  # Date and Server, as on every answer
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        return b"".join(head) + body


def protocol_with_limits(
    header_timeout_s: float, body_timeout_s: float, max_head_bytes: int, max_line_bytes: int
) -> type[HeaderDeadlineProtocol]:
    """The protocol class to give uvicorn as `http=`; uvicorn builds it itself, so the limits are class
    attributes. Settings has checked them (positive, a line no longer than the head)."""

    class Configured(HeaderDeadlineProtocol):
        pass

    Configured.header_timeout_s = header_timeout_s
    Configured.body_timeout_s = body_timeout_s
    Configured.max_head_bytes = max_head_bytes
    Configured.max_line_bytes = max_line_bytes
    return Configured
