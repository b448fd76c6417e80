"""Time as an injected dependency: production reads the system clock, tests step a fake one.

Every timer in Podium paces itself on a `Clock` (`sleep`, `wait_for`) and reads time from it
(`monotonic`, `now`, `time`), so a test can run minutes of a space in milliseconds with
`podium.testing.FakeClock`. What stays on the event loop's real clock is named where it is
done: I/O deadlines against the outside world (sockets, webhook receivers, the database) and
measurements of the loop itself (its lag, a frame's arrival gap).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; only differences mean anything."""

    def now(self) -> datetime:
        """Wall-clock time, timezone-aware UTC."""

    def time(self) -> float:
        """Wall-clock time in seconds since the epoch (`now()` as a number)."""

    async def sleep(self, seconds: float) -> None:
        """Return once `seconds` have passed on this clock."""

    async def wait_for(self, awaitable: Awaitable[T], timeout_s: float) -> T:
        """`awaitable`'s result, or TimeoutError (and `awaitable` cancelled) after `timeout_s`."""


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait_for(self, awaitable: Awaitable[T], timeout_s: float) -> T:
        return await asyncio.wait_for(awaitable, timeout_s)
