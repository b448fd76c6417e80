"""The recurring shapes of Podium's OpenAPI document: errors, bodies, answers, the schemas."""

from __future__ import annotations

from typing import Any

from podium.domain.stage import Role

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

SPACE_ID = {
    "name": "space_id",
    "in": "path",
    "required": True,
    "description": "A space's id, as `POST /api/spaces` answered it.",
    "schema": {"type": "string", "pattern": "^[a-z0-9]{12}$"},
}

Security = list[dict[str, list[str]]]
SPACE_TOKEN: Security = [{"spaceToken": []}]
ACCOUNT: Security = [{"accountToken": []}, {"sessionCookie": [], "csrfToken": []}]


# -- small builders for the recurring shapes ---------------------------------------------------


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(properties: dict[str, Schema], required: list[str] | None = None, **extra: Any) -> Schema:
    """An object; by default every property is required (the answers always carry them all)."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        **extra,
    }


def string(**extra: Any) -> Schema:
    return {"type": "string", **extra}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


INTEGER: Schema = {"type": "integer"}
NUMBER: Schema = {"type": "number"}
BOOLEAN: Schema = {"type": "boolean"}
TIME: Schema = string(format="date-time")
URL: Schema = string(format="uri-reference")  # absolute when PODIUM_PUBLIC_URL is set
ICE_SERVER: Schema = obj({"urls": array(string()), "username": string(), "credential": string()}, required=["urls"])
PIN: Schema = nullable(obj({"text": string(), "url": URL}, required=["text"]))


def retry_after() -> dict[str, Any]:
    return {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 0}}}


def answer(description: str, schema: Schema | None = None, media: str = "application/json") -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if schema is not None:
        response["content"] = {media: {"schema": schema}}
    return response


def error(status: int) -> dict[str, Any]:
    response = answer(ERRORS[status], ref("Error"))
    if status in RETRY_AFTER:
        response["headers"] = retry_after()
    return response


def json_body(schema: Schema, required: bool = False) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def binary_body(media: str, description: str) -> dict[str, Any]:
    return {"required": True, "description": description, "content": {media: {"schema": string(format="binary")}}}


def operation(
    operation_id: str,
    summary: str,
    tag: str,
    ok: dict[int, dict[str, Any]],
    errors: tuple[int, ...] = (),
    *,
    body: dict[str, Any] | None = None,
    security: Security | None = None,
    parameters: list[Schema] | None = None,
    shed: bool = True,
) -> dict[str, Any]:
    codes = set(errors)
    if body is not None:
        codes.add(413)  # the door's cap on any body
    if shed:
        codes.add(503)
    responses: dict[str, Any] = {str(status): response for status, response in sorted(ok.items())}
    responses.update({str(status): error(status) for status in sorted(codes)})
    result: dict[str, Any] = {"operationId": operation_id, "summary": summary, "tags": [tag], "responses": responses}
    if parameters:
        result["parameters"] = parameters
    if body is not None:
        result["requestBody"] = body
    if security is not None:
        result["security"] = security
    return result


def path_param(name: str, description: str, schema: Schema | None = None) -> Schema:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema or string()}


def query_param(name: str, description: str, schema: Schema, required: bool = False) -> Schema:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


# -- the shapes --------------------------------------------------------------------------------


def schemas() -> dict[str, Schema]:
    space = obj(
        {
            "id": string(pattern="^[a-z0-9]{12}$"),
            "title": string(),
            "state": string(enum=["scheduled", "live", "ended"]),
            "created_at": TIME,
            "starts_at": nullable(TIME),
            "started_at": nullable(TIME),
            "ended_at": nullable(TIME),
            "record": BOOLEAN,
            "private": BOOLEAN,
            "preshow": BOOLEAN,
            "listeners": ref("Listeners"),
            "speakers": INTEGER,
            "heartbeat_interval_s": NUMBER,
            "urls": ref("SpaceUrls"),
        }
    )
    member = obj(
        {
            "id": string(),
            "name": string(),
            "role": string(enum=[role.value for role in Role]),
            "muted": BOOLEAN,
            "hand_raised": BOOLEAN,
            "blocked": BOOLEAN,
        }
    )
    public_post = obj(
        {
            "id": string(),
            "kind": string(enum=["comment", "question"]),
            "text": string(),
            "author": string(),
            "created_at": TIME,
            "state": string(),
            "votes": INTEGER,
        }
    )
    return {
        "Error": obj({"error": string(description="what went wrong, for a person")}),
        "Listeners": obj({"now": INTEGER, "peak": INTEGER, "unique": INTEGER, "sample_rate": NUMBER}),
        "SpaceUrls": obj(
            {
                "page": URL,
                "host": URL,
                "whip": URL,
                "hls": URL,
                "replay": URL,
                "replay_page": URL,
                "download": URL,
            },
            required=["page", "host", "whip", "hls"],
        ),
        "Space": space,
        "CreatedSpace": {"allOf": [ref("Space"), obj({"host_token": string()})]},
        "Member": member,
        "MemberWithToken": obj({"member": ref("Member"), "token": string()}),
        "PublicPost": public_post,
        # What the author's client sees: with the id it chose (a retry is recognised by it).
        "Post": {"allOf": [ref("PublicPost"), obj({"client_id": string()})]},
        "Moderation": obj({"posting_open": BOOLEAN, "slow_mode_s": INTEGER, "pinned": PIN}),
        "Webhook": obj({"id": string(), "url": URL, "events": array(string()), "created_at": TIME}),
        "Clip": obj(
            {
                "id": string(),
                "facts": {"type": "object"},
                "key_id": nullable(string()),
                "signature": nullable(string()),
                "urls": obj({"page": URL, "file": URL, "context": URL, "verify": URL}),
            }
        ),
    }
