"""Rate limits by name, on the `limits` library's asyncio API (moving windows; counters in this
process, or in Redis to share them between nodes).

Each policy is checked per key (a user, an address). A refusal says which limit was met and
when to try again; nothing past a refusal runs (no hashing, no database). Every check is awaited:
with Redis it is one round trip, which must never block the event loop.
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import math
import time
from dataclasses import dataclass

import redis.asyncio
from limits import parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.storage.redis.redispy import RedispyBridge
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from podium.errors import RateLimited


@dataclass(frozen=True)
class Policy:
    name: str
    limit: str  # in the `limits` notation, e.g. "5/minute"
    message: str


LOGIN_PER_ADDRESS = Policy("login-address", "30/minute", "too many sign-in attempts from your network")
# Sign-in attempts for one name from one address: a guesser elsewhere never locks the owner out.
LOGIN_PER_ADDRESS_AND_NAME = Policy(
    "login-address-name", "10/10minutes", "too many sign-in attempts for this account from your network"
)
# Wrong passwords for one name from everywhere: past this the name is under attack (counted, never refused)...
LOGIN_FAILURES_PER_NAME = Policy("login-failures-name", "20/hour", "")
# ...and then each address gets this many attempts for it: slower, never none.
LOGIN_UNDER_ATTACK = Policy(
    "login-under-attack",
    "1/minute",
    "this account is meeting many wrong passwords, so each network may try it only slowly",
)
SIGNUP_PER_ADDRESS = Policy("signup-address", "10/hour", "too many accounts created from your network")
POST_PER_USER = Policy("post-user", "10/minute", "you are posting too fast")
POST_PER_ADDRESS = Policy("post-address", "120/minute", "too many posts from your network")


def with_limit(policy: Policy, limit: str) -> Policy:
    """The same policy with another limit (from the settings)."""
    return Policy(policy.name, limit, policy.message)


GUEST_PER_ADDRESS = Policy("guest-address", "10/minute", "too many guests joined from your network")
SPACE_PER_ADDRESS = Policy("space-address", "20/hour", "too many spaces created from your network")
SPACE_PER_ACCOUNT = Policy("space-account", "20/hour", "you have created too many spaces")
REACTION_PER_ADDRESS = Policy("reaction-address", "20/10seconds", "too many reactions from your network")
VOTE_PER_USER = Policy("vote-user", "60/minute", "you are voting too fast")


def network_of(address: str) -> str:
    """The network an address stands for in per-address counts: an IPv4 address itself (also when
    written as IPv4-mapped IPv6), an IPv6 address's /64 (one home or site gets a whole /64, so
    one client can pick any address in it), anything else (a Unix socket's name) as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class MemoryCounters(MemoryStorage):
    """The library's asyncio memory storage with its expiry sweep done on the event loop, at most
    once a second. The library's own sweep hands each key to a worker thread and starts again
    after every hit once the last sweep ended: under steady traffic it runs all the time and costs
    about 70 times the sync storage's CPU. Sweeping inline is a bisect per key (microseconds);
    keys in use (their lock held) are left for the next sweep."""

    SWEEP_EVERY_S = 1.0

    def __init__(self) -> None:
        super().__init__()
        self._swept_at = -math.inf

    async def _MemoryStorage__schedule_expiry(self) -> None:  # the library's hook, by its mangled name
        now = time.monotonic()
        if now - self._swept_at >= self.SWEEP_EVERY_S:
            self._swept_at = now
            self.sweep()

    def sweep(self) -> None:
        """Drops moving-window events and counters whose time is over."""
        now = time.time()
        for key, events in list(self.events.items()):
            if self.locks[key].locked():
                continue
            # Newest first: the expired ones are the tail.
            cutoff = bisect.bisect_left(events, -now, key=lambda event: -event.expiry)
            del events[cutoff:]
            if not events:
                del self.events[key]
                self.locks.pop(key, None)
        for key, expiry in list(self.expirations.items()):
            if expiry <= now:
                self.storage.pop(key, None)
                del self.expirations[key]
                self.locks.pop(key, None)


def storage_for(url: str, key_prefix: str = RedisStorage.PREFIX) -> Storage:
    """Counters in this process ("memory://") or shared in Redis ("redis://host:port"), through
    redis-py's asyncio client. Every node must use the same `key_prefix` to share counts."""
    if url.startswith("memory://"):
        return MemoryCounters()
    # `limits` names its asyncio storages "async+<scheme>"; its default Redis client (coredis) is
    # not a dependency of Podium, redis-py's is.
    storage = storage_from_string(f"async+{url}", implementation="redispy", key_prefix=key_prefix)
    if not isinstance(storage, Storage):
        raise TypeError(f"{url} names a synchronous storage; use an asynchronous one")
    return storage


_item = functools.cache(parse)  # "5/minute" parsed once


class RateLimits:
    def __init__(self, storage: Storage | None = None) -> None:
        self._storage = storage or MemoryCounters()
        self._limiter = MovingWindowRateLimiter(self._storage)

    async def allows(self, policy: Policy, key: str) -> bool:
        """Whether `key` is still under `policy` now (counts nothing)."""
        return bool(await self._limiter.test(_item(policy.limit), policy.name, key))

    async def count(self, policy: Policy, key: str) -> None:
        """Count one event against `policy` for `key`, refusing nothing (what `allows` asks about)."""
        await self._limiter.hit(_item(policy.limit), policy.name, key)

    async def hit(self, policy: Policy, key: str) -> None:
        """Count one request against `policy` for `key`, or raise RateLimited with Retry-After."""
        item = _item(policy.limit)
        if not await self._limiter.hit(item, policy.name, key):
            reset_at, _remaining = await self._limiter.get_window_stats(item, policy.name, key)
            retry_after = int(reset_at - time.time()) + 1
            raise RateLimited(f"{policy.message}; try again in {retry_after} s", retry_after)

    async def close(self) -> None:
        """Lets go of the storage's connections (Redis); counters in memory hold none."""
        if isinstance(self._storage, RedisStorage) and isinstance(self._storage.bridge, RedispyBridge):
            client = self._storage.bridge.get_connection()
            if isinstance(client, redis.asyncio.Redis):
                await client.aclose()
