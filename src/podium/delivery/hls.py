"""Serving LL-HLS: playlists (with blocking reload and delta updates), the init section, parts, segments.

Caching (DESIGN, bet 1): init, parts and segments never change once made, so they are immutable
with a year's max-age; a plain playlist lives about one part; a blocking reload's answer holds
at least what it asked for, forever, so it may be cached for longer.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from podium.backends.interfaces import MediaStore
from podium.captions import transcript
from podium.captions.transcript import Slot
from podium.domain.space import Space, SpaceState
from podium.errors import Forbidden, InvalidInput, NotFound
from podium.media.packager import INIT_NAME, Block, Layout, Packager, multivariant_playlist, segment_name
from podium.media.stage import BITRATE, Stage
from podium.services import of
from podium.spaces.stages import StageManager

IMMUTABLE = "public, max-age=31536000, immutable"
PLAYLIST_FRESH = "public, max-age=1"
BLOCKING_FRESH = "public, max-age=12"
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
MEDIA_TYPE = "video/iso.segment"  # what Apple's tools serve .m4s with; players read the bytes anyway
INIT_TYPE = "audio/mp4"
VTT_TYPE = "text/vtt; charset=utf-8"
CAPTIONS_PLAYLIST = "captions.m3u8"
# A caption comes up to ~3 s after its words: live, a WebVTT segment is listed only once the audio
# made is this far (seconds) past the segment's end, so that its words are in when it is read once
# and cached for good. Ended, every segment is listed.
CAPTIONS_SETTLE_S = 6.0
# Until the transcript is complete (the space ended, its last words flushed), what may still change
# is cached this long.
CAPTIONS_FRESH = "public, max-age=2"

# Names and numbers in their one canonical form: ASCII digits (`\d` would take any script's, and
# int() reads "١٢" as 12), no leading zero, bounded length. Every other spelling of a file is a 404,
# so that one object has one URL and a cache tier holds it once (`s00012.m4s` is not `s12.m4s`).
_NUMBER = "(0|[1-9][0-9]{0,8})"  # 0 .. 999,999,999
_PART = re.compile(rf"p{_NUMBER}-(0|[1-9][0-9]{{0,2}})\.m4s")
_SEGMENT = re.compile(rf"s{_NUMBER}\.m4s")
_CAPTIONS = re.compile(rf"c{_NUMBER}\.vtt")
_QUERY_INT = re.compile(_NUMBER)

# Every public answer may be read by a page on any origin (embeds, players elsewhere).
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Location, Link, ETag, Retry-After",
}


def parse_part_name(name: str) -> tuple[int, int] | None:
    """`p12-3.m4s` → (12, 3); anything else (`p012-3.m4s`, other digits, a trailing newline) → None."""
    match = _PART.fullmatch(name)
    return None if match is None else (int(match.group(1)), int(match.group(2)))


def parse_segment_name(name: str) -> int | None:
    """`s12.m4s` → 12; anything else → None."""
    match = _SEGMENT.fullmatch(name)
    return None if match is None else int(match.group(1))


def parse_captions_name(name: str) -> int | None:
    """`c12.vtt` → 12 (the WebVTT segment alongside audio segment 12); anything else → None."""
    match = _CAPTIONS.fullmatch(name)
    return None if match is None else int(match.group(1))


def parse_directive(name: str, raw: str | None) -> int | None:
    """A blocking-reload directive's value (`_HLS_msn`, `_HLS_part`): a decimal integer in ASCII
    digits, at most nine of them. Anything else is the client's mistake (RFC 8216bis: 400)."""
    if raw is None:
        return None
    if _QUERY_INT.fullmatch(raw) is None:
        raise InvalidInput(f"{name} must be a whole number in the digits 0-9 (at most 9, no leading zero)")
    return int(raw)


def _int_param(request: Request, name: str) -> int | None:
    return parse_directive(name, request.query_params.get(name))


async def _space_media(request: Request) -> tuple[Space, Stage | None]:
    directory = of(request).directory
    space = await directory.get_space(request.path_params["space_id"])
    key = request.path_params.get("key")
    if key is not None or space.private:
        # A signed listener link: its signature and window, no lookup (see delivery.links).
        if key is None:
            raise Forbidden("this space is private: listen from the listener link the host gave you")
        directory.check_link(space, key)
    stage = of(request).stages.stage(space.id)
    if space.state is SpaceState.SCHEDULED and stage is None:
        raise NotFound("this space is not live yet (its pre-show opens before the start)")
    return space, stage


async def _packager(stages: StageManager, space: Space, stage: Stage | None) -> Packager:
    if stage is not None:
        return stage.packager
    if space.state is SpaceState.ENDED:
        return await stages.ended_packager(space)
    raise NotFound("this space's stream is not running on this node")


def _headers(cache: str) -> dict[str, str]:
    return {"Cache-Control": cache, **CORS_HEADERS}


async def multivariant(request: Request) -> Response:
    space, _stage = await _space_media(request)
    captioning = of(request).captioning
    subtitles = None
    if (await captioning.settings(space.id)).enabled or await captioning.has_transcript(space.id):
        language = await captioning.language(space.id)
        subtitles = (f"Captions ({language})", language, CAPTIONS_PLAYLIST)
    body = multivariant_playlist(BITRATE, subtitles=subtitles)
    return Response(body, media_type=PLAYLIST_TYPE, headers=_headers(PLAYLIST_FRESH))


async def _caption_slots(request: Request, space: Space, stage: Stage | None) -> tuple[list[Slot], bool]:
    """The WebVTT segments listed now (one per audio segment the audio playlist lists, with the same
    numbers and lengths, live only once settled), and whether the list is final."""
    if stage is not None:
        placed = transcript.slots(stage.packager.segments)
        made_s = placed[-1].end_s if placed else 0.0
        return [slot for slot in placed if slot.end_s + CAPTIONS_SETTLE_S <= made_s], False
    if space.state is SpaceState.ENDED:
        # The replay lists the recording alone (the pre-show's hold audio is left out).
        placed = transcript.slots(await of(request).media.records(space.id))
        return [slot for slot in placed if not slot.record.preshow], True
    raise NotFound("this space's stream is not running on this node")


async def captions_playlist(request: Request) -> Response:
    space, stage = await _space_media(request)
    listed, ended = await _caption_slots(request, space, stage)
    captioning = of(request).captioning
    first = stage.packager.segments[0].msn if stage is not None and stage.packager.segments else 0
    layout = stage.packager.layout if stage is not None else Layout()
    body = transcript.subtitle_playlist(listed, layout.target_duration_s, first, ended)
    cache = "public, max-age=60" if ended and await captioning.complete(space) else PLAYLIST_FRESH
    return Response(body, media_type=PLAYLIST_TYPE, headers=_headers(cache))


async def _captions_segment(request: Request, space: Space, stage: Stage | None, msn: int) -> Response:
    listed, ended = await _caption_slots(request, space, stage)
    slot = next((slot for slot in listed if slot.msn == msn), None)
    if slot is None:
        raise NotFound("no such captions segment (not listed yet)")
    captioning = of(request).captioning
    body = transcript.subtitle_segment(slot, await captioning.transcript(space))
    settled = not ended or await captioning.complete(space)
    return Response(body, media_type=VTT_TYPE, headers=_headers(IMMUTABLE if settled else CAPTIONS_FRESH))


async def media_playlist(request: Request) -> Response:
    space, stage = await _space_media(request)
    msn = _int_param(request, "_HLS_msn")
    part = _int_param(request, "_HLS_part")
    skip = request.query_params.get("_HLS_skip", "").upper() in ("YES", "V2")
    if part is not None and msn is None:
        raise InvalidInput("_HLS_part needs _HLS_msn")
    packager = await _packager(of(request).stages, space, stage)
    # A plain reload lives about one part; a blocking reload's answer holds what it asked for.
    cache = PLAYLIST_FRESH if msn is None else BLOCKING_FRESH
    if msn is None and not packager.segments:
        # In the first seconds of a stream there is no whole segment yet, and some players
        # (ffmpeg) give up on a playlist without one: hold the answer until the first exists
        # (still a plain reload's answer: cached for a second, not like a blocking one).
        msn, part = 0, None
    if msn is not None:
        clock = of(request).clock
        deadline = clock.monotonic() + of(request).settings.hls_hold_s
        while True:
            state = packager.block(msn, part)
            if state is Block.READY:
                break
            if state is Block.TOO_FAR:
                raise InvalidInput("_HLS_msn is more than two segments ahead of the playlist")
            remaining = deadline - clock.monotonic()
            if remaining <= 0 or stage is None or not await stage.wait_for_change(remaining):
                return Response(
                    "the requested part is not ready; try again",
                    status_code=503,
                    headers={**_headers("no-store"), "Retry-After": "1"},
                )
    return Response(packager.playlist_bytes(skip=skip), media_type=PLAYLIST_TYPE, headers=_headers(cache))


async def init_section(request: Request) -> Response:
    space, stage = await _space_media(request)
    if stage is not None:
        return Response(stage.init, media_type=INIT_TYPE, headers=_headers(IMMUTABLE))
    return await _file(of(request).media, space, INIT_NAME, INIT_TYPE)


async def media_file(request: Request) -> Response:
    name = request.path_params["name"]
    space, stage = await _space_media(request)
    media = of(request).media
    wanted = parse_part_name(name)
    if wanted is not None:
        msn, index = wanted
        packager = await _packager(of(request).stages, space, stage)
        part = packager.part(msn, index)
        if part is None and stage is not None and packager.is_next_part(msn, index):
            # The preload hint names the part being made: hold the request until it exists.
            await stage.wait_for_change(of(request).settings.hls_hold_s)
            part = packager.part(msn, index)
        if part is None:
            raise NotFound("no such part (it is not made yet, or only its segment is kept)")
        return Response(part.data, media_type=MEDIA_TYPE, headers=_headers(IMMUTABLE))
    segment = parse_segment_name(name)
    if segment is None:
        captions = parse_captions_name(name)
        if captions is not None:
            return await _captions_segment(request, space, stage, captions)
        raise NotFound("no such file")
    if stage is not None and media.local_path(space.id, segment_name(segment)) is None:
        # Complete but still on its way to the disk: the packager has its parts in memory.
        data = _segment_from_parts(stage.packager, segment)
        if data is not None:
            return Response(data, media_type=MEDIA_TYPE, headers=_headers(IMMUTABLE))
    return await _file(media, space, segment_name(segment), MEDIA_TYPE)


def _segment_from_parts(packager: Packager, msn: int) -> bytes | None:
    if not any(r.msn == msn for r in packager.segments[-packager.layout.segments_with_parts - 1 :]):
        return None
    parts = []
    for index in range(packager.layout.parts_per_segment):
        part = packager.part(msn, index)
        if part is None:
            break
        parts.append(part.data)
    return b"".join(parts) or None


async def _file(media: MediaStore, space: Space, name: str, media_type: str) -> Response:
    path = media.local_path(space.id, name)
    if path is not None:
        return FileResponse(path, media_type=media_type, headers=_headers(IMMUTABLE))
    data = await media.read(space.id, name)  # object storage: no local file to send
    if data is None:
        raise NotFound("no such file")
    return Response(data, media_type=media_type, headers=_headers(IMMUTABLE))
