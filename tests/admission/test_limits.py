"""Rate limits behave the same with counters in memory and in Redis (one node or many)."""

from __future__ import annotations

import asyncio
import gc
import secrets
import time
import warnings
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from podium.admission.limits import MemoryCounters, Policy, RateLimits, network_of, storage_for
from podium.errors import RateLimited

REDIS_URL = "redis://127.0.0.1:6379"


async def reachable_redis() -> redis.asyncio.Redis:
    client = redis.asyncio.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except redis.RedisError as error:
        await client.aclose()
        pytest.fail(f"Redis is not running at {REDIS_URL} ({error}); .ci/run starts it")
    return client


async def forget(client: redis.asyncio.Redis, prefix: str) -> None:
    """Deletes every key of one namespace."""
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)


@pytest.fixture
async def redis_client() -> AsyncIterator[redis.asyncio.Redis]:
    client = await reachable_redis()
    yield client
    await client.aclose()


@pytest.fixture
async def key_prefix(redis_client: redis.asyncio.Redis) -> AsyncIterator[str]:
    """A namespace of this test's own in the shared Redis, emptied afterwards."""
    prefix = f"test-limits-{secrets.token_hex(6)}"
    yield prefix
    await forget(redis_client, prefix)


@pytest.fixture(params=["memory://", REDIS_URL])
async def limits(request: pytest.FixtureRequest) -> AsyncIterator[RateLimits]:
    if request.param == "memory://":
        instance = RateLimits(storage_for(request.param))
        yield instance
        await instance.close()
        return
    client = await reachable_redis()
    prefix = f"test-limits-{secrets.token_hex(6)}"
    instance = RateLimits(storage_for(request.param, key_prefix=prefix))
    yield instance
    await instance.close()
    await forget(client, prefix)
    await client.aclose()


async def test_a_limit_refuses_past_its_count_with_a_retry_after(limits: RateLimits) -> None:
    policy = Policy("test", "3/minute", "too many tries")
    for _ in range(3):
        await limits.hit(policy, "198.51.100.7")
    with pytest.raises(RateLimited) as refused:
        await limits.hit(policy, "198.51.100.7")
    assert refused.value.message == f"too many tries; try again in {refused.value.retry_after_s} s"
    assert 1 <= refused.value.retry_after_s <= 61
    await limits.hit(policy, "198.51.100.8")  # another key has its own count


async def test_concurrent_hits_let_exactly_the_limit_through(limits: RateLimits) -> None:
    """Checks in flight at once (one Redis round trip each, interleaved on the loop) never let
    more through than the limit."""
    policy = Policy("test", "10/minute", "too many")
    outcomes = await asyncio.gather(*(limits.hit(policy, "203.0.113.1") for _ in range(25)), return_exceptions=True)
    assert sum(outcome is None for outcome in outcomes) == 10
    assert all(isinstance(outcome, RateLimited) for outcome in outcomes if outcome is not None)


async def test_two_nodes_share_counts_in_redis(redis_client: redis.asyncio.Redis, key_prefix: str) -> None:
    policy = Policy("test", "4/minute", "too many joins")
    node_a = RateLimits(storage_for(REDIS_URL, key_prefix=key_prefix))
    node_b = RateLimits(storage_for(REDIS_URL, key_prefix=key_prefix))
    try:
        for node in (node_a, node_b, node_a, node_b):
            await node.hit(policy, "203.0.113.9")
        with pytest.raises(RateLimited):
            await node_b.hit(policy, "203.0.113.9")
        with pytest.raises(RateLimited):
            await node_a.hit(policy, "203.0.113.9")
        assert await node_a.allows(policy, "203.0.113.10")
        # The counts really are in Redis, under this namespace only.
        assert [key async for key in redis_client.scan_iter(match=f"{key_prefix}:*")]
        # A node with another namespace counts on its own.
        other = RateLimits(storage_for(REDIS_URL, key_prefix=f"{key_prefix}-other"))
        try:
            await other.hit(policy, "203.0.113.9")
        finally:
            await other.close()
            await forget(redis_client, f"{key_prefix}-other")
    finally:
        await node_a.close()
        await node_b.close()


@pytest.mark.parametrize("closed", [True, False])
async def test_closing_lets_go_of_the_redis_connections(key_prefix: str, closed: bool) -> None:
    """What the app's shutdown relies on: once closed, no connection is left open (redis-py
    warns about an open one when it is collected)."""
    limits = RateLimits(storage_for(REDIS_URL, key_prefix=key_prefix))
    await limits.hit(Policy("test", "1/minute", ""), "198.51.100.1")
    if closed:
        await limits.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        del limits
        gc.collect()
    unclosed = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert bool(unclosed) is not closed


def test_storage_urls_are_checked() -> None:
    from podium.errors import InvalidInput
    from podium.settings import Settings

    with pytest.raises(InvalidInput, match="PODIUM_LIMITS_URL"):
        Settings.load({"PODIUM_LIMITS_URL": "postgres://x"})


async def test_counting_refuses_nothing_and_allows_says_whether_a_key_is_still_under(limits: RateLimits) -> None:
    policy = Policy("test", "2/minute", "")
    assert await limits.allows(policy, "target")
    await limits.count(policy, "target")
    await limits.count(policy, "target")
    await limits.count(policy, "target")  # past the limit: counted, not refused
    assert not await limits.allows(policy, "target") and await limits.allows(policy, "another")
    with pytest.raises(RateLimited):
        await limits.hit(policy, "target")


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("::ffff:198.51.100.7", "198.51.100.7"),  # the same IPv4 client, written as IPv6
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),  # another address of the same site: the same count
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("unknown", "unknown"),
    ],
)
def test_an_address_counts_as_its_network(address: str, network: str) -> None:
    assert network_of(address) == network


async def test_the_memory_sweep_runs_on_the_loop_and_drops_what_expired(monkeypatch: pytest.MonkeyPatch) -> None:
    storage = MemoryCounters()
    limits = RateLimits(storage)
    policy = Policy("sweep", "5/second", "slow down")
    for n in range(50):
        await limits.hit(policy, f"key-{n}")
    assert len(storage.events) == 50

    def no_threads(*args: object, **kwargs: object) -> None:
        raise AssertionError("the sweep must not hand keys to worker threads")

    monkeypatch.setattr(asyncio, "to_thread", no_threads)
    later = time.time() + 2  # every window above is over
    monkeypatch.setattr(time, "time", lambda: later)
    storage.sweep()
    assert storage.events == {} and not storage.locks
    for _ in range(5):
        await limits.hit(policy, "key-1")  # a fresh window, counted from nothing
    with pytest.raises(RateLimited):
        await limits.hit(policy, "key-1")
