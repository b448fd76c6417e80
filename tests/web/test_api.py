"""The public JSON contract and the WHIP endpoint's refusals, through an in-process ASGI client."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.listeners import admit, beat
from tests.media.test_sdp import OFFER


async def create(client: httpx.AsyncClient, headers: dict[str, str] | None = None, **body: object) -> dict:
    response = await client.post("/api/spaces", json={"title": "The 20:00 interview", **body}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_space_contract(client: httpx.AsyncClient) -> None:
    day = (datetime.now(UTC) + timedelta(days=30)).date()
    space = await create(client, starts_at=f"{day}T20:00:00+01:00")
    assert set(space) >= {"id", "title", "state", "starts_at", "host_token", "urls"}
    assert space["state"] == "scheduled"
    assert space["starts_at"] == f"{day}T19:00:00Z"
    assert set(space["urls"]) >= {"page", "host", "whip", "hls"}
    assert all(url.startswith("/") for url in space["urls"].values())


async def test_public_state_never_shows_the_host_token(client: httpx.AsyncClient) -> None:
    space = await create(client)
    response = await client.get(f"/api/spaces/{space['id']}")
    assert response.status_code == 200
    public = response.json()
    assert "host_token" not in public and space["host_token"] not in response.text
    assert public["state"] == "scheduled"
    assert public["listeners"] == {"now": 0, "peak": 0, "unique": 0, "sample_rate": 1.0}
    assert "max-age" in response.headers["cache-control"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({}, 400, "title is required"),
        ({"title": ""}, 400, "must not be empty"),
        ({"title": "x" * 500}, 400, "limit is 200"),
        ({"title": 7}, 400, "must be a string"),
        ({"title": "ok", "starts_at": "soon"}, 400, "ISO 8601"),
        ({"title": "ok", "colour": "red"}, 400, "unknown field"),
        ({"title": "ok", "record": "yes"}, 400, "record must be true or false"),
    ],
)
async def test_bad_space_requests_are_refused_clearly(
    client: httpx.AsyncClient, body: dict, status: int, message: str
) -> None:
    response = await client.post("/api/spaces", json=body)
    assert response.status_code == status
    assert message in response.json()["error"]


async def test_bodies_that_are_not_json_or_too_large(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/spaces", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]
    response = await client.post("/api/spaces", content=b"[1]", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "JSON object" in response.json()["error"]
    big = b'{"title": "' + b"x" * 20000 + b'"}'
    response = await client.post("/api/spaces", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "limit" in response.json()["error"]


async def test_unknown_spaces(client: httpx.AsyncClient) -> None:
    for path in ("/api/spaces/nosuchspace0", "/api/spaces/../../etc", "/hls/nosuchspace0/live.m3u8"):
        response = await client.get(path)
        assert response.status_code == 404


async def test_only_the_host_token_ends_a_space(client: httpx.AsyncClient) -> None:
    space = await create(client)
    other = await create(client)
    url = f"/api/spaces/{space['id']}/end"
    assert (await client.post(url)).status_code == 401
    assert (await client.post(url, headers={"Authorization": "Bearer forged"})).status_code == 401
    response = await client.post(url, headers={"Authorization": f"Bearer {other['host_token']}"})
    assert response.status_code == 403 and "another space" in response.json()["error"]
    assert (await client.get(f"/api/spaces/{space['id']}")).json()["state"] == "scheduled"
    response = await client.post(url, headers={"Authorization": f"Bearer {space['host_token']}"})
    assert response.status_code == 200 and response.json()["state"] == "ended"
    assert response.json()["ended_at"] is not None
    # Ending again is harmless; publishing to an ended space is refused.
    assert (await client.post(url, headers={"Authorization": f"Bearer {space['host_token']}"})).status_code == 200
    response = await client.post(
        space["urls"]["whip"],
        content=OFFER.encode(),
        headers={"Authorization": f"Bearer {space['host_token']}", "Content-Type": "application/sdp"},
    )
    assert response.status_code == 409 and "ended" in response.json()["error"]


async def test_heartbeats_count_listeners(client: httpx.AsyncClient) -> None:
    space = await create(client)
    url = f"/api/spaces/{space['id']}/heartbeat"
    passes = {}
    for n in range(3):
        passes[n] = (await admit(client, space["id"], f"listener-{n}"))["pass"]
        response = await beat(client, space["id"], f"listener-{n}", passes[n])
        assert response.status_code == 200 and response.json()["counted"] is True
    assert response.json()["listeners"] == {"now": 3, "peak": 3, "unique": 3, "sample_rate": 1.0}
    await beat(client, space["id"], "listener-0", passes[0], leaving=True)
    public = (await client.get(f"/api/spaces/{space['id']}")).json()
    assert public["listeners"] == {"now": 2, "peak": 3, "unique": 3, "sample_rate": 1.0}
    for bad in (
        {},
        {"listener_id": "x"},
        {"listener_id": "<script>alert(1)</script>"},
        {"listener_id": "listener-1", "pass": passes[1], "leaving": "yes"},
    ):
        response = await client.post(url, json=bad)
        assert response.status_code == 400, bad
        assert response.json()["error"]


async def test_only_admitted_listeners_are_counted(client: httpx.AsyncClient) -> None:
    space = await create(client)
    other = await create(client)
    url = f"/api/spaces/{space['id']}/heartbeat"
    joined = await admit(client, space["id"], "listener-1")
    assert 0 <= joined["sample_point"] < 1
    refused = [
        ({"listener_id": "listener-1"}, 401, "send the pass your join returned"),
        ({"listener_id": "listener-1", "pass": "forged"}, 401, "not valid here"),
        # The pass is bound to the browser that joined, and to the space it joined.
        ({"listener_id": "listener-2", "pass": joined["pass"]}, 403, "another browser"),
    ]
    foreign = (await admit(client, other["id"], "listener-1"))["pass"]
    refused.append(({"listener_id": "listener-1", "pass": foreign}, 401, "another space"))
    for body, status, message in refused:
        response = await client.post(url, json=body)
        assert response.status_code == status, body
        assert message in response.json()["error"]
    assert (await client.get(f"/api/spaces/{space['id']}")).json()["listeners"]["now"] == 0
    assert (await beat(client, space["id"], "listener-1", joined["pass"])).json()["listeners"]["now"] == 1


async def test_whip_refuses_missing_wrong_and_foreign_tokens(client: httpx.AsyncClient) -> None:
    space = await create(client)
    other = await create(client)
    whip = space["urls"]["whip"]
    sdp_headers = {"Content-Type": "application/sdp"}
    response = await client.post(whip, content=OFFER.encode(), headers=sdp_headers)
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
    response = await client.post(whip, content=OFFER.encode(), headers={**sdp_headers, "Authorization": "Bearer nope"})
    assert response.status_code == 401
    response = await client.post(
        whip, content=OFFER.encode(), headers={**sdp_headers, "Authorization": f"Bearer {other['host_token']}"}
    )
    assert response.status_code == 403
    assert (await client.get(f"/api/spaces/{space['id']}")).json()["state"] == "scheduled"


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"not an offer", "application/sdp", "must start with 'v=0'"),
        (OFFER.replace("opus/48000/2", "PCMU/8000").encode(), "application/sdp", "no Opus"),
        (OFFER.encode(), "text/plain", "application/sdp"),
        (b"v=0\r\n" + b"a=x:" + b"y" * 70000, "application/sdp", "limit"),
    ],
)
async def test_whip_refuses_invalid_offers_with_the_reason(
    client: httpx.AsyncClient, body: bytes, content_type: str, message: str
) -> None:
    space = await create(client)
    response = await client.post(
        space["urls"]["whip"],
        content=body,
        headers={"Authorization": f"Bearer {space['host_token']}", "Content-Type": content_type},
    )
    assert response.status_code in (400, 413)
    assert message in response.json()["error"]
    # A refused offer changes nothing: the space is not live.
    assert (await client.get(f"/api/spaces/{space['id']}")).json()["state"] == "scheduled"


async def test_whip_cors_preflight(client: httpx.AsyncClient) -> None:
    space = await create(client)
    response = await client.options(
        space["urls"]["whip"], headers={"Origin": "https://studio.example", "Access-Control-Request-Method": "POST"}
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "Authorization" in response.headers["access-control-allow-headers"]
    assert "Location" in response.headers["access-control-expose-headers"]
    assert response.headers["accept-post"] == "application/sdp"


async def test_hls_of_a_scheduled_space_says_not_live_yet(client: httpx.AsyncClient) -> None:
    space = await create(client)
    response = await client.get(space["urls"]["hls"])
    assert response.status_code == 404 and "not live yet" in response.json()["error"]


async def test_pages_are_served(client: httpx.AsyncClient) -> None:
    space = await create(client)
    for path in ("/", space["urls"]["page"], space["urls"]["host"]):
        response = await client.get(path)
        assert response.status_code == 200 and "<!doctype html>" in response.text
        assert "default-src 'self'" in response.headers["content-security-policy"]
    assert (await client.get("/static/vendor/hls.js")).status_code == 200
    assert (await client.get("/s/not-an-id")).status_code == 404


async def test_recording_is_on_by_default_and_only_the_host_switches_it(client: httpx.AsyncClient) -> None:
    space = await create(client)
    assert space["record"] is True
    off = await create(client, record=False)
    assert off["record"] is False
    url = f"/api/spaces/{space['id']}"
    assert (await client.patch(url, json={"record": False})).status_code == 401
    guest = await client.post(f"{url}/guests", json={"name": "Ann"})
    refused = await client.patch(
        url, json={"record": False}, headers={"Authorization": f"Bearer {guest.json()['token']}"}
    )
    assert refused.status_code == 403 and "host" in refused.json()["error"]
    host = {"Authorization": f"Bearer {space['host_token']}"}
    assert (await client.patch(url, json={"title": "x"}, headers=host)).status_code == 400
    switched = await client.patch(url, json={"record": False}, headers=host)
    assert switched.status_code == 200 and switched.json()["record"] is False
    assert (await client.get(url)).json()["record"] is False


async def test_replay_things_before_the_space_is_live(client: httpx.AsyncClient) -> None:
    space = await create(client)
    sid = space["id"]
    assert (await client.get(f"/media/{sid}/recording.m4a")).status_code == 409
    clip = await client.post(f"/api/spaces/{sid}/clips", json={"start_s": 0, "duration_s": 10})
    assert clip.status_code == 409 and "not started" in clip.json()["error"]
    assert (await client.get(f"/api/spaces/{sid}/clips/c0123456789ab")).status_code == 404
    assert (await client.get(f"/api/spaces/{sid}/clips/..%2fsecret")).status_code == 404
    replay = await client.get(f"/api/spaces/{sid}/replay")
    assert replay.status_code == 200 and replay.json()["speakers"] == [] and replay.json()["posts"] == []
    assert (await client.post("/api/verify", content=b"")).status_code == 400
    key = await client.get("/.well-known/podium-clip-key")
    assert key.status_code == 200 and key.json()["algorithm"] == "Ed25519"


async def test_clips_are_limited_per_address_before_any_work(client: httpx.AsyncClient) -> None:
    space = await create(client)
    answers = [
        (await client.post(f"/api/spaces/{space['id']}/clips", json={"start_s": 0, "duration_s": 10})).status_code
        for _ in range(11)
    ]
    # Ten go through to the recording (not started: 409); the eleventh in the minute is refused first.
    assert answers[:10] == [409] * 10 and answers[10] == 429
    refused = await client.post(f"/api/spaces/{space['id']}/clips", json={"start_s": 0, "duration_s": 10})
    assert "too many clips" in refused.json()["error"] and int(refused.headers["retry-after"]) > 0


async def test_checking_clips_is_limited_per_address(client: httpx.AsyncClient) -> None:
    answers = [(await client.post("/api/verify", content=b"not a clip")).status_code for _ in range(31)]
    assert answers[:30] == [200] * 30 and answers[30] == 429


async def test_the_share_qr_code_holds_the_listener_link_and_nothing_a_caller_chooses(
    client: httpx.AsyncClient,
) -> None:
    import io

    import segno

    space = await create(client, title="Scan me")
    answer = await client.get(f"/api/spaces/{space['id']}/qr.svg", params={"url": "https://198.51.100.7/evil"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/svg+xml"
    assert answer.headers["cache-control"] == "public, max-age=3600"
    svg = answer.text
    assert svg.startswith("<svg") and 'xmlns="http://www.w3.org/2000/svg"' in svg and "evil" not in svg
    # The code is the one for the listener link, as a phone's camera will read it.
    link = f"{client.base_url}".rstrip("/") + space["urls"]["page"]
    expected = io.BytesIO()
    segno.make_qr(link, error="m").save(expected, kind="svg", xmldecl=False, scale=4, border=2, dark="#0f1222")
    assert svg == expected.getvalue().decode()
    assert (await client.get("/api/spaces/nosuchspace0/qr.svg")).status_code == 404
