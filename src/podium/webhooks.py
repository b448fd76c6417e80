"""Webhooks: a space's events (`space.started`, `space.ended`, `replay.ready`) as signed JSON POSTs
to the URLs its host registered, retried with backoff, every attempt logged.

- **Signature** (Standard Webhooks): `webhook-id` (the same on every retry), `webhook-timestamp`
  and `webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` under the `whsec_…`
  secret shown once, at registration).
- **Retries**: `backoff_s` is the wait before each try; a try is a 2xx answer within `timeout_s`,
  anything else fails. Tries run in background tasks, at most `max_concurrent` at once, never on
  the bus loop; a subscription deleted meanwhile gets no more.
- **Once between nodes**: the node that published an event (its `node`) delivers it, the others
  let it pass: no coordination, at the price of the tries to come if that node stops.
- **Private addresses (SSRF)**: a host resolving to a loopback, private, link-local, shared or
  reserved address (or an IPv6 address carrying one, see `domain.webhooks.is_public`) is refused at
  registration and before every try, unless PODIUM_WEBHOOKS_ALLOW_PRIVATE is set. Each try
  connects to the very address it checked (the name goes in Host and SNI); redirects are never
  followed.
- **Nothing at registration**: a stranger (anyone can host) cannot make this node fire requests
  at someone else's server by registering it; so `space.scheduled`, published before any URL can
  be registered, is never delivered.

Events go in the order they happen, but a retried one may arrive after a later one; each body
carries its `timestamp`. The log keeps the newest LOG_KEEP attempts of each space.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from podium.backends.interfaces import WebhookStore
from podium.domain import webhooks as rules
from podium.domain.space import Space
from podium.domain.webhooks import Attempt, Hook
from podium.errors import Conflict, InvalidInput, NotFound
from podium.events import SPACES, RecordingReady, SpaceEnded, SpaceStarted
from podium.ids import SpaceId
from podium.spaces.directory import SpaceDirectory

log = logging.getLogger(__name__)

DEFAULT_BACKOFF_S = (0.0, 1.0, 2.0, 4.0, 8.0)  # the wait before each try
ATTEMPT_TIMEOUT_S = 10.0
MAX_CONCURRENT = 16  # tries in flight at once, over every space
LOG_KEEP = 200  # attempts kept per space
# Every event comes from the bus; none is sent at registration (see above).
FROM_BUS = (SpaceStarted, SpaceEnded, RecordingReady)
# Resolves a host name and port to the addresses a connection may use (the event loop's by default).
Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve(host: str, port: int) -> list[str]:
    found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(sockaddr[0]) for *_, sockaddr in found]


@dataclass(eq=False)
class Webhooks:
    directory: SpaceDirectory
    store: WebhookStore
    _: KW_ONLY
    backoff_s: Sequence[float] = DEFAULT_BACKOFF_S
    timeout_s: float = ATTEMPT_TIMEOUT_S
    max_concurrent: int = MAX_CONCURRENT
    allow_private: bool = False
    resolver: Resolver = resolve

    def __post_init__(self) -> None:
        if not self.backoff_s or any(delay < 0 for delay in self.backoff_s):
            raise ValueError("backoff_s needs at least one try, and no negative wait")
        self.clock = self.directory.clock
        self._slots = asyncio.Semaphore(self.max_concurrent)
        self._locks: dict[SpaceId, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    # -- life -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        self._listener = asyncio.create_task(self._listen(), name="webhooks")

    async def stop(self) -> None:
        """Tries still waiting are dropped (the log shows the ones made)."""
        tasks = [*self._tasks, *([self._listener] if self._listener else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    # -- the host's subscriptions -----------------------------------------------------------

    async def register(self, space: Space, url: object) -> Hook:
        """Checked and stored; nothing is sent to the URL until one of the space's events happens."""
        checked = rules.check_url(url)
        await self._destination(checked)
        hook = Hook(rules.new_hook_id(), space.id, checked, rules.new_secret(), self.clock.now())
        # One node: this lock; between nodes: the store counts under a lock on the space's row.
        async with self._locks.setdefault(space.id, asyncio.Lock()):
            if not await self.store.add_webhook(hook, rules.MAX_HOOKS_PER_SPACE):
                raise Conflict(f"a space has at most {rules.MAX_HOOKS_PER_SPACE} webhooks; delete one first")
        return hook

    async def remove(self, space_id: SpaceId, hook_id: str) -> None:
        if not await self.store.remove_webhook(space_id, hook_id):
            raise NotFound("no such webhook on this space")

    async def view(self, space_id: SpaceId) -> dict[str, Any]:
        """The subscriptions (never their secrets) and the delivery log, newest first."""
        hooks = await self.store.webhooks(space_id)
        attempts = await self.store.attempts(space_id, LOG_KEEP)
        return {
            "webhooks": [hook_view(hook) for hook in hooks],
            "deliveries": [attempt_view(attempt) for attempt in attempts],
        }

    # -- delivery ---------------------------------------------------------------------------

    async def _listen(self) -> None:
        async for event in self.directory.bus.subscribe(SPACES):
            # Delivered once between nodes: by the node that published the event.
            if isinstance(event, FROM_BUS) and event.node == self.directory.node_id:
                self._spawn(self._fan_out(event.space, event.TYPE))

    async def _fan_out(self, space_id: SpaceId, event_type: str) -> None:
        hooks = await self.store.webhooks(space_id)
        if not hooks:
            return
        body = self._body(event_type, await self.directory.get_space(space_id))
        event_id = rules.new_event_id()
        for hook in hooks:
            self._spawn(self._deliver(hook, event_id, event_type, body))

    def _body(self, event_type: str, space: Space) -> bytes:
        content = rules.payload(event_type, space, self.directory.settings.base_url, self.clock.now())
        return json.dumps(content, separators=(",", ":")).encode()

    async def _deliver(self, hook: Hook, event_id: str, event_type: str, body: bytes) -> None:
        for number, wait_s in enumerate(self.backoff_s, start=1):
            await self.clock.sleep(wait_s)
            if number > 1 and hook.id not in {h.id for h in await self.store.webhooks(hook.space_id)}:
                return  # deleted meanwhile
            attempt = await self._try(hook, event_id, event_type, body, number)
            await self.store.add_attempt(hook.space_id, attempt, LOG_KEEP)
            if attempt.delivered:
                return
        log.warning("webhook %s: %s %s not delivered after %d tries", hook.id, event_type, event_id, number)

    async def _try(self, hook: Hook, event_id: str, event_type: str, body: bytes, number: int) -> Attempt:
        assert self._client is not None, "start() first"
        async with self._slots:
            at = self.clock.now()
            # The try itself is real I/O (a receiver's network): its deadline and its duration
            # are on the real clock, whatever clock paces the retries.
            started = time.monotonic()
            status: int | None = None
            error: str | None = None
            try:
                async with asyncio.timeout(self.timeout_s):
                    address = await self._destination(hook.url)
                # To the address checked, not the name again: no second lookup can change it. The
                # receiver's name goes in Host and, over TLS, in SNI (checked against its certificate).
                original, parts = httpx.URL(hook.url), urlsplit(hook.url)
                tls = {"sni_hostname": parts.hostname} if parts.scheme == "https" and parts.hostname else {}
                timestamp = int(at.timestamp())
                headers = {
                    "host": original.netloc.decode("ascii"),
                    "content-type": "application/json",
                    "user-agent": "Podium-Webhooks/1",
                    "webhook-id": event_id,
                    "webhook-timestamp": str(timestamp),
                    "webhook-signature": rules.sign(hook.secret, event_id, timestamp, body),
                }
                # The whole try is bounded (httpx's timeouts are per read); the answer's body is
                # never read, so a receiver cannot make Podium hold a large one.
                async with asyncio.timeout(self.timeout_s):
                    async with self._client.stream(
                        "POST", original.copy_with(host=address), content=body, headers=headers, extensions=tls
                    ) as response:
                        status = response.status_code
            except InvalidInput as refused:
                error = refused.message
            except TimeoutError:
                error = f"no answer within {self.timeout_s:g} s"
            except (httpx.HTTPError, httpx.InvalidURL) as failure:  # InvalidURL: an address with a zone id
                error = f"{type(failure).__name__}: {failure}" if str(failure) else type(failure).__name__
            duration_ms = round((time.monotonic() - started) * 1000)
        return Attempt(event_id, event_type, hook.id, hook.url, number, status, error, duration_ms, at)

    async def _destination(self, url: str) -> str:
        """The address to connect to for `url`: its host resolved once; refused (InvalidInput)
        when any address it resolves to is off the public internet (SSRF), unless allowed."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        default_port = 443 if parts.scheme == "https" else 80
        try:
            found = await self.resolver(host, parts.port or default_port)
        except (OSError, UnicodeError):
            found = []
        if not found:
            raise InvalidInput(f"the host {host} cannot be found (no DNS answer)")
        private = [address for address in found if not rules.is_public(address)]
        if private and not self.allow_private:
            raise InvalidInput(
                f"the host {host} is at {private[0]}, a private or local address; webhooks go to "
                "addresses on the internet (PODIUM_WEBHOOKS_ALLOW_PRIVATE=1 allows others)"
            )
        return found[0]

    @property
    def delivering(self) -> int:
        """Deliveries under way (each with its retries still to come)."""
        return len(self._tasks)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        # The work itself is the task: one cancelled before it ran (at stop) is closed by asyncio,
        # never left unawaited.
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Task[None]) -> None:
        """The boundary of each background delivery: a failure is logged, never raised."""
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("webhooks: a delivery failed", exc_info=error)


def hook_view(hook: Hook) -> dict[str, Any]:
    return {
        "id": hook.id,
        "url": hook.url,
        "events": list(rules.EVENTS),
        "created_at": hook.created_at.isoformat().replace("+00:00", "Z"),
    }


def attempt_view(attempt: Attempt) -> dict[str, Any]:
    return {
        "event_id": attempt.event_id,
        "type": attempt.event_type,
        "webhook": attempt.hook_id,
        "url": attempt.url,
        "attempt": attempt.attempt,
        "status": attempt.status,
        "error": attempt.error,
        "delivered": attempt.delivered,
        "duration_ms": attempt.duration_ms,
        "at": attempt.at.isoformat().replace("+00:00", "Z"),
    }
