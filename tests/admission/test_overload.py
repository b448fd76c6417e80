"""A node past its capacity still serves the conversation: the host's switch to the stage, the
hold audio, moderation and the host's list of posts, and the heartbeats of listeners already in,
while strangers' requests to the same paths are shed (the door classes by credential, not path).

In process, through the whole served stack (the door included), with a real speaker (aiortc over
loopback) connected by WHIP. The overload is the one the lag sampler reports when the event loop
stalls: the governor's pressure is held at 0.9 or more before every request that must succeed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from starlette.applications import Starlette

from podium.admission.load import Governor
from podium.app import create_app, served
from podium.media import ice, sdp
from podium.settings import Settings
from podium.testing.whip_client import SampleTrack, tone
from tests.test_preshow import wait_for_preshow, wav_bytes

pytestmark = pytest.mark.media


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    app = create_app(Settings.load({}, data_dir=tmp_path / "data", ice_loopback="only"))
    transport = httpx.ASGITransport(app=served(app))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://podium.test", timeout=30) as client,
    ):
        yield app, client


def overload(governor: Governor) -> None:
    """The event loop as the lag sampler reports a long stall: every class that can be shed is."""
    for _ in range(10):
        governor.observe_lag(10_000)
    assert governor.pressure() >= 0.9


async def test_the_host_and_the_listeners_in_are_served_while_strangers_are_shed(
    node: tuple[Starlette, httpx.AsyncClient],
) -> None:
    app, client = node
    governor: Governor = app.state.governor
    starts = (datetime.now(UTC) + timedelta(minutes=10)).replace(microsecond=0).isoformat()
    space = (await client.post("/api/spaces", json={"title": "Flash crowd", "starts_at": starts})).json()
    space_id = space["id"]
    host = {"Authorization": f"Bearer {space['host_token']}"}
    await wait_for_preshow(client, space_id)

    # Before the rush: a listener joins, an account posts a question.
    joined = await client.post(f"/api/spaces/{space_id}/join", json={"client_id": "listener-0001"})
    assert joined.status_code == 200, joined.text
    listener_pass = joined.json()["pass"]
    account = {"username": "asker", "password": "a long enough password"}
    assert (await client.post("/api/accounts", json=account)).status_code == 201
    signed_in = {"Authorization": f"Bearer {(await client.post('/api/sessions', json=account)).json()['token']}"}
    asked = await client.post(
        f"/api/spaces/{space_id}/posts",
        json={"kind": "question", "text": "Will you take questions?", "client_id": "question-0001"},
        headers=signed_in,
    )
    assert asked.status_code == 201, asked.text
    post_id = asked.json()["id"]

    async def shed(method: str, path: str, **kwargs: Any) -> None:
        """The same path without the credential: a stranger's request, shed under this load."""
        overload(governor)
        refused = await client.request(method, path, **kwargs)
        assert refused.status_code == 503, (method, path, refused.status_code, refused.text)
        assert refused.headers["retry-after"]

    async def served_now(method: str, path: str, **kwargs: Any) -> httpx.Response:
        overload(governor)
        answer = await client.request(method, path, **kwargs)
        assert answer.status_code < 300, (method, path, answer.status_code, answer.text)
        return answer

    # The host's microphone connects (WHIP) and the hold audio goes up, in the middle of the rush.
    pc = RTCPeerConnection(ice.rtc_configuration())
    pc.addTransceiver(SampleTrack(tone(440)), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    try:
        answer = await served_now(
            "POST",
            space["urls"]["whip"],
            content=pc.localDescription.sdp.encode(),
            headers={**host, "Content-Type": "application/sdp"},
        )
        await pc.setRemoteDescription(RTCSessionDescription(sdp.keep_loopback_candidates(answer.text), "answer"))
        await shed("PUT", f"/api/spaces/{space_id}/hold-audio", content=wav_bytes(500, 2))
        held = await served_now("PUT", f"/api/spaces/{space_id}/hold-audio", content=wav_bytes(500, 2), headers=host)
        assert held.json()["hold_audio_s"] == pytest.approx(2.0, abs=0.01)

        # Moderation: the host's list of posts, the posting rules, a post answered.
        await shed("GET", f"/api/spaces/{space_id}/posts")
        listed = await served_now("GET", f"/api/spaces/{space_id}/posts", headers=host)
        assert post_id in listed.text
        await shed("POST", f"/api/spaces/{space_id}/moderation", json={"slow_mode_s": 10})
        rules = await served_now("POST", f"/api/spaces/{space_id}/moderation", json={"slow_mode_s": 10}, headers=host)
        assert rules.json()["slow_mode_s"] == 10
        answered = await served_now("POST", f"/api/spaces/{space_id}/posts/{post_id}/answer", headers=host)
        assert answered.json()["id"] == post_id and answered.json()["state"] == "answered"

        # The listener already in keeps beating, and is counted.
        beat = await served_now(
            "POST",
            f"/api/spaces/{space_id}/heartbeat",
            json={"listener_id": "listener-0001"},
            headers={"Authorization": f"Bearer {listener_pass}"},
        )
        assert beat.json()["listeners"]["now"] >= 1

        # The start: the host's switch to the stage goes through the crowd at once.
        await shed("POST", f"/api/spaces/{space_id}/go-live")
        live = await served_now("POST", f"/api/spaces/{space_id}/go-live", headers=host)
        assert live.json()["state"] == "live" and not live.json()["preshow"]
    finally:
        await pc.close()
    # What the load did: the strangers' requests above were shed, the others counted as served.
    assert sum(governor.stats.shed.values()) >= 4
