"""Who is listening: heartbeats in, `now`, `peak` and unique listeners out. Sans-IO; time comes
from an injected clock.

At scale only a sample of listeners beat: the server announces a rate p, and a listener is in the
sample when the hash of its id is below p (a listener computes that itself, so the others send
nothing at all). Each sampled listener counts 1/p. p shrinks as the audience grows, so the work
stays about `target_sampled` beats per interval whatever the audience; with n sampled listeners
the count's relative error is about 1/sqrt(n) (about 2 % at 2,000).

A listener counts from their first beat until `missed_limit` beats in a row go missing. Beats are
kept in arrival order, so dropping the silent is O(dropped), not O(listeners).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from podium.clock import Clock
from podium.ids import ListenerId

MIN_SAMPLE_RATE = 1e-4


def sample_point(listener: ListenerId) -> float:
    """Where a listener falls in [0, 1): the first 8 hex digits of its id when the id is hex (the
    pages make random hex ids and compute the same), else of the id's SHA-256."""
    head = listener[:8]
    if len(head) < 8 or any(c not in "0123456789abcdef" for c in head):
        head = hashlib.sha256(listener.encode()).hexdigest()[:8]
    return int(head, 16) / 2**32


@dataclass(frozen=True)
class Counts:
    now: int
    peak: int
    unique: int = 0
    sample_rate: float = 1.0


class Presence:
    def __init__(
        self,
        clock: Clock,
        interval_s: float,
        missed_limit: int,
        peak: int = 0,
        target_sampled: int = 2000,
    ) -> None:
        self._clock = clock
        self.interval_s = interval_s
        self.target_sampled = target_sampled
        # A beat may arrive late by network jitter; allow half an interval on top of the limit.
        self._timeout_s = interval_s * (missed_limit + 0.5)
        self._last_beat: OrderedDict[ListenerId, float] = OrderedDict()
        self._seen: set[ListenerId] = set()
        self._peak = peak
        self.sample_rate = 1.0

    def in_sample(self, listener: ListenerId) -> bool:
        return sample_point(listener) < self.sample_rate

    def beat(self, listener: ListenerId) -> Counts:
        """A heartbeat. A listener outside the sample is not counted (it should not have sent it)."""
        now = self._clock.monotonic()
        if self.in_sample(listener):
            self._last_beat[listener] = now
            self._last_beat.move_to_end(listener)
            self._seen.add(listener)
        self._expire(now)
        self._adapt()
        return self.counts()

    def leave(self, listener: ListenerId) -> Counts:
        """A listener who closes the page says so; they stop counting at once."""
        self._last_beat.pop(listener, None)
        return self.counts()

    def counts(self) -> Counts:
        self._expire(self._clock.monotonic())
        now = round(len(self._last_beat) / self.sample_rate)
        self._peak = max(self._peak, now)
        return Counts(now, self._peak, round(len(self._seen) / self.sample_rate), self.sample_rate)

    def _adapt(self) -> None:
        """Keep about `target_sampled` listeners in the sample: lower p as the audience grows (those
        whose point falls above the new p leave the sample), raise it as the audience shrinks."""
        estimate = len(self._last_beat) / self.sample_rate
        wanted = 1.0 if estimate <= self.target_sampled else max(MIN_SAMPLE_RATE, self.target_sampled / estimate)
        # Only move on a clear change, so p does not flap around the threshold.
        if (
            wanted < self.sample_rate * 0.8
            or (wanted > self.sample_rate * 1.25 and wanted <= 1.0)
            or (wanted == 1.0 and self.sample_rate < 1.0 and estimate < self.target_sampled * 0.8)
        ):
            self.sample_rate = wanted
            for listener in [lid for lid in self._last_beat if sample_point(lid) >= wanted]:
                del self._last_beat[listener]
            self._seen = {lid for lid in self._seen if sample_point(lid) < wanted}

    def _expire(self, now: float) -> None:
        deadline = now - self._timeout_s
        while self._last_beat:
            listener, seen = next(iter(self._last_beat.items()))
            if seen >= deadline:
                break
            del self._last_beat[listener]
