"""Who is listening: heartbeats in, `now`, `peak` and unique listeners out. Sans-IO; time comes
from an injected clock.

At scale only a sample of listeners beat: the server announces a rate p, and a listener is in the
sample when its sample point is below p (the join tells each listener its point, so the others
send nothing at all). Each sampled listener counts 1/p. p shrinks as the audience grows, so the
work stays about `target_sampled` beats per interval whatever the audience; with n sampled
listeners the count's relative error is about 1/sqrt(n) (about 2 % at 2,000).

The sample point is the server's: an HMAC of the listener's id under a key only the server holds
(derived from the instance secret, one per space). A client cannot choose an id that stays in the
sample however small p gets; it can only learn its point by joining, and joins are rate-limited.

A listener counts from their first beat until `missed_limit` beats in a row go missing. Beats are
kept in arrival order, so dropping the silent is O(dropped), not O(listeners). At most
`max_per_address` listeners from one network address are counted at once: a beat from one more is
answered but not counted, so one machine cannot make an audience.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter, OrderedDict
from dataclasses import dataclass

from podium.clock import Clock
from podium.ids import ListenerId

MIN_SAMPLE_RATE = 1e-4


def presence_key(instance_secret: str, space_id: str) -> bytes:
    """The key a space's sample points are made with: derived from the instance secret, so every
    node of an instance agrees on each listener's point, and a client can compute none."""
    return hmac.new(instance_secret.encode(), f"podium.presence.v1:{space_id}".encode(), hashlib.sha256).digest()


def sample_point(key: bytes, listener: ListenerId) -> float:
    """Where a listener falls in [0, 1): the first 8 bytes of HMAC-SHA256(key, id), uniform for
    any id a client may pick."""
    digest = hmac.new(key, listener.encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


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
        *,
        key: bytes,
        peak: int = 0,
        target_sampled: int = 2000,
        max_per_address: int | None = None,
    ) -> None:
        self._clock = clock
        self._key = key
        self.interval_s = interval_s
        self.target_sampled = target_sampled
        self.max_per_address = max_per_address
        # A beat may arrive late by network jitter; allow half an interval on top of the limit.
        self._timeout_s = interval_s * (missed_limit + 0.5)
        self._last_beat: OrderedDict[ListenerId, float] = OrderedDict()
        # Invariant: _per_address[a] is the number of listeners in _last_beat whose _address is a.
        self._address: dict[ListenerId, str] = {}
        self._per_address: Counter[str] = Counter()
        self._seen: set[ListenerId] = set()
        self._peak = peak
        self.sample_rate = 1.0

    def point(self, listener: ListenerId) -> float:
        return sample_point(self._key, listener)

    def in_sample(self, listener: ListenerId) -> bool:
        return self.point(listener) < self.sample_rate

    def counted(self, listener: ListenerId) -> bool:
        return listener in self._last_beat

    def beat(self, listener: ListenerId, address: str = "") -> Counts:
        """A heartbeat from `address`. A listener outside the sample is not counted (it should not
        have sent it), nor a new one from an address that has `max_per_address` counted already."""
        now = self._clock.monotonic()
        self._expire(now)
        if self.in_sample(listener):
            if listener in self._last_beat:
                self._last_beat[listener] = now
                self._last_beat.move_to_end(listener)
            elif self.max_per_address is None or self._per_address[address] < self.max_per_address:
                self._last_beat[listener] = now
                self._address[listener] = address
                self._per_address[address] += 1
                self._seen.add(listener)
        self._adapt()
        return self.counts()

    def leave(self, listener: ListenerId) -> Counts:
        """A listener who closes the page says so; they stop counting at once."""
        self._forget(listener)
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
            for listener in [lid for lid in self._last_beat if self.point(lid) >= wanted]:
                self._forget(listener)
            self._seen = {lid for lid in self._seen if self.point(lid) < wanted}

    def _expire(self, now: float) -> None:
        deadline = now - self._timeout_s
        while self._last_beat:
            listener, seen = next(iter(self._last_beat.items()))
            if seen >= deadline:
                break
            self._forget(listener)

    def _forget(self, listener: ListenerId) -> None:
        if self._last_beat.pop(listener, None) is None:
            return
        address = self._address.pop(listener)
        self._per_address[address] -= 1
        if self._per_address[address] <= 0:
            del self._per_address[address]
