"""The JSON API and WHIP ingest. Outside clients rely on these shapes: change them with care."""

from __future__ import annotations

import time

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from podium.admission.limits import SPACE_PER_ACCOUNT, SPACE_PER_ADDRESS, with_limit
from podium.audience.presence import Counts
from podium.domain.space import Space, SpaceState
from podium.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from podium.ids import SpaceId, is_space_id
from podium.media.ice_servers import IceServer, with_credentials
from podium.services import of
from podium.settings import Settings
from podium.web.accounts_api import client_address, optional_user
from podium.web.http import CORS_HEADERS, bearer_token, json_response, read_body, read_model, space_of
from podium.web.schemas import convert
from podium.web.schemas.spaces import (
    Beat,
    BeatTaken,
    CreatedSpace,
    HostToken,
    IceServers,
    Listeners,
    NewSpace,
    SpaceUrls,
)
from podium.web.schemas.spaces import IceServer as IceServerView
from podium.web.schemas.spaces import Space as SpaceView
from podium.web.urls import url_path


def space_urls(base: str, space: Space) -> SpaceUrls:
    urls = SpaceUrls(
        page=base + url_path("page.listen", space_id=space.id),
        host=base + url_path("page.host", space_id=space.id),
        whip=base + url_path("whipPublish", space_id=space.id),
        hls=base + url_path("hls.index", space_id=space.id),
    )
    if space.state is SpaceState.ENDED and space.record and space.started_at is not None:
        # The live playlist, now closed with EXT-X-ENDLIST, is the replay; the download is its remux.
        download = base + url_path("download", space_id=space.id)
        return msgspec.structs.replace(urls, replay=urls.hls, replay_page=urls.page, download=download)
    return urls


def listeners_view(counts: Counts) -> Listeners:
    return msgspec.convert(counts, Listeners, from_attributes=True)


def space_view(request: Request, space: Space, counts: Counts) -> SpaceView:
    """The domain's space as the API shows it (the fields it does not show are left out), with what
    the stage, the listeners and the settings add."""
    stages, settings = of(request).stages, of(request).settings
    added = {
        "preshow": stages.in_preshow(space.id),
        "listeners": listeners_view(counts),
        "speakers": stages.speakers_connected(space.id),
        "heartbeat_interval_s": settings.heartbeat_interval_s,
        "urls": space_urls(settings.base_url, space),
        "captions": of(request).captioning.known(space.id).view(),
    }
    return msgspec.convert({**vars(space), **added}, SpaceView)


async def create_space(request: Request) -> Response:
    settings = of(request).settings
    body = await read_model(request, NewSpace, settings.max_json_bytes)
    # Anyone may create a space, within limits per address and per account (DESIGN, bet 7); an
    # account's spaces are announced in the listing and the feed (`domain.space.announced`).
    user = await optional_user(request)
    if user is None and settings.spaces_need_account:
        raise Unauthenticated("sign in to create a space: this instance asks for an account")
    limits = of(request).limits

    async def admit() -> None:
        await limits.hit(with_limit(SPACE_PER_ADDRESS, settings.space_limit_per_address), client_address(request))
        if user is not None:
            await limits.hit(with_limit(SPACE_PER_ACCOUNT, settings.space_limit_per_account), user[0])

    created = await of(request).directory.create_space(
        body.title, body.starts_at, body.record, body.private, created_by=user[0] if user else None, admit=admit
    )
    view = space_view(request, created.space, of(request).listeners.counts(created.space.id))
    answer = CreatedSpace(**msgspec.structs.asdict(view), host_token=created.host_token)
    return json_response(answer, status=201, headers={"Location": view.urls.page})


async def get_space(request: Request) -> Response:
    space = await space_of(request)
    await of(request).captioning.settings(space.id)  # read (at most every few seconds) for the view
    # Public and the same for everyone: cacheable for about one part (DESIGN, bet 1).
    return space_response(request, space, cache="public, max-age=1")


def space_response(request: Request, space: Space, cache: str = "no-store") -> Response:
    return json_response(space_view(request, space, of(request).listeners.counts(space.id)), cache=cache)


async def end_space(request: Request) -> Response:
    space = await of(request).stages.end_space(request.path_params["space_id"], bearer_token(request))
    return space_response(request, space)


async def rotate_host_token(request: Request) -> Response:
    space_id = request.path_params["space_id"]
    token, expires = await of(request).members.rotate_host_token(space_id, bearer_token(request))
    return json_response(HostToken(host_token=token, expires=expires), status=201)


async def heartbeat(request: Request) -> Response:
    """An admitted listener's beat: `{listener_id, pass, leaving?}`, the pass as the join gave it
    (or as `Authorization: Bearer <pass>`, which keeps the beat in the listening class at the door)."""
    listeners = of(request).listeners
    body = await read_model(request, Beat, 1024)
    header = request.headers.get("authorization", "")
    given = body.pass_ or (header[7:].strip() if header[:7].lower() == "bearer " else None)
    space_id = request.path_params["space_id"]
    if not is_space_id(space_id):
        raise NotFound("no such space")
    address = client_address(request)
    listener = await of(request).joins.admit_beat(SpaceId(space_id), body.listener_id, given, address)
    counts = await listeners.heartbeat(SpaceId(space_id), listener, address, leaving=body.leaving)
    space = await of(request).directory.get_space(space_id)
    return json_response(
        BeatTaken(
            state=space.state.value,
            listeners=listeners_view(counts),
            interval_s=of(request).settings.heartbeat_interval_s,
            counted=listeners.is_counted(space.id, listener),
        )
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
    settings = of(request).settings
    token = bearer_token(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/sdp":
        raise InvalidInput("a WHIP offer must be sent with Content-Type: application/sdp")
    space_id = request.path_params["space_id"]
    # Check the token before reading a large body: a forged request costs a signature check only
    # (the only one: the checked grant is what the stage is asked with).
    grant = of(request).signer.verify(token)
    offer = await read_body(request, settings.max_offer_bytes)
    session, answer = await of(request).stages.publish(space_id, grant, offer)
    location = settings.base_url + url_path("whipDelete", space_id=space_id, session_id=session.id)
    headers = {**WHIP_CORS, "Location": location, "ETag": f'"{session.id}"'}
    # RFC 9725 §4.6: a WHIP client (OBS) learns the STUN/TURN servers from the answer's Link headers
    # (publishing at all needs a place on stage).
    if links := [server.link_header() for server in servers_for(settings, session.member_id)]:
        headers["Link"] = ", ".join(links)
    return Response(answer, status_code=201, media_type="application/sdp", headers=headers)


def servers_for(settings: Settings, member_id: str) -> tuple[IceServer, ...]:
    """The STUN/TURN servers for one person on stage, TURN credentials their own when there is a
    shared secret (PODIUM_TURN_SECRET)."""
    return with_credentials(
        settings.ice_server_list(), settings.turn_secret, member_id, time.time(), settings.turn_credential_lifetime_s
    )


async def ice_servers(request: Request) -> Response:
    """The STUN/TURN servers for a speaker's browser: only for people on stage as the stage is now
    (TURN relays at its operator's expense, and anyone can be a guest in the audience)."""
    member = of(request).directory.authorize(await space_of(request), bearer_token(request))
    if not member.on_stage:
        raise Forbidden("the STUN and TURN servers are for the people on stage; a listener or guest needs none")
    servers = servers_for(of(request).settings, member.id)
    return json_response(IceServers(ice_servers=[convert(server.browser_view(), IceServerView) for server in servers]))


async def whip_delete(request: Request) -> Response:
    await of(request).stages.unpublish(request.path_params["session_id"], bearer_token(request))
    return Response(status_code=200, headers=WHIP_CORS)


async def whip_patch(request: Request) -> Response:
    # Podium gathers all its candidates before answering; trickle and ICE restarts are not offered.
    return Response(
        "Podium does not take trickled ICE candidates; send a complete offer.",
        status_code=405,
        headers={**WHIP_CORS, "Allow": "DELETE, OPTIONS"},
    )
