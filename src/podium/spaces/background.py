"""The one way a service repeats work in the background."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from podium.clock import Clock

log = logging.getLogger(__name__)


async def repeat(clock: Clock, interval_s: float, work: Callable[[], Awaitable[None]], what: str) -> None:
    """`work` every `interval_s` of the clock, for ever: the boundary of a background task (a
    failed round is logged and the next one goes on). The only place the services pace themselves."""
    while True:
        await clock.sleep(interval_s)
        try:
            await work()
        except Exception:
            log.exception("%s failed; will try again", what)


def start(
    clock: Clock, interval_s: float, work: Callable[[], Awaitable[None]], what: str, name: str
) -> asyncio.Task[None]:
    return asyncio.create_task(repeat(clock, interval_s, work, what), name=name)


async def cancel(tasks: list[asyncio.Task[None]]) -> None:
    """Cancels the tasks and waits until each has stopped (a failure was logged by its own boundary)."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    tasks.clear()
