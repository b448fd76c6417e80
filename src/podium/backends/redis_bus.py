"""The bus between nodes: Redis pub/sub, with reconnect and resubscribe.

redis-py's pub/sub does not resubscribe by itself after its connection drops; each subscription
here is a loop that, on a lost connection, waits (0.1 s doubling to 2 s), opens a new pub/sub and
subscribes again. Events published while a subscriber was cut off are lost to it (pub/sub keeps
nothing): subscribers treat events as hints and read state from its store, as on one node.
A publish that cannot reach Redis is logged and dropped: an event is never worth a failed request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import redis.asyncio as redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from podium.events import Event, Topic, decode, encode

log = logging.getLogger(__name__)

PREFIX = "podium:"
RETRY_FIRST_S = 0.1
RETRY_MAX_S = 2.0
_LOST = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)


def _closer(pubsub: PubSub) -> Callable[[], Awaitable[None]]:
    """`pubsub.aclose`, typed the same whichever redis-py is installed (typed only from 8.x): no
    `type: ignore` that one release needs and the other forbids."""
    return pubsub.aclose


class RedisBus:
    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=2, health_check_interval=10)
        self.dropped = 0  # events that could not be published
        self.reconnects = 0  # subscriptions made again after a lost connection

    async def publish(self, event: Event) -> None:
        try:
            await self._redis.publish(PREFIX + event.TOPIC, json.dumps(encode(event)))
        except _LOST as error:
            self.dropped += 1
            log.warning("bus: could not publish on %s (%s); the event is dropped", event.TOPIC, error)

    async def subscribe(self, topic: Topic) -> AsyncIterator[Event]:
        delay = RETRY_FIRST_S
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(PREFIX + topic)
                delay = RETRY_FIRST_S
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    try:
                        data = json.loads(message["data"])
                    except (ValueError, TypeError):
                        log.warning("bus: a message on %s is not JSON; skipped", topic)
                        continue
                    event = decode(data)  # None (logged) for a type this node does not know
                    if event is not None and topic == event.TOPIC:
                        yield event
            except _LOST as error:
                self.reconnects += 1
                log.warning("bus: lost the subscription to %s (%s); subscribing again in %.1f s", topic, error, delay)
                await asyncio.sleep(delay)  # real clock: a back-off from a real server
                delay = min(RETRY_MAX_S, delay * 2)
            finally:
                with contextlib.suppress(*_LOST):
                    await _closer(pubsub)()

    async def ready(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except _LOST:
            return False

    async def close(self) -> None:
        await self._redis.aclose()
