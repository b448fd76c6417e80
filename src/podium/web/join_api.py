"""Joining as a listener (the waiting room), under-attack mode, and the host's go/no-go board."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from podium.admission.classes import RequestClass
from podium.domain.space import Space
from podium.domain.stage import Role
from podium.errors import Forbidden, InvalidInput, NotFound
from podium.ids import ListenerId, SpaceId, is_space_id
from podium.services import of
from podium.web.accounts_api import client_address
from podium.web.api import space_urls
from podium.web.http import bearer_token, json_response, read_model, space_of
from podium.web.schemas import convert
from podium.web.schemas import stage as ST
from podium.web.urls import url_path

MAX_JOIN_BYTES = 2048
MAX_REPORT_BYTES = 64 * 1024
REHEARSAL_NAME = "rehearsal.json"  # the last rehearsal's summary, beside the space's media
MAX_LINK_S = 31 * 24 * 3600  # also the longest a link is valid for (`NewListenerLink`)


async def join(request: Request) -> Response:
    directory, joins = of(request).directory, of(request).joins
    space_id = request.path_params["space_id"]
    if not is_space_id(space_id):
        raise NotFound("no such space")
    body = await read_model(request, ST.Join, MAX_JOIN_BYTES)
    # Signatures first: a forged, expired or foreign token ends here, before any lookup.
    address = client_address(request)
    client, verified = joins.check(SpaceId(space_id), msgspec.to_builtins(body), address)
    space = directory.open_space(SpaceId(space_id))
    if space.private:
        if body.key is None:
            raise Forbidden("this space is private: open it from the listener link the host gave you")
        directory.check_link(space, body.key)
    answer = await joins.join(space.id, client, verified, address)
    headers = {"Retry-After": str(answer.retry_after_s)} if answer.retry_after_s is not None else None
    if answer.status != 200:
        return json_response(convert(answer.body, ST.Waiting), status=answer.status, headers=headers)
    base = of(request).settings.base_url
    urls = space_urls(base, space)
    if space.private and body.key is not None:  # it is: checked above
        urls = msgspec.structs.replace(urls, hls=signed_hls(base, space.id, body.key))
    admitted = ST.Admitted(
        admitted=True,
        pass_=answer.body["pass"],
        urls=urls,
        state=space.state.value,
        solved=answer.body.get("solved"),
        # The page beats only while its point is below the announced sample rate; the point is the
        # server's (keyed), so no client can pick an id that always stays in the sample.
        sample_point=of(request).listeners.sample_point(space.id, ListenerId(client)),
    )
    return json_response(admitted, status=answer.status, headers=headers)


async def _hosts_space(request: Request) -> Space:
    return await space_of(request, Role.HOST, Role.COHOST, refusal="only the host and co-hosts can do this")


def signed_hls(base: str, space_id: SpaceId, token: str) -> str:
    return base + url_path("signed.hls.index", space_id=space_id, key=token)


async def listener_link(request: Request) -> Response:
    space = await _hosts_space(request)
    generation = of(request).directory.link_generation(space)
    links = of(request).directory.links
    body = await read_model(request, ST.NewListenerLink, 256)
    valid_for, not_before = body.valid_for_s, body.not_before
    now = of(request).clock.time()
    if not_before is not None and not 0 <= not_before <= now + MAX_LINK_S:
        raise InvalidInput("not_before must be a Unix time in seconds, at most 31 days ahead")
    token = links.rounded_token(space.id, now, valid_for, not_before, generation)
    window = links.check(token, space.id, max(now, not_before or 0), generation)
    base = of(request).settings.base_url
    return json_response(
        ST.ListenerLink(
            token=token,
            page=base + url_path("page.listen", space_id=space.id) + f"#key={token}",
            hls=signed_hls(base, space.id, token),
            not_before=window.not_before,
            expires=window.expires,
        ),
        status=201,
    )


async def withdraw_listener_links(request: Request) -> Response:
    generation = await of(request).members.withdraw_links(request.path_params["space_id"], bearer_token(request))
    return json_response(ST.Withdrawn(withdrawn=True, link_generation=generation))


async def rehearsal(request: Request) -> Response:
    space = await _hosts_space(request)
    try:
        report = await read_model(request, ST.RehearsalReport, MAX_REPORT_BYTES)
    except InvalidInput as error:
        raise InvalidInput(f"send the JSON report that `podium rehearse` wrote: {error.message}") from None
    # What the board keeps of it: its reasons bounded (the report comes from outside).
    summary = ST.Rehearsal(
        at=int(of(request).clock.time()),
        verdict=report.verdict,
        reasons=[reason[:200] for reason in report.reasons][:10],
        listeners=report.plan.listeners,
        peak_joins_per_s=report.plan.peak_joins_per_s,
        flood_per_s=report.plan.flood_per_s,
        success=report.joins.success,
        ttfa_s=report.time_to_first_audio_s,
    )
    await of(request).media.write(space.id, REHEARSAL_NAME, msgspec.json.encode(summary))
    return json_response(summary, status=201)


async def under_attack(request: Request) -> Response:
    space = await _hosts_space(request)
    joins = of(request).joins
    body = await read_model(request, ST.UnderAttack, 256)
    joins.set_mode(space.id, body.mode)
    return json_response(ST.Attack(mode=body.mode, active=joins.surge(space.id).active(joins.clock.monotonic())))


async def board(request: Request) -> Response:
    space_id = (await _hosts_space(request)).id
    joins, governor = of(request).joins, of(request).governor
    now = joins.clock.monotonic()
    surge = joins.surge(space_id)
    room = joins.room(space_id)
    counts = of(request).listeners.counts(space_id)
    stats = governor.stats
    last = await of(request).media.read(space_id, REHEARSAL_NAME)
    body = ST.Board(
        listeners=ST.BoardListeners(now=counts.now, peak=counts.peak),
        joins=ST.BoardJoins(
            arrivals_per_s=round(surge.arrivals_per_s(now), 2),
            admitted=await room.admitted(),
            called=await room.called(),
            waiting=await room.waiting(),
            rate_per_s=joins.rate_per_s,
        ),
        under_attack=ST.BoardAttack(
            mode=surge.mode, active=surge.active(now), difficulty_bits=surge.difficulty_bits(now)
        ),
        load=ST.BoardLoad(
            pressure=round(governor.pressure(), 3),
            lag_ms=round(governor.lag_ms, 1),
            in_flight=governor.in_flight,
            shedding=[kind.label for kind in governor.shed_classes()],
        ),
        requests={kind.label: ST.Served(served=stats.served[kind], shed=stats.shed[kind]) for kind in RequestClass},
        refused_by_signature=joins.signer.refused,
        database_statements=of(request).space_store.statements,
        stream=of(request).stages.stream_health(space_id),
        last_rehearsal=None if last is None else msgspec.json.decode(last, type=ST.Rehearsal),
        captions=msgspec.convert(of(request).captioning.notice(space_id), ST.BoardCaptions),
    )
    return json_response(body)
