"""The in-process bus: each subscriber gets its own bounded queue; a slow one loses old events, never blocks."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator

from podium.events import Event, Topic


class MemoryBus:
    def __init__(self, queue_size: int = 256) -> None:
        self._queue_size = queue_size
        self._subscribers: dict[Topic, set[asyncio.Queue[Event]]] = defaultdict(set)

    async def publish(self, event: Event) -> None:
        # Events are frozen: every subscriber may be handed the same one.
        for queue in list(self._subscribers.get(event.TOPIC, ())):
            if queue.full():
                queue.get_nowait()  # drop the oldest: subscribers need the newest state
            queue.put_nowait(event)

    async def subscribe(self, topic: Topic) -> AsyncIterator[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        self._subscribers[topic].add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers[topic].discard(queue)
            if not self._subscribers[topic]:
                del self._subscribers[topic]

    async def ready(self) -> bool:
        return True

    async def close(self) -> None:
        self._subscribers.clear()
