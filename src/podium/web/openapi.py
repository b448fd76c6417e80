"""The JSON API as an OpenAPI 3.1 document (`/openapi.json`), derived from the route table and its
models, never written by hand; limits that are settings are read from the settings the node runs
with. Errors are always `{"error": "<for a person>"}`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from podium import __version__
from podium.settings import Settings
from podium.web.http import json_response
from podium.web.schemas import SETTING_KEY, Error

if TYPE_CHECKING:
    from podium.web.routes import Endpoint

Schema = dict[str, Any]

# What each error status means here; an operation lists the ones it can give.
ERRORS: dict[int, str] = {
    400: "the request is malformed (the message says what to change)",
    401: "no token, or one that does not verify (expired, forged, for another space)",
    403: "valid credentials without the right for this action",
    404: "no such space (or post, member, clip, webhook)",
    405: "the method is not allowed here",
    409: "the action does not fit the space's state now",
    413: "the body is larger than this endpoint takes",
    429: "too many requests from this address or account; try again after Retry-After",
    501: "this form of the answer is not offered (oEmbed: only format=json)",
    503: (
        "the node is shedding this class of request under load, or runs its budget of stages;"
        " try again after Retry-After"
    ),
}
RETRY_AFTER = {429, 503}
HEADERS: dict[str, Schema] = {
    "Location": {"description": "where the new resource is", "schema": {"type": "string", "format": "uri-reference"}},
    "ETag": {"description": "the resource's version", "schema": {"type": "string"}},
    "Link": {"description": "related resources (RFC 8288)", "schema": {"type": "string"}},
    "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 0}},
}
# Path parameters: one description and shape for each name, wherever it appears.
PARAMETERS: dict[str, tuple[str, Schema]] = {
    "space_id": ("A space's id, as `POST /api/spaces` answered it.", {"type": "string", "pattern": "^[a-z0-9]{12}$"}),
    "session_id": ("The WHIP session, from the Location of the publish answer.", {"type": "string"}),
    "member_id": ("A member of the stage (`GET …/stage`).", {"type": "string"}),
    "action": ("What to do.", {"type": "string"}),
    "post_id": ("A post's id.", {"type": "string"}),
    "user_id": ("An account's id.", {"type": "string"}),
    "clip_id": ("A clip's id.", {"type": "string", "pattern": "^c[0-9a-f]{12}$"}),
    "hook_id": ("A webhook's id.", {"type": "string"}),
}
SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "space": [{"spaceToken": []}],
    "account": [{"accountToken": []}, {"sessionCookie": [], "csrfToken": []}],
    "optional account": [{}, {"accountToken": []}, {"sessionCookie": [], "csrfToken": []}],
}
SCHEMES: dict[str, Schema] = {
    "spaceToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The host token from creating a space, or a member token (invite, guest). "
        "What it may do is checked against the stage as it is now.",
    },
    "accountToken": {"type": "http", "scheme": "bearer", "description": "The token `POST /api/sessions` answers."},
    "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "podium_session"},
    "csrfToken": {
        "type": "apiKey",
        "in": "header",
        "name": "X-CSRF-Token",
        "description": "The podium_csrf cookie's value, echoed on cookie-authenticated writes.",
    },
}
TAGS = ("spaces", "admission", "stage", "audience", "recording", "webhooks", "embedding", "operations")


def document(endpoints: Iterable[Endpoint], settings: Settings) -> dict[str, Any]:
    """The document for these rows, with the limits of these settings."""
    rows = list(endpoints)
    models: list[Any] = [Error]
    for row in rows:
        if row.body is not None and row.body.model is not None:
            models.append(row.body.model)
        models.extend(answer.model for answer in row.answers.values() if answer.model is not None)
    unique = list(dict.fromkeys(models))
    found, components = msgspec.json.schema_components(unique, ref_template="#/components/schemas/{name}")
    schema_of = dict(zip(unique, found, strict=True))
    paths: dict[str, Any] = {}
    for row in rows:
        path = re.sub(r"\{([a-z_]+)(:[a-z]+)?\}", r"{\1}", row.path)  # without Starlette's converters
        paths.setdefault(path, {})[row.method.lower()] = _operation(row, schema_of)
    built: dict[str, Any] = _with_settings(
        {
            "openapi": "3.1.0",
            "info": {
                "title": "Podium",
                "version": __version__,
                "description": 'Live audio conversations: the JSON API. Errors are `{"error": "..."}` with a 4xx '
                "(503 with Retry-After when the node sheds load); 429 answers carry Retry-After.",
                "license": {"name": "AGPL-3.0-or-later", "identifier": "AGPL-3.0-or-later"},
            },
            "tags": [{"name": name} for name in TAGS],
            "paths": paths,
            "components": {"schemas": components, "securitySchemes": SCHEMES},
        },
        settings,
    )
    return built


def _operation(row: Endpoint, schema_of: dict[Any, Schema]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, answer in sorted(row.answers.items()):
        response: dict[str, Any] = {"description": answer.description}
        if answer.model is not None:
            response["content"] = {"application/json": {"schema": schema_of[answer.model]}}
        elif answer.media is not None:
            response["content"] = {answer.media: {"schema": {"type": "string"}}}
        if answer.headers:
            response["headers"] = {name: HEADERS[name] for name in answer.headers}
        responses[str(status)] = response
    codes = set(row.errors)
    if row.body is not None:
        codes.add(413)  # the door's cap on any body
    if row.klass.name != "STAGE" or row.credential is not None:
        codes.add(503)  # shed under load (a member's stage request only at the budget of stages)
    for status in sorted(codes):
        error: dict[str, Any] = {
            "description": ERRORS[status],
            "content": {"application/json": {"schema": schema_of[Error]}},
        }
        if status in RETRY_AFTER:
            error["headers"] = {"Retry-After": HEADERS["Retry-After"]}
        responses[str(status)] = error
    operation: dict[str, Any] = {
        "operationId": row.name,
        "summary": row.summary,
        "tags": [row.tag],
        "responses": responses,
    }
    parameters = []
    for name in re.findall(r"\{([a-z_]+)", row.path):
        description, schema = PARAMETERS[name]
        parameters.append({"name": name, "in": "path", "required": True, "description": description, "schema": schema})
    if row.query is not None:
        for field in msgspec.structs.fields(row.query):
            schema = msgspec.json.schema(field.type)
            parameter = {"name": field.encode_name, "in": "query", "required": field.required}
            if "description" in schema:  # the parameter's, where clients and tools look for it
                parameter["description"] = schema.pop("description")
            parameters.append({**parameter, "schema": schema})
    if parameters:
        operation["parameters"] = parameters
    if row.body is not None:
        body: dict[str, Any] = {"required": row.body.required}
        if row.body.description:
            body["description"] = row.body.description
        if row.body.model is not None:
            body["content"] = {"application/json": {"schema": schema_of[row.body.model]}}
        else:
            assert row.body.media is not None
            body["content"] = {row.body.media: {"schema": {"type": "string", "format": "binary"}}}
        operation["requestBody"] = body
    if row.auth.value in SECURITY:
        operation["security"] = SECURITY[row.auth.value]
    return operation


def _with_settings(value: Any, settings: Settings) -> Any:
    """Replaces each `x-podium-setting` marker with the limit it names, read from the settings."""
    if isinstance(value, dict):
        named = value.get(SETTING_KEY)
        out = {key: _with_settings(item, settings) for key, item in value.items() if key != SETTING_KEY}
        if named is not None:
            keyword, setting = named
            out[keyword] = getattr(settings, setting)
        return out
    if isinstance(value, list):
        return [_with_settings(item, settings) for item in value]
    return value


async def openapi_json(request: Request) -> Response:
    return json_response(request.app.state.openapi, cache="public, max-age=300")
