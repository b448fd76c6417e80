"""Which node owns a space's stage: a lease with a time to live, claimed, renewed and released.

One node mixes a space at a time; if it dies, the lease runs out and another node may claim it
(the recording goes on with a discontinuity). In memory and in Redis (SET NX PX; renew and release
only by the holder, in Lua). Nodes also announce their own address, with a time to live too, and
the same leases under another prefix say which node makes a space's timeline while no stage runs.
"""

from __future__ import annotations

import redis.asyncio as redis

from podium.clock import Clock, SystemClock
from podium.ids import SpaceId

PREFIX = "podium:stage:"
TIMELINE_PREFIX = "podium:timeline:"
NODE_PREFIX = "podium:node:"

# Renew or release only a lease this node holds: compare and act in one step.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class MemoryPlacement:
    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()  # Redis's leases run on Redis's clock
        self._leases: dict[SpaceId, tuple[str, float]] = {}
        self._addresses: dict[str, tuple[str, float]] = {}

    async def claim(self, space_id: SpaceId, node: str, ttl_s: float) -> bool:
        holder = await self.owner(space_id)
        if holder not in (None, node):
            return False
        self._leases[space_id] = (node, self._clock.monotonic() + ttl_s)
        return True

    async def renew(self, space_id: SpaceId, node: str, ttl_s: float) -> bool:
        return await self.owner(space_id) == node and await self.claim(space_id, node, ttl_s)

    async def owner(self, space_id: SpaceId) -> str | None:
        lease = self._leases.get(space_id)
        if lease is None or lease[1] <= self._clock.monotonic():
            self._leases.pop(space_id, None)
            return None
        return lease[0]

    async def release(self, space_id: SpaceId, node: str) -> None:
        if await self.owner(space_id) == node:
            del self._leases[space_id]

    async def announce(self, node: str, address: str, ttl_s: float) -> None:
        self._addresses[node] = (address, self._clock.monotonic() + ttl_s)

    async def address(self, node: str) -> str | None:
        known = self._addresses.get(node)
        return known[0] if known is not None and known[1] > self._clock.monotonic() else None

    async def close(self) -> None:
        self._leases.clear()


class RedisPlacement:
    def __init__(self, url: str, prefix: str = PREFIX) -> None:
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2, decode_responses=True)
        self._prefix = prefix

    async def claim(self, space_id: SpaceId, node: str, ttl_s: float) -> bool:
        key = self._prefix + space_id
        if await self._redis.set(key, node, nx=True, px=int(ttl_s * 1000)):
            return True
        return await self.renew(space_id, node, ttl_s)  # already ours (a restart within the lease)

    async def renew(self, space_id: SpaceId, node: str, ttl_s: float) -> bool:
        renewed = await self._redis.eval(_RENEW, 1, self._prefix + space_id, node, str(int(ttl_s * 1000)))
        return bool(renewed)

    async def owner(self, space_id: SpaceId) -> str | None:
        holder = await self._redis.get(self._prefix + space_id)
        return None if holder is None else str(holder)

    async def release(self, space_id: SpaceId, node: str) -> None:
        await self._redis.eval(_RELEASE, 1, self._prefix + space_id, node)

    async def announce(self, node: str, address: str, ttl_s: float) -> None:
        await self._redis.set(NODE_PREFIX + node, address, px=int(ttl_s * 1000))

    async def address(self, node: str) -> str | None:
        known = await self._redis.get(NODE_PREFIX + node)
        return None if known is None else str(known)

    async def close(self) -> None:
        await self._redis.aclose()
