"""One contract for the bus, run unchanged over the in-process bus and Redis; and Redis restarting
under a subscriber (a Redis of the test's own, on a free loopback port)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from podium.backends.interfaces import Bus
from podium.backends.memory_bus import MemoryBus
from podium.backends.redis_bus import RedisBus
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


async def collect(bus: Bus, topic: str, into: list[dict[str, Any]], ready: asyncio.Event) -> None:
    stream = bus.subscribe(topic)
    first = asyncio.ensure_future(anext(stream))  # subscribes, then waits for the first event
    await asyncio.sleep(0.2)
    ready.set()
    into.append(await first)
    async for event in stream:
        into.append(event)


async def test_every_subscriber_of_a_topic_gets_its_events_in_order(bus: Bus) -> None:
    topic, other = f"t-{secrets.token_hex(4)}", f"o-{secrets.token_hex(4)}"
    a: list[dict[str, Any]] = []
    b: list[dict[str, Any]] = []
    c: list[dict[str, Any]] = []
    ready = [asyncio.Event() for _ in range(3)]
    tasks = [
        asyncio.create_task(collect(bus, topic, a, ready[0])),
        asyncio.create_task(collect(bus, topic, b, ready[1])),
        asyncio.create_task(collect(bus, other, c, ready[2])),
    ]
    await asyncio.gather(*(r.wait() for r in ready))
    for n in range(20):
        await bus.publish(topic, {"n": n, "text": "ünïcode ✓"})
    for _ in range(50):
        if len(a) == len(b) == 20:
            break
        await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert [e["n"] for e in a] == [e["n"] for e in b] == list(range(20))
    assert a[0]["text"] == "ünïcode ✓" and c == []


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", str(tmp_path)]  # fmt: skip
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if redis.Redis(port=port, socket_connect_timeout=0.5).ping():
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

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
    got: list[dict[str, Any]] = []
    ready = asyncio.Event()
    task = asyncio.create_task(collect(bus, "spaces", got, ready))
    await ready.wait()
    await bus.publish("spaces", {"n": 1})
    stop()
    assert not await bus.ready()
    await bus.publish("spaces", {"n": "lost"})  # dropped, not raised
    assert bus.dropped == 1
    start()
    for _ in range(100):  # resubscribed within the backoff (at most 2 s a try)
        if bus.reconnects and await bus.ready():
            await bus.publish("spaces", {"n": 2})
            if any(e["n"] == 2 for e in got):
                break
        await asyncio.sleep(0.1)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await bus.close()
    assert got[0]["n"] == 1 and 2 in [e["n"] for e in got]
    assert bus.reconnects >= 1
