"""Stage placement: one contract for the in-memory and Redis leases."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from podium.app import create_app
from podium.backends.interfaces import Placement
from podium.backends.placement import TIMELINE_PREFIX, MemoryPlacement, RedisPlacement
from podium.ids import SpaceId
from podium.settings import Settings
from podium.testing import FakeClock, eventually
from tests.backends.test_sql_contract import postgres_database  # noqa: F401 - the fixture
from tests.media.test_sdp import OFFER

REDIS = "redis://127.0.0.1:6379"


@pytest.fixture(params=["memory", "redis"])
def clock(request: pytest.FixtureRequest) -> FakeClock | None:
    """The leases' clock: a fake one the test steps (memory), None for Redis's own (real) clock."""
    return FakeClock() if request.param == "memory" else None


@pytest.fixture
async def placement(clock: FakeClock | None) -> AsyncIterator[Placement]:
    instance: Placement = MemoryPlacement(clock) if clock is not None else RedisPlacement(REDIS)
    yield instance
    await instance.close()


async def runs_out(clock: FakeClock | None, gone: Callable[[], Awaitable[bool]], what: str) -> None:
    """Half a second passes on the leases' clock, by the end of which `gone()` holds."""
    if clock is not None:
        clock.advance(0.5)
        assert await gone(), what
    else:  # Redis expires the key on its own clock: polled, for at most the same half second
        await eventually(gone, what, timeout_s=0.5)


async def test_one_node_holds_a_stage_until_its_lease_runs_out(placement: Placement, clock: FakeClock | None) -> None:
    space = SpaceId(secrets.token_hex(6))
    assert await placement.owner(space) is None
    assert await placement.claim(space, "a", 0.4)
    assert not await placement.claim(space, "b", 0.4), "held by a"
    assert await placement.claim(space, "a", 0.4), "a's own claim again is a renewal"
    assert await placement.renew(space, "a", 0.4) and not await placement.renew(space, "b", 0.4)
    assert await placement.owner(space) == "a"

    async def free() -> bool:
        return await placement.owner(space) is None

    await runs_out(clock, free, "a died: its lease ran out")
    assert await placement.claim(space, "b", 0.4) and await placement.owner(space) == "b"
    await placement.release(space, "a")  # not a's to release
    assert await placement.owner(space) == "b"
    await placement.release(space, "b")
    assert await placement.owner(space) is None


async def test_a_node_says_where_it_is_while_it_runs(placement: Placement, clock: FakeClock | None) -> None:
    node = "node-" + secrets.token_hex(4)
    assert await placement.address(node) is None
    await placement.announce(node, "http://10.0.0.5:8000", 0.4)
    assert await placement.address(node) == "http://10.0.0.5:8000"
    await placement.announce(node, "http://10.0.0.6:8000", 0.4)  # moved: the newest address counts
    assert await placement.address(node) == "http://10.0.0.6:8000"

    async def unknown() -> bool:
        return await placement.address(node) is None

    await runs_out(clock, unknown, "it stopped announcing (it died): nobody is sent there any more")


async def test_timeline_leases_are_apart_from_stage_leases() -> None:
    space = SpaceId(secrets.token_hex(6))
    stages, timelines = RedisPlacement(REDIS), RedisPlacement(REDIS, TIMELINE_PREFIX)
    try:
        assert await stages.claim(space, "a", 1.0)
        assert await timelines.claim(space, "b", 1.0), "the same space, another kind of lease"
        assert await stages.owner(space) == "a" and await timelines.owner(space) == "b"
    finally:
        await stages.release(space, "a")
        await timelines.release(space, "b")
        await stages.close()
        await timelines.close()


async def test_one_of_two_nodes_runs_a_stage_and_the_other_takes_over_when_it_stops(
    tmp_path: Path,
    postgres_database: str,  # noqa: F811
) -> None:
    from datetime import UTC, datetime, timedelta

    starts = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    stacks = {name: AsyncExitStack() for name in ("a", "b")}
    secret = secrets.token_urlsafe(40)  # the nodes of one instance share its secret
    clients: dict[str, httpx.AsyncClient] = {}
    apps = {}
    for name, stack in stacks.items():
        settings = Settings.load(
            {},
            data_dir=tmp_path / name,
            database_url=postgres_database,
            bus_url=REDIS,
            node_id=f"node-{name}",
            secret=secret,
        )
        app = apps[name] = create_app(settings)
        await stack.enter_async_context(app.router.lifespan_context(app))
        transport = httpx.ASGITransport(app=app)
        clients[name] = await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://n"))
    try:
        space = (await clients["a"].post("/api/spaces", json={"title": "Placed", "starts_at": starts})).json()
        await clients["b"].get(f"/api/spaces/{space['id']}")  # b learns of it (its schedule looks in memory)

        def running() -> list[str]:
            return [n for n in apps if apps[n].state.stages.stage(SpaceId(space["id"])) is not None]

        # The nodes' schedules run on their own; the lease is taken through Redis: polled.
        owner = await eventually(running, "a node opened the pre-show", timeout_s=4.0)
        assert len(owner) == 1, "exactly one node opened the pre-show"
        holder = owner[0]
        other = "b" if holder == "a" else "a"
        refused = await clients[other].post(
            f"/whip/{space['id']}",
            content=OFFER.encode(),
            headers={"Authorization": f"Bearer {space['host_token']}", "Content-Type": "application/sdp"},
        )
        assert refused.status_code == 409 and f"node-{holder}" in refused.json()["error"]
        await stacks[holder].aclose()  # the owner stops (and lets go of its lease)
        took = lambda: apps[other].state.stages.stage(SpaceId(space["id"])) is not None  # noqa: E731
        await eventually(took, "the other node took the stage", timeout_s=4.0)
    finally:
        for stack in stacks.values():
            await stack.aclose()
