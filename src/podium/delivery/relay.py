"""Between nodes: a request about a stage that runs on another node is answered by that node.

Any node answers any listener (DESIGN, bet 5). A space's stage, its live playlists and parts, its
timeline while it is live, and the host's controls over it live on the one node that holds the
stage's lease (backends.placement); the cache tier in front sends requests to any node. A node
that does not run the stage passes such a request on to the node that does, and its answer back,
unchanged: blocking playlist reloads block there, immutable parts stay immutable. Identical reads
that arrive together are passed on once (the cache tier collapses them too; this covers a tier
without request collapsing). A request that was passed on once is never passed on again, so two
nodes that disagree for a moment about the owner cannot bounce it between them.

Everything else (joins, heartbeats, posts, pages, ended spaces' replays) is answered where it
arrives, from the shared database, bus and storage.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from podium.ids import SpaceId
from podium.spaces.directory import SpaceDirectory
from podium.spaces.ownership import Ownership
from podium.spaces.stages import StageManager

log = logging.getLogger(__name__)

FORWARDED_HEADER = b"x-podium-forwarded-by"
NODE_HEADER = b"x-podium-node"
# Hop-by-hop headers and those the relay sets itself are not passed on.
_DROPPED = set(
    b"connection keep-alive transfer-encoding te upgrade host content-length proxy-connection content-encoding".split()
)
_NOT_REACHED = json.dumps(
    {"error": "the stage of this space is moving to another node; try again in a moment"}
).encode()


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


# The space whose stage answers a method and path, or None (the route table's `stage_owned`).
StageOwned = Callable[[str, str], SpaceId | None]


@dataclass(eq=False)
class OwnerRouter:
    """ASGI: passes stage requests on to the node that runs the stage; marks every answer with
    the node that made it (`X-Podium-Node`)."""

    app: ASGIApp
    directory: SpaceDirectory
    stages: StageManager
    ownership: Ownership
    stage_owned: StageOwned
    timeout_s: float

    def __post_init__(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout_s, connect=2.0),
            limits=httpx.Limits(max_connections=512, max_keepalive_connections=128),
        )
        self._in_flight: dict[str, asyncio.Future[Answer]] = {}
        self._node = self.ownership.node_id.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (NODE_HEADER, self._node)]}
            await send(message)

        space_id = self.stage_owned(scope["method"], scope["path"])
        if space_id is not None and not any(name == FORWARDED_HEADER for name, _ in scope["headers"]):
            address = await self._owner_address(space_id)
            if address:
                answer = await self._pass_on(scope, receive, address, space_id)
                await marked({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
                await marked({"type": "http.response.body", "body": answer.body})
                return
        await self.app(scope, receive, marked)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def closing(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await self._client.aclose()
            await send(message)

        await self.app(scope, receive, closing)

    async def _owner_address(self, space_id: SpaceId) -> str | None:
        # Only spaces this node knows to be open: a flood of made-up ids never reaches Redis.
        try:
            self.directory.open_space(space_id)
        except Exception:
            return None
        if self.stages.stage(space_id) is not None:
            return None
        return await self.ownership.stage_elsewhere(space_id)

    async def _pass_on(self, scope: Scope, receive: Receive, address: str, space_id: SpaceId) -> Answer:
        method: str = scope["method"]
        query: bytes = scope.get("query_string", b"")
        url = address.rstrip("/") + scope["path"] + ("?" + query.decode("latin-1") if query else "")
        headers = [(k, v) for k, v in scope["headers"] if k not in _DROPPED and k != b"x-forwarded-for"]
        headers.append((FORWARDED_HEADER, self._node))
        # As a proxy does: the client this node found (podium.web.forwarded), appended, so that the
        # owner, which trusts the nodes, counts the request against the client, not against this node.
        forwarded = [v for k, v in scope["headers"] if k == b"x-forwarded-for"]
        client = scope.get("client")
        if client:
            forwarded.append(str(client[0]).encode("latin-1"))
        if forwarded:
            headers.append((b"x-forwarded-for", b", ".join(forwarded)))
        shared = method in ("GET", "HEAD") and not any(k == b"authorization" for k, _ in headers)
        if not shared:
            body = await _read_body(receive)
            return await self._fetch(method, url, headers, body, space_id)
        # Identical reads in flight together: one request to the owner, one answer for all.
        key = f"{method} {url}"
        waiting = self._in_flight.get(key)
        if waiting is not None:
            return await asyncio.shield(waiting)
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            answer = await self._fetch(method, url, headers, b"", space_id)
            future.set_result(answer)
            return answer
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._in_flight[key]

    async def _fetch(
        self, method: str, url: str, headers: list[tuple[bytes, bytes]], body: bytes, space_id: SpaceId
    ) -> Answer:
        try:
            response = await self._client.request(method, url, headers=headers, content=body)
        except httpx.HTTPError as error:
            # The owner is gone or cut off: its lease will run out and the stage move; the
            # player (or the cache tier) tries again in a moment.
            log.warning("space %s: the node running its stage (%s) did not answer: %s", space_id, url, error)
            self.ownership.forget_elsewhere(space_id)
            return Answer(
                503,
                [
                    (b"content-type", b"application/json"),
                    (b"retry-after", b"1"),
                    (b"cache-control", b"no-store"),
                    (b"access-control-allow-origin", b"*"),
                    (b"content-length", str(len(_NOT_REACHED)).encode()),
                ],
                _NOT_REACHED,
            )
        kept = [(k, v) for k, v in response.headers.raw if k.lower() not in _DROPPED and k.lower() != NODE_HEADER]
        kept.append((b"content-length", str(len(response.content)).encode()))
        kept.append((b"x-podium-stage-node", response.headers.get("x-podium-node", "").encode()))
        return Answer(response.status_code, kept, response.content)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
