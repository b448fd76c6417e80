"""Listener counts summed over nodes: one contract over the in-memory and Redis implementations,
and two Podium nodes (one PostgreSQL, one Redis) whose listeners add up."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from podium.app import create_app
from podium.backends.counts import MemoryCounts, RedisCounts, Share
from podium.backends.interfaces import SharedCounts
from podium.ids import SpaceId
from podium.settings import Settings
from podium.testing import FakeClock, eventually
from tests.backends.test_sql_contract import postgres_database  # noqa: F401 - the fixture
from tests.listeners import beat

REDIS = "redis://127.0.0.1:6379"


@pytest.fixture
def clock() -> FakeClock:
    """The nodes' clock: both implementations judge a report's age by the time it was stamped with."""
    return FakeClock()


@pytest.fixture(params=["memory", "redis"])
async def counts(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[SharedCounts]:
    instance: SharedCounts = (
        MemoryCounts(ttl_s=0.5, clock=clock) if request.param == "memory" else RedisCounts(REDIS, 0.5, clock)
    )
    yield instance
    await instance.close()


async def test_nodes_reports_add_up_and_a_silent_node_drops_out(counts: SharedCounts, clock: FakeClock) -> None:
    space = SpaceId(secrets.token_hex(6))
    assert await counts.total(space) == Share(0, 0)
    await counts.report(space, "a", Share(120, 150))
    await counts.report(space, "b", Share(80, 90))
    await counts.report(space, "b", Share(70, 95))  # a node's newer report replaces its older one
    assert await counts.total(space) == Share(190, 245)
    clock.advance(0.6)
    await counts.report(space, "a", Share(100, 160))  # b has gone quiet (it died)
    assert await counts.total(space) == Share(100, 160)
    assert await counts.total(SpaceId(secrets.token_hex(6))) == Share(0, 0)


async def test_two_nodes_count_the_listeners_of_both(tmp_path: Path, postgres_database: str) -> None:  # noqa: F811
    clients = []
    async with AsyncExitStack() as stack:
        for name in ("a", "b"):
            settings = Settings.load(
                {},
                data_dir=tmp_path / name,
                database_url=postgres_database,
                bus_url=REDIS,
                limits_url=REDIS,
                node_id=name,
            )
            app = create_app(settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app)
            clients.append(await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://n")))
        a, b = clients
        space = (await a.post("/api/spaces", json={"title": "Two nodes"})).json()
        for n in range(3):
            assert (await beat(a, space["id"], f"on-a-{n:04d}")).status_code == 200
        for n in range(2):
            assert (await beat(b, space["id"], f"on-b-{n:04d}")).status_code == 200
        seen: list[int] = []

        async def both_count_five() -> bool:
            seen[:] = [(await c.get(f"/api/spaces/{space['id']}")).json()["listeners"]["now"] for c in (a, b)]
            return seen == [5, 5]

        # The nodes report every second, through Redis: real I/O between them, polled.
        await eventually(both_count_five, f"both nodes count 5 listeners (they count {seen})", timeout_s=4.0)
