"""Waiting for real I/O in tests: poll a condition until it holds, bounded in time.

The one place where tests wait on the real clock for something outside the process's control
(a `podium serve` subprocess, a socket, Redis, Chromium). Timers inside Podium are not waited for
this way: tests run them on `podium.testing.FakeClock`.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

# Between polls: short enough not to slow a test down, long enough not to load the machine.
POLL_S = 0.05


async def eventually(
    condition: Callable[[], T | Awaitable[T]], what: str, *, timeout_s: float = 10.0, poll_s: float = POLL_S
) -> T:
    """`condition()`'s first truthy result (a coroutine function's too), polled on the real clock;
    AssertionError naming `what` if it has none within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout_s:g} s: {what}")
        # Real time on purpose: what is polled happens outside this event loop's timers.
        await asyncio.sleep(poll_s)


def eventually_sync(condition: Callable[[], T], what: str, *, timeout_s: float = 10.0, poll_s: float = POLL_S) -> T:
    """`eventually` for code without an event loop (subprocesses, a browser driven synchronously)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout_s:g} s: {what}")
        time.sleep(poll_s)  # real time on purpose, as in `eventually`
