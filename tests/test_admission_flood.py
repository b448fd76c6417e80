"""Floods against a real `podium serve` (issue 6): a join ramp against the admission rate, 20,000
forged, expired and replayed tokens beside legitimate joins, and an overload of posts.

Traffic stays on loopback; every loop is bounded in count and time."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from podium.admission.tickets import TicketSigner, client_hash
from podium.ids import SpaceId
from podium.testing.whip_client import SampleTrack, publish, tone
from tests.conftest import Server, free_port
from tests.rawhttp import RawConnection
from tests.test_live_media import wait_for_media

pytestmark = pytest.mark.media

# Every client here is 127.0.0.1: the per-address limits out of the way.
OPEN_DOOR = {"PODIUM_JOIN_LIMIT_PER_ADDRESS": "1000000/minute", "PODIUM_MAX_IN_FLIGHT_PER_ADDRESS": "100000"}


def serve(tmp_path: Path, env: dict[str, str]) -> Iterator[Server]:
    srv = Server(tmp_path / "data", free_port(), tmp_path / "podium.log", env={**OPEN_DOOR, **env})
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def ramp_server(tmp_path: Path) -> Iterator[Server]:
    # What is measured is the waiting room's rate: the load governor (which would rightly hold
    # joins back while this machine's two cores also run the 2,000 simulated listeners) is given
    # room here; test_overload_... tests it.
    env = {"PODIUM_JOIN_RATE_PER_S": "50", "PODIUM_JOIN_BURST": "10", "PODIUM_MAX_IN_FLIGHT": "4096"}
    yield from serve(tmp_path, {**env, "PODIUM_MAX_LAG_MS": "5000"})


@pytest.fixture
def flood_server(tmp_path: Path) -> Iterator[Server]:
    yield from serve(tmp_path, {"PODIUM_JOIN_RATE_PER_S": "40", "PODIUM_JOIN_BURST": "5"})


async def board(client: httpx.AsyncClient, space: dict[str, Any]) -> dict[str, Any]:
    response = await client.get(
        f"/api/spaces/{space['id']}/board", headers={"Authorization": f"Bearer {space['host_token']}"}
    )
    assert response.status_code == 200
    return dict(response.json())


async def test_a_join_ramp_is_admitted_at_the_rate_and_the_rest_wait_in_line(
    ramp_server: Server, tmp_path: Path
) -> None:
    """2,000 joins in 20 s against R = 50/s: admitted at R (± 10 %), the others told to wait with
    Retry-After, no 5xx, and the speaker's frames keep reaching the stage on time."""
    server = ramp_server
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
        space = (await client.post("/api/spaces", json={"title": "Ramp"})).json()
        speaker = await publish(server.base + space["urls"]["whip"], space["host_token"], SampleTrack(tone(440)))
        try:
            await wait_for_media(server, space, 2)
            report_path = tmp_path / "ramp.json"
            # 2,000 joins in 20 s on rehearse's flash-crowd curve: (4/3) N / T = 134 joins/s at the peak.
            process = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "podium", "rehearse", f"{server.base}/s/{space['id']}"),
                *("--listeners", "2000", "--peak-joins-per-s", "134", "--stay", "0.5", "--quiet"),
                *("--report", str(report_path)),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            # The room's admissions as the server makes them (it calls places in line at R; a
            # caller's own return may come later, on this busy machine), sampled every 0.2 s.
            called: list[tuple[float, int]] = []
            done = asyncio.ensure_future(process.communicate())
            for _ in range(1200):  # at most 240 s
                if done.done():
                    break
                called.append((time.monotonic(), (await board(client, space))["joins"]["called"]))
                # Real time on purpose: the rate under test is calls per real second of a `podium
                # serve` subprocess under a real load generator; the samples are its time axis.
                await asyncio.sleep(0.2)
            out, err = await asyncio.wait_for(done, timeout=30)
            state = await board(client, space)
        finally:
            await speaker.close()
    report = json.loads(report_path.read_text())
    print(out.decode(), err.decode()[-2000:])
    room = report["waiting_room"]
    assert report["joins"]["succeeded"] == 2000, report["joins"]
    assert report["legitimate_5xx"] == {"join": 0, "playlist": 0, "media": 0, "heartbeat": 0}
    assert room["answers_without_retry_after"] == 0
    assert report["requests"]["join"].get("202", 0) > 500 and room["max_position"] > 100
    # The admitted rate while a line stood: from when it formed to when it was nearly gone.
    # While the line stood (from its 100th call to 100 before its last): the room's rate.
    # How many are called from the line depends on how fast the load generator, sharing the 2
    # cores with the server, sends its joins: over 1,000 on a quiet machine, 770-801 seen within the
    # full suite. 500 calls leave 300 between the 100th and the last 100 to measure the rate on.
    assert called[-1][1] >= 500, called[-1]
    first = next((t, n) for t, n in called if n >= 100)
    last = next((t, n) for t, n in called if n >= called[-1][1] - 100)
    rate = (last[1] - first[1]) / (last[0] - first[0])
    per_s = room["admitted_per_s"]
    print(f"admitted {rate:.1f}/s (R = 50/s); joiners back in per second: {per_s}; speaker gaps {state['stream']}")
    assert 45 <= rate <= 55
    gaps = state["stream"]["input_gap_ms"]
    assert gaps is not None and gaps["p99"] < 100, gaps


async def test_a_flood_of_bad_tokens_is_refused_by_signature_alone_and_joins_go_on(
    flood_server: Server,
) -> None:
    server = flood_server
    space_id: str
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
        space = (await client.post("/api/spaces", json={"title": "Flood"})).json()
        space_id = space["id"]
        join_path = f"/api/spaces/{space_id}/join"

        async def legit(conn: RawConnection, client_id: str) -> tuple[bool, str | None]:
            """Join as the page does; returns (admitted, the ticket used to get in)."""
            body: dict[str, Any] = {"client_id": client_id}
            for _ in range(60):
                status, headers, content = await conn.request("POST", join_path, body)
                data = json.loads(content)
                if status == 200:
                    return True, body.get("ticket")
                if status != 202:
                    return False, None
                body = {"client_id": client_id, "ticket": data["ticket"]}
                # Real time on purpose: a real client honours the Retry-After of a subprocess
                # server, whose room calls places in line at its rate on its own clock.
                await asyncio.sleep(float(headers["retry-after"]))
            return False, None

        # Tickets real listeners used: replaying them is part of the flood.
        first = [RawConnection("127.0.0.1", server.port) for _ in range(20)]
        ids = [secrets.token_hex(12) for _ in range(40)]
        outcomes = await asyncio.gather(*(legit(first[i % 20], ids[i]) for i in range(40)))
        used = [(ids[i], ticket) for i, (ok, ticket) in enumerate(outcomes) if ok and ticket]
        assert all(ok for ok, _ in outcomes) and len(used) >= 20

        # Expired ones, signed with this instance's own secret an hour (tickets) or a day (passes) ago.
        signer = TicketSigner((server.data_dir / "secret").read_text().strip())
        real_time = time.time
        expired: list[dict[str, Any]] = []
        try:
            for k in range(50):
                owner = secrets.token_hex(12)
                time.time = lambda: real_time() - 24 * 3600  # type: ignore[assignment]
                if k % 2:
                    expired.append({"client_id": owner, "pass": signer.pass_(SpaceId(space_id), client_hash(owner))})
                else:
                    ticket = signer.ticket(SpaceId(space_id), "old", k, client_hash(owner))
                    expired.append({"client_id": owner, "ticket": ticket})
        finally:
            time.time = real_time  # type: ignore[assignment]

        def junk(k: int) -> tuple[str, dict[str, Any]]:
            kind = k % 5
            if kind == 0:
                return "forged", {"client_id": secrets.token_hex(12), "ticket": secrets.token_urlsafe(60)}
            if kind == 1:
                return "forged", {"client_id": secrets.token_hex(12), "pass": "eyJzIjoi" + secrets.token_urlsafe(50)}
            if kind == 2:
                return "expired", expired[k % len(expired)]
            if kind == 3:
                owner, ticket = used[k % len(used)]
                return "replayed", {"client_id": owner, "ticket": ticket}
            owner, ticket = used[k % len(used)]
            return "stolen", {"client_id": secrets.token_hex(12), "ticket": ticket}

        before = await board(client, space)
        answers: dict[str, Counter[int]] = {}

        async def flood(worker: int, count: int) -> None:
            conn = RawConnection("127.0.0.1", server.port)
            for n in range(count):
                kind, body = junk(worker * count + n)
                status, _, _ = await conn.request("POST", join_path, body)
                answers.setdefault(kind, Counter())[status] += 1
            await conn.close()

        legit_conns = [RawConnection("127.0.0.1", server.port) for _ in range(20)]
        started = time.monotonic()
        _, joins = await asyncio.gather(
            asyncio.gather(*(flood(w, 500) for w in range(40))),
            asyncio.gather(*(legit(legit_conns[i % 20], secrets.token_hex(12)) for i in range(200))),
        )
        took = time.monotonic() - started
        after = await board(client, space)
        for conn in first + legit_conns:
            await conn.close()

    sent = sum(sum(c.values()) for c in answers.values())
    print(f"{sent} bad tokens in {took:.1f} s; answers {answers}; legit {sum(ok for ok, _ in joins)}/200")
    assert sent == 20_000
    assert set(answers["forged"]) == {401}
    assert set(answers["expired"]) == {403}
    assert set(answers["replayed"]) == {409}
    assert set(answers["stolen"]) == {403}
    # Nothing the flood sent reached the database: the count of statements did not move.
    assert after["database_statements"] == before["database_statements"]
    bad_by_signature = sum(sum(answers[k].values()) for k in ("forged", "expired", "stolen"))
    assert after["refused_by_signature"] - before["refused_by_signature"] == bad_by_signature
    assert sum(ok for ok, _ in joins) >= 198  # ≥ 99 % of legitimate joins got in


@pytest.fixture
def small_node(tmp_path: Path) -> Iterator[Server]:
    """A node that counts itself full at 12 requests in the works; posting limits out of the way."""
    yield from serve(
        tmp_path,
        {
            "PODIUM_MAX_IN_FLIGHT": "12",
            "PODIUM_JOIN_RATE_PER_S": "1000",
            "PODIUM_JOIN_BURST": "1000",
            "PODIUM_SIGNUP_LIMIT_PER_ADDRESS": "1000/hour",
            "PODIUM_POST_LIMIT_PER_USER": "100000/minute",
            "PODIUM_POST_LIMIT_PER_ADDRESS": "1000000/minute",
        },
    )


async def test_overload_sheds_posts_first_and_never_the_stage_or_listeners_already_in(small_node: Server) -> None:
    server = small_node
    async with httpx.AsyncClient(base_url=server.base, timeout=60) as client:
        space = (await client.post("/api/spaces", json={"title": "Overload"})).json()
        host = {"Authorization": f"Bearer {space['host_token']}"}
        tokens = []
        for n in range(10):
            account = {"username": f"poster{n}", "password": "correct horse battery staple"}
            assert (await client.post("/api/accounts", json=account)).status_code == 201
            tokens.append((await client.post("/api/sessions", json=account)).json()["token"])
        speaker = await publish(server.base + space["urls"]["whip"], space["host_token"], SampleTrack(tone(440)))
        await wait_for_media(server, space, 2)
        listener_pass = (await client.post(f"/api/spaces/{space['id']}/join", json={"client_id": "listener-in"})).json()
        assert listener_pass["admitted"]

        posts: Counter[int] = Counter()
        joins: Counter[int] = Counter()
        listening: Counter[int] = Counter()
        stop = asyncio.Event()
        shed_seen = asyncio.Event()

        async def poster(worker: int) -> None:
            conn = RawConnection("127.0.0.1", server.port)
            headers = {"Authorization": f"Bearer {tokens[worker % len(tokens)]}"}
            for n in range(60):
                if stop.is_set():
                    break
                body = {
                    "kind": "comment",
                    "text": f"comment {worker}-{n}",
                    "client_id": f"c-{worker}-{n}-{secrets.token_hex(4)}",
                }
                status, answer, _ = await conn.request("POST", f"/api/spaces/{space['id']}/posts", body, headers)
                posts[status] += 1
                if status == 503:
                    assert "retry-after" in answer
                    shed_seen.set()
            await conn.close()

        async def joiner(n: int) -> None:
            # Real time on purpose: the joiners arrive over 4 s of the flood, not all at once.
            await asyncio.sleep(n * 0.02)
            conn = RawConnection("127.0.0.1", server.port)
            body: dict[str, Any] = {"client_id": f"joiner-{n:04d}-{secrets.token_hex(4)}"}
            for _ in range(40):
                status, answer, content = await conn.request("POST", f"/api/spaces/{space['id']}/join", body)
                joins[status] += 1
                if status != 202:
                    break
                body = {"client_id": body["client_id"], "ticket": json.loads(content)["ticket"]}
                # Real time on purpose: a real client honouring the subprocess server's Retry-After.
                await asyncio.sleep(float(answer["retry-after"]))
            await conn.close()

        async def already_in() -> None:
            conn = RawConnection("127.0.0.1", server.port)
            hls = f"/hls/{space['id']}"
            while not stop.is_set():
                status, _, playlist = await conn.request("GET", f"{hls}/live.m3u8")
                listening[status] += 1
                parts = [
                    line.split('URI="')[1].split('"')[0]
                    for line in playlist.decode().splitlines()
                    if line.startswith("#EXT-X-PART:")
                ]
                if parts:
                    status, _, _ = await conn.request("GET", f"{hls}/{parts[-1]}")
                    listening[status] += 1
                # Real time on purpose: a player reloading at its own pace for as long as the flood lasts.
                await asyncio.sleep(0.25)
            await conn.close()

        listener_task = asyncio.create_task(already_in())
        flood = [asyncio.create_task(poster(w)) for w in range(150)]
        await asyncio.wait_for(shed_seen.wait(), timeout=60)
        # While posts are being shed: joins, a new speaker, and the host's moderation all go through.
        join_tasks = [asyncio.create_task(joiner(n)) for n in range(200)]
        invite = await client.post(f"/api/spaces/{space['id']}/invites", json={"role": "speaker"}, headers=host)
        assert invite.status_code == 201
        guest = await publish(server.base + space["urls"]["whip"], invite.json()["token"], SampleTrack(tone(660)))
        board_during = await board(client, space)
        await asyncio.gather(*join_tasks)
        stop.set()
        await asyncio.gather(*flood, listener_task)
        await guest.close()
        await speaker.close()

    print(f"posts {dict(posts)}; joins {dict(joins)}; listening {dict(listening)}; load {board_during['load']}")
    assert posts[503] > 0 and posts[201] > 0
    assert set(joins) <= {200, 202} and joins[200] == 200  # no join refused with an error; all got in
    assert set(listening) == {200}  # nobody already listening was dropped
    assert board_during["requests"]["stage"]["shed"] == 0
    assert board_during["requests"]["listening"]["shed"] == 0
