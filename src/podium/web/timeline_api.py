"""The timeline over HTTP: immutable interval objects and a short-lived index; reactions in."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from podium.errors import NotFound
from podium.services import of
from podium.web.accounts_api import client_address
from podium.web.http import CORS_HEADERS, json_response, read_model
from podium.web.schemas import Error
from podium.web.schemas.audience import Reaction, ReactionTaken

IMMUTABLE = "public, max-age=31536000, immutable"
_ITEM = re.compile(r"^(\d{1,9})\.json$")


async def timeline_index(request: Request) -> Response:
    feed = of(request).feed
    body = await feed.index(request.path_params["space_id"])
    # About one interval. Readers need it only to start and to recover: they then ask for the next
    # object directly, and that request is answered the moment the object exists.
    return json_response(body, cache=f"public, max-age={max(1, round(feed.interval_s))}")


async def timeline_item(request: Request) -> Response:
    match = _ITEM.match(request.path_params["name"])
    if match is None:
        raise NotFound("no such timeline item")
    feed = of(request).feed
    # The next object is held until it exists (a couple of intervals at most), then immutable.
    try:
        data = await feed.item(request.path_params["space_id"], int(match.group(1)), hold_s=2.5 * feed.interval_s)
    except NotFound as error:
        # "Not yet" is cacheable for a moment too, so a crowd polling a quiet space stays one request.
        return json_response(Error(error=error.message), status=404, cache="public, max-age=1")
    return Response(data, media_type="application/json", headers={"Cache-Control": IMMUTABLE, **CORS_HEADERS})


async def react(request: Request) -> Response:
    body = await read_model(request, Reaction, 256)
    await of(request).posting.react(request.path_params["space_id"], body.emoji, client_address(request))
    return json_response(ReactionTaken(accepted=True), status=202)
