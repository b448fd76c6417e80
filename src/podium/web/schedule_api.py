"""What is on: the live and upcoming spaces, and a calendar file to be reminded of one."""

from __future__ import annotations

from datetime import datetime, timedelta

import icalendar
from starlette.requests import Request
from starlette.responses import Response

from podium import urls
from podium.domain.space import ANNOUNCED_LENGTH, Space, SpaceState
from podium.errors import Conflict, InvalidInput
from podium.services import of
from podium.web.api import space_response, space_view
from podium.web.http import CORS_HEADERS, bearer_token, json_response, public_base, read_body, space_of
from podium.web.schemas.spaces import HoldAudio, Listing

LISTED = 50
MAX_HOLD_FILE_BYTES = 12 * 1024 * 1024
# The reminder rings this long before the start (the pre-show opens then, too).
REMIND_BEFORE = timedelta(minutes=15)


async def listing(request: Request) -> Response:
    space_store = of(request).space_store
    listeners = of(request).listeners
    # Private spaces are never advertised; a scheduled space only with an account behind it, so
    # that anonymous spaces (anyone may create some) cannot fill what everyone sees. Live spaces
    # are few: no more than the nodes' budgets of stages.
    live = sorted(
        (s for s in await space_store.live() if not s.private), key=lambda s: s.started_at or s.created_at, reverse=True
    )[:LISTED]
    upcoming = await space_store.upcoming(LISTED, announced=True)
    body = Listing(
        live=[space_view(request, s, listeners.counts(s.id)) for s in live],
        upcoming=[space_view(request, s, listeners.counts(s.id)) for s in upcoming],
    )
    return json_response(body, cache="public, max-age=5")


def calendar_file(space: Space, page_url: str, instance: str, now: datetime) -> bytes:
    """One VEVENT (RFC 5545) with a display alarm before the start."""
    if space.starts_at is None:
        raise Conflict("this space has no start time to put in a calendar")
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Podium//live audio//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = icalendar.Event()
    host = instance.split("://", 1)[-1].split("/", 1)[0] or "podium"
    event.add("uid", f"{space.id}@{host}")
    event.add("dtstamp", now)
    event.add("dtstart", space.starts_at)
    event.add("dtend", space.starts_at + ANNOUNCED_LENGTH)
    event.add("summary", space.title)
    event.add("description", f"Live audio on Podium. Listen in the browser: {page_url}")
    event.add("url", page_url)
    event.add("location", page_url)
    # 15 minutes ahead, or half the time left (whole minutes) for a space that starts sooner: an
    # alarm before the moment the file was made would never ring; none under two minutes away.
    lead = min(REMIND_BEFORE, timedelta(minutes=(space.starts_at - now) // timedelta(minutes=2)))
    if lead >= timedelta(minutes=1):
        alarm = icalendar.Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", f"{space.title} starts in {lead // timedelta(minutes=1)} minutes")
        alarm.add("trigger", -lead)
        event.add_component(alarm)
    calendar.add_component(event)
    data: bytes = calendar.to_ical()
    return data


async def calendar(request: Request) -> Response:
    space = await space_of(request)
    if space.state is SpaceState.ENDED:
        raise Conflict("this space has ended; there is nothing to be reminded of")
    instance = public_base(request)
    page = instance + urls.fill(urls.LISTEN_PAGE, space_id=space.id)
    headers = {
        "Content-Disposition": f'attachment; filename="podium-{space.id}.ics"',
        "Cache-Control": "public, max-age=60",
        **CORS_HEADERS,
    }
    data = calendar_file(space, page, instance, of(request).clock.now())
    return Response(data, media_type="text/calendar; charset=utf-8", headers=headers)


async def go_live(request: Request) -> Response:
    space = await of(request).stages.go_live(request.path_params["space_id"], bearer_token(request))
    return space_response(request, space)


async def hold_audio(request: Request) -> Response:
    data = await read_body(request, MAX_HOLD_FILE_BYTES)
    if not data:
        raise InvalidInput("send the audio file as the request body")
    seconds = await of(request).stages.set_hold_audio(request.path_params["space_id"], bearer_token(request), data)
    return json_response(HoldAudio(hold_audio_s=round(seconds, 3)))
