"""Who is listening: heartbeats in, `now` and `peak` out. Sans-IO; time comes from an injected clock.

A listener counts from their first beat until `missed_limit` beats in a row go missing. Beats are
kept in arrival order, so dropping the silent is O(dropped), not O(listeners).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from podium.clock import Clock
from podium.ids import ListenerId


@dataclass(frozen=True)
class Counts:
    now: int
    peak: int


class Presence:
    def __init__(self, clock: Clock, interval_s: float, missed_limit: int, peak: int = 0) -> None:
        self._clock = clock
        self.interval_s = interval_s
        # A beat may arrive late by network jitter; allow half an interval on top of the limit.
        self._timeout_s = interval_s * (missed_limit + 0.5)
        self._last_beat: OrderedDict[ListenerId, float] = OrderedDict()
        self._peak = peak

    def beat(self, listener: ListenerId) -> Counts:
        now = self._clock.monotonic()
        self._last_beat[listener] = now
        self._last_beat.move_to_end(listener)
        self._expire(now)
        self._peak = max(self._peak, len(self._last_beat))
        return Counts(len(self._last_beat), self._peak)

    def leave(self, listener: ListenerId) -> Counts:
        """A listener who closes the page says so; they stop counting at once."""
        self._last_beat.pop(listener, None)
        return self.counts()

    def counts(self) -> Counts:
        self._expire(self._clock.monotonic())
        return Counts(len(self._last_beat), self._peak)

    def _expire(self, now: float) -> None:
        deadline = now - self._timeout_s
        while self._last_beat:
            listener, seen = next(iter(self._last_beat.items()))
            if seen >= deadline:
                break
            del self._last_beat[listener]
