"""The hand-written operations of routes whose models are not yet in the route table (going away)."""

from __future__ import annotations

from functools import cache
from typing import Any

from podium.web.openapi_paths import (
    admission_routes,
    audience_routes,
    embed_routes,
    probe_routes,
    recording_routes,
    space_routes,
    stage_routes,
    stream_routes,
    webhook_routes,
)
from podium.web.openapi_shapes import schemas


@cache
def legacy_paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for part in (
        space_routes(),
        admission_routes(),
        stage_routes(),
        audience_routes(),
        recording_routes(),
        webhook_routes(),
        embed_routes(),
        stream_routes(),
        probe_routes(),
    ):
        paths.update(part)
    return paths


def legacy_schemas() -> dict[str, Any]:
    return schemas()
