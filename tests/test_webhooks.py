"""Webhooks end to end: a real HTTP receiver on loopback (asyncio streams), the in-process app,
signatures checked with our own HMAC, retries, the delivery log, the host-only API and its refusals."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from starlette.applications import Starlette

from podium.app import create_app
from podium.events import RecordingReady, SpaceEnded, SpaceStarted
from podium.ids import SpaceId
from podium.media import ice, sdp
from podium.settings import Settings
from podium.testing import eventually
from podium.testing.whip_client import SampleTrack, tone
from podium.webhooks import Webhooks

FAST = (0.0, 0.1, 0.2)  # three tries, shrunk from the real 0, 1, 2, 4, 8 s


class Receiver:
    """An HTTP/1.1 endpoint that answers its requests with `statuses` in turn (the last one
    repeats); None never answers (it waits for the client to give up and close)."""

    def __init__(self, statuses: list[int | None]) -> None:
        self.statuses = statuses
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hooks/podium"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            lines = head.split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            status = self.statuses[min(len(self.requests), len(self.statuses) - 1)]
            self.requests.append((headers, body))
            if status is None:
                await reader.read()  # until Podium gives up and closes
                return
            writer.write(f"HTTP/1.1 {status} Status\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
            await writer.drain()
        finally:
            writer.close()

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def events(self) -> list[dict]:
        return [json.loads(body) for _, body in self.requests]


async def settled(app: Starlette) -> None:
    """Until every delivery this node began has ended: its tries made (and logged) or given up.
    What a receiver was sent is then all in; nothing more can come of those events."""
    webhooks: Webhooks = app.state.webhooks
    await eventually(lambda: not webhooks.delivering, "every delivery ended", timeout_s=10.0, poll_s=0.02)


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks' check, written here from the spec (not Podium's code)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    versions = headers["webhook-signature"].split(" ")
    return any(v.startswith("v1,") and hmac.compare_digest(v[3:], expected) for v in versions)


@asynccontextmanager
async def running(
    data_dir: Path, backoff_s: tuple[float, ...] = FAST, timeout_s: float = 5.0
) -> AsyncIterator[Starlette]:
    """The in-process app with webhooks allowed to loopback (tests only use loopback)."""
    app = create_app(Settings.load({}, data_dir=data_dir, webhooks_allow_private=True, ice_loopback="only"))
    webhooks: Webhooks = app.state.webhooks
    webhooks.backoff_s, webhooks.timeout_s = backoff_s, timeout_s
    try:
        async with app.router.lifespan_context(app):
            yield app
    finally:
        ice.configure("0")


@asynccontextmanager
async def client_of(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://podium.test") as client:
        yield client


async def new_space(client: httpx.AsyncClient, **body: object) -> dict:
    response = await client.post("/api/spaces", json={"title": "Hooked", **body})
    assert response.status_code == 201, response.text
    return response.json()


def host(space: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {space['host_token']}"}


async def register(client: httpx.AsyncClient, space: dict, url: str) -> dict:
    response = await client.post(f"/api/spaces/{space['id']}/webhooks", json={"url": url}, headers=host(space))
    assert response.status_code == 201, response.text
    return response.json()


async def deliveries(client: httpx.AsyncClient, space: dict) -> list[dict]:
    response = await client.get(f"/api/spaces/{space['id']}/webhooks", headers=host(space))
    assert response.status_code == 200, response.text
    return list(response.json()["deliveries"])


async def test_a_receiver_failing_twice_gets_the_event_signed_on_the_third_try(tmp_path: Path) -> None:
    async with Receiver([500, 500, 204]) as receiver, running(tmp_path / "data") as app, client_of(app) as client:
        space = await new_space(client)
        hook = await register(client, space, receiver.url)
        assert hook["secret"].startswith("whsec_") and hook["url"] == receiver.url
        await announce(app, space)  # the event comes, twice refused, then taken
        await eventually(lambda: _count(client, space, 3), "three logged attempts")
        assert len(receiver.requests) == 3
        ids = {headers["webhook-id"] for headers, _ in receiver.requests}
        assert len(ids) == 1  # one event, retried: the same id each time
        for headers, body in receiver.requests:
            assert verify(hook["secret"], headers, body)
            assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
        assert not verify(hook["secret"], receiver.requests[2][0], receiver.requests[2][1] + b" ")
        event = receiver.events()[2]
        assert event["type"] == "space.started" and event["data"]["space"]["id"] == space["id"]
        log = await deliveries(client, space)
        # Newest first: 204 on the third try, 500 on the first two, all for the one event.
        assert [(d["attempt"], d["status"], d["delivered"]) for d in log] == [
            (3, 204, True),
            (2, 500, False),
            (1, 500, False),
        ]
        assert all(d["event_id"] in ids and d["type"] == "space.started" and d["url"] == receiver.url for d in log)
        assert all(d["error"] is None and d["duration_ms"] >= 0 and d["at"].endswith("Z") for d in log)
        listed = (await client.get(f"/api/spaces/{space['id']}/webhooks", headers=host(space))).json()
        assert [h["id"] for h in listed["webhooks"]] == [hook["id"]]
        assert hook["secret"] not in json.dumps(listed)  # shown once, at registration
    # The subscription and its log survive a restart.
    async with running(tmp_path / "data") as app, client_of(app) as client:
        listed = (await client.get(f"/api/spaces/{space['id']}/webhooks", headers=host(space))).json()
        assert [h["id"] for h in listed["webhooks"]] == [hook["id"]]
        assert [d["status"] for d in listed["deliveries"]] == [204, 500, 500]


SpaceEvent = SpaceStarted | SpaceEnded | RecordingReady


async def announce(app: Starlette, space: dict, kind: type[SpaceEvent] = SpaceStarted) -> None:
    """One of the space's events, as this node publishes it on the bus."""
    await app.state.bus.publish(kind(SpaceId(space["id"]), app.state.directory.node_id))


async def _count(client: httpx.AsyncClient, space: dict, n: int) -> bool:
    return len(await deliveries(client, space)) >= n


async def test_a_receiver_that_never_answers_gets_exactly_the_configured_tries(tmp_path: Path) -> None:
    async with Receiver([None]) as receiver, running(tmp_path / "data", timeout_s=0.3) as app, client_of(app) as client:
        space = await new_space(client)
        await register(client, space, receiver.url)
        await announce(app, space)
        await eventually(lambda: _count(client, space, len(FAST)), "every try logged")
        log = await deliveries(client, space)
        assert [d["attempt"] for d in log] == [3, 2, 1]
        assert all(d["status"] is None and d["error"] == "no answer within 0.3 s" for d in log)
        assert all(250 <= d["duration_ms"] < 2000 for d in log)  # each try cut at its timeout
        # No fourth try comes: the delivery ended with its third.
        await settled(app)
        assert len(receiver.requests) == len(FAST) and len(await deliveries(client, space)) == len(FAST)


async def test_only_the_host_manages_webhooks(client: httpx.AsyncClient) -> None:
    space = await new_space(client)
    other = await new_space(client)
    guest = (await client.post(f"/api/spaces/{space['id']}/guests", json={"name": "Ann"})).json()["token"]
    url = f"/api/spaces/{space['id']}/webhooks"
    body = {"url": "https://example.org/hook"}
    for method, path in (("POST", url), ("GET", url), ("DELETE", url + "/wh_0123456789abcdef")):
        assert (await client.request(method, path, json=body)).status_code == 401
        for token in (guest, other["host_token"]):
            response = await client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 403, (method, response.text)
    deleted = await client.delete(url + "/wh_0123456789abcdef", headers=host(space))
    assert deleted.status_code == 404 and "no such webhook" in deleted.json()["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "url is required"),
        ({"url": 7}, "url must be a string"),
        ({"url": "ftp://example.org/hook"}, "must start with https://"),
        ({"url": "example.org/hook"}, "must start with https://"),
        ({"url": "https:///hook"}, "no host name"),
        ({"url": "https://example.org:99999/hook"}, "cannot be read"),
        ({"url": "https://example.org/a b"}, "spaces or control characters"),
        ({"url": "https://example.org/" + "a" * 2100}, "the limit is 2048"),
        ({"url": "https://example.org/hook", "events": ["x"]}, "unknown field: events"),
    ],
)
async def test_bad_urls_are_refused_clearly(client: httpx.AsyncClient, body: dict, message: str) -> None:
    space = await new_space(client)
    response = await client.post(f"/api/spaces/{space['id']}/webhooks", json=body, headers=host(space))
    assert response.status_code == 400 and message in response.json()["error"], response.text


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "https://10.0.0.7/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:192.168.1.1]/hook",
    ],
)
async def test_private_and_local_addresses_are_refused_by_default(client: httpx.AsyncClient, url: str) -> None:
    space = await new_space(client)
    response = await client.post(f"/api/spaces/{space['id']}/webhooks", json={"url": url}, headers=host(space))
    assert response.status_code == 400, response.text
    assert "private or local address" in response.json()["error"]
    assert "PODIUM_WEBHOOKS_ALLOW_PRIVATE" in response.json()["error"]


async def test_at_most_five_per_space_and_a_deleted_one_gets_nothing_more(tmp_path: Path) -> None:
    fast = running(tmp_path / "data", backoff_s=(0.0, 0.3))
    async with Receiver([500]) as receiver, fast as app, client_of(app) as client:
        space = await new_space(client)
        hooks = [await register(client, space, f"{receiver.url}?n={n}") for n in range(5)]
        sixth = await client.post(
            f"/api/spaces/{space['id']}/webhooks", json={"url": receiver.url}, headers=host(space)
        )
        assert sixth.status_code == 409 and "at most 5" in sixth.json()["error"]
        # Each gets its first try (refused); deleted then, none gets a second.
        await announce(app, space)
        await eventually(lambda: _count(client, space, 5), "five first tries")
        for hook in hooks:
            gone = await client.delete(f"/api/spaces/{space['id']}/webhooks/{hook['id']}", headers=host(space))
            assert gone.status_code == 204
        await settled(app)  # each woke for its second try, found its webhook gone and stopped
        assert len(receiver.requests) == 5
        listed = (await client.get(f"/api/spaces/{space['id']}/webhooks", headers=host(space))).json()
        assert listed["webhooks"] == [] and len(listed["deliveries"]) == 5


async def test_an_event_another_node_published_is_left_to_that_node(tmp_path: Path) -> None:
    async with Receiver([200]) as receiver, running(tmp_path / "data") as app, client_of(app) as client:
        space = await new_space(client)
        await register(client, space, receiver.url)
        bus, node = app.state.bus, app.state.directory.node_id
        await bus.publish(SpaceStarted(SpaceId(space["id"]), "another-node"))
        await bus.publish(SpaceEnded(SpaceId(space["id"]), node))
        await eventually(lambda: _count(client, space, 1), "this node's event delivered")
        await settled(app)
        assert [e["type"] for e in receiver.events()] == ["space.ended"]


@pytest.mark.media
async def test_a_space_that_goes_live_and_ends_sends_started_ended_and_replay_ready(tmp_path: Path) -> None:
    async with Receiver([200]) as receiver, running(tmp_path / "data") as app, client_of(app) as client:
        space = await new_space(client)
        hook = await register(client, space, receiver.url)
        # A real speaker (aiortc, over loopback) through the WHIP endpoint: the host's first audio
        # makes the space live.
        pc = RTCPeerConnection(ice.rtc_configuration())
        pc.addTransceiver(SampleTrack(tone(440)), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        answer = await client.post(
            space["urls"]["whip"],
            content=pc.localDescription.sdp.encode(),
            headers={**host(space), "Content-Type": "application/sdp"},
        )
        assert answer.status_code == 201, answer.text
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp.keep_loopback_candidates(answer.text), "answer"))
            media = app.state.media

            async def recorded() -> bool:
                return len(await media.records(space["id"])) >= 1

            await eventually(recorded, "a segment recorded", timeout_s=15)
        finally:
            await pc.close()
        ended = await client.post(f"/api/spaces/{space['id']}/end", headers=host(space))
        assert ended.status_code == 200, ended.text

        async def three() -> bool:
            return len(receiver.requests) >= 3

        await eventually(three, "started, ended and replay.ready")
        events = {e["type"]: e for e in receiver.events()}
        assert sorted(events) == ["replay.ready", "space.ended", "space.started"]
        assert all(verify(hook["secret"], headers, body) for headers, body in receiver.requests)
        assert events["space.started"]["data"]["space"]["state"] == "live"
        assert events["space.ended"]["data"]["space"]["ended_at"] is not None
        download = await client.get(events["replay.ready"]["data"]["download"])
        assert download.status_code == 200 and download.headers["content-type"] == "audio/mp4"
