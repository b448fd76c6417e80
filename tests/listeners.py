"""A listener as the pages make one: join (let in, with a pass), then heartbeats carrying the pass."""

from __future__ import annotations

import httpx


async def admit(client: httpx.AsyncClient, space_id: str, client_id: str) -> dict:
    """The join's answer for `client_id`, which must be let in at once (small tests never queue)."""
    response = await client.post(f"/api/spaces/{space_id}/join", json={"client_id": client_id})
    assert response.status_code == 200, response.text
    answer: dict = response.json()
    return answer


async def beat(
    client: httpx.AsyncClient, space_id: str, client_id: str, listener_pass: str | None = None, **extra: object
) -> httpx.Response:
    """One heartbeat of `client_id`, with its pass (joined first when none is given)."""
    if listener_pass is None:
        listener_pass = (await admit(client, space_id, client_id))["pass"]
    body = {"listener_id": client_id, "pass": listener_pass, **extra}
    return await client.post(f"/api/spaces/{space_id}/heartbeat", json=body)
