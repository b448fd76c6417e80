"""`/openapi.json` describes the JSON API as it is: Schemathesis sends what the document allows (and
what it does not) to the app in process; every answer must be a documented status, content type and
shape, never a 5xx. The document must also list every `/api` route the app serves."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import ASGIClient, get_client, shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.applications import Starlette
from starlette.routing import Route

from podium.app import create_app
from podium.settings import Settings
from podium.web.openapi import document as build_document
from podium.web.routes import TABLE

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Examples per operation: enough to meet the shared parsing and every credential below a few times,
# few enough that the ~60 operations take seconds, not minutes.
EXAMPLES = int(os.environ.get("PODIUM_OPENAPI_EXAMPLES", "12"))
# Who calls: nobody (or whatever was generated), the host of a real space, a guest on its stage,
# a signed-in account. With a real space the path names it, so calls get past the 404 and the 401.
CALLERS = ["generated", "host", "guest", "account"]


@cache
def document() -> dict[str, Any]:
    """The document with the default settings (what `/openapi.json` serves on a fresh node)."""
    return build_document(TABLE.documented(), Settings.load({}))


@dataclass(frozen=True)
class Fixture:
    app: Starlette
    space_id: str
    tokens: dict[str, str]


def _client(app: Starlette) -> ASGIClient:
    """Schemathesis's in-process client: its event loop is the one the app's lifespan runs in."""
    return get_client(cast(Any, app))


def _credentials(app: Starlette) -> tuple[str, dict[str, str]]:
    with _client(app) as client:
        space = client.post("/api/spaces", json={"title": "Fuzzed"}).json()
        guest = client.post(f"/api/spaces/{space['id']}/guests", json={"name": "Guest"}).json()
        account = {"username": "fuzzer", "password": "a long enough password"}
        assert client.post("/api/accounts", json=account).status_code == 201
        session = client.post("/api/sessions", json=account).json()
    return space["id"], {"host": space["host_token"], "guest": guest["token"], "account": session["token"]}


@pytest.fixture(scope="module")
def podium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    data_dir: Path = tmp_path_factory.mktemp("openapi") / "data"
    app = create_app(Settings.load({}, data_dir=data_dir))
    try:
        space_id, tokens = _credentials(app)  # the first client starts the app's lifespan
        yield Fixture(app, space_id, tokens)
    finally:
        shutdown_lifespans()


@pytest.fixture(scope="module")
def api(podium: Fixture) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict({"generation": {"deterministic": True}})
    return schemathesis.openapi.from_asgi("/openapi.json", podium.app, config=config)


# What ends a credential the other operations are called with: fuzzed after them, in this order.
ENDINGS = [
    ("DELETE", "/api/sessions"),
    ("DELETE", "/api/spaces/{space_id}/listener-links"),
    ("POST", "/api/spaces/{space_id}/end"),
    ("POST", "/api/spaces/{space_id}/host-token"),
]


def _fuzzed() -> list[tuple[str, str]]:
    """Every documented operation but WHIP's: an SDP offer made of random bytes says nothing
    (tests/test_stage_media.py drives WHIP with real peers). Signing out, ending the space and
    rotating the host token come last, so the others meet the space live or scheduled and the
    credentials still valid first."""
    found = [
        (method.upper(), path)
        for path, operations in document()["paths"].items()
        if not path.startswith("/whip/")
        for method in operations
        if method != "parameters"
    ]
    return sorted(found, key=lambda operation: ENDINGS.index(operation) + 1 if operation in ENDINGS else 0)


# Bodies Python's json module takes or chokes on, that are no JSON a client means: each once fell
# through to a 500 somewhere (a RecursionError, inf in int(), NaN in an answer, a surrogate in UTF-8).
HOSTILE = {
    "nested": b'{"a": ' + b"[" * 3000,
    "nan": b'{"x": NaN}',
    "infinity": b'{"x": -Infinity}',
    "overflow": b'{"x": 1e999}',
    "surrogate": b'{"x": "\\ud800"}',
    "surrogate key": b'{"\\udfff": 1}',
    "not an object": b"[1, 2]",
    "not UTF-8": b'{"x": "\xff"}',
    "cut short": b'{"x": 1',
}


def _json_operations() -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, operations in document()["paths"].items()
        for method, operation in operations.items()
        if method != "parameters" and "application/json" in operation.get("requestBody", {}).get("content", {})
    ]


@pytest.mark.parametrize(("method", "path"), _json_operations())
def test_hostile_json_gets_a_clear_400(api: schemathesis.BaseSchema, podium: Fixture, method: str, path: str) -> None:
    operation = api[path][method]
    caller = "account" if "accountToken" in str(document()["paths"][path][method.lower()].get("security")) else "host"
    url = re.sub(r"\{space_id\}", podium.space_id, path).replace("{", "").replace("}", "")
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {podium.tokens[caller]}"}
    with _client(podium.app) as client:
        for name, body in HOSTILE.items():
            response = client.request(method, url, data=body, headers=headers)
            # The deep one may be past a small endpoint's limit first: 413 is as clear.
            assert response.status_code in ((400, 413) if name == "nested" else (400,)), (name, response.text)
            assert response.json()["error"], name
            operation.validate_response(response)


@pytest.mark.parametrize(("method", "path"), _fuzzed())
def test_the_api_answers_as_documented(api: schemathesis.BaseSchema, podium: Fixture, method: str, path: str) -> None:
    operation = api[path][method]
    # Valid requests and invalid ones (wrong types, missing fields, bodies that break the schema).
    cases = st.one_of(
        operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
    )

    @hypothesis.given(case=cases, caller=st.sampled_from(CALLERS))
    @hypothesis.settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    def answers_as_documented(case: schemathesis.Case[Any], caller: str) -> None:
        if caller != "generated":
            if "space_id" in (case.path_parameters or {}):
                case.path_parameters["space_id"] = podium.space_id
            case.headers["Authorization"] = f"Bearer {podium.tokens[caller]}"
        if path != "/oembed":
            case.call_and_validate(checks=CHECKS)
            return
        # oEmbed's own rule: a format the provider does not offer is 501 (its only 5xx, documented).
        response = case.call_and_validate(checks=CHECKS[1:])
        asked = (case.query or {}).get("format")
        assert response.status_code < 500 or (response.status_code == 501 and asked == "xml"), response.text

    answers_as_documented()


def test_the_document_is_valid_openapi(podium: Fixture) -> None:
    with _client(podium.app) as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["access-control-allow-origin"] == "*"
    loaded = schemathesis.openapi.from_dict(response.json())
    loaded.validate()  # raises on anything the OpenAPI 3.1 meta-schema refuses


def _documented(path: str) -> set[str]:
    operations = document()["paths"].get(path, {})
    return {method.upper() for method in operations if method != "parameters"}


# WHIP's PATCH is always 405 (Podium takes no trickled candidates): nothing for a client to call.
UNDOCUMENTED = {"PATCH /whip/{space_id}/{session_id}"}


def _served(app: Starlette) -> set[str]:
    served = set()
    for route in app.routes:
        if isinstance(route, Route) and re.match(r"^/(api|whip)/", route.path):
            served |= {f"{method} {route.path}" for method in (route.methods or set()) - {"HEAD", "OPTIONS"}}
    return served


def test_every_api_route_is_documented(podium: Fixture) -> None:
    documented = {f"{method} {path}" for path in document()["paths"] for method in _documented(path)}
    assert _served(podium.app) - UNDOCUMENTED - documented == set(), "served but not in /openapi.json"
    api_documented = {entry for entry in documented if re.match(r"^\w+ /(api|whip)/", entry)}
    assert api_documented - _served(podium.app) == set(), "in /openapi.json but not served"


def test_errors_are_documented_with_the_error_shape() -> None:
    for path, operations in document()["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            for status, response in operation["responses"].items():
                if 400 <= int(status) < 500:
                    schema_ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert schema_ref == "#/components/schemas/Error", f"{method} {path} {status}"


def test_what_fuzzing_found_beyond_bodies_gets_a_clear_4xx(api: schemathesis.BaseSchema, podium: Fixture) -> None:
    with _client(podium.app) as client:
        # A CSRF header with non-ASCII characters once crashed the comparison (compare_digest on str).
        cookies = f"podium_session={podium.tokens['account']}; podium_csrf=expected"
        posted = client.post(
            f"/api/spaces/{podium.space_id}/posts",
            json={"kind": "comment", "text": "hi", "client_id": "csrf-check-1"},
            headers={"Cookie": cookies, "X-CSRF-Token": "\xe9t\xe9"},
        )
        assert posted.status_code == 403, posted.text
        api["/api/spaces/{space_id}/posts"]["POST"].validate_response(posted)
        # A start time at the edge of datetime's range once overflowed when turned into UTC.
        created = client.post("/api/spaces", json={"title": "Edge", "starts_at": "0001-01-01T00:00:00+14:00"})
        assert created.status_code == 400, created.text
        assert "out of range" in created.json()["error"]
        api["/api/spaces"]["POST"].validate_response(created)


async def test_the_document_follows_the_settings(tmp_path: Path) -> None:
    """A limit that is a setting is documented with the value the node runs with."""
    app = create_app(Settings.load({"PODIUM_MAX_TITLE_CHARS": "80"}, data_dir=tmp_path / "data"))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://podium.test") as client,
    ):
        served = (await client.get("/openapi.json")).json()
        body = served["paths"]["/api/spaces"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        name = body["$ref"].rsplit("/", 1)[1]
        assert served["components"]["schemas"][name]["properties"]["title"]["maxLength"] == 80
        assert "x-podium-setting" not in json.dumps(served)
        # And the limit the document states is the one enforced.
        too_long = await client.post("/api/spaces", json={"title": "x" * 81})
        assert too_long.status_code == 400 and "80" in too_long.json()["error"]
        assert (await client.post("/api/spaces", json={"title": "x" * 80})).status_code == 201
