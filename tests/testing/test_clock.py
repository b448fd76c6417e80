"""The fake clock: sleepers wake in deadline order, time jumps only when the loop is idle."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from podium.clock import SystemClock
from podium.testing import FakeClock


@pytest.fixture
async def clock() -> AsyncIterator[FakeClock]:
    fake = FakeClock(autojump=True)
    yield fake
    await fake.aclose()


def test_time_moves_only_when_told() -> None:
    clock = FakeClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    mono, wall = clock.monotonic(), clock.now()
    assert clock.monotonic() == mono
    clock.advance(2.5)
    assert clock.monotonic() == mono + 2.5
    assert clock.now() == wall + timedelta(seconds=2.5)
    assert clock.time() == pytest.approx(wall.timestamp() + 2.5)
    with pytest.raises(AssertionError):
        clock.advance(-1)


async def test_sleepers_wake_in_deadline_order(clock: FakeClock) -> None:
    woke: list[tuple[str, float]] = []
    start = clock.monotonic()

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic() - start))

    began = time.monotonic()
    await asyncio.gather(sleeper("c", 30), sleeper("a", 10), sleeper("b", 20), sleeper("a2", 10))
    assert woke == [("a", 10), ("a2", 10), ("b", 20), ("c", 30)], "deadline order, ties in arrival order"
    assert time.monotonic() - began < 1, "a minute of fake time costs no real time"


async def test_periodic_timer_keeps_its_pace(clock: FakeClock) -> None:
    ticks: list[float] = []
    start = clock.monotonic()
    while len(ticks) < 500:  # ten seconds of 20 ms ticks
        await clock.sleep(0.02)
        ticks.append(round(clock.monotonic() - start, 6))
    assert ticks[-1] == pytest.approx(10.0)
    assert all(b - a == pytest.approx(0.02) for a, b in itertools.pairwise(ticks))


async def test_no_time_passes_while_a_task_is_runnable(clock: FakeClock) -> None:
    before = clock.monotonic()
    sleeping = asyncio.create_task(clock.sleep(5))
    for _ in range(200):  # busy: this task is runnable at every turn of the loop
        await clock.sleep(0)  # a turn of the loop, no time
        assert clock.monotonic() == before and not sleeping.done()
    await sleeping  # idle now: the clock jumps
    assert clock.monotonic() == before + 5


async def test_time_does_not_jump_past_work_a_sleeper_wakes(clock: FakeClock) -> None:
    # A sleeper that, woken, keeps working for many turns of the loop: the next sleeper waits.
    seen: list[float] = []

    async def worker() -> None:
        await clock.sleep(1)
        for _ in range(50):
            seen.append(clock.monotonic())
            await clock.sleep(0)  # a turn of the loop, no time

    async def later() -> float:
        await clock.sleep(2)
        return clock.monotonic()

    start = clock.monotonic()
    _, woke_at = await asyncio.gather(worker(), later())
    assert seen == [start + 1] * 50
    assert woke_at == start + 2


async def test_cancelled_sleeper_neither_wakes_nor_makes_time_jump(clock: FakeClock) -> None:
    start = clock.monotonic()
    doomed = asyncio.create_task(clock.sleep(1))
    await clock.sleep(0)  # a turn of the loop, no time
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    await clock.sleep(10)
    assert clock.monotonic() == start + 10, "the jump went straight to the live sleeper"
    assert clock.jumps == 1


async def test_wait_for_times_out_on_the_fake_clock(clock: FakeClock) -> None:
    never = asyncio.Event()
    start = clock.monotonic()
    with pytest.raises(TimeoutError):
        await clock.wait_for(never.wait(), 3)
    assert clock.monotonic() == start + 3

    async def soon() -> str:
        await clock.sleep(1)
        return "done"

    assert await clock.wait_for(soon(), 3) == "done"
    assert clock.monotonic() == start + 4, "the unused timeout was forgotten"
    assert clock.next_deadline() is None


async def test_manual_clock_wakes_on_advance() -> None:
    clock = FakeClock()  # no autojump: nothing moves by itself
    sleeping = asyncio.create_task(clock.sleep(5))
    for _ in range(20):
        await clock.sleep(0)  # a turn of the loop, no time
    assert not sleeping.done()
    clock.advance(4.9)
    await clock.sleep(0)  # a turn of the loop, no time
    assert not sleeping.done()
    clock.advance(0.1)
    await sleeping


async def test_system_clock_sleeps_for_real() -> None:
    clock = SystemClock()
    began = time.monotonic()
    await clock.sleep(0.01)
    assert time.monotonic() - began >= 0.009
    with pytest.raises(TimeoutError):
        await clock.wait_for(asyncio.Event().wait(), 0.01)
