"""The stage API: invites, guests, the hand queue and moderation. Every call is checked against
the stage rules as they are now; the token alone never grants anything."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from podium.admission.limits import GUEST_PER_ADDRESS, with_limit
from podium.domain.stage import Member
from podium.domain.tokens import INVITE_TTL_S
from podium.errors import InvalidInput
from podium.services import of
from podium.web.accounts_api import client_address
from podium.web.http import bearer_token, json_response, read_model, space_of
from podium.web.schemas import convert
from podium.web.schemas import stage as ST
from podium.web.urls import url_path

MEMBER_ACTIONS = ("accept", "decline", "audience", "mute", "unmute", "remove", "block")


def member_view(member: Member) -> ST.Member:
    return msgspec.convert(member, ST.Member, from_attributes=True)


async def create_invite(request: Request) -> Response:
    space_id = request.path_params["space_id"]
    body = await read_model(request, ST.NewInvite, 1024)
    token, role = await of(request).members.invite(space_id, bearer_token(request), body.role)
    base = of(request).settings.base_url
    # The token rides in the fragment: browsers never send it to a server or a log.
    invite_url = base + url_path("page.speaker", space_id=space_id) + f"#invite={token}"
    whip = base + url_path("whipPublish", space_id=space_id)
    answer = ST.Invite(token=token, role=role.value, whip=whip, invite_url=invite_url, expires_in_s=INVITE_TTL_S)
    return json_response(answer, status=201)


async def redeem_invite(request: Request) -> Response:
    space_id = request.path_params["space_id"]
    body = await read_model(request, ST.Naming, 1024)
    member, token = await of(request).members.redeem(space_id, bearer_token(request), body.name)
    whip = of(request).settings.base_url + url_path("whipPublish", space_id=space_id)
    return json_response(ST.Redeemed(member=member_view(member), token=token, whip=whip), status=201)


async def join_as_guest(request: Request) -> Response:
    """Anyone may become a named guest (to raise a hand): limited per address, and per space by
    `max_guests` (the stage rules refuse one more with 409)."""
    limit = with_limit(GUEST_PER_ADDRESS, of(request).settings.guest_limit_per_address)
    await of(request).limits.hit(limit, client_address(request))
    body = await read_model(request, ST.Naming, 1024)
    member, token = await of(request).members.join(request.path_params["space_id"], body.name)
    return json_response(ST.MemberWithToken(member=member_view(member), token=token), status=201)


async def stage(request: Request) -> Response:
    space = await space_of(request)
    return json_response(convert(of(request).members.stage_view(space), ST.Stage), cache="public, max-age=1")


async def me(request: Request) -> Response:
    space = await space_of(request)
    return json_response(member_view(of(request).directory.authorize(space, bearer_token(request))))


async def rename(request: Request) -> Response:
    body = await read_model(request, ST.Naming, 1024)
    member = await of(request).members.act(
        request.path_params["space_id"], bearer_token(request), "rename", name=body.name
    )
    return json_response(member_view(member))


async def hands(request: Request) -> Response:
    space = await space_of(request)
    hands = of(request).members.hand_queue(space, bearer_token(request))
    return json_response(ST.Hands(hands=convert(hands, list[ST.Hand])))


async def raise_hand(request: Request) -> Response:
    return await _act(request, "raise_hand" if request.method == "POST" else "lower_hand")


async def leave(request: Request) -> Response:
    return await _act(request, "leave")


async def member_action(request: Request) -> Response:
    action = request.path_params["action"]
    target = request.path_params["member_id"]
    if action not in MEMBER_ACTIONS:
        raise InvalidInput(f"unknown action {action[:20]!r}; one of: {', '.join(MEMBER_ACTIONS)}")
    if len(target) > 64:
        raise InvalidInput("member id too long")
    return await _act(request, action, target)


async def _act(request: Request, action: str, target: str | None = None) -> Response:
    member = await of(request).members.act(request.path_params["space_id"], bearer_token(request), action, target)
    return json_response(member_view(member))
