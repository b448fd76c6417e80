"""The waiting room's contract, over the in-memory room and the room shared through Redis.

The in-memory room runs on a fake clock that the test steps; the shared room reads Redis's own
clock, so there the test polls Redis on the real clock (`eventually`), the rates are short and
every timing assertion is a bound measured around the calls, not an exact count."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
import redis.asyncio as redis

from podium.admission.shared_room import (
    EPOCH_KEY,
    IDLE_MARGIN_S,
    MemoryRoom,
    RedisWaitingRoom,
    Room,
    rooms_client,
)
from podium.admission.waiting_room import MAX_RETRY_AFTER_S, Admitted, Waiting, WaitingRoom
from podium.errors import Conflict, RateLimited
from podium.ids import SpaceId
from podium.testing import FakeClock, eventually
from tests.backends.test_bus_contract import own_redis  # noqa: F401 - the fixture

REDIS = "redis://127.0.0.1:6379"

MakeRoom = Callable[..., Room]
T = TypeVar("T")

# How often a joiner in line comes back in these tests (seconds).
RETURN_S = 0.02


def new_space() -> SpaceId:
    return SpaceId(secrets.token_hex(6))


@pytest.fixture
async def clients() -> AsyncIterator[list[redis.Redis]]:
    """Redis clients opened by a test (one per node), closed after it."""
    made: list[redis.Redis] = []
    yield made
    for client in made:
        await client.aclose()


def redis_room(clients: list[redis.Redis], space_id: SpaceId, url: str = REDIS, **rules: Any) -> RedisWaitingRoom:
    """A node's view of a space's shared room: its own client, as another process would have."""
    client = rooms_client(url)
    clients.append(client)
    return RedisWaitingRoom(client, space_id, rules["rate_per_s"], rules["burst"], rules.get("ticket_ttl_s", 600))


class Pace:
    """How time passes for the rooms of a test: a fake clock that the test steps (memory), or the
    real clock that Redis's scripts read (redis), on which the test polls Redis."""

    def __init__(self, clock: FakeClock | None) -> None:
        self.clock = clock

    def monotonic(self) -> float:
        return self.clock.monotonic() if self.clock is not None else time.monotonic()

    async def until(
        self, condition: Callable[[], Awaitable[T]], what: str, *, timeout_s: float, poll_s: float = RETURN_S
    ) -> T:
        """`condition()`'s first truthy result, asked every `poll_s` of the room's clock, within `timeout_s`."""
        if self.clock is None:
            return await eventually(condition, what, timeout_s=timeout_s, poll_s=poll_s)
        deadline = self.clock.monotonic() + timeout_s
        while True:  # bounded: the clock moves `poll_s` a turn until the deadline
            result = await condition()
            if result:
                return result
            if self.clock.monotonic() >= deadline:
                raise AssertionError(f"not within {timeout_s:g} s: {what}")
            self.clock.advance(poll_s)


@pytest.fixture(params=["memory", "redis"])
def pace(request: pytest.FixtureRequest) -> Pace:
    return Pace(FakeClock() if request.param == "memory" else None)


@pytest.fixture
def make_room(pace: Pace, clients: list[redis.Redis]) -> MakeRoom:
    """A fresh room for a space of its own: make_room(rate_per_s=..., burst=..., ticket_ttl_s=...)."""

    def make(**rules: Any) -> Room:
        if pace.clock is not None:
            clock = pace.clock
            room = WaitingRoom(rules["rate_per_s"], rules["burst"], clock.monotonic(), rules.get("ticket_ttl_s", 600))
            return MemoryRoom(room, clock, secrets.token_urlsafe(6))
        return redis_room(clients, new_space(), **rules)

    return make


async def admitted_within(room: Room, seq: int, pace: Pace, timeout_s: float) -> Admitted:
    """The holder of `seq` comes back every `RETURN_S` until admitted, within `timeout_s`."""

    async def back() -> Admitted | None:
        outcome = await room.redeem(seq)
        return outcome if isinstance(outcome, Admitted) else None

    admitted = await pace.until(back, f"number {seq} is called", timeout_s=timeout_s)
    assert admitted == Admitted(seq)
    return admitted


async def test_a_burst_goes_straight_in_and_then_a_line_forms(make_room: MakeRoom) -> None:
    room = make_room(rate_per_s=1, burst=3)
    assert [await room.arrive() for _ in range(3)] == [Admitted(None)] * 3
    line = [await room.arrive() for _ in range(3)]
    assert all(isinstance(w, Waiting) for w in line)
    assert [(w.seq, w.position, w.retry_after_s, w.retry_after_ms) for w in line if isinstance(w, Waiting)] == [
        (0, 1, 1, 1000),
        (1, 2, 2, 2000),
        (2, 3, 3, 3000),
    ]
    assert (await room.waiting(), await room.called(), await room.admitted()) == (3, 0, 3)
    # Coming back too early keeps the place; a long line is told to check at least every 30 s.
    assert await room.redeem(1) == Waiting(1, 2, 2, 2000)
    far = [await room.arrive() for _ in range(40)][-1]
    assert isinstance(far, Waiting) and far.position == 43 and far.retry_after_s == MAX_RETRY_AFTER_S
    assert await room.epoch() == await room.epoch()


async def test_numbers_are_called_in_order_at_the_rate(make_room: MakeRoom, pace: Pace) -> None:
    rate, burst = 20.0, 2
    room = make_room(rate_per_s=rate, burst=burst)
    started = pace.monotonic()
    assert [await room.arrive() for _ in range(burst)] == [Admitted(None)] * burst
    held = []
    for _ in range(40):
        outcome = await room.arrive()
        assert isinstance(outcome, Waiting)
        held.append(outcome.seq)
    lined_up = pace.monotonic()
    assert held == list(range(40))
    admitted: list[int] = []

    async def everyone_comes_back() -> bool:
        # Everyone in line comes back every 20 ms; only called numbers get in, and in order.
        for seq in list(held):
            outcome = await room.redeem(seq)
            if isinstance(outcome, Admitted):
                assert outcome.seq == seq
                admitted.append(seq)
                held.remove(seq)
            else:
                assert outcome.position == seq - (await room.called()) + 1
        return pace.monotonic() - lined_up >= 1.0

    await pace.until(everyone_comes_back, "a second of the line coming back", timeout_s=3.0)
    last_try = pace.monotonic()
    assert admitted == sorted(admitted) == list(range(len(admitted)))
    # Called at the rate: no more than the time since the first arrival pays for, and no fewer
    # than the time between the line forming and the last try at the door does.
    assert len(admitted) <= rate * (last_try - started) + 1
    assert len(admitted) >= rate * (last_try - lined_up) - 2, (len(admitted), last_try - lined_up)
    # (A number called while later ones were trying the door is in, as soon as its holder is back.)
    called = await room.called()
    assert len(admitted) <= called <= len(admitted) + 2 and await room.waiting() == 40 - called
    assert await room.admitted() == burst + len(admitted)


async def test_a_number_is_admitted_once_and_unknown_numbers_are_refused(make_room: MakeRoom, pace: Pace) -> None:
    room = make_room(rate_per_s=50, burst=1)
    assert await room.arrive() == Admitted(None)
    waiting = await room.arrive()
    assert isinstance(waiting, Waiting)
    await admitted_within(room, waiting.seq, pace, timeout_s=0.05)  # called 20 ms after the burst
    with pytest.raises(Conflict, match="already used"):
        await room.redeem(waiting.seq)
    for unknown in (99, -1):
        with pytest.raises(Conflict, match="not known"):
            await room.redeem(unknown)
    assert await room.admitted() == 2


async def test_nobody_is_admitted_while_paused_and_paused_time_is_not_saved_up(make_room: MakeRoom, pace: Pace) -> None:
    full = make_room(rate_per_s=10, burst=2)
    first = await full.arrive(paused=True)
    assert isinstance(first, Waiting) and first.position == 1, "a full bucket, but paused: nobody goes in"
    room = make_room(rate_per_s=10, burst=1)
    assert await room.arrive() == Admitted(None)
    held = await room.arrive()
    assert isinstance(held, Waiting)
    paused_since = pace.monotonic()

    async def back_while_paused() -> bool:
        assert isinstance(await room.redeem(held.seq, paused=True), Waiting)
        return pace.monotonic() - paused_since >= 0.25

    # 2.5 admissions' worth of time, all of it paused, the holder coming back all along.
    await pace.until(back_while_paused, "a quarter of a second paused", timeout_s=1.0)
    assert isinstance(await room.arrive(paused=True), Waiting)
    assert isinstance(await room.redeem(held.seq), Waiting), "the paused time paid for nobody"
    assert await room.called() == 0 and await room.admitted() == 1
    await admitted_within(room, held.seq, pace, timeout_s=0.15)  # one admission's worth (0.1 s) later


async def test_a_paused_room_resumes_with_its_saved_tokens(make_room: MakeRoom) -> None:
    room = make_room(rate_per_s=5, burst=5)
    first = await room.arrive(paused=True)
    assert isinstance(first, Waiting)
    assert isinstance(await room.redeem(first.seq, paused=True), Waiting)
    assert await room.redeem(first.seq) == Admitted(first.seq)  # the bucket was full all along


# -- Redis only -----------------------------------------------------------------------------------


async def test_two_nodes_share_one_line_and_one_rate(clients: list[redis.Redis]) -> None:
    space = new_space()
    rate, burst = 20.0, 3
    b, c = (redis_room(clients, space, rate_per_s=rate, burst=burst) for _ in range(2))
    assert await b.epoch() == await c.epoch()
    # A ticket taken on B is good on C (and used once, whichever node sees it again).
    assert [await b.arrive() for _ in range(burst)] == [Admitted(None)] * burst
    on_b = await b.arrive()
    on_c = await c.arrive()
    assert isinstance(on_b, Waiting) and isinstance(on_c, Waiting)
    assert (on_b.position, on_c.position) == (1, 2), "one line, whichever node they came through"
    assert await c.redeem(on_b.seq) == Waiting(on_b.seq, 1, 1, 100)
    real = Pace(None)
    lined_up = time.monotonic()
    await admitted_within(c, on_b.seq, real, timeout_s=0.11)
    with pytest.raises(Conflict, match="already used"):
        await b.redeem(on_b.seq)
    # Both called within 0.11 s of the line forming (two admissions' worth of time at 20/s).
    await admitted_within(b, on_c.seq, real, timeout_s=max(0.0, lined_up + 0.11 - time.monotonic()))

    # Both nodes flooded at once, each faster than the rate: together they admit at the rate.
    other = new_space()
    nodes = [redis_room(clients, other, rate_per_s=rate, burst=burst) for _ in range(2)]
    admitted: list[float] = []
    started = time.monotonic()

    async def node(room: RedisWaitingRoom) -> None:
        held: list[int] = []

        async def flood() -> bool:
            outcome = await room.arrive()
            if isinstance(outcome, Admitted):
                admitted.append(time.monotonic())
            else:
                held.append(outcome.seq)
            for seq in list(held):  # a joiner may come back through either node
                back = await nodes[seq % 2].redeem(seq)
                if isinstance(back, Admitted):
                    admitted.append(time.monotonic())
                    held.remove(seq)
            return time.monotonic() - started >= 1.0

        # A second of arrivals and returns every 10 ms, on Redis's (real) clock.
        await eventually(flood, "a second of flooding", timeout_s=5.0, poll_s=0.01)

    await asyncio.gather(*(node(room) for room in nodes))
    window = time.monotonic() - started
    assert len(admitted) <= burst + rate * window, (len(admitted), window)
    assert len(admitted) >= rate * (window - 0.2), "the shared room let people in at its rate"
    assert await nodes[0].admitted() == await nodes[1].admitted() == len(admitted)


async def test_the_shared_room_remembers_used_numbers_for_a_ticket_lifetime_and_expires_when_idle(
    clients: list[redis.Redis],
) -> None:
    room = redis_room(clients, new_space(), rate_per_s=100, burst=1, ticket_ttl_s=0.3)
    raw = clients[0]
    await room.arrive()
    held = [await room.arrive() for _ in range(5)]
    lined_up = time.monotonic()
    for outcome in held:  # five admissions at 100/s: all called within 0.06 s of the line forming
        assert isinstance(outcome, Waiting)
        await admitted_within(room, outcome.seq, Pace(None), max(0.0, lined_up + 0.06 - time.monotonic()))
    used_at = time.monotonic()
    assert await raw.zcard(room.used_key) == 5
    idle_ms = (0.3 + IDLE_MARGIN_S) * 1000
    for key in (room.state_key, room.used_key):
        assert 0 < await raw.pttl(key) <= idle_ms, "an idle room vanishes by itself"

    async def forgotten() -> bool:
        await room.arrive()  # each script forgets the used numbers older than a ticket's lifetime
        return await raw.zcard(room.used_key) == 0

    await eventually(forgotten, "used numbers are kept for a ticket's lifetime only", timeout_s=2.0)
    assert time.monotonic() - used_at >= 0.3 - 0.06, "and kept that long"


async def test_a_room_lost_with_redis_starts_a_new_line_under_a_new_epoch(
    own_redis: tuple[str, Any],  # noqa: F811
    clients: list[redis.Redis],
) -> None:
    url, (start, stop) = own_redis
    space = new_space()
    room = redis_room(clients, space, url, rate_per_s=1, burst=1)
    assert await room.arrive() == Admitted(None)
    ticket = await room.arrive()
    assert isinstance(ticket, Waiting)
    before = await room.epoch()
    stop()
    with pytest.raises(RateLimited, match="cannot be reached"):  # a 429 with Retry-After: come back
        await room.arrive()
    start()  # an empty Redis: the line and the epoch are gone
    with pytest.raises(Conflict, match="started over"):
        await room.redeem(ticket.seq)
    after = await room.epoch()
    assert after != before, "a ticket of the lost line is a fresh arrival now"
    assert await room.arrive() == Admitted(None), "a new line with a full bucket"
    other = redis_room(clients, space, url, rate_per_s=1, burst=1)
    assert await other.epoch() == after
    assert await clients[0].get(EPOCH_KEY) == after
