"""The waiting room: new listeners admitted in arrival order at a set rate. Sans-IO.

A token bucket (`rate_per_s`, up to `burst` saved) pays for admissions. While nobody waits and the
bucket holds a token, a joiner goes straight in. Otherwise the joiner takes the next number
(`seq`) and is told its place in line; numbers are called in order as the bucket refills, and a
called number is admitted when its holder comes back with the ticket. While the node is under
pressure (`paused`) the bucket does not refill: everyone waits, nobody gets an error.

Invariants: numbers are called in the order they were taken; a number is admitted at most once
(single-use tickets); admissions over any window are at most burst + rate x window.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from podium.errors import Conflict

MAX_RETRY_AFTER_S = 30  # a long line is checked at least this often (the position moves)
MIN_RETRY_AFTER_MS = 100  # a place about to be called is still not asked again at once


@dataclass(frozen=True)
class Admitted:
    seq: int | None  # None: admitted on arrival, without waiting


@dataclass(frozen=True)
class Waiting:
    seq: int
    position: int  # 1 = next to be called
    retry_after_s: int  # whole seconds, as the Retry-After header carries them
    retry_after_ms: int  # when the place should be called: a page need not wait for the next second


def waiting(seq: int, position: int, rate_per_s: float) -> Waiting:
    """A place in line and when to come back: when the room, calling at its rate, reaches it."""
    due_s = min(float(MAX_RETRY_AFTER_S), position / rate_per_s)
    return Waiting(seq, position, max(1, math.ceil(due_s)), max(MIN_RETRY_AFTER_MS, round(due_s * 1000)))


class WaitingRoom:
    def __init__(self, rate_per_s: float, burst: int, now: float, ticket_ttl_s: float) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("the admission rate and burst must be positive")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.ticket_ttl_s = ticket_ttl_s
        self._tokens = float(burst)
        self._last = now
        self._issued = 0  # numbers handed out: 0 .. issued-1
        self._called = 0  # numbers whose turn has come: 0 .. called-1
        self._redeemed: set[int] = set()
        self._redeemed_order: deque[tuple[float, int]] = deque()
        self.admitted = 0

    @property
    def waiting(self) -> int:
        """Numbers taken and not yet called (some holders may have given up)."""
        return self._issued - self._called

    @property
    def called(self) -> int:
        """Places in line whose turn has come (the room's admissions, whenever their holders return)."""
        return self._called

    def used_remembered(self) -> int:
        return len(self._redeemed)

    def arrive(self, now: float, paused: bool = False) -> Admitted | Waiting:
        self._refill(now, paused)
        self._forget_old(now)
        if self._issued == self._called and self._tokens >= 1 and not paused:
            self._tokens -= 1
            self.admitted += 1
            return Admitted(None)
        seq = self._issued
        self._issued += 1
        return self._waiting(seq)

    def redeem(self, seq: int, now: float, paused: bool = False) -> Admitted | Waiting:
        """A ticket holder comes back. Raises Conflict for a number used before."""
        self._refill(now, paused)
        self._forget_old(now)
        if seq in self._redeemed:
            raise Conflict("this place in line was already used; join again")
        if not 0 <= seq < self._issued:
            raise Conflict("this place in line is not known here; join again")
        if seq < self._called:
            self._redeemed.add(seq)
            self._redeemed_order.append((now, seq))
            self.admitted += 1
            return Admitted(seq)
        return self._waiting(seq)

    def _waiting(self, seq: int) -> Waiting:
        position = seq - self._called + 1
        return waiting(seq, position, self.rate_per_s)

    def _refill(self, now: float, paused: bool) -> None:
        elapsed = max(0.0, now - self._last)
        self._last = now
        if paused:
            return
        # Time passed calls numbers at the rate; only what nobody waited for is saved, up to burst.
        available = self._tokens + elapsed * self.rate_per_s
        calls = min(int(available), self._issued - self._called)
        self._called += calls
        self._tokens = min(float(self.burst), available - calls)

    def _forget_old(self, now: float) -> None:
        # A ticket older than its TTL fails its signature check before it gets here, so its
        # number need not be remembered any longer: memory is bounded by rate x TTL.
        while self._redeemed_order and now - self._redeemed_order[0][0] > self.ticket_ttl_s:
            self._redeemed.discard(self._redeemed_order.popleft()[1])
