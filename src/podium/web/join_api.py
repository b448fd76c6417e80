"""Joining as a listener (the waiting room), under-attack mode, and the host's go/no-go board."""

from __future__ import annotations

import json
import math
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from podium.admission.classes import RequestClass
from podium.admission.joins import Joins
from podium.admission.load import Governor
from podium.backends.interfaces import MediaStore
from podium.domain.stage import Role
from podium.errors import Forbidden, InvalidInput, NotFound
from podium.ids import ListenerId, SpaceId, is_space_id
from podium.web import state
from podium.web.accounts_api import client_address
from podium.web.api import space_urls
from podium.web.http import bearer_token, json_response, read_json

MAX_JOIN_BYTES = 2048
MAX_REPORT_BYTES = 64 * 1024
REHEARSAL_NAME = "rehearsal.json"  # the last rehearsal's summary, beside the space's media
MIN_LINK_S, MAX_LINK_S = 60, 31 * 24 * 3600


def _parts(request: Request) -> tuple[Joins, Governor]:
    return request.app.state.joins, request.app.state.governor


async def join(request: Request) -> Response:
    directory = state.directory(request)
    joins, _ = _parts(request)
    space_id = request.path_params["space_id"]
    if not is_space_id(space_id):
        raise NotFound("no such space")
    body = await read_json(request, MAX_JOIN_BYTES)
    # Signatures first: a forged, expired or foreign token ends here, before any lookup.
    address = client_address(request)
    client, verified = joins.check(SpaceId(space_id), body, address)
    space = directory.open_space(SpaceId(space_id))
    key = body.get("key")
    if space.private:
        if not isinstance(key, str):
            raise Forbidden("this space is private: open it from the listener link the host gave you")
        directory.check_link(space, key)
    answer = await joins.join(space.id, client, verified, address)
    result: dict[str, Any] = dict(answer.body)
    if answer.status == 200:
        base = state.settings(request).base_url
        result["urls"] = space_urls(base, space)
        if space.private:
            assert isinstance(key, str)
            result["urls"]["hls"] = signed_hls(base, space.id, key)
        result["state"] = space.state.value
        # The page beats only while its point is below the announced sample rate; the point is the
        # server's (keyed), so no client can pick an id that always stays in the sample.
        result["sample_point"] = state.listeners(request).sample_point(space.id, ListenerId(client))
    headers = {"Retry-After": str(answer.retry_after_s)} if answer.retry_after_s is not None else None
    return json_response(result, status=answer.status, headers=headers)


async def _host_of(request: Request) -> tuple[Joins, Governor, SpaceId]:
    joins, governor = _parts(request)
    directory = state.directory(request)
    space = await directory.get_space(request.path_params["space_id"])
    member = directory.authorize(space, bearer_token(request))
    if member.role not in (Role.HOST, Role.COHOST):
        raise Forbidden("only the host and co-hosts can do this")
    return joins, governor, space.id


def signed_hls(base: str, space_id: SpaceId, token: str) -> str:
    return f"{base}/hls/{space_id}/k/{token}/index.m3u8"


async def listener_link(request: Request) -> Response:
    """A signed listener link for a private space (for ticket holders): the page and the stream."""
    _, _, space_id = await _host_of(request)
    directory = state.directory(request)
    generation = directory.link_generation(await directory.get_space(space_id))
    body = await read_json(request, 256)
    valid_for = body.get("valid_for_s", 24 * 3600)
    if not isinstance(valid_for, int) or not MIN_LINK_S <= valid_for <= MAX_LINK_S:
        raise InvalidInput(f"valid_for_s must be a whole number of seconds from {MIN_LINK_S} to {MAX_LINK_S}")
    not_before = body.get("not_before")
    now = time.time()
    if not_before is not None and (
        not isinstance(not_before, int) or isinstance(not_before, bool) or not 0 <= not_before <= now + MAX_LINK_S
    ):
        raise InvalidInput("not_before must be a Unix time in seconds, at most 31 days ahead")
    token = directory.links.rounded_token(space_id, now, valid_for, not_before, generation)
    window = directory.links.check(token, space_id, max(now, not_before or 0), generation)
    base = state.settings(request).base_url
    return json_response(
        {
            "token": token,
            "page": f"{base}/s/{space_id}#key={token}",
            "hls": signed_hls(base, space_id, token),
            "not_before": window.not_before,
            "expires": window.expires,
        },
        status=201,
    )


async def withdraw_listener_links(request: Request) -> Response:
    """Every listener link of this space given out so far stops working (host or co-host)."""
    generation = await state.members(request).withdraw_links(request.path_params["space_id"], bearer_token(request))
    return json_response({"withdrawn": True, "link_generation": generation})


def _number(value: object) -> float:
    """A finite JSON number (not a bool, not a string such as "nan" that float() would take)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(value)
    return float(value)


def rehearsal_summary(report: dict[str, Any], at: float) -> dict[str, Any]:
    """What the board keeps of a rehearsal's report (checked: it comes from outside)."""
    try:
        verdict = report["verdict"]
        joins, plan, ttfa = report["joins"], report["plan"], report["time_to_first_audio_s"]
        reasons = report.get("reasons", [])
        if not all(isinstance(part, dict) for part in (joins, plan, ttfa)) or not isinstance(reasons, list):
            raise TypeError("the report's parts are objects, its reasons a list")
        listeners = _number(plan["listeners"])
        summary = {
            "at": int(at),
            "verdict": str(verdict),
            "reasons": [str(r)[:200] for r in reasons][:10],
            "listeners": int(listeners),
            "peak_joins_per_s": _number(plan["peak_joins_per_s"]),
            "flood_per_s": _number(plan.get("flood_per_s", 0)),
            "success": _number(joins["success"]),
            "ttfa_s": {k: None if ttfa.get(k) is None else _number(ttfa[k]) for k in ("p50", "p95", "p99")},
        }
    except (KeyError, TypeError, ValueError):
        raise InvalidInput("send the JSON report that `podium rehearse` wrote") from None
    if summary["verdict"] not in ("GO", "NO-GO"):
        raise InvalidInput("a rehearsal's verdict is GO or NO-GO")
    return summary


async def rehearsal(request: Request) -> Response:
    """`podium rehearse --host-token` leaves its result on the host's board."""
    _, _, space_id = await _host_of(request)
    summary = rehearsal_summary(await read_json(request, MAX_REPORT_BYTES), time.time())
    await state.media(request).write(space_id, REHEARSAL_NAME, json.dumps(summary).encode())
    return json_response(summary, status=201)


async def _last_rehearsal(media: MediaStore, space_id: SpaceId) -> dict[str, Any] | None:
    stored = await media.read(space_id, REHEARSAL_NAME)
    if stored is None:
        return None
    loaded: dict[str, Any] = json.loads(stored)
    return loaded


async def under_attack(request: Request) -> Response:
    """The host switches the joiners' puzzle on or off, or leaves it to the node ("auto")."""
    joins, _, space_id = await _host_of(request)
    body = await read_json(request, 256)
    mode = joins.set_mode(space_id, body.get("mode"))
    return json_response({"mode": mode, "active": joins.surge(space_id).active(joins.clock.monotonic())})


async def board(request: Request) -> Response:
    """What the host watches before and during the show: is it a go?"""
    joins, governor, space_id = await _host_of(request)
    now = joins.clock.monotonic()
    surge = joins.surge(space_id)
    room = joins.room(space_id)
    counts = state.listeners(request).counts(space_id)
    stats = governor.stats
    body = {
        "listeners": {"now": counts.now, "peak": counts.peak},
        "joins": {
            "arrivals_per_s": round(surge.arrivals_per_s(now), 2),
            "admitted": await room.admitted(),
            "called": await room.called(),
            "waiting": await room.waiting(),
            "rate_per_s": joins.rate_per_s,
        },
        "under_attack": {
            "mode": surge.mode,
            "active": surge.active(now),
            "difficulty_bits": surge.difficulty_bits(now),
        },
        "load": {
            "pressure": round(governor.pressure(), 3),
            "lag_ms": round(governor.lag_ms, 1),
            "in_flight": governor.in_flight,
            "shedding": [kind.label for kind in governor.shed_classes()],
        },
        "requests": {kind.label: {"served": stats.served[kind], "shed": stats.shed[kind]} for kind in RequestClass},
        "refused_by_signature": joins.signer.refused,
        "database_statements": state.space_store(request).statements,
        "stream": state.stages(request).stream_health(space_id),
        "last_rehearsal": await _last_rehearsal(state.media(request), space_id),
    }
    return json_response(body)


def join_routes() -> list[Route]:
    return [
        Route("/api/spaces/{space_id}/join", join, methods=["POST"]),
        Route("/api/spaces/{space_id}/under-attack", under_attack, methods=["POST"]),
        Route("/api/spaces/{space_id}/board", board, methods=["GET"]),
        Route("/api/spaces/{space_id}/listener-links", listener_link, methods=["POST"]),
        Route("/api/spaces/{space_id}/listener-links", withdraw_listener_links, methods=["DELETE"]),
        Route("/api/spaces/{space_id}/rehearsals", rehearsal, methods=["POST"]),
    ]
