"""Probes: `/healthz`, the process answers (restart it if not); `/readyz`, its database and bus
answer (send it no traffic while not: a node whose Redis restarts is not dead, it recovers by
itself); `/metrics`, what Prometheus scrapes."""

from __future__ import annotations

import asyncio
import hmac

from prometheus_client.exposition import generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from podium.ops import metrics as node_metrics
from podium.services import of
from podium.web.http import json_response
from podium.web.schemas import recording as R

NO_STORE = {"Cache-Control": "no-store"}


async def alive(request: Request) -> Response:
    return json_response(R.Alive(alive=True, node=of(request).directory.node_id), cache="no-store")


async def ready(request: Request) -> Response:
    database, bus = await asyncio.gather(of(request).space_store.ready(), of(request).bus.ready())
    failing = [name for name, fine in (("database", database), ("bus", bus)) if not fine]
    checks = R.ReadyChecks(database=database, bus=bus)
    body = R.Ready(ready=not failing, node=of(request).directory.node_id, checks=checks)
    if failing:
        body.error = f"not ready: the {' and the '.join(failing)} cannot be reached"
    return json_response(body, status=503 if failing else 200, cache="no-store")


async def metrics(request: Request) -> Response:
    """The node's metrics; with PODIUM_METRICS_TOKEN set, only for `Authorization: Bearer <token>`."""
    state = request.app.state
    expected: str = state.settings.metrics_token
    if expected:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
            return JSONResponse(
                {"error": "the metrics need the scraper's token: send Authorization: Bearer <PODIUM_METRICS_TOKEN>"},
                status_code=401,
                headers={**NO_STORE, "WWW-Authenticate": 'Bearer realm="podium metrics"'},
            )
    registry = getattr(state, "metrics_registry", None)
    if registry is None:  # the first scrape: one registry per app, kept for its lifetime
        collector = node_metrics.PodiumCollector(
            state.directory,
            state.stages,
            state.listeners,
            state.space_store,
            state.bus,
            state.joins,
            state.governor,
            state.clock,
        )
        registry = state.metrics_registry = node_metrics.metrics_registry(collector)
    body = generate_latest(registry)
    return Response(body, media_type=node_metrics.CONTENT_TYPE, headers=NO_STORE)
