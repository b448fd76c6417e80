"""Rate limits behave the same with counters in memory and in Redis (one node or many)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
import redis

from podium.admission.limits import Policy, RateLimits, network_of, storage_for
from podium.errors import RateLimited

REDIS_URL = "redis://127.0.0.1:6379"


@pytest.fixture(params=["memory://", REDIS_URL])
def limits(request: pytest.FixtureRequest) -> Iterator[RateLimits]:
    if request.param.startswith("redis"):
        try:
            redis.Redis.from_url(request.param, socket_connect_timeout=2).ping()
        except redis.RedisError as error:
            pytest.fail(f"Redis is not running at {request.param} ({error}); .ci/run starts it")
    yield RateLimits(storage_for(request.param))


def test_a_limit_refuses_past_its_count_with_a_retry_after(limits: RateLimits) -> None:
    policy = Policy(f"test-{secrets.token_hex(4)}", "3/minute", "too many tries")
    for _ in range(3):
        limits.hit(policy, "198.51.100.7")
    with pytest.raises(RateLimited) as refused:
        limits.hit(policy, "198.51.100.7")
    assert "too many tries" in refused.value.message and 1 <= refused.value.retry_after_s <= 61
    limits.hit(policy, "198.51.100.8")  # another key has its own count


def test_two_nodes_share_counts_in_redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis is not running at {REDIS_URL} ({error})")
    policy = Policy(f"test-{secrets.token_hex(4)}", "4/minute", "too many joins")
    node_a, node_b = RateLimits(storage_for(REDIS_URL)), RateLimits(storage_for(REDIS_URL))
    for node in (node_a, node_b, node_a, node_b):
        node.hit(policy, "203.0.113.9")
    with pytest.raises(RateLimited):
        node_b.hit(policy, "203.0.113.9")


def test_storage_urls_are_checked() -> None:
    from podium.errors import InvalidInput
    from podium.settings import Settings

    with pytest.raises(InvalidInput, match="PODIUM_LIMITS_URL"):
        Settings.load({"PODIUM_LIMITS_URL": "postgres://x"})


def test_counting_refuses_nothing_and_allows_says_whether_a_key_is_still_under(limits: RateLimits) -> None:
    policy = Policy(f"test-{secrets.token_hex(4)}", "2/minute", "")
    assert limits.allows(policy, "target")
    limits.count(policy, "target")
    limits.count(policy, "target")
    limits.count(policy, "target")  # past the limit: counted, not refused
    assert not limits.allows(policy, "target") and limits.allows(policy, "another")
    with pytest.raises(RateLimited):
        limits.hit(policy, "target")


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
