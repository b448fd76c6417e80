"""Replay, download, clips and their checking, and the instance's podcast feed."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from podium.domain.posts import public_view
from podium.domain.space import SpaceState
from podium.errors import Forbidden, InvalidInput
from podium.media import clips
from podium.services import of
from podium.web.accounts_api import client_address
from podium.web.api import space_response
from podium.web.captions_api import clip_words
from podium.web.feed import podcast_feed
from podium.web.http import (
    CORS_HEADERS,
    bearer_token,
    check_private_link,
    json_response,
    public_base,
    read_body,
    read_model,
    space_of,
)
from podium.web.pages import render_page
from podium.web.schemas import convert
from podium.web.schemas import recording as R
from podium.web.schemas.spaces import RecordingSwitch

M4A_TYPE = "audio/mp4"


def _m4a(file: Path | bytes, disposition: str, *, private: bool = False) -> Response:
    """A finished recording or clip: never changes once made, so caches keep it for good, except a
    private space's, which only its listener's browser keeps (a shared cache keys on the path and
    would hand it to the next one asking without a link). A local file is streamed (with ranges);
    a store without one gives its bytes."""
    scope = "private" if private else "public"
    headers = {"Cache-Control": f"{scope}, max-age=31536000, immutable", "Content-Disposition": disposition}
    if isinstance(file, bytes):
        return Response(file, media_type=M4A_TYPE, headers={**headers, **CORS_HEADERS})
    return FileResponse(file, media_type=M4A_TYPE, headers={**headers, **CORS_HEADERS})


async def set_recording(request: Request) -> Response:
    body = await read_model(request, RecordingSwitch, 1024)
    space_id = request.path_params["space_id"]
    return space_response(
        request, await of(request).directory.set_recording(space_id, bearer_token(request), body.record)
    )


async def download(request: Request) -> Response:
    space = await space_of(request)
    check_private_link(request, space)
    file = await of(request).recordings.download(space)
    filename = "".join(c if c.isalnum() or c in " -_" else "_" for c in space.title)[:80].strip() or space.id
    return _m4a(file, f'inline; filename="{filename}.m4a"', private=space.private)


async def replay(request: Request) -> Response:
    space = await space_of(request)
    recordings, posting = of(request).recordings, of(request).posting
    body = await recordings.replay(space)
    records = await of(request).media.records(space.id) if space.record else []
    shown = [*await posting.questions(space.id), *await posting.comments(space.id)]
    posts = [{**public_view(post), "at_s": recordings.offset_of(records, post.created_at)} for post in shown]
    body["posts"] = sorted(posts, key=lambda p: (p["at_s"], p["id"]))
    cache = "public, max-age=60" if space.state is SpaceState.ENDED else "public, max-age=2"
    return json_response(convert(body, R.Replay), cache=cache)


async def recording_fingerprint(request: Request) -> Response:
    space = await space_of(request)
    view = convert(await of(request).recordings.fingerprint(space), R.Fingerprint)
    # An ended recording's fingerprint never changes: the cache tier keeps it (deploy/nginx).
    return json_response(view, cache="public, max-age=86400" if view.complete else "public, max-age=2")


async def create_clip(request: Request) -> Response:
    space = await space_of(request)
    if space.private:
        raise Forbidden("clips are made of public spaces only (this one is private)")
    body = await read_model(request, R.NewClip, 1024)
    view = await of(request).recordings.create_clip(space, body.start_s, body.duration_s, client_address(request))
    clip = convert({**view, "words": await clip_words(request, space, view["facts"])}, R.Clip)
    return json_response(clip, status=201, headers={"Location": clip.urls.page})


async def get_clip(request: Request) -> Response:
    space = await space_of(request)
    view, _file = await of(request).recordings.clip(space, request.path_params["clip_id"])
    # Its words can still come in for a while after its space ends: kept briefly until then.
    cache = "public, max-age=3600" if await of(request).captioning.complete(space) else "public, max-age=10"
    return json_response(
        convert({**view, "words": await clip_words(request, space, view["facts"])}, R.Clip), cache=cache
    )


async def clip_file(request: Request) -> Response:
    space = await space_of(request)
    view, file = await of(request).recordings.clip(space, request.path_params["clip_id"])
    return _m4a(file, f'attachment; filename="{view["id"]}.m4a"')


async def verify(request: Request) -> Response:
    data = await read_body(request, clips.MAX_CLIP_BYTES)
    if not data:
        raise InvalidInput("send the clip file as the request body")
    verdict = await of(request).recordings.verify(data, client_address(request))
    return json_response(convert(verdict.view(), R.Verdict))


async def public_key(request: Request) -> Response:
    return json_response(of(request).recordings.key_view(), cache="public, max-age=3600")


async def feed(request: Request) -> Response:
    # What the listing announces (`domain.space.announced`).
    spaces = await of(request).space_store.recent(100, announced=True)
    captioning = of(request).captioning
    transcripts = {
        space.id: await captioning.language(space.id)
        for space in spaces
        if space.state is SpaceState.ENDED and space.record and await captioning.has_transcript(space.id)
    }
    xml = await podcast_feed(of(request).media, spaces, public_base(request), transcripts)
    headers = {"Cache-Control": "public, max-age=30", **CORS_HEADERS}
    return Response(xml, media_type="application/rss+xml; charset=utf-8", headers=headers)


async def clip_page(request: Request) -> Response:
    await get_clip(request)  # 404 for a clip that is not there
    return render_page(request, "clip.html")


async def verify_page(request: Request) -> Response:
    return render_page(request, "verify.html")
