"""The listener hot path: what every player asks for most, answered before the router.

Plain playlist reloads and parts of a live stage are the bulk of listener traffic. They are
answered from the packager's memory with prebuilt headers; everything else (blocking reloads,
segments, ended spaces, errors) goes on to the full application, which answers the same way, only
slower. Invariant: the fast path answers a request exactly as `delivery.hls` would, or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from podium import urls
from podium.delivery.hls import IMMUTABLE, MEDIA_TYPE, PLAYLIST_FRESH, PLAYLIST_TYPE, parse_part_name
from podium.ids import SpaceId
from podium.spaces.directory import SpaceDirectory
from podium.spaces.stages import StageManager


def _headers(content_type: str, cache: str, length: int) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", content_type.encode()),
        (b"cache-control", cache.encode()),
        (b"access-control-allow-origin", b"*"),
        (b"access-control-expose-headers", b"Location, Link, ETag, Retry-After"),
        (b"content-length", str(length).encode()),
    ]


# The route a method and path are for, by name, and its parameters (the route table's `name_of`).
NameOf = Callable[[str, str], tuple[str, dict[str, str]] | None]
# The routes answered here (unsigned: a private space's audio needs its signed link).
LIVE_PLAYLIST, MEDIA_FILE = "hls.live", "hls.file"
# Their folder: every other request goes on without a second match against the table (the door
# has matched it once already).
_STREAM = urls.HLS.split("{", 1)[0]


@dataclass(eq=False)
class HlsFastPath:
    app: ASGIApp
    stages: StageManager
    directory: SpaceDirectory
    name_of: NameOf

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"].startswith(_STREAM):
            answer = self._answer(scope)
            if answer is not None:
                headers, body = answer
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def _answer(self, scope: Scope) -> tuple[list[tuple[bytes, bytes]], bytes] | None:
        route = self.name_of("GET", scope["path"])
        if route is None or route[0] not in (LIVE_PLAYLIST, MEDIA_FILE):
            return None
        which, params = route
        space_id = params["space_id"]
        stage = self.stages.stage(SpaceId(space_id))
        if stage is None or self.directory.is_private(SpaceId(space_id)):
            return None  # a private space's audio needs its signed link: the full path checks it
        packager = stage.packager
        if which == LIVE_PLAYLIST:
            query: Any = scope.get("query_string", b"")
            if query or not packager.segments:
                return None  # blocking reload, delta update, or a stream still starting
            body = packager.playlist_bytes()
            return _headers(PLAYLIST_TYPE, PLAYLIST_FRESH, len(body)), body
        wanted = parse_part_name(params["name"])
        if wanted is None:
            return None
        part = packager.part(*wanted)
        if part is None:
            return None
        return _headers(MEDIA_TYPE, IMMUTABLE, len(part.data)), part.data
