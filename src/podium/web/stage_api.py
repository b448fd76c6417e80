"""The stage API: invites, guests, the hand queue and moderation. Every call is checked against
the stage rules as they are now; the token alone never grants anything."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from podium.admission.limits import GUEST_PER_ADDRESS, with_limit
from podium.domain.stage import Member
from podium.domain.tokens import INVITE_TTL_S
from podium.errors import InvalidInput
from podium.services import of
from podium.web.accounts_api import client_address
from podium.web.http import bearer_token, json_response, read_model
from podium.web.schemas import convert
from podium.web.schemas import stage as ST
from podium.web.urls import url_path

MEMBER_ACTIONS = ("accept", "decline", "audience", "mute", "unmute", "remove", "block")


def member_view(member: Member) -> ST.Member:
    return ST.Member(
        id=member.id,
        name=member.name,
        role=member.role,
        muted=member.muted,
        hand_raised=member.hand_raised,
        blocked=member.blocked,
    )


async def create_invite(request: Request) -> Response:
    members = of(request).members
    settings = of(request).settings
    space_id = request.path_params["space_id"]
    body = await read_model(request, ST.NewInvite, 1024)
    token, role = await members.invite(space_id, bearer_token(request), body.role)
    base = settings.base_url
    return json_response(
        ST.Invite(
            token=token,
            role=role.value,
            whip=base + url_path("whipPublish", space_id=space_id),
            # The token rides in the fragment: browsers never send it to a server or a log.
            invite_url=base + url_path("page.speaker", space_id=space_id) + f"#invite={token}",
            expires_in_s=INVITE_TTL_S,
        ),
        status=201,
    )


async def redeem_invite(request: Request) -> Response:
    members = of(request).members
    settings = of(request).settings
    space_id = request.path_params["space_id"]
    body = await read_model(request, ST.Naming, 1024)
    member, token = await members.redeem(space_id, bearer_token(request), body.name)
    whip = settings.base_url + url_path("whipPublish", space_id=space_id)
    return json_response(ST.Redeemed(member=member_view(member), token=token, whip=whip), status=201)


async def join_as_guest(request: Request) -> Response:
    """Anyone may become a named guest (to raise a hand): limited per address, and per space by
    `max_guests` (the stage rules refuse one more with 409)."""
    settings = of(request).settings
    members = of(request).members
    limits = of(request).limits
    await limits.hit(with_limit(GUEST_PER_ADDRESS, settings.guest_limit_per_address), client_address(request))
    body = await read_model(request, ST.Naming, 1024)
    member, token = await members.join(request.path_params["space_id"], body.name)
    return json_response(ST.MemberWithToken(member=member_view(member), token=token), status=201)


async def stage(request: Request) -> Response:
    directory = of(request).directory
    members = of(request).members
    space = await directory.get_space(request.path_params["space_id"])
    return json_response(convert(members.stage_view(space), ST.Stage), cache="public, max-age=1")


async def me(request: Request) -> Response:
    """The member the token speaks for, as the stage sees them now (pages poll it)."""
    directory = of(request).directory
    space = await directory.get_space(request.path_params["space_id"])
    return json_response(member_view(directory.authorize(space, bearer_token(request))))


async def hands(request: Request) -> Response:
    directory = of(request).directory
    members = of(request).members
    space = await directory.get_space(request.path_params["space_id"])
    return json_response(ST.Hands(hands=convert(members.hand_queue(space, bearer_token(request)), list[ST.Hand])))


async def raise_hand(request: Request) -> Response:
    members = of(request).members
    action = "raise_hand" if request.method == "POST" else "lower_hand"
    member = await members.act(request.path_params["space_id"], bearer_token(request), action)
    return json_response(member_view(member))


async def leave(request: Request) -> Response:
    members = of(request).members
    member = await members.act(request.path_params["space_id"], bearer_token(request), "leave")
    return json_response(member_view(member))


async def member_action(request: Request) -> Response:
    members = of(request).members
    action = request.path_params["action"]
    target = request.path_params["member_id"]
    if action not in MEMBER_ACTIONS:
        raise InvalidInput(f"unknown action {action[:20]!r}; one of: {', '.join(MEMBER_ACTIONS)}")
    if len(target) > 64:
        raise InvalidInput("member id too long")
    member = await members.act(request.path_params["space_id"], bearer_token(request), action, target)
    return json_response(member_view(member))
