"""A hostile stranger against a real `podium serve`: the listener count and the guest list.

Issue 17, rows 3 and 4. The count is made only by listeners who were let in (a heartbeat carries
the join's pass), whose place in the sample is the server's, and one address counts for a bounded
share; guests are bounded per space and per address.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server, free_port
from tests.listeners import admit, beat

Serve = Callable[..., Server]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """`podium serve` started with the given settings (small limits, so that attacks stay short)."""
    started: list[Server] = []

    def start(**settings: str) -> Server:
        env = {f"PODIUM_{name.upper()}": value for name, value in settings.items()}
        server = Server(tmp_path / "data", free_port(), tmp_path / "podium.log", env=env)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


async def new_space(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post("/api/spaces", json={"title": "The 20:00 interview"})
    assert response.status_code == 201, response.text
    space: dict[str, Any] = response.json()
    return space


async def listeners(client: httpx.AsyncClient, space_id: str) -> dict[str, Any]:
    view: dict[str, Any] = (await client.get(f"/api/spaces/{space_id}")).json()["listeners"]
    return view


def zero_id() -> str:
    return "00000000" + secrets.token_hex(8)


# -- row 3: the listener count ---------------------------------------------------------------


async def test_heartbeats_without_a_join_count_for_nothing(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as client:
        space = await new_space(client)
        url = f"/api/spaces/{space['id']}/heartbeat"
        real = await admit(client, space["id"], "a-real-listener")
        answers = []
        for n in range(300):
            body: dict[str, Any] = {"listener_id": zero_id()}
            if n % 3 == 1:
                body["pass"] = secrets.token_urlsafe(40)  # made up
            elif n % 3 == 2:
                body["pass"] = real["pass"]  # a real pass, but another browser's
            answers.append(await client.post(url, json=body))
        assert {a.status_code for a in answers} == {401, 403}
        assert all("join" in a.json()["error"] for a in answers)  # says what to do instead
        assert await listeners(client, space["id"]) == {"now": 0, "peak": 0, "unique": 0, "sample_rate": 1.0}


async def test_one_address_counts_for_a_bounded_share_of_the_audience(serve: Serve) -> None:
    server = serve(presence_listeners_per_address="5")
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as client:
        space = await new_space(client)
        counted = []
        for _ in range(30):  # thirty browsers on one machine, each let in, each beating
            answer = await beat(client, space["id"], zero_id())
            assert answer.status_code == 200, answer.text
            counted.append(answer.json()["counted"])
        assert counted == [True] * 5 + [False] * 25
        shown = await listeners(client, space["id"])
        assert (shown["now"], shown["peak"]) == (5, 5)


async def test_ids_that_start_with_zeros_do_not_stay_in_the_sample(serve: Serve) -> None:
    # A small sample target, so that forty listeners already make the node sample.
    server = serve(presence_sample_target="10")
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as client:
        space = await new_space(client)
        passes = {}
        for _ in range(40):
            listener = zero_id()
            passes[listener] = (await admit(client, space["id"], listener))["pass"]
            assert (await beat(client, space["id"], listener, passes[listener])).status_code == 200
        # Every one beats again, in the sample or not: only the server's sample is counted.
        answers = [(await beat(client, space["id"], lid, p)).json() for lid, p in passes.items()]
        rate = answers[-1]["listeners"]["sample_rate"]
        assert rate < 1.0
        counted = sum(a["counted"] for a in answers)
        assert 0 < counted < 40  # under the old scheme all forty (points near 0) stayed in
        shown = await listeners(client, space["id"])
        assert shown["now"] <= 200 and shown["peak"] <= 200  # about the forty who joined


async def test_a_heartbeat_flood_from_one_address_is_refused(serve: Serve) -> None:
    server = serve(heartbeat_limit_per_address="20/minute")
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as client:
        space = await new_space(client)
        joined = await admit(client, space["id"], "one-listener")
        answers = [await beat(client, space["id"], "one-listener", joined["pass"]) for _ in range(40)]
        assert [a.status_code for a in answers] == [200] * 20 + [429] * 20
        refused = answers[-1]
        assert "too many heartbeats from your network" in refused.json()["error"]
        assert int(refused.headers["retry-after"]) >= 1
        assert (await listeners(client, space["id"]))["now"] == 1


# -- row 4: guests ---------------------------------------------------------------------------


async def test_the_guest_list_stops_at_its_bound_and_the_host_frees_places(serve: Serve) -> None:
    server = serve(max_guests="5", guest_limit_per_address="1000/minute")
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as client:
        space = await new_space(client)
        url = f"/api/spaces/{space['id']}/guests"
        answers = [await client.post(url, json={"name": "g"}) for _ in range(40)]
        assert [a.status_code for a in answers] == [201] * 5 + [409] * 35
        assert "the audience is full: 5 guests are waiting already" in answers[-1].json()["error"]
        # The host's controls still answer, and a removal makes room for one more.
        host = {"Authorization": f"Bearer {space['host_token']}"}
        first = answers[0].json()["member"]["id"]
        removed = await client.post(f"/api/spaces/{space['id']}/members/{first}/remove", headers=host)
        assert removed.status_code == 200, removed.text
        assert (await client.post(url, json={"name": "late"})).status_code == 201
        assert (await client.post(url, json={"name": "later"})).status_code == 409
    # The bound holds across a restart (the stored stage state is read back with it).
    server.stop()
    server.start()
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as client:
        assert (await client.post(url, json={"name": "after"})).status_code == 409


async def test_guest_joins_from_one_address_are_limited(serve: Serve) -> None:
    server = serve(guest_limit_per_address="3/minute")
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as client:
        spaces = [await new_space(client), await new_space(client)]
        statuses = []
        for n in range(6):  # across two spaces: the limit is the address's
            answer = await client.post(f"/api/spaces/{spaces[n % 2]['id']}/guests", json={"name": "g"})
            statuses.append(answer.status_code)
        assert statuses == [201] * 3 + [429] * 3
        assert "too many guests joined from your network" in answer.json()["error"]
        assert int(answer.headers["retry-after"]) >= 1
