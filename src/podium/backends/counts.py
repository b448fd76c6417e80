"""Listener counts shared between nodes: each node reports what its own listeners' heartbeats say,
and reads the sum of every node's fresh report. In memory (one process, for the contract tests and
for nodes sharing a process) and in Redis (a hash per space, a field per node).

A report is fresh for `ttl_s`: a node that stops reporting (it died) drops out of the sum then.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis.asyncio as redis

from podium.clock import Clock, SystemClock
from podium.ids import SpaceId

PREFIX = "podium:listeners:"


@dataclass(frozen=True)
class Share:
    now: int
    unique: int


class MemoryCounts:
    def __init__(self, ttl_s: float, clock: Clock | None = None) -> None:
        self.ttl_s = ttl_s
        self._clock = clock or SystemClock()
        self._shares: dict[SpaceId, dict[str, tuple[float, Share]]] = {}

    async def report(self, space_id: SpaceId, node: str, share: Share) -> None:
        self._shares.setdefault(space_id, {})[node] = (self._clock.time(), share)

    async def total(self, space_id: SpaceId) -> Share:
        fresh_after = self._clock.time() - self.ttl_s
        shares = [s for at, s in self._shares.get(space_id, {}).values() if at >= fresh_after]
        return Share(sum(s.now for s in shares), sum(s.unique for s in shares))

    async def close(self) -> None:
        self._shares.clear()


class RedisCounts:
    def __init__(self, url: str, ttl_s: float, clock: Clock | None = None) -> None:
        self.ttl_s = ttl_s
        # Each node stamps its reports with its own clock's wall time (nodes' clocks agree by NTP).
        self._clock = clock or SystemClock()
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=2)

    async def report(self, space_id: SpaceId, node: str, share: Share) -> None:
        key = PREFIX + space_id
        value = json.dumps({"at": self._clock.time(), "now": share.now, "unique": share.unique})
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, node, value)
            pipe.expire(key, int(self.ttl_s * 4) + 1)  # the whole hash goes when every node has gone
            await pipe.execute()

    async def total(self, space_id: SpaceId) -> Share:
        fresh_after = self._clock.time() - self.ttl_s
        now = unique = 0
        for raw in (await self._redis.hgetall(PREFIX + space_id)).values():
            try:
                item = json.loads(raw)
                if float(item["at"]) >= fresh_after:
                    now += int(item["now"])
                    unique += int(item["unique"])
            except (ValueError, KeyError, TypeError):
                continue  # not ours, or torn: leave it out of the sum
        return Share(now, unique)

    async def close(self) -> None:
        await self._redis.aclose()
