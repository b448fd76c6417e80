"""Probes for whatever runs the nodes (systemd, a load balancer, an orchestrator).

`/healthz`: the process answers (alive); restart it if not. `/readyz`: it can do its work now,
its database and bus answer; send it no traffic while not (a node whose Redis is restarting is
not ready, and it is not dead either: it recovers by itself). `/metrics`: what Prometheus scrapes
(see podium.ops.metrics).
"""

from __future__ import annotations

import asyncio
import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from podium.ops import metrics as node_metrics
from podium.service import Podium
from podium.web.http import json_response
from podium.web.schemas import recording as R

NO_STORE = {"Cache-Control": "no-store"}


def _podium(request: Request) -> Podium:
    podium: Podium = request.app.state.podium
    return podium


async def alive(request: Request) -> Response:
    return json_response(R.Alive(alive=True, node=_podium(request).node_id), cache="no-store")


async def ready(request: Request) -> Response:
    podium = _podium(request)
    database, bus = await asyncio.gather(podium.spaces.ready(), podium.bus.ready())
    checks = {"database": database, "bus": bus}
    failing = [name for name, fine in checks.items() if not fine]
    body = R.Ready(ready=not failing, node=podium.node_id, checks=R.ReadyChecks(database=database, bus=bus))
    if failing:
        body.error = f"not ready: the {' and the '.join(failing)} cannot be reached"
    return json_response(body, status=503 if failing else 200, cache="no-store")


async def metrics(request: Request) -> Response:
    """The node's metrics; with PODIUM_METRICS_TOKEN set, only for `Authorization: Bearer <token>`."""
    state = request.app.state
    expected: str = state.podium.settings.metrics_token
    if expected:
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
            return JSONResponse(
                {"error": "the metrics need the scraper's token: send Authorization: Bearer <PODIUM_METRICS_TOKEN>"},
                status_code=401,
                headers={**NO_STORE, "WWW-Authenticate": 'Bearer realm="podium metrics"'},
            )
    registry = getattr(state, "metrics_registry", None)
    if registry is None:  # the first scrape: one registry per app, kept for its lifetime
        registry = state.metrics_registry = node_metrics.metrics_registry(state.podium, state.joins, state.governor)
    body = node_metrics.exposition(registry)
    return Response(body, media_type=node_metrics.CONTENT_TYPE, headers=NO_STORE)
