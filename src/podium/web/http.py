"""What every route shares: error mapping (one table), bounded bodies, JSON answers, CORS."""

from __future__ import annotations

import json
import math
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from podium import errors
from podium.delivery.hls import CORS_HEADERS as CORS_HEADERS  # the web layer answers with the same
from podium.web.schemas import convert, encode, explain

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


def status_of(error: errors.PodiumError) -> int:
    for kind, status in STATUS:
        if isinstance(error, kind):
            return status
    return 400


def error_response(error: errors.PodiumError) -> JSONResponse:
    status = status_of(error)
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
        if not declared.isdigit():
            raise errors.InvalidInput("Content-Length is not a number")
        if int(declared) > limit:
            raise errors.TooLarge(f"the body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.TooLarge(f"the body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse_constant(name: str) -> float:
    raise errors.InvalidInput(f"the body is not valid JSON: {name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e999: valid JSON, but no number Podium could use
        raise errors.InvalidInput(f"the number {text[:20]} is too large")
    return value


def parse_json(body: bytes) -> Any:
    """Strict JSON: no NaN or Infinity (Python's json takes them), no number that overflows to
    infinity, no lone surrogate (\\ud800 is valid JSON but no Unicode text), bounded nesting."""
    try:
        value = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite)
    except RecursionError:
        raise errors.InvalidInput("the body is not valid JSON: it is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise errors.InvalidInput(f"the body is not valid JSON: {error}") from None
    try:
        # Lone surrogates cannot be encoded: one pass in C finds any, in keys and values alike.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise errors.InvalidInput("the body is not valid Unicode text (a lone surrogate escape)") from None
    except RecursionError:
        raise errors.InvalidInput("the body is not valid JSON: it is nested too deeply") from None
    return value


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "")
    if content_type and not content_type.split(";")[0].strip().lower().endswith("json"):
        raise errors.InvalidInput("send JSON with Content-Type: application/json")
    body = await read_body(request, limit)
    if not body.strip():
        return {}
    value = parse_json(body)
    if not isinstance(value, dict):
        raise errors.InvalidInput("the body must be a JSON object")
    return value


async def read_model(request: Request, model: type[T], limit: int) -> T:
    """The body as `model` (an empty body is an empty object): a 400 says which field is wrong."""
    return convert(await read_json(request, limit), model)


def read_query(request: Request, model: type[T]) -> T:
    """The query parameters as `model`, each text converted to its field's type (`?maxwidth=400`
    is 400); an empty one (`?lang=`) counts as left out. A 400 says which parameter is wrong."""
    given = {name: value for name, value in request.query_params.items() if value != ""}
    try:
        return msgspec.convert(given, model, strict=False)
    except msgspec.ValidationError as error:
        raise errors.InvalidInput(explain(error, model)) from None


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
    return Response(encode(body), status_code=status, headers=merged, media_type="application/json")


def public_base(request: Request) -> str:
    """This instance's address as the world sees it: PODIUM_PUBLIC_URL, else the one the request came in at."""
    configured: str = request.app.state.settings.base_url
    return configured or str(request.base_url).rstrip("/")
