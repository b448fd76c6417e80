"""The host's webhooks: register a URL (its secret is shown once), list them with the delivery log,
delete one. Host only: the secrets sign what receivers will trust as Podium's word."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from podium.domain.space import Space
from podium.domain.stage import Role
from podium.services import of
from podium.web.http import json_response, read_model, space_of
from podium.web.schemas import convert
from podium.web.schemas.audience import NewWebhook, RegisteredWebhook, WebhookLog
from podium.webhooks import hook_view

MAX_BODY_BYTES = 4096


async def _host_space(request: Request) -> Space:
    return await space_of(request, Role.HOST, refusal="only the host manages the space's webhooks")


async def register(request: Request) -> Response:
    space = await _host_space(request)
    body = await read_model(request, NewWebhook, MAX_BODY_BYTES)
    hook = await of(request).webhooks.register(space, body.url)
    return json_response(convert({**hook_view(hook), "secret": hook.secret}, RegisteredWebhook), status=201)


async def listing(request: Request) -> Response:
    space = await _host_space(request)
    return json_response(convert(await of(request).webhooks.view(space.id), WebhookLog))


async def remove(request: Request) -> Response:
    space = await _host_space(request)
    await of(request).webhooks.remove(space.id, request.path_params["hook_id"])
    return Response(status_code=204, headers={"Cache-Control": "no-store"})
