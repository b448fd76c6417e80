"""Captions: the host's switch and language, and the transcript (JSON, WebVTT, SRT), as private
as the recording it belongs to."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from podium.captions import transcript as T
from podium.captions.transcript import Segment
from podium.delivery.hls import VTT_TYPE
from podium.domain.space import Space
from podium.domain.stage import Role
from podium.services import of
from podium.web.http import CORS_HEADERS, bearer_token, check_private_link, json_response, read_model, space_of
from podium.web.schemas import convert
from podium.web.schemas.captions import CaptionsChange, CaptionsStatus, Transcript

SRT_TYPE = "application/x-subrip; charset=utf-8"


async def captions(request: Request) -> Response:
    """GET: the settings and how captions keep up; PUT: the host's (or a co-host's) choice."""
    captioning = of(request).captioning
    if request.method == "PUT":
        body = await read_model(request, CaptionsChange, 1024)
        space_id = request.path_params["space_id"]
        language = body.language if isinstance(body.language, str) else None
        if language is None:
            language = (await captioning.settings((await of(request).directory.get_space(space_id)).id)).language
        await captioning.configure(space_id, bearer_token(request), body.enabled, language)
    space = await space_of(request, Role.HOST, Role.COHOST, refusal="only the host and co-hosts see the captions")
    return json_response(convert(await captioning.status(space), CaptionsStatus))


async def _transcript(request: Request) -> tuple[Space, list[Segment], bool, str]:
    """The space's transcript, after the same check as its recording's download; and the answer's
    caching: like the replay's, and only in the listener's own browser for a private space."""
    space = await space_of(request)
    check_private_link(request, space)
    captioning = of(request).captioning
    complete = await captioning.complete(space)
    scope = "private" if space.private else "public"
    cache = f"{scope}, max-age=60" if complete else f"{scope}, max-age=2"
    return space, await captioning.transcript(space), complete, cache


async def transcript(request: Request) -> Response:
    space, segments, complete, cache = await _transcript(request)
    captioning = of(request).captioning
    body = {
        "language": await captioning.language(space.id),
        "engine": captioning.engine,
        "complete": complete,
        "segments": [segment.view() for segment in segments],
    }
    return json_response(convert(body, Transcript), cache=cache)


async def transcript_vtt(request: Request) -> Response:
    _space, segments, _complete, cache = await _transcript(request)
    return Response(T.render_vtt(segments), media_type=VTT_TYPE, headers={"Cache-Control": cache, **CORS_HEADERS})


async def transcript_srt(request: Request) -> Response:
    space, segments, _complete, cache = await _transcript(request)
    headers = {
        "Cache-Control": cache,
        "Content-Disposition": f'inline; filename="{space.id}.srt"',
        **CORS_HEADERS,
    }
    return Response(T.render_srt(segments), media_type=SRT_TYPE, headers=headers)


async def clip_words(request: Request, space: Space, facts: dict[str, Any]) -> list[dict[str, Any]]:
    """The transcript's words within a clip, their times from the clip's start (cut to the clip)."""
    offset_s, duration_s = float(facts["offset_s"]), float(facts["duration_s"])
    segments = T.overlapping(await of(request).captioning.transcript(space), offset_s, offset_s + duration_s)
    return [
        {
            **segment.view(),
            "start_s": round(max(0.0, segment.start_s - offset_s), 3),
            "end_s": round(min(duration_s, segment.end_s - offset_s), 3),
        }
        for segment in segments
    ]
