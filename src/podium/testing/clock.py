"""A fake clock for tests: time moves only when told to, or, with autojump, whenever nothing else can.

As Trio's `MockClock(autojump_threshold=0)`: sleepers register deadlines; with `autojump=True` a
watcher task jumps time to the earliest one when the loop is idle (no callback ready, twice in a
row). Minutes of a space's timers run as fast as the work, in the same order every time.

Invariants: time never goes back and moves only by `advance()` or a jump, never while a task is
runnable; sleepers wake in deadline order (ties in arrival order), never early; a cancelled sleeper
neither wakes nor makes time jump.

Idle is judged on the loop's `_ready` queue (CPython's asyncio only; uvloop is refused) and its
executor: work handed to a thread (disk writes, SQLite) counts until it comes back. Socket I/O in
flight does not (time may jump, as on a slow network): tests of real network I/O use a real clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Awaitable, Sized
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

T = TypeVar("T")

# Where `monotonic()` starts: far from 0, so that code subtracting a default of 0 would show.
MONOTONIC_START = 1000.0
# Loop iterations in a row with nothing ready before the clock jumps (see the module docstring).
IDLE_PASSES = 2
# How often the watcher looks again while a thread works for the loop (real seconds).
THREAD_POLL_S = 0.001


async def wait_all_tasks_blocked() -> None:
    """Return once every other task of the loop is blocked (on a clock, an event, real I/O): the
    loop was idle for `IDLE_PASSES` turns in a row. Takes no time on any clock; as Trio's."""
    ready = _ready_queue(asyncio.get_running_loop())
    idle = 0
    while idle < IDLE_PASSES:
        await asyncio.sleep(0)  # a turn of the loop, not a wait for time
        idle = idle + 1 if not ready else 0


def _ready_queue(loop: asyncio.AbstractEventLoop) -> Sized:
    ready = getattr(loop, "_ready", None)
    if ready is None:
        raise RuntimeError("idle detection needs an asyncio event loop of CPython's (not uvloop)")
    assert isinstance(ready, Sized)
    return ready


class FakeClock:
    """A `podium.clock.Clock` that moves only when told to, or (autojump) when the loop is idle."""

    def __init__(self, start: datetime | None = None, *, autojump: bool = False) -> None:
        self._mono = MONOTONIC_START
        self._wall = start or datetime(2026, 1, 1, 20, 0, tzinfo=UTC)
        self.autojump = autojump
        # (deadline, order of arrival, future): a heap; cancelled futures are dropped when they surface.
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._watcher: asyncio.Task[None] | None = None
        self._someone_sleeps: asyncio.Event | None = None
        self.jumps = 0
        # Calls handed to the loop's executor and not yet back (see the module docstring).
        self._in_threads = 0

    # -- reading ----------------------------------------------------------------------------

    def monotonic(self) -> float:
        return self._mono

    def now(self) -> datetime:
        return self._wall + timedelta(seconds=self._mono - MONOTONIC_START)

    def time(self) -> float:
        return self.now().timestamp()

    # -- waiting ----------------------------------------------------------------------------

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)  # still a point where other tasks run, as asyncio.sleep(0) is
            return
        await self._timer(seconds)

    async def wait_for(self, awaitable: Awaitable[T], timeout_s: float) -> T:
        work = asyncio.ensure_future(awaitable)
        timer = self._timer(max(0.0, timeout_s))
        either: list[asyncio.Future[Any]] = [work, timer]
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            if not work.done():
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
        if work.cancelled() and not timer.cancelled():
            raise TimeoutError
        return work.result()

    def _timer(self, seconds: float) -> asyncio.Future[None]:
        """A future that the clock resolves `seconds` from now."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._sleepers, (self._mono + seconds, next(self._order), future))
        if self.autojump:
            self._watch(loop)
        self._wake_due()  # a timer of 0 s is due at once
        return future

    # -- moving -----------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move time ahead by `seconds` and wake every sleeper whose deadline that reaches."""
        assert seconds >= 0, "time never goes back"
        self._mono += seconds
        self._wake_due()

    def next_deadline(self) -> float | None:
        """The earliest deadline a sleeper waits for (on `monotonic()`), None if nobody sleeps."""
        self._drop_cancelled()
        return self._sleepers[0][0] if self._sleepers else None

    def _jump(self) -> bool:
        deadline = self.next_deadline()
        if deadline is None:
            return False
        self._mono = max(self._mono, deadline)
        self.jumps += 1
        self._wake_due()
        return True

    def _wake_due(self) -> None:
        # Resolved in deadline order: their tasks are scheduled, and so run, in that order.
        while self._sleepers and self._sleepers[0][0] <= self._mono:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)

    # -- autojump ---------------------------------------------------------------------------

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._someone_sleeps is not None:
            self._someone_sleeps.set()
        if self._watcher is not None and not self._watcher.done() and self._watcher.get_loop() is loop:
            return
        _ready_queue(loop)  # refuses a loop it cannot watch
        self._count_threads(loop)
        self._someone_sleeps = asyncio.Event()
        self._someone_sleeps.set()
        self._watcher = loop.create_task(self._autojump(loop), name="fake-clock-autojump")

    async def _autojump(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self._someone_sleeps is not None
        ready = _ready_queue(loop)
        idle = 0
        while True:
            if self.next_deadline() is None:
                # Nobody sleeps: wait (without spinning) for the next sleeper.
                self._someone_sleeps.clear()
                await self._someone_sleeps.wait()
                idle = 0
                continue
            if self._in_threads:
                # A thread is working for the loop: wait for it on the real clock, not spinning.
                idle = 0
                await asyncio.sleep(THREAD_POLL_S)
                continue
            # This task is running, so it is not in `ready`: anything there is someone else's work.
            idle = idle + 1 if not ready else 0
            if idle >= IDLE_PASSES:
                self._jump()
                idle = 0
            await asyncio.sleep(0)

    def _count_threads(self, loop: asyncio.AbstractEventLoop) -> None:
        """Counts the loop's executor calls in flight (once per loop)."""
        if getattr(loop, "_fake_clock_counts_threads", None) is self:
            return
        handing = loop.run_in_executor

        def counted(executor: Any, func: Any, *args: Any) -> asyncio.Future[Any]:
            future = handing(executor, func, *args)
            self._in_threads += 1

            def back(_: asyncio.Future[Any]) -> None:
                self._in_threads -= 1

            future.add_done_callback(back)
            return future

        loop.run_in_executor = counted  # type: ignore[method-assign, assignment]
        loop._fake_clock_counts_threads = self  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        """Stop the autojump watcher (it also ends with its event loop)."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
