"""The JSON API described as an OpenAPI 3.1 document, served at `/openapi.json`.

The document is data, built once. Every `/api` route the app serves must be listed here (a test
compares the router with the document), and every answer a route can give must be described: errors
are always `{"error": "<for a person>"}` with a 4xx (503 when shed under load).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from podium import __version__
from podium.web.http import json_response
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
def document() -> dict[str, Any]:
    """The OpenAPI document, built once per process."""
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
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Podium",
            "version": __version__,
            "description": 'Live audio conversations: the JSON API. Errors are `{"error": "..."}` with a 4xx '
            "(503 with Retry-After when the node sheds load); 429 answers carry Retry-After.",
            "license": {"name": "AGPL-3.0-or-later", "identifier": "AGPL-3.0-or-later"},
        },
        "tags": [
            {"name": name}
            for name in ("spaces", "admission", "stage", "audience", "recording", "webhooks", "embedding", "operations")
        ],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "spaceToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The host token from creating a space, or a member token (invite, guest). "
                    "What it may do is checked against the stage as it is now.",
                },
                "accountToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The token `POST /api/sessions` answers.",
                },
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "podium_session"},
                "csrfToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-CSRF-Token",
                    "description": "The podium_csrf cookie's value, echoed on cookie-authenticated writes.",
                },
            },
        },
    }


async def openapi_json(request: Request) -> Response:
    return json_response(document(), cache="public, max-age=300")


def openapi_routes() -> list[Route]:
    return [Route("/openapi.json", openapi_json, methods=["GET"])]
