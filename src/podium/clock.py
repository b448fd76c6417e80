"""Time as an injected dependency: production reads the system clock, tests jump a fake one ahead."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; only differences mean anything."""
        ...

    def now(self) -> datetime:
        """Wall-clock time, timezone-aware UTC."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._mono = 1000.0
        self._wall = start or datetime(2026, 1, 1, 20, 0, tzinfo=UTC)

    def monotonic(self) -> float:
        return self._mono

    def now(self) -> datetime:
        from datetime import timedelta

        return self._wall + timedelta(seconds=self._mono - 1000.0)

    def advance(self, seconds: float) -> None:
        assert seconds >= 0, "time never goes back"
        self._mono += seconds
