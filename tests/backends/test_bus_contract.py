"""One contract for the bus, run unchanged over the in-process bus and Redis: typed events in, the
same typed events out; a newer node's unknown events skipped; and Redis restarting under a
subscriber (a Redis of the test's own, on a free loopback port)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from podium.backends.interfaces import Bus
from podium.backends.memory_bus import MemoryBus
from podium.backends.redis_bus import PREFIX, RedisBus
from podium.events import (
    AUDIENCE,
    CommentPosted,
    Event,
    QuestionsChanged,
    Reacted,
    SpaceEnded,
    SpaceScheduled,
    SpaceStarted,
    StageChanged,
    Topic,
)
from podium.ids import SpaceId, new_space_id
from podium.testing import eventually, eventually_sync
from tests.conftest import free_port

SHARED_REDIS = "redis://127.0.0.1:6379"


@pytest.fixture(params=["memory", "redis"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    if request.param == "memory":
        instance: Bus = MemoryBus()
    else:
        try:
            redis.Redis.from_url(SHARED_REDIS, socket_connect_timeout=2).ping()
        except redis.RedisError as error:
            pytest.fail(f"Redis is not running at {SHARED_REDIS} ({error}); .ci/run starts it")
        instance = RedisBus(SHARED_REDIS)
    yield instance
    await instance.close()


# The node name of the events the tests send to learn that a subscription is live: never kept.
PROBE = "probe"


def marker(topic: Topic, space: SpaceId, node: str) -> Event:
    """An event of `topic` that the tests send for themselves, not as part of what they check."""
    if topic == "spaces":
        return SpaceScheduled(space, node)
    if topic == "stage":
        return StageChanged(space, node, "rotate")
    return QuestionsChanged(space, node)


async def collect(bus: Bus, topic: Topic, into: list[Event], ready: asyncio.Event) -> None:
    stream = bus.subscribe(topic)
    first = asyncio.ensure_future(anext(stream))  # subscribes, then waits for the first event
    probe = marker(topic, new_space_id(), PROBE)

    async def subscribed() -> bool:
        # Live once an event comes through: a probe is sent until one does (pub/sub keeps nothing
        # for a subscriber that is not there yet, so the probes sent before are simply lost).
        if not first.done():
            await bus.publish(probe)
        return first.done()

    await eventually(subscribed, f"a subscription to {topic} is live", timeout_s=5.0)
    ready.set()
    if first.result().node != PROBE:
        into.append(first.result())
    async for event in stream:
        if event.node != PROBE:
            into.append(event)


async def gather_events(bus: Bus, topics: list[Topic], publish: list[Event]) -> list[list[Event]]:
    """What a subscriber of each topic got of `publish`: all of it, once a marker sent on each
    topic after it has reached every subscriber (each subscriber hears a topic in publishing order)."""
    got: list[list[Event]] = [[] for _ in topics]
    ready = [asyncio.Event() for _ in topics]
    tasks = [asyncio.create_task(collect(bus, t, into, r)) for t, into, r in zip(topics, got, ready, strict=True)]
    await asyncio.gather(*(r.wait() for r in ready))
    for event in publish:
        await bus.publish(event)
    end = new_space_id()
    for topic in dict.fromkeys(topics):
        await bus.publish(marker(topic, end, "marker"))

    def all_heard_the_end() -> bool:
        return all(any(e.space == end for e in into) for into in got)

    await eventually(all_heard_the_end, "every subscriber heard the marker sent after the events", timeout_s=5.0)
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return got


async def test_every_subscriber_of_a_topic_gets_the_same_typed_events_in_order(bus: Bus) -> None:
    space = new_space_id()  # the Redis is shared: events of a space of this test's own
    events: list[Event] = [
        CommentPosted(space, "node-a", {"n": n, "text": "ünïcode ✓", "nested": {"ok": [1, 2]}}) for n in range(20)
    ]
    a, b, stage = await gather_events(bus, [AUDIENCE, AUDIENCE, "stage"], events)
    mine = [e for e in a if e.space == space]
    assert mine == [e for e in b if e.space == space] == events
    assert isinstance(mine[0], CommentPosted) and mine[0].post["text"] == "ünïcode ✓"
    assert [e for e in stage if e.space == space] == []  # another topic hears none of them


async def test_each_kind_of_event_arrives_as_itself_on_its_own_topic(bus: Bus) -> None:
    space = new_space_id()
    events: list[Event] = [
        SpaceStarted(space, "node-a"),
        SpaceEnded(space, "node-a"),
        StageChanged(space, "node-b", "mute"),
        Reacted(space, "node-a", "👏", 3),
    ]
    spaces, stage, audience = await gather_events(bus, ["spaces", "stage", AUDIENCE], events)
    assert [e for e in spaces if e.space == space] == events[:2]
    assert [e for e in stage if e.space == space] == [events[2]]
    assert [e for e in audience if e.space == space] == [events[3]]


async def test_a_newer_nodes_unknown_event_is_skipped_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    """A node of a newer version may publish a type this one does not know, or an older one an
    event without `node`: the first is skipped (logged), the second read as from no node."""
    bus = RedisBus(SHARED_REDIS)
    space = new_space_id()
    raw = redis.Redis.from_url(SHARED_REDIS)
    try:
        got: list[Event] = []
        ready = asyncio.Event()
        task = asyncio.create_task(collect(bus, "spaces", got, ready))
        await ready.wait()
        with caplog.at_level(logging.INFO, logger="podium.events"):
            raw.publish(PREFIX + "spaces", json.dumps({"type": "space.teleported", "space": space, "node": "new"}))
            raw.publish(PREFIX + "spaces", json.dumps({"type": "space.ended", "space": "../etc", "node": "x"}))
            raw.publish(PREFIX + "spaces", json.dumps({"type": "space.ended", "space": space}))
            # The three arrive in order: the last one heard, the two before it were read (and logged).
            await eventually(lambda: any(e.space == space for e in got), "the old node's event arrives", timeout_s=2.5)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert [e for e in got if e.space == space] == [SpaceEnded(SpaceId(space), "")]
        assert "space.teleported" in caplog.text and "names no valid space" in caplog.text
    finally:
        raw.close()
        await bus.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", str(tmp_path)]  # fmt: skip
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

        def answers() -> bool:
            with contextlib.suppress(redis.RedisError):
                return bool(redis.Redis(port=port, socket_connect_timeout=0.5).ping())
            return False

        eventually_sync(answers, "redis-server started", timeout_s=10.0)

    def stop() -> None:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(10)

    start()
    try:
        yield f"redis://127.0.0.1:{port}", (start, stop)
    finally:
        stop()


async def test_a_subscription_resumes_after_redis_restarts(own_redis: tuple[str, Any]) -> None:
    url, (start, stop) = own_redis
    bus = RedisBus(url)
    got: list[Event] = []
    ready = asyncio.Event()
    task = asyncio.create_task(collect(bus, "spaces", got, ready))
    await ready.wait()
    first, lost, second = (SpaceStarted(new_space_id(), "node-a") for _ in range(3))
    await bus.publish(first)
    stop()
    assert not await bus.ready()
    await bus.publish(lost)  # dropped, not raised
    assert bus.dropped == 1
    start()

    async def heard_again() -> bool:
        if bus.reconnects and await bus.ready():
            await bus.publish(second)
        return second in got

    # Resubscribed within the back-off (at most 2 s a try), against a real server: polled.
    await eventually(heard_again, "the subscription resumed", timeout_s=10.0, poll_s=0.1)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await bus.close()
    assert got[0] == first and second in got and lost not in got
    assert bus.reconnects >= 1
