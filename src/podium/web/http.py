"""What every route shares: error mapping (one table), bounded bodies, JSON answers, CORS."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from podium import errors
from podium.delivery.hls import CORS_HEADERS as CORS_HEADERS  # the web layer answers with the same
from podium.domain.space import Space
from podium.domain.stage import Role
from podium.services import of
from podium.web.schemas import explain

T = TypeVar("T")

# Domain errors → HTTP status. The one place where Podium's errors learn about HTTP.
STATUS: list[tuple[type[errors.PodiumError], int]] = [
    (errors.InvalidInput, 400),
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.TooLarge, 413),
    (errors.RateLimited, 429),
    (errors.AtCapacity, 503),
]


def error_response(error: errors.PodiumError) -> JSONResponse:
    status = next((status for kind, status in STATUS if isinstance(error, kind)), 400)
    headers = dict(CORS_HEADERS)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="podium"'
    if isinstance(error, errors.RateLimited | errors.AtCapacity):
        headers["Retry-After"] = str(error.retry_after_s)
    return JSONResponse({"error": error.message}, status_code=status, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it passes `limit` bytes (never buffered past it)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdecimal():
            raise errors.InvalidInput("Content-Length is not a number")
        if int(declared) > limit:
            raise errors.TooLarge(f"the body is {declared} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise errors.TooLarge(f"the body is larger than the limit of {limit} bytes")
    return bytes(body)


async def read_model(request: Request, model: type[T], limit: int) -> T:
    """The body as `model` (an empty body is an empty object), decoded and checked in one pass:
    strict JSON (no NaN, no lone surrogate, bounded nesting); a 400 says which field is wrong."""
    content_type = request.headers.get("content-type", "")
    if content_type and not content_type.split(";")[0].strip().lower().endswith("json"):
        raise errors.InvalidInput("send JSON with Content-Type: application/json")
    body = await read_body(request, limit)
    try:
        return msgspec.json.decode(body if body.strip() else b"{}", type=model)
    except msgspec.ValidationError as error:
        raise errors.InvalidInput(explain(error, model)) from None
    except msgspec.DecodeError as error:
        raise errors.InvalidInput(f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise errors.InvalidInput("the body is not valid JSON: it is nested too deeply") from None


def read_query(request: Request, model: type[T]) -> T:
    """The query parameters as `model`, each text converted to its field's type (`?maxwidth=400`
    is 400); an empty one (`?lang=`) counts as left out. A 400 says which parameter is wrong."""
    given = {name: value for name, value in request.query_params.items() if value != ""}
    try:
        return msgspec.convert(given, model, strict=False)
    except msgspec.ValidationError as error:
        raise errors.InvalidInput(explain(error, model)) from None


async def space_of(request: Request, *roles: Role, refusal: str = "") -> Space:
    """The space the path names; with `roles`, only for the bearer token of a member in one of them."""
    space = await of(request).directory.get_space(request.path_params["space_id"])
    if roles and of(request).directory.authorize(space, bearer_token(request)).role not in roles:
        raise errors.Forbidden(refusal)
    return space


def check_private_link(request: Request, space: Space) -> None:
    """A private space's recording (and what is made of it, the transcript) is for those with its
    listener link: `?key=` from the link, checked by signature, window and generation."""
    if space.private:
        key = request.query_params.get("key")
        if not key:
            raise errors.Forbidden(
                "this space is private: its recording and transcript need the key of your listener link"
            )
        of(request).directory.check_link(space, key)


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.Unauthenticated("a token is required (Authorization: Bearer <token>)")
    return token.strip()


def json_response(
    body: Any, status: int = 200, cache: str = "no-store", headers: dict[str, str] | None = None
) -> Response:
    """An answer: a model (or plain JSON data), encoded by msgspec."""
    merged = {"Cache-Control": cache, **CORS_HEADERS, **(headers or {})}
    return Response(msgspec.json.encode(body), status_code=status, headers=merged, media_type="application/json")


def public_base(request: Request) -> str:
    """This instance's address as the world sees it: PODIUM_PUBLIC_URL, else the one the request came in at."""
    configured: str = request.app.state.settings.base_url
    return configured or str(request.base_url).rstrip("/")
