"""A kill -9 in the middle of a flood of posts loses nothing acknowledged and doubles nothing."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid

import httpx
import pytest

from podium.testing import eventually
from tests.conftest import Server

pytestmark = pytest.mark.media

POSTS = 1000
PASSWORD = "correct horse battery"


async def test_every_acknowledged_post_survives_a_kill_exactly_once(server: Server) -> None:
    # A flood from twenty accounts on one address: limits raised so the test measures durability.
    server.env = {
        "PODIUM_POST_LIMIT_PER_USER": "10000/minute",
        "PODIUM_POST_LIMIT_PER_ADDRESS": "100000/minute",
        "PODIUM_SIGNUP_LIMIT_PER_ADDRESS": "100/minute",
    }
    server.stop()
    server.start()
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as client:
        space = (await client.post("/api/spaces", json={"title": "Flood"})).json()
        tokens = []
        for n in range(20):
            name = f"writer{n:02d}"
            await client.post("/api/accounts", json={"username": name, "password": PASSWORD})
            signed_in = await client.post("/api/sessions", json={"username": name, "password": PASSWORD})
            tokens.append(signed_in.json()["token"])

    client_ids = [uuid.uuid4().hex for _ in range(POSTS)]
    acknowledged: set[str] = set()
    killed = asyncio.Event()

    async def send(index: int) -> None:
        body = {"kind": "comment", "text": f"post {index}", "client_id": client_ids[index]}
        headers = {"Authorization": f"Bearer {tokens[index % len(tokens)]}"}
        async with httpx.AsyncClient(base_url=server.base, timeout=5) as client:

            async def delivered() -> bool:
                try:
                    response = await client.post(f"/api/spaces/{space['id']}/posts", json=body, headers=headers)
                except httpx.HTTPError:
                    return False  # the server is down (killed, restarting): sent again
                assert response.status_code in (200, 201, 429), response.text
                return response.status_code != 429

            # Retried, with the same client_id, until acknowledged (bounded).
            await eventually(delivered, f"post {index} acknowledged", timeout_s=200, poll_s=0.05)
            acknowledged.add(client_ids[index])

    async def killer() -> None:
        await eventually(lambda: len(acknowledged) >= POSTS // 3, "a third acknowledged", timeout_s=200, poll_s=0.01)
        server.kill()  # SIGKILL: no shutdown, no flush
        killed.set()
        await asyncio.to_thread(server.start)

    semaphore = asyncio.Semaphore(50)

    async def limited(index: int) -> None:
        async with semaphore:
            await send(index)

    await asyncio.wait_for(asyncio.gather(killer(), *(limited(i) for i in range(POSTS))), timeout=240)
    assert killed.is_set() and len(acknowledged) == POSTS
    rows = sqlite3.connect(server.data_dir / "podium.db").execute("SELECT client_id FROM posts").fetchall()
    stored = [r[0] for r in rows]
    assert len(stored) == len(set(stored)) == POSTS  # every post once: none lost, none doubled
    assert set(stored) == acknowledged
