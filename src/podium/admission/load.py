"""How full the node is, and which request classes it sheds. Sans-IO: the shell feeds it event-loop
lag samples and request starts and ends; time comes from an injected clock.

Pressure is the larger of two measured ratios: requests being worked on / `max_in_flight`, and
event-loop lag / `max_lag_ms`. 1.0 means full. A class is shed while the requests in flight are
past its threshold (so the node keeps serving that class up to its share, no less), and, because
lag is seen only after the fact, from the moment lag reaches the threshold until it has stayed
below it for `hold_s` (so shedding does not flap every tick). Held blocking playlist reloads are
not work: the LISTENING class is not counted in flight.

Invariants: STAGE and LISTENING are never shed; a lower class is never shed while a higher one is
served (the thresholds rise with importance).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field

from podium.admission.classes import RequestClass
from podium.clock import Clock

# Pressure at which each class starts to be shed. JOIN is not refused with an error: at its
# threshold the waiting room stops admitting and every joiner waits in line (202).
SHED_AT: dict[RequestClass, float] = {
    RequestClass.OTHER: 0.5,
    RequestClass.REACTION: 0.6,
    RequestClass.POST: 0.7,
    RequestClass.JOIN: 0.85,
    RequestClass.LISTENING: math.inf,
    RequestClass.STAGE: math.inf,
}
LAG_WINDOW_SAMPLES = 10  # lag is the mean of the last samples (0.5 s): a sustained lag, not one hiccup


@dataclass(frozen=True)
class Capacity:
    max_in_flight: int = 256
    max_lag_ms: float = 250.0
    hold_s: float = 2.0


@dataclass
class ClassStats:
    served: Counter[RequestClass] = field(default_factory=Counter)
    shed: Counter[RequestClass] = field(default_factory=Counter)
    # Refused because their address had too many requests in the works already (429).
    crowded: Counter[RequestClass] = field(default_factory=Counter)
    # Served, but their client went away before the request had been read.
    abandoned: Counter[RequestClass] = field(default_factory=Counter)


class Governor:
    def __init__(self, capacity: Capacity, clock: Clock) -> None:
        self.capacity = capacity
        self._clock = clock
        self.in_flight = 0  # requests being worked on, listeners' reads aside
        self.lag_ms = 0.0
        self._lag_samples: deque[float] = deque(maxlen=LAG_WINDOW_SAMPLES)
        self._shed_until: dict[RequestClass, float] = {}
        self.stats = ClassStats()

    # -- what the shell reports ------------------------------------------------------------
    def observe_lag(self, lag_ms: float) -> None:
        self._lag_samples.append(lag_ms)
        # Over the whole window (a short history counts as on time): one stall is one sample.
        self.lag_ms = sum(self._lag_samples) / LAG_WINDOW_SAMPLES
        self._update_lag()

    def admit(self, kind: RequestClass) -> bool:
        """A request of `kind` arrives: True if it is to be served (then call `done` after it)."""
        if self.shedding(kind) and kind is not RequestClass.JOIN:
            self.stats.shed[kind] += 1
            return False
        self.stats.served[kind] += 1
        if kind is not RequestClass.LISTENING:
            self.in_flight += 1
        return True

    def done(self, kind: RequestClass) -> None:
        if kind is not RequestClass.LISTENING:
            self.in_flight -= 1

    def count_shed(self, kind: RequestClass) -> None:
        """A request the shell turned away itself (a join sent to the waiting room by pressure)."""
        self.stats.shed[kind] += 1

    # -- what the shell asks ---------------------------------------------------------------
    def pressure(self) -> float:
        return max(self.in_flight / self.capacity.max_in_flight, self.lag_ms / self.capacity.max_lag_ms)

    def shedding(self, kind: RequestClass) -> bool:
        if self.in_flight / self.capacity.max_in_flight >= SHED_AT[kind]:
            return True
        return self._clock.monotonic() < self._shed_until.get(kind, -math.inf)

    def shed_classes(self) -> list[RequestClass]:
        return [kind for kind in RequestClass if self.shedding(kind)]

    def _update_lag(self) -> None:
        lagging = self.lag_ms / self.capacity.max_lag_ms
        now = self._clock.monotonic()
        for kind, threshold in SHED_AT.items():
            if lagging >= threshold:
                self._shed_until[kind] = now + self.capacity.hold_s
