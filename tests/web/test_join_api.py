"""Joining as a listener: the waiting room, tickets, passes and the puzzle, in process, on a fake clock."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from podium.admission.tickets import leading_zero_bits, pow_digest
from podium.app import create_app
from podium.settings import Settings
from podium.testing import FakeClock, eventually
from tests.backends.test_sql_contract import postgres_database  # noqa: F401 - the fixture

REDIS = "redis://127.0.0.1:6379"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def slow_door(tmp_path: Path, clock: FakeClock) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """Two joins a second, two at once."""
    settings = Settings.load({}, data_dir=tmp_path / "data", join_rate_per_s=2.0, join_burst=2)
    app = create_app(settings, clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://podium.test") as client:
            yield app, client


async def new_space(client: httpx.AsyncClient) -> dict:
    response = await client.post("/api/spaces", json={"title": "The 20:00 interview"})
    assert response.status_code == 201
    return response.json()


async def join(client: httpx.AsyncClient, space_id: str, client_id: str, **extra: object) -> httpx.Response:
    return await client.post(f"/api/spaces/{space_id}/join", json={"client_id": client_id, **extra})


async def test_joiners_past_the_rate_wait_in_line_and_get_in_in_order(
    slow_door: tuple[Starlette, httpx.AsyncClient], clock: FakeClock
) -> None:
    _, client = slow_door
    space = await new_space(client)
    first = [await join(client, space["id"], f"listener-{i:03d}") for i in range(5)]
    assert [r.status_code for r in first] == [200, 200, 202, 202, 202]
    assert first[0].json()["urls"]["hls"].endswith(f"/hls/{space['id']}/index.m3u8")
    waiting = [r.json() for r in first[2:]]
    assert [w["position"] for w in waiting] == [1, 2, 3]
    assert [r.headers["retry-after"] for r in first[2:]] == ["1", "1", "2"]  # position / rate, rounded up
    assert "line" in waiting[0]["message"]
    # Coming back too early keeps the place; after a second the first two are called.
    again = await join(client, space["id"], "listener-002", ticket=waiting[0]["ticket"])
    assert again.status_code == 202 and again.json()["position"] == 1
    clock.advance(1.0)
    third = await join(client, space["id"], "listener-004", ticket=waiting[2]["ticket"])
    assert third.status_code == 202 and third.json()["position"] == 1
    admitted = await join(client, space["id"], "listener-002", ticket=waiting[0]["ticket"])
    assert admitted.status_code == 200 and admitted.json()["admitted"] is True
    # Single use: the same ticket again is refused; the pass lets the listener back in at once.
    replay = await join(client, space["id"], "listener-002", ticket=waiting[0]["ticket"])
    assert replay.status_code == 409 and "already used" in replay.json()["error"]
    back = await join(client, space["id"], "listener-002", **{"pass": admitted.json()["pass"]})
    assert back.status_code == 200


async def test_a_ticket_or_pass_works_only_for_its_own_browser_and_space(
    slow_door: tuple[Starlette, httpx.AsyncClient],
) -> None:
    _, client = slow_door
    space, other = await new_space(client), await new_space(client)
    admitted = (await join(client, space["id"], "listener-aaa")).json()
    stolen = await join(client, space["id"], "listener-bbb", **{"pass": admitted["pass"]})
    assert stolen.status_code == 403 and "another browser" in stolen.json()["error"]
    elsewhere = await join(client, other["id"], "listener-aaa", **{"pass": admitted["pass"]})
    assert elsewhere.status_code == 401 and "another space" in elsewhere.json()["error"]
    forged = await join(client, space["id"], "listener-aaa", ticket="eyJzIjoiYWJjIn0.forged.sig")
    assert forged.status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({}, 400, "client_id"),
        ({"client_id": "short"}, 400, "client_id"),
        ({"client_id": "listener-aaa", "ticket": 5}, 400, "ticket must be a string"),
        ({"client_id": "listener-aaa", "challenge": "x", "counter": "y"}, 400, "counter must be a whole number"),
        ({"client_id": "listener-aaa", "challenge": "x", "counter": True}, 400, "counter must be a whole number"),
        ({"client_id": "listener-aaa", "ticket": "junk"}, 401, "not valid"),
        ({"client_id": "listener-aaa", "challenge": "x", "counter": 1}, 401, "not valid"),
    ],
)
async def test_bad_joins_get_a_clear_4xx(
    slow_door: tuple[Starlette, httpx.AsyncClient], body: dict, status: int, message: str
) -> None:
    _, client = slow_door
    space = await new_space(client)
    response = await client.post(f"/api/spaces/{space['id']}/join", json=body)
    assert response.status_code == status and message in response.json()["error"]


async def test_no_join_for_unknown_spaces_and_no_database_touched_by_bad_tokens(
    slow_door: tuple[Starlette, httpx.AsyncClient],
) -> None:
    app, client = slow_door
    space = await new_space(client)
    store = app.state.space_store
    before = store.statements
    unknown = await join(client, "zzzzzzzzzzzz", "listener-aaa")
    assert unknown.status_code == 404 and "no live or upcoming space" in unknown.json()["error"]
    for i in range(50):
        bad = await join(client, space["id"], f"listener-{i:03d}", ticket=f"junk.{i}.junk")
        assert bad.status_code == 401
    assert store.statements == before
    assert app.state.joins.signer.refused == 50


async def test_under_attack_joiners_solve_a_puzzle_first_and_keep_the_answer(
    slow_door: tuple[Starlette, httpx.AsyncClient],
) -> None:
    _, client = slow_door
    space = await new_space(client)
    headers = {"Authorization": f"Bearer {space['host_token']}"}
    listener = await join(client, space["id"], "listener-aaa")
    refused = await client.post(
        f"/api/spaces/{space['id']}/under-attack", json={"mode": "on"}, headers={"Authorization": "Bearer x"}
    )
    assert refused.status_code == 401
    switched = await client.post(f"/api/spaces/{space['id']}/under-attack", json={"mode": "on"}, headers=headers)
    assert switched.json() == {"mode": "on", "active": True}
    puzzle = await join(client, space["id"], "listener-bbb")
    assert puzzle.status_code == 202 and "puzzle" in puzzle.json()["message"]
    token, bits = puzzle.json()["challenge"], puzzle.json()["difficulty_bits"]
    assert 12 <= bits <= 16
    answer = next(n for n in itertools.count() if leading_zero_bits(pow_digest(token, n)) >= bits)
    wrong = next(n for n in itertools.count() if leading_zero_bits(pow_digest(token, n)) < bits)
    assert (await join(client, space["id"], "listener-bbb", challenge=token, counter=wrong)).status_code == 403
    solved = await join(client, space["id"], "listener-bbb", challenge=token, counter=answer)
    assert solved.status_code == 200 and solved.json()["solved"]
    # The solved pass is good for a while: the next join needs no new puzzle.
    again = await join(client, space["id"], "listener-bbb", solved=solved.json()["solved"])
    assert again.status_code in (200, 202) and "challenge" not in again.json()
    # A listener already in is not asked for a puzzle.
    back = await join(client, space["id"], "listener-aaa", **{"pass": listener.json()["pass"]})
    assert back.status_code == 200


async def test_only_a_rehearsal_report_is_taken_for_the_board(slow_door: tuple[Starlette, httpx.AsyncClient]) -> None:
    _, client = slow_door
    space = await new_space(client)
    path = f"/api/spaces/{space['id']}/rehearsals"
    headers = {"Authorization": f"Bearer {space['host_token']}"}
    assert (await client.post(path, json={"verdict": "GO"})).status_code == 401
    bad = await client.post(path, json={"verdict": "GO"}, headers=headers)
    assert bad.status_code == 400 and "podium rehearse" in bad.json()["error"]
    report = {
        "verdict": "MAYBE",
        "joins": {"success": 1.0},
        "plan": {"listeners": 5, "peak_joins_per_s": 1},
        "time_to_first_audio_s": {"p50": 0.1, "p95": 0.2, "p99": 0.3},
    }
    assert (await client.post(path, json=report, headers=headers)).status_code == 400
    taken = await client.post(path, json={**report, "verdict": "NO-GO", "reasons": ["slow"]}, headers=headers)
    assert taken.status_code == 201
    board = (await client.get(f"/api/spaces/{space['id']}/board", headers=headers)).json()
    assert board["last_rehearsal"]["verdict"] == "NO-GO" and board["last_rehearsal"]["reasons"] == ["slow"]


async def test_the_board_is_for_the_host_and_shows_the_line(slow_door: tuple[Starlette, httpx.AsyncClient]) -> None:
    _, client = slow_door
    space = await new_space(client)
    for i in range(4):
        await join(client, space["id"], f"listener-{i:03d}")
    assert (await client.get(f"/api/spaces/{space['id']}/board")).status_code == 401
    board = await client.get(
        f"/api/spaces/{space['id']}/board", headers={"Authorization": f"Bearer {space['host_token']}"}
    )
    assert board.status_code == 200
    data = board.json()
    assert data["joins"]["admitted"] == 2 and data["joins"]["waiting"] == 2
    assert data["under_attack"]["mode"] == "auto" and data["stream"] == {"running": False}


async def test_a_private_space_needs_its_listener_link_and_is_never_advertised(
    slow_door: tuple[Starlette, httpx.AsyncClient],
) -> None:
    _, client = slow_door
    response = await client.post("/api/spaces", json={"title": "Members only", "private": True})
    space = response.json()
    assert response.status_code == 201 and space["private"] is True
    headers = {"Authorization": f"Bearer {space['host_token']}"}
    links = f"/api/spaces/{space['id']}/listener-links"
    assert (await client.post(links, json={"valid_for_s": 5}, headers=headers)).status_code == 400
    link = (await client.post(links, json={"valid_for_s": 7200}, headers=headers)).json()
    assert link["hls"] == f"/hls/{space['id']}/k/{link['token']}/index.m3u8"
    assert link["expires"] - link["not_before"] >= 7200

    refused = await join(client, space["id"], "listener-aaa")
    assert refused.status_code == 403 and "listener link" in refused.json()["error"]
    forged = await join(client, space["id"], "listener-aaa", key=link["token"][:-1] + "x")
    assert forged.status_code == 403
    admitted = await join(client, space["id"], "listener-aaa", key=link["token"])
    assert admitted.status_code == 200 and admitted.json()["urls"]["hls"] == link["hls"]

    assert (await client.get(f"/hls/{space['id']}/index.m3u8")).status_code == 403
    listing = (await client.get("/api/spaces")).json()
    assert space["id"] not in str(listing)
    assert space["id"] not in (await client.get("/feed.xml")).text
    clip = await client.post(f"/api/spaces/{space['id']}/clips", json={"start_s": 0, "duration_s": 10})
    assert clip.status_code == 403 and "private" in clip.json()["error"]
    assert (await client.get(f"/media/{space['id']}/recording.m4a")).status_code == 403
    bad = await client.post("/api/spaces", json={"title": "x", "private": "yes"})
    assert bad.status_code == 400 and "private must be true or false" in bad.json()["error"]


async def test_a_joiner_in_line_on_one_node_is_let_in_by_another(
    tmp_path: Path,
    postgres_database: str,  # noqa: F811
) -> None:
    """Two nodes of one instance (one database, one secret, one Redis) keep one line per space."""
    secret = secrets.token_urlsafe(40)
    async with AsyncExitStack() as stack:
        nodes: list[httpx.AsyncClient] = []
        apps: list[Starlette] = []
        for name in ("a", "b"):
            settings = Settings.load(
                {},
                data_dir=tmp_path / name,
                database_url=postgres_database,
                bus_url=REDIS,
                node_id=f"node-{name}",
                secret=secret,
                join_rate_per_s=2.0,
                join_burst=1,
            )
            app = create_app(settings)
            apps.append(app)
            stack.push_async_callback(app.state.joins.close)  # after the app's own shutdown
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app)
            nodes.append(await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://n")))
        a, b = nodes
        space = await new_space(a)
        assert (await b.get(f"/api/spaces/{space['id']}")).status_code == 200  # b learns of it

        assert (await join(a, space["id"], "listener-aaa")).status_code == 200  # the burst
        queued = await join(a, space["id"], "listener-bbb")
        behind = await join(b, space["id"], "listener-ccc")
        assert queued.status_code == 202 and queued.json()["position"] == 1
        assert behind.status_code == 202 and behind.json()["position"] == 2, "one line, whichever node"

        ticket = queued.json()["ticket"]

        async def let_in() -> httpx.Response | None:
            # The shared room calls numbers on Redis's clock: its holder comes back through b until
            # called (coming back early keeps the place), within the Retry-After it was given and a margin.
            answer = await join(b, space["id"], "listener-bbb", ticket=ticket)
            assert answer.status_code in (200, 202), answer.text
            return answer if answer.status_code == 200 else None

        retry_after_s = float(queued.headers["retry-after"])
        admitted = await eventually(let_in, "the ticket taken on a is let in on b", timeout_s=retry_after_s + 1)
        assert admitted.status_code == 200 and admitted.json()["admitted"] is True, admitted.text
        assert admitted.json()["urls"]["hls"].endswith(f"/hls/{space['id']}/index.m3u8")
        replay = await join(a, space["id"], "listener-bbb", ticket=ticket)
        assert replay.status_code == 409 and "already used" in replay.json()["error"]

        host = {"Authorization": f"Bearer {space['host_token']}"}
        boards = [(await node.get(f"/api/spaces/{space['id']}/board", headers=host)).json() for node in nodes]
        counts = [{k: board["joins"][k] for k in ("admitted", "called", "waiting")} for board in boards]
        assert counts[0] == counts[1], "both nodes show the one room"
        assert counts[0]["admitted"] == 2 and counts[0]["called"] >= 1
