"""Whatever a client sends to the JSON API, the answer is a clear 2xx/4xx, never a crash."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from podium.app import create_app
from podium.settings import Settings

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)
bodies = st.one_of(
    st.dictionaries(
        st.sampled_from(["title", "starts_at", "role", "name", "listener_id", "leaving", "x"]), json_values, max_size=4
    ),
    json_values,
)

ROUTES = [
    ("POST", "/api/spaces"),
    ("POST", "/api/spaces/{id}/end"),
    ("POST", "/api/spaces/{id}/heartbeat"),
    ("POST", "/api/spaces/{id}/invites"),
    ("POST", "/api/spaces/{id}/invites/redeem"),
    ("POST", "/api/spaces/{id}/guests"),
    ("POST", "/api/spaces/{id}/hand"),
    ("POST", "/api/spaces/{id}/leave"),
    ("GET", "/api/spaces/{id}/me"),
    ("GET", "/api/spaces/{id}/hands"),
    ("POST", "/api/spaces/{id}/members/{member}/mute"),
    ("POST", "/api/spaces/{id}/members/{member}/{action}"),
]


TOKENS = [None, "host", "m.garbage", "i.garbage", "x" * 700]


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Starlette]:
    # A space for every example: far more than one address may create in an hour by default.
    application = create_app(Settings.load({}, data_dir=tmp_path / "data", space_limit_per_address="10000/hour"))
    async with application.router.lifespan_context(application):
        yield application


@pytest.mark.parametrize(("method", "path"), ROUTES)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=bodies,
    token=st.sampled_from(TOKENS),
    member=st.sampled_from(["host", "nobody", "i-x", "..", "m" * 80]),
    action=st.sampled_from(["mute", "unmute", "accept", "decline", "audience", "remove", "block", "fly", "%20"]),
)
async def test_no_input_crashes_the_api(
    client: httpx.AsyncClient, method: str, path: str, body: object, token: str | None, member: str, action: str
) -> None:
    space = (await client.post("/api/spaces", json={"title": "Fuzzed"})).json()
    url = path.format(id=space["id"], member=member, action=action)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {space['host_token'] if token == 'host' else token}"
    content = json.dumps(body).encode() if method == "POST" else None
    response = await client.request(method, url, content=content, headers=headers)
    assert response.status_code < 500, (url, body, response.text)
    if response.status_code >= 400:
        assert response.json()["error"], "every refusal says why"
