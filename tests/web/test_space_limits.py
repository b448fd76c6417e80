"""Creating spaces: anyone may, within limits per address and per account, never for the past."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from podium.app import create_app
from podium.settings import Settings
from tests.web.test_schedule_api import signed_in


@pytest.fixture
async def strict(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    """An instance whose limits are small enough to meet in a test; the dict changes its settings."""
    overrides: dict[str, Any] = {"space_limit_per_address": "3/hour", "space_limit_per_account": "2/hour"}
    application = create_app(Settings.load({}, data_dir=tmp_path / "data", **overrides))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=("203.0.113.7", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://podium.test") as client:
            yield client, overrides


async def post_space(
    client: httpx.AsyncClient, headers: dict[str, str] | None = None, **body: object
) -> httpx.Response:
    return await client.post("/api/spaces", json={"title": "x", **body}, headers=headers)


async def test_one_address_creates_so_many_spaces_then_waits(
    strict: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    client, _ = strict
    for _ in range(3):
        assert (await post_space(client)).status_code == 201
    refused = await post_space(client)
    assert refused.status_code == 429
    assert "too many spaces created from your network" in refused.json()["error"]
    assert int(refused.headers["retry-after"]) > 0
    # A request that is malformed anyway is refused for what it is, and costs nothing.
    assert (await post_space(client, starts_at="soon")).status_code == 400


async def test_an_account_has_a_limit_of_its_own(tmp_path: Path) -> None:
    settings = Settings.load(
        {}, data_dir=tmp_path / "data", space_limit_per_address="100/hour", space_limit_per_account="2/hour"
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://podium.test") as client:
            ada = await signed_in(client, "ada")
            grace = await signed_in(client, "grace")
            assert [(await post_space(client, ada)).status_code for _ in range(3)] == [201, 201, 429]
            refused = await post_space(client, ada)
            assert refused.status_code == 429 and "you have created too many spaces" in refused.json()["error"]
            assert (await post_space(client, grace)).status_code == 201  # another account
            assert (await post_space(client)).status_code == 201  # and without one


async def test_credentials_sent_must_verify_and_an_instance_may_ask_for_an_account(tmp_path: Path) -> None:
    application = create_app(Settings.load({}, data_dir=tmp_path / "data", spaces_need_account=True))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://podium.test") as client:
            anonymous = await post_space(client)
            assert anonymous.status_code == 401 and "sign in to create a space" in anonymous.json()["error"]
            forged = await post_space(client, {"Authorization": "Bearer u.forged"})
            assert forged.status_code == 401
            ada = await signed_in(client)
            created = await post_space(client, ada)
            assert created.status_code == 201 and "host_token" in created.json()
            # The session cookie without its CSRF echo: refused, not created in nobody's name.
            token = ada["Authorization"].removeprefix("Bearer ")
            client.cookies.set("podium_session", token)
            assert (await post_space(client)).status_code == 403


async def test_a_start_in_the_past_is_refused_with_a_minute_of_grace(client: httpx.AsyncClient) -> None:
    now = datetime.now(UTC)
    for past in ("1970-01-01T00:00:00Z", "2020-01-01T00:00:00Z", (now - timedelta(minutes=5)).isoformat()):
        refused = await post_space(client, starts_at=past)
        assert refused.status_code == 400, past
        assert "starts_at is in the past" in refused.json()["error"]
    # A client whose clock is a little behind the server's.
    assert (await post_space(client, starts_at=(now - timedelta(seconds=20)).isoformat())).status_code == 201
    # No start time: the space starts when the host connects, as before.
    started = await post_space(client)
    assert started.status_code == 201 and started.json()["starts_at"] is None
