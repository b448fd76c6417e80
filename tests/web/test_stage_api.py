"""The stage's refusals and flows through the HTTP API (in-process)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from podium.app import create_app
from podium.settings import Settings
from tests.media.test_sdp import OFFER


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def new_space(client: httpx.AsyncClient) -> dict:
    return (await client.post("/api/spaces", json={"title": "Stage"})).json()


async def invite(client: httpx.AsyncClient, space: dict, token: str, role: str = "speaker") -> httpx.Response:
    return await client.post(f"/api/spaces/{space['id']}/invites", json={"role": role}, headers=auth(token))


async def redeem(client: httpx.AsyncClient, space: dict, invite_token: str, name: str = "Guest") -> httpx.Response:
    return await client.post(
        f"/api/spaces/{space['id']}/invites/redeem", json={"name": name}, headers=auth(invite_token)
    )


async def test_invites_are_signed_links_that_work_once(client: httpx.AsyncClient) -> None:
    space = await new_space(client)
    response = await invite(client, space, space["host_token"])
    assert response.status_code == 201
    body = response.json()
    assert set(body) >= {"token", "whip", "invite_url"} and body["token"] in body["invite_url"]
    first = await redeem(client, space, body["token"], "Ada")
    assert first.status_code == 201 and first.json()["member"]["role"] == "speaker"
    second = await redeem(client, space, body["token"], "Eve")
    assert second.status_code == 403 and "used already" in second.json()["error"]
    forged = await redeem(client, space, body["token"][:-3] + "xyz")
    assert forged.status_code == 401


async def test_who_may_invite_and_end(client: httpx.AsyncClient) -> None:
    space = await new_space(client)
    cohost = (
        await redeem(client, space, (await invite(client, space, space["host_token"], "cohost")).json()["token"])
    ).json()
    speaker = (await redeem(client, space, (await invite(client, space, space["host_token"])).json()["token"])).json()
    assert (await invite(client, space, cohost["token"])).status_code == 201  # co-hosts invite speakers
    refused = await invite(client, space, cohost["token"], "cohost")
    assert refused.status_code == 403 and "only the host" in refused.json()["error"]
    assert (await invite(client, space, speaker["token"])).status_code == 403
    end = await client.post(f"/api/spaces/{space['id']}/end", headers=auth(cohost["token"]))
    assert end.status_code == 403 and "only the host ends" in end.json()["error"]
    assert (await client.get(f"/api/spaces/{space['id']}")).json()["state"] == "scheduled"
    bad_role = await invite(client, space, space["host_token"], "overlord")
    assert bad_role.status_code == 400


async def test_listeners_and_revoked_speakers_cannot_publish(client: httpx.AsyncClient) -> None:
    space = await new_space(client)
    guest = (await client.post(f"/api/spaces/{space['id']}/guests", json={"name": "Listener"})).json()
    headers = {"Content-Type": "application/sdp"}
    response = await client.post(
        space["urls"]["whip"], content=OFFER.encode(), headers={**headers, **auth(guest["token"])}
    )
    assert response.status_code == 403 and "on stage" in response.json()["error"]
    speaker = (await redeem(client, space, (await invite(client, space, space["host_token"])).json()["token"])).json()
    member_id = speaker["member"]["id"]
    moved = await client.post(
        f"/api/spaces/{space['id']}/members/{member_id}/audience", headers=auth(space["host_token"])
    )
    assert moved.status_code == 200 and moved.json()["role"] == "listener"
    response = await client.post(
        space["urls"]["whip"], content=OFFER.encode(), headers={**headers, **auth(speaker["token"])}
    )
    assert response.status_code == 403 and "revoked" in response.json()["error"]
    # The old token is dead for everything; a demoted speaker comes back as a new guest.
    raised = await client.post(f"/api/spaces/{space['id']}/hand", headers=auth(speaker["token"]))
    assert raised.status_code == 403


async def test_the_way_up_by_the_hand_queue(client: httpx.AsyncClient) -> None:
    space = await new_space(client)
    guest = (await client.post(f"/api/spaces/{space['id']}/guests", json={"name": "  Grace\u200b "})).json()
    assert guest["member"]["name"] == "Grace"
    assert (await client.post(f"/api/spaces/{space['id']}/hand", headers=auth(guest["token"]))).status_code == 200
    assert (await client.get(f"/api/spaces/{space['id']}/stage")).json()["hands"] == 1
    queue = await client.get(f"/api/spaces/{space['id']}/hands", headers=auth(space["host_token"]))
    assert queue.json()["hands"] == [{"id": guest["member"]["id"], "name": "Grace"}]
    assert (await client.get(f"/api/spaces/{space['id']}/hands", headers=auth(guest["token"]))).status_code == 403
    member_url = f"/api/spaces/{space['id']}/members/{guest['member']['id']}"
    assert (await client.post(member_url + "/accept", headers=auth(guest["token"]))).status_code == 403
    accepted = await client.post(member_url + "/accept", headers=auth(space["host_token"]))
    assert accepted.status_code == 200 and accepted.json()["role"] == "speaker"
    stage = (await client.get(f"/api/spaces/{space['id']}/stage")).json()
    assert {s["name"] for s in stage["speakers"]} == {"Host", "Grace"}
    assert (await client.post(member_url + "/mute", headers=auth(space["host_token"]))).json()["muted"] is True
    refused = await client.post(member_url + "/unmute", headers=auth(space["host_token"]))
    assert refused.status_code == 403 and "only the speaker" in refused.json()["error"]
    assert (await client.post(member_url + "/unmute", headers=auth(guest["token"]))).json()["muted"] is False
    blocked = await client.post(member_url + "/block", headers=auth(space["host_token"]))
    assert blocked.status_code == 200 and blocked.json()["blocked"] is True
    assert (await client.post(f"/api/spaces/{space['id']}/hand", headers=auth(guest["token"]))).status_code == 403
    unknown = await client.post(member_url + "/promote", headers=auth(space["host_token"]))
    assert unknown.status_code == 400 and "unknown action" in unknown.json()["error"]


async def test_a_bad_offer_with_an_invite_token_leaves_the_invite_unused(client: httpx.AsyncClient) -> None:
    space = await new_space(client)
    invite_token = (await invite(client, space, space["host_token"])).json()["token"]
    response = await client.post(
        space["urls"]["whip"], content=b"garbage", headers={**auth(invite_token), "Content-Type": "application/sdp"}
    )
    assert response.status_code in (400, 409)  # a bad offer, or the host is not live yet: refused either way
    assert (await redeem(client, space, invite_token, "Still mine")).status_code == 201


async def test_a_burst_of_guests_is_stored_whole(tmp_path: Path) -> None:
    """Concurrent joins each store the stage state; none may be overwritten by an older one."""
    settings = Settings.load({}, data_dir=tmp_path / "data", guest_limit_per_address="1000/minute")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://podium.test") as client:
            space = await new_space(client)
            url = f"/api/spaces/{space['id']}/guests"
            joined = await asyncio.gather(*(client.post(url, json={"name": f"Guest {n}"}) for n in range(40)))
    assert [j.status_code for j in joined] == [201] * 40
    again = create_app(settings)  # the same data folder: what was acknowledged must be there
    async with again.router.lifespan_context(again):
        transport = httpx.ASGITransport(app=again)
        async with httpx.AsyncClient(transport=transport, base_url="http://podium.test") as client:
            for guest in joined:
                me = await client.get(f"/api/spaces/{space['id']}/me", headers=auth(guest.json()["token"]))
                assert me.status_code == 200, me.text


async def test_members_name_themselves_and_nobody_else(client: httpx.AsyncClient) -> None:
    space = await new_space(client)
    url = f"/api/spaces/{space['id']}/me/name"
    host = await client.put(url, json={"name": "  Ada Lovelace "}, headers=auth(space["host_token"]))
    assert host.status_code == 200 and host.json()["name"] == "Ada Lovelace" and host.json()["role"] == "host"
    guest = (await client.post(f"/api/spaces/{space['id']}/guests", json={"name": "Guest"})).json()
    renamed = await client.put(url, json={"name": "Grace"}, headers=auth(guest["token"]))
    assert renamed.status_code == 200 and renamed.json()["id"] == guest["member"]["id"]
    stage = (await client.get(f"/api/spaces/{space['id']}/stage")).json()
    assert [person["name"] for person in stage["speakers"]] == ["Ada Lovelace"]  # the guest is not on stage

    empty = await client.put(url, json={"name": "   "}, headers=auth(space["host_token"]))
    assert empty.status_code == 400 and "name" in empty.json()["error"]
    too_long = await client.put(url, json={"name": "x" * 500}, headers=auth(space["host_token"]))
    assert too_long.status_code == 400 and "name" in too_long.json()["error"]
    assert (await client.put(url, json={"name": "Mallory"})).status_code == 401
    other = await new_space(client)
    assert (await client.put(url, json={"name": "Mallory"}, headers=auth(other["host_token"]))).status_code in (
        401,
        403,
    )

    await client.post(f"/api/spaces/{space['id']}/end", headers=auth(space["host_token"]))
    late = await client.put(url, json={"name": "Ada"}, headers=auth(space["host_token"]))
    assert late.status_code == 409 and "ended" in late.json()["error"]
    assert (await client.get(f"/api/spaces/{space['id']}/me", headers=auth(space["host_token"]))).json()["name"] == (
        "Ada Lovelace"
    )
