"""The JSON API and WHIP ingest. Outside clients rely on these shapes: change them with care."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from podium.admission.joins import Joins
from podium.admission.limits import SPACE_PER_ACCOUNT, SPACE_PER_ADDRESS, RateLimits, with_limit
from podium.audience.presence import Counts
from podium.domain.space import Space, SpaceState
from podium.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from podium.ids import SpaceId, is_space_id
from podium.media.ice_servers import IceServer, with_credentials
from podium.settings import Settings
from podium.web import state
from podium.web.accounts_api import client_address, optional_user
from podium.web.http import CORS_HEADERS, bearer_token, json_response, read_body, read_json


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def space_urls(base: str, space: Space) -> dict[str, str]:
    urls = {
        "page": f"{base}/s/{space.id}",
        "host": f"{base}/host/{space.id}",
        "whip": f"{base}/whip/{space.id}",
        "hls": f"{base}/hls/{space.id}/index.m3u8",
    }
    if space.state is SpaceState.ENDED and space.record and space.started_at is not None:
        # The live playlist, now closed with EXT-X-ENDLIST, is the replay; the download is its remux.
        urls["replay"] = f"{base}/hls/{space.id}/index.m3u8"
        urls["replay_page"] = f"{base}/s/{space.id}"
        urls["download"] = f"{base}/media/{space.id}/recording.m4a"
    return urls


def listeners_view(counts: Counts) -> dict[str, Any]:
    # sample_rate: listeners whose id falls below it beat; the others stay silent (DESIGN, bet 1).
    return {"now": counts.now, "peak": counts.peak, "unique": counts.unique, "sample_rate": counts.sample_rate}


def space_view(request: Request, space: Space, counts: Counts) -> dict[str, Any]:
    stages, settings = state.stages(request), state.settings(request)
    return {
        "id": space.id,
        "title": space.title,
        "state": space.state.value,
        "created_at": _iso(space.created_at),
        "starts_at": _iso(space.starts_at),
        "started_at": _iso(space.started_at),
        "ended_at": _iso(space.ended_at),
        "record": space.record,
        "private": space.private,
        "preshow": stages.in_preshow(space.id),
        "listeners": listeners_view(counts),
        "speakers": stages.speakers_connected(space.id),
        "heartbeat_interval_s": settings.heartbeat_interval_s,
        "urls": space_urls(settings.base_url, space),
    }


async def create_space(request: Request) -> Response:
    settings = state.settings(request)
    body = await read_json(request, settings.max_json_bytes)
    unknown = set(body) - {"title", "starts_at", "record", "private"}
    if unknown:
        expected = "title, starts_at, record and private"
        raise InvalidInput(f"unknown field(s): {', '.join(sorted(unknown))}; expected {expected}")
    if "title" not in body:
        raise InvalidInput("title is required")
    # Anyone may create a space, within limits per address and per account (DESIGN, bet 7); an
    # account's spaces are announced in the listing and the feed (`domain.space.announced`).
    user = await optional_user(request)
    if user is None and settings.spaces_need_account:
        raise Unauthenticated("sign in to create a space: this instance asks for an account")
    limits: RateLimits = request.app.state.limits

    def admit() -> None:
        limits.hit(with_limit(SPACE_PER_ADDRESS, settings.space_limit_per_address), client_address(request))
        if user is not None:
            limits.hit(with_limit(SPACE_PER_ACCOUNT, settings.space_limit_per_account), user[0])

    created = await state.directory(request).create_space(
        body["title"],
        body.get("starts_at"),
        body.get("record", True),
        body.get("private", False),
        created_by=user[0] if user is not None else None,
        admit=admit,
    )
    view = space_view(request, created.space, state.listeners(request).counts(created.space.id))
    view["host_token"] = created.host_token
    return json_response(view, status=201, headers={"Location": view["urls"]["page"]})


async def get_space(request: Request) -> Response:
    space = await state.directory(request).get_space(request.path_params["space_id"])
    # Public and the same for everyone: cacheable for about one part (DESIGN, bet 1).
    counts = state.listeners(request).counts(space.id)
    return json_response(space_view(request, space, counts), cache="public, max-age=1")


def space_response(request: Request, space: Space) -> Response:
    return json_response(space_view(request, space, state.listeners(request).counts(space.id)))


async def end_space(request: Request) -> Response:
    stages = state.stages(request)
    return space_response(request, await stages.end_space(request.path_params["space_id"], bearer_token(request)))


async def rotate_host_token(request: Request) -> Response:
    """A new host token for the current one, which stops working at once (a leaked token is ended)."""
    members = state.members(request)
    token, expires = await members.rotate_host_token(request.path_params["space_id"], bearer_token(request))
    return json_response({"host_token": token, "expires": expires}, status=201)


async def heartbeat(request: Request) -> Response:
    """An admitted listener's beat: `{listener_id, pass, leaving?}`, the pass as the join gave it."""
    listeners = state.listeners(request)
    joins: Joins = request.app.state.joins
    body = await read_json(request, 1024)
    leaving = body.get("leaving", False)
    if not isinstance(leaving, bool):
        raise InvalidInput("leaving must be true or false")
    space_id = request.path_params["space_id"]
    if not is_space_id(space_id):
        raise NotFound("no such space")
    address = client_address(request)
    listener = joins.admit_beat(SpaceId(space_id), body, address)
    counts = await listeners.heartbeat(SpaceId(space_id), listener, address, leaving=leaving)
    space = await state.directory(request).get_space(space_id)
    return json_response(
        {
            "state": space.state.value,
            "listeners": listeners_view(counts),
            "interval_s": state.settings(request).heartbeat_interval_s,
            # False past the address's share, or outside the sample: the beat was taken, not counted.
            "counted": listeners.is_counted(space.id, listener),
        }
    )


# -- WHIP (RFC 9725) -------------------------------------------------------------------------

WHIP_CORS = {
    **CORS_HEADERS,
    "Access-Control-Allow-Methods": "POST, DELETE, PATCH, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Max-Age": "600",
}


async def whip_options(request: Request) -> Response:
    return Response(status_code=204, headers={**WHIP_CORS, "Accept-Post": "application/sdp"})


async def whip_publish(request: Request) -> Response:
    settings = state.settings(request)
    token = bearer_token(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/sdp":
        raise InvalidInput("a WHIP offer must be sent with Content-Type: application/sdp")
    space_id = request.path_params["space_id"]
    # Check the token before reading a large body: a forged request costs a signature check only
    # (the only one: the checked grant is what the stage is asked with).
    grant = state.signer(request).verify(token)
    offer = await read_body(request, settings.max_offer_bytes)
    session, answer = await state.stages(request).publish(space_id, grant, offer)
    location = f"{settings.base_url}/whip/{space_id}/{session.id}"
    links = ice_server_links(settings, session.member_id)  # publishing at all needs a place on stage
    return Response(
        answer,
        status_code=201,
        media_type="application/sdp",
        headers={**WHIP_CORS, "Location": location, "ETag": f'"{session.id}"', **links},
    )


def servers_for(settings: Settings, member_id: str) -> tuple[IceServer, ...]:
    """The STUN/TURN servers for one person on stage, TURN credentials their own when there is a
    shared secret (PODIUM_TURN_SECRET)."""
    return with_credentials(
        settings.ice_server_list(), settings.turn_secret, member_id, time.time(), settings.turn_credential_lifetime_s
    )


def ice_server_links(settings: Settings, member_id: str) -> dict[str, str]:
    # RFC 9725 §4.6: a WHIP client (OBS) learns the STUN/TURN servers from the answer's Link headers.
    links = [server.link_header() for server in servers_for(settings, member_id)]
    return {"Link": ", ".join(links)} if links else {}


async def ice_servers(request: Request) -> Response:
    """GET /api/spaces/{id}/ice-servers: the STUN/TURN servers for a speaker's browser. Only for
    people on stage (host, co-hosts, invited speakers) as the stage is now: TURN relays at its
    operator's expense, and anyone can be a guest in the audience."""
    directory = state.directory(request)
    space = await directory.get_space(request.path_params["space_id"])
    member = directory.authorize(space, bearer_token(request))
    if not member.on_stage:
        raise Forbidden("the STUN and TURN servers are for the people on stage; a listener or guest needs none")
    servers = servers_for(state.settings(request), member.id)
    return json_response({"ice_servers": [server.browser_view() for server in servers]})


async def whip_delete(request: Request) -> Response:
    await state.stages(request).unpublish(request.path_params["session_id"], bearer_token(request))
    return Response(status_code=200, headers=WHIP_CORS)


async def whip_patch(request: Request) -> Response:
    # Podium gathers all its candidates before answering; trickle and ICE restarts are not offered.
    return Response(
        "Podium does not take trickled ICE candidates; send a complete offer.",
        status_code=405,
        headers={**WHIP_CORS, "Allow": "DELETE, OPTIONS"},
    )


def api_routes() -> list[Route]:
    return [
        Route("/api/spaces", create_space, methods=["POST"]),
        Route("/api/spaces/{space_id}", get_space, methods=["GET"]),
        Route("/api/spaces/{space_id}/end", end_space, methods=["POST"]),
        Route("/api/spaces/{space_id}/host-token", rotate_host_token, methods=["POST"]),
        Route("/api/spaces/{space_id}/heartbeat", heartbeat, methods=["POST"]),
        Route("/api/spaces/{space_id}/ice-servers", ice_servers, methods=["GET"]),
        Route("/whip/{space_id}", whip_publish, methods=["POST"]),
        Route("/whip/{space_id}", whip_options, methods=["OPTIONS"]),
        Route("/whip/{space_id}/{session_id}", whip_delete, methods=["DELETE"]),
        Route("/whip/{space_id}/{session_id}", whip_patch, methods=["PATCH"]),
        Route("/whip/{space_id}/{session_id}", whip_options, methods=["OPTIONS"]),
    ]


__all__ = ["SpaceState", "api_routes", "space_view"]
