"""The stage API: invites, guests, the hand queue and moderation. Every call is checked against
the stage rules as they are now; the token alone never grants anything."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from podium.admission.limits import GUEST_PER_ADDRESS, RateLimits, with_limit
from podium.domain.stage import Member
from podium.domain.tokens import INVITE_TTL_S
from podium.errors import InvalidInput
from podium.web import state
from podium.web.accounts_api import client_address
from podium.web.http import bearer_token, json_response, read_json

MEMBER_ACTIONS = ("accept", "decline", "audience", "mute", "unmute", "remove", "block")


def member_view(member: Member) -> dict[str, Any]:
    return {
        "id": member.id,
        "name": member.name,
        "role": member.role.value,
        "muted": member.muted,
        "hand_raised": member.hand_raised,
        "blocked": member.blocked,
    }


async def create_invite(request: Request) -> Response:
    members = state.members(request)
    settings = state.settings(request)
    space_id = request.path_params["space_id"]
    body = await read_json(request, 1024)
    token, role = await members.invite(space_id, bearer_token(request), body.get("role"))
    base = settings.base_url
    return json_response(
        {
            "token": token,
            "role": role.value,
            "whip": f"{base}/whip/{space_id}",
            # The token rides in the fragment: browsers never send it to a server or a log.
            "invite_url": f"{base}/join/{space_id}#invite={token}",
            "expires_in_s": INVITE_TTL_S,
        },
        status=201,
    )


async def redeem_invite(request: Request) -> Response:
    members = state.members(request)
    settings = state.settings(request)
    space_id = request.path_params["space_id"]
    body = await read_json(request, 1024)
    member, token = await members.redeem(space_id, bearer_token(request), body.get("name"))
    return json_response(
        {"member": member_view(member), "token": token, "whip": f"{settings.base_url}/whip/{space_id}"},
        status=201,
    )


async def join_as_guest(request: Request) -> Response:
    """Anyone may become a named guest (to raise a hand): limited per address, and per space by
    `max_guests` (the stage rules refuse one more with 409)."""
    settings = state.settings(request)
    members = state.members(request)
    limits: RateLimits = request.app.state.limits
    limits.hit(with_limit(GUEST_PER_ADDRESS, settings.guest_limit_per_address), client_address(request))
    body = await read_json(request, 1024)
    member, token = await members.join(request.path_params["space_id"], body.get("name"))
    return json_response({"member": member_view(member), "token": token}, status=201)


async def stage(request: Request) -> Response:
    directory = state.directory(request)
    members = state.members(request)
    space = await directory.get_space(request.path_params["space_id"])
    return json_response(members.stage_view(space), cache="public, max-age=1")


async def me(request: Request) -> Response:
    """The member the token speaks for, as the stage sees them now (pages poll it)."""
    directory = state.directory(request)
    space = await directory.get_space(request.path_params["space_id"])
    return json_response(member_view(directory.authorize(space, bearer_token(request))))


async def hands(request: Request) -> Response:
    directory = state.directory(request)
    members = state.members(request)
    space = await directory.get_space(request.path_params["space_id"])
    return json_response({"hands": members.hand_queue(space, bearer_token(request))})


async def raise_hand(request: Request) -> Response:
    members = state.members(request)
    action = "raise_hand" if request.method == "POST" else "lower_hand"
    member = await members.act(request.path_params["space_id"], bearer_token(request), action)
    return json_response(member_view(member))


async def leave(request: Request) -> Response:
    members = state.members(request)
    member = await members.act(request.path_params["space_id"], bearer_token(request), "leave")
    return json_response(member_view(member))


async def member_action(request: Request) -> Response:
    members = state.members(request)
    action = request.path_params["action"]
    target = request.path_params["member_id"]
    if action not in MEMBER_ACTIONS:
        raise InvalidInput(f"unknown action {action[:20]!r}; one of: {', '.join(MEMBER_ACTIONS)}")
    if len(target) > 64:
        raise InvalidInput("member id too long")
    member = await members.act(request.path_params["space_id"], bearer_token(request), action, target)
    return json_response(member_view(member))


def stage_routes() -> list[Route]:
    return [
        Route("/api/spaces/{space_id}/invites", create_invite, methods=["POST"]),
        Route("/api/spaces/{space_id}/invites/redeem", redeem_invite, methods=["POST"]),
        Route("/api/spaces/{space_id}/guests", join_as_guest, methods=["POST"]),
        Route("/api/spaces/{space_id}/stage", stage, methods=["GET"]),
        Route("/api/spaces/{space_id}/hands", hands, methods=["GET"]),
        Route("/api/spaces/{space_id}/me", me, methods=["GET"]),
        Route("/api/spaces/{space_id}/hand", raise_hand, methods=["POST", "DELETE"]),
        Route("/api/spaces/{space_id}/leave", leave, methods=["POST"]),
        Route("/api/spaces/{space_id}/members/{member_id}/{action}", member_action, methods=["POST"]),
    ]
