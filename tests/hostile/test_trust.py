"""Hostile clients against what Podium signs, connects to and keeps secret (issue 17): forged clips,
a forged Host header, webhooks aimed inside through IPv6 transition addresses, private spaces'
ids in /metrics, TURN credentials for strangers, the recording hashed for unsigned clips, and
ICE candidates that would have the stage knock on anyone's ports. Each runs against a real
`podium serve` on loopback, and sends traffic nowhere else."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiortc import RTCPeerConnection
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.applications import Starlette

from podium.app import create_app
from podium.ids import new_space_id
from podium.media import clips, ice, m4a
from podium.media.packager import INIT_NAME, segment_name
from podium.settings import Settings
from podium.testing import eventually, eventually_sync
from podium.testing.whip_client import SampleTrack, publish, tone
from podium.webhooks import Webhooks
from tests.conftest import Server
from tests.media.test_m4a import recording
from tests.test_live_media import wait_for_media
from tests.test_nginx import cache_tier  # noqa: F401 - the shipped nginx in front of `server`
from tests.test_webhooks import Receiver

START = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)


def host(space: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {space['host_token']}"}


def create(server: Server, **body: object) -> dict[str, Any]:
    response = httpx.post(f"{server.base}/api/spaces", json={"title": "Hostile check", **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


def restart(server: Server, **env: str) -> None:
    server.stop()
    server.env = env
    server.start()


# -- row 7: `podium verify` and a clip that names someone else's page ------------------------


@cache
def attacker_recording() -> tuple[bytes, list[bytes]]:
    init, segments, _ = recording(12.0, 550)
    return init, segments


def forged_clip(key: Ed25519PrivateKey, instance: str, space: str, context_url: str) -> bytes:
    """A clip the attacker made of their own recording, signed with their own key, whose facts
    name the attacker's instance and send the reader to `context_url`."""
    init, segments = attacker_recording()
    cut = clips.plan_cut(1.0, 10.0, m4a.fragment_samples(segments), 48000)
    media = clips.cut_media(init, segments, cut, START, "What the victim said (clip)")
    facts = {
        "format": clips.FORMAT,
        "instance": instance,
        "key_id": clips.key_id(key.public_key()),
        "space": space,
        "title": "What the victim said (clip)",
        "clip": "c0123456789ab",
        "first_frame": cut.first_frame,
        "frames": cut.frames,
        "timescale": cut.timescale,
        "frame_duration": cut.frame_duration,
        "offset_s": round(cut.offset_s, 3),
        "duration_s": round(cut.duration_s, 3),
        "clip_sha256": hashlib.sha256(media).hexdigest(),
        "recording_sha256": clips.recording_digest(init, segments),
        "recording_segments": len(segments),
        "media_created": START.isoformat(),
        "created_at": START.isoformat(),
        "context_url": context_url,
    }
    return clips.seal(media, facts, key)


@pytest.fixture
def attacker() -> Iterator[tuple[str, Ed25519PrivateKey, str]]:
    """The attacker's own "instance" on loopback: their key, and their recording over HTTP."""
    key = Ed25519PrivateKey.generate()
    space = new_space_id()
    init, segments = attacker_recording()
    files = {
        "/.well-known/podium-clip-key": json.dumps(
            {"algorithm": "Ed25519", "public_key": base64.b64encode(clips.public_raw(key.public_key())).decode()}
        ).encode(),
        f"/hls/{space}/{INIT_NAME}": init,
        **{f"/hls/{space}/{segment_name(n)}": data for n, data in enumerate(segments)},
    }

    class Files(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("content-length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *_: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", key, space
    finally:
        httpd.shutdown()
        httpd.server_close()


def verify(path: Path, *trust: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "podium", "verify", str(path), *(["--trust", trust[0]] if trust else [])]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def test_verify_refuses_a_clip_that_sends_its_reader_to_another_sites_page(
    server: Server, attacker: tuple[str, Ed25519PrivateKey, str], tmp_path: Path
) -> None:
    evil, key, evil_space = attacker
    victim_page = f"{server.base}/s/{create(server)['id']}?t=1.0"
    # The control: the attacker's clip of their own page checks out against the attacker's own
    # instance, so what follows is refused for what it claims, not because anything is missing.
    own = tmp_path / "own.m4a"
    own.write_bytes(forged_clip(key, evil, evil_space, f"{evil}/s/{evil_space}?t=1.0"))
    control = verify(own)
    assert control.returncode == 0, control.stdout + control.stderr
    assert f"signed by {evil} (key {clips.key_id(key.public_key())})" in control.stdout

    forged = tmp_path / "forged.m4a"
    forged.write_bytes(forged_clip(key, evil, evil_space, victim_page))
    refused = verify(forged)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "VALID" not in refused.stdout
    assert "another site" in refused.stderr and "--trust" in refused.stderr
    # Told to trust the victim's instance: its key does not sign this, and the clip is not its.
    judged = verify(forged, server.base)
    assert judged.returncode == 1, judged.stdout + judged.stderr
    assert f"trusted: {server.base}, its key" in judged.stdout
    assert "FAIL instance" in judged.stdout and "FAIL signature" in judged.stdout
    assert "NOT VALID" in judged.stdout


# -- rows 8 and 16: a forged Host header, and the recording's hash ----------------------------


@pytest.mark.media
async def test_a_clip_made_through_a_forged_host_names_no_instance_and_the_ended_fingerprint_is_kept(
    server: Server,
    cache_tier: str,  # noqa: F811 - the fixture imported above
) -> None:
    space = create(server)
    speaker = await publish(server.base + space["urls"]["whip"], space["host_token"], SampleTrack(tone(440)))
    try:
        await wait_for_media(server, space, 13)
        async with httpx.AsyncClient(base_url=server.base, timeout=20) as client:
            made = await client.post(
                f"/api/spaces/{space['id']}/clips",
                json={"start_s": 0, "duration_s": 10},
                headers={"Host": "evil.example"},
            )
            assert made.status_code == 201, made.text
            clip = made.json()
            file = (await client.get(clip["urls"]["file"])).content
    finally:
        await speaker.close()
    # Nothing the request said about where it came in is signed, or linked to.
    assert "evil.example" not in made.text and b"evil.example" not in file
    assert "instance" not in clip["facts"]
    assert clip["facts"]["context_url"].startswith(f"/s/{space['id']}?t=")
    assert clip["urls"]["page"].startswith("/c/") and made.headers["location"].startswith("/c/")
    assert clips.open_clip(file)[1]["facts"] == clip["facts"]

    async with httpx.AsyncClient(base_url=server.base, timeout=20) as client:
        ended = await client.post(f"/api/spaces/{space['id']}/end", headers=host(space))
        assert ended.status_code == 200, ended.text
        first = await client.get(f"/api/spaces/{space['id']}/recording")
        again = await client.get(f"/api/spaces/{space['id']}/recording")
    # An ended recording's fingerprint is complete, the same every time, and a cache may keep it.
    assert first.status_code == 200 and first.json()["complete"] is True
    assert again.json() == first.json()
    assert first.headers["cache-control"] == "public, max-age=86400"
    # The shipped nginx keeps it, and the download: the origin hashes and reads them once.
    async with httpx.AsyncClient(base_url=cache_tier, timeout=20) as edge:
        for path in (f"/api/spaces/{space['id']}/recording", f"/media/{space['id']}/recording.m4a"):
            answers = [await edge.get(path) for _ in range(2)]
            assert [a.status_code for a in answers] == [200, 200], path
            assert [a.headers["x-cache-status"] for a in answers] == ["MISS", "HIT"], path


async def test_the_server_reads_no_recording_for_a_clip_its_key_did_not_sign(server: Server) -> None:
    space = create(server)
    stranger = Ed25519PrivateKey.generate()
    data = forged_clip(stranger, server.base, space["id"], f"{server.base}/s/{space['id']}?t=1.0")
    async with httpx.AsyncClient(base_url=server.base, timeout=20) as client:
        answer = await client.post("/api/verify", content=data)
    assert answer.status_code == 200, answer.text
    verdict = answer.json()
    assert verdict["valid"] is False
    # The signature fails first, and nothing of the recording is looked at after it.
    assert [(c["name"], c["ok"]) for c in verdict["checks"]] == [("signature", False), ("clip_sha256", True)]


# -- row 9: webhooks aimed inside -----------------------------------------------------------


INSIDE_IPV6 = (
    "[64:ff9b::7f00:1]",  # NAT64: 127.0.0.1
    "[64:ff9b:1::a00:1]",  # local-use NAT64
    "[2002:7f00:1::]",  # 6to4: 127.0.0.1
    "[::127.0.0.1]",  # IPv4-compatible
    "[::ffff:0:7f00:1]",  # IPv4-translated
    "[::ffff:169.254.169.254]",  # IPv4-mapped: a cloud's metadata service
    "[2001:0:4136:e378:8000:63bf:80ff:fffe]",  # Teredo, client 127.0.0.1
)


def test_webhooks_to_ipv4_inside_ipv6_are_refused(server: Server) -> None:
    space = create(server)
    url = f"{server.base}/api/spaces/{space['id']}/webhooks"
    for address in INSIDE_IPV6:
        refused = httpx.post(url, json={"url": f"http://{address}:{server.port}/hook"}, headers=host(space))
        assert refused.status_code == 400, (address, refused.text)
        assert "private or local address" in refused.json()["error"]
    listed = httpx.get(url, headers=host(space)).json()
    assert listed == {"webhooks": [], "deliveries": []}


async def test_registering_a_webhook_sends_nothing_until_an_event(server: Server) -> None:
    restart(server, PODIUM_WEBHOOKS_ALLOW_PRIVATE="1")  # the receiver is on loopback
    space = create(server)
    async with Receiver([204]) as receiver, httpx.AsyncClient(base_url=server.base, timeout=20) as client:
        hooks = f"/api/spaces/{space['id']}/webhooks"
        for n in range(5):
            made = await client.post(hooks, json={"url": f"{receiver.url}?n={n}"}, headers=host(space))
            assert made.status_code == 201, made.text
        assert receiver.requests == [] and (await client.get(hooks, headers=host(space))).json()["deliveries"] == []
        # The space's first event is the first thing a registered URL gets: once its five
        # deliveries are logged (each after its answer came), the receiver has had those and no other.
        assert (await client.post(f"/api/spaces/{space['id']}/end", headers=host(space))).status_code == 200

        async def five() -> bool:
            return len((await client.get(hooks, headers=host(space))).json()["deliveries"]) >= 5

        await eventually(five, "space.ended delivered at each URL")
    assert len(receiver.requests) == 5
    assert [event["type"] for event in receiver.events()] == ["space.ended"] * 5


async def test_a_delivery_connects_to_the_address_that_was_checked(tmp_path: Path) -> None:
    """A name that would answer differently at connection time (DNS rebinding) is not looked up
    again: the try goes to the address checked, the name in its Host header."""
    looked_up: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        looked_up.append(host)
        return ["127.0.0.1"]

    app: Starlette = create_app(Settings.load({}, data_dir=tmp_path / "data", webhooks_allow_private=True))
    webhooks: Webhooks = app.state.webhooks
    webhooks.resolver = resolver
    async with Receiver([204]) as receiver, app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://podium.test") as client:
            space = (await client.post("/api/spaces", json={"title": "Rebinding"})).json()
            port = receiver.url.split(":")[2].split("/")[0]
            url = f"http://hooks.example.test:{port}/hook"  # .test: no DNS on earth answers it
            made = await client.post(f"/api/spaces/{space['id']}/webhooks", json={"url": url}, headers=host(space))
            assert made.status_code == 201, made.text
            assert (await client.post(f"/api/spaces/{space['id']}/end", headers=host(space))).status_code == 200

            async def delivered() -> bool:
                return len(receiver.requests) >= 1

            await eventually(delivered, "the delivery")
    headers, _body = receiver.requests[0]
    assert headers["host"] == f"hooks.example.test:{port}"
    assert looked_up == ["hooks.example.test", "hooks.example.test"]  # at registration, then once per try


# -- row 10: /metrics and private spaces ------------------------------------------------------


def open_preshow(server: Server, **body: object) -> dict[str, Any]:
    soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    space = create(server, starts_at=soon, **body)

    def opened() -> bool:
        return bool(httpx.get(f"{server.base}/api/spaces/{space['id']}").json()["preshow"])

    eventually_sync(opened, "the pre-show opened", timeout_s=10)
    return space


def test_metrics_never_name_a_private_space_and_can_be_kept_to_the_scraper(server: Server) -> None:
    private, public = open_preshow(server, private=True), open_preshow(server)
    text = httpx.get(f"{server.base}/metrics").text
    assert private["id"] not in text
    assert f'podium_space_listeners{{space="{public["id"]}"}}' in text
    hidden = [line for line in text.splitlines() if line.startswith('podium_space_listeners{space="private-')]
    assert len(hidden) == 1  # still followed, under a label that does not open it

    token = "scraper-" + "x" * 24
    restart(server, PODIUM_METRICS_TOKEN=token)
    refused = httpx.get(f"{server.base}/metrics")
    assert refused.status_code == 401 and "PODIUM_METRICS_TOKEN" in refused.json()["error"]
    wrong = httpx.get(f"{server.base}/metrics", headers={"Authorization": "Bearer " + "y" * 32})
    assert wrong.status_code == 401 and "podium_" not in wrong.text
    scraped = httpx.get(f"{server.base}/metrics", headers={"Authorization": f"Bearer {token}"})
    assert scraped.status_code == 200 and "podium_listeners" in scraped.text


# -- row 11: TURN credentials -----------------------------------------------------------------


def ice_servers(server: Server, space: dict[str, Any], token: str) -> httpx.Response:
    return httpx.get(
        f"{server.base}/api/spaces/{space['id']}/ice-servers", headers={"Authorization": f"Bearer {token}"}
    )


def test_turn_credentials_are_for_the_stage_and_short_lived_with_a_shared_secret(server: Server) -> None:
    restart(server, PODIUM_ICE_SERVERS="stun:127.0.0.1:3478,turn:alice:s3cret@127.0.0.1:3478")
    space = create(server)
    guest = httpx.post(f"{server.base}/api/spaces/{space['id']}/guests", json={"name": "Anyone"})
    assert guest.status_code in (200, 201), guest.text
    refused = ice_servers(server, space, guest.json()["token"])
    assert refused.status_code == 403 and "people on stage" in refused.json()["error"]
    assert "s3cret" not in refused.text and "alice" not in refused.text
    # The host gets them.
    mine = ice_servers(server, space, space["host_token"]).json()["ice_servers"]
    assert mine[1] == {"urls": ["turn:127.0.0.1:3478?transport=udp"], "username": "alice", "credential": "s3cret"}

    # With coturn's shared secret, the entry carries no password: each person gets their own.
    secret = "coturn-static-auth-secret"
    restart(server, PODIUM_ICE_SERVERS="turn:127.0.0.1:3478", PODIUM_TURN_SECRET=secret)
    space = create(server)
    before = time.time()
    turn = ice_servers(server, space, space["host_token"]).json()["ice_servers"][0]
    expiry, member = turn["username"].split(":")
    assert member == "host"
    assert before + 12 * 3600 - 5 <= int(expiry) <= time.time() + 12 * 3600
    expected = base64.b64encode(hmac.new(secret.encode(), turn["username"].encode(), hashlib.sha1).digest()).decode()
    assert turn["credential"] == expected
    guest = httpx.post(f"{server.base}/api/spaces/{space['id']}/guests", json={"name": "Anyone"}).json()
    assert ice_servers(server, space, guest["token"]).status_code == 403


# -- row 20: the ICE candidates of a stranger's offer -----------------------------------------


@pytest.mark.media
async def test_the_stage_checks_only_as_many_candidates_as_allowed(server: Server) -> None:
    restart(server, PODIUM_MAX_REMOTE_CANDIDATES="2")
    space = create(server)
    # Six "candidates" at UDP ports of ours on loopback: the stage's checks land here, if sent.
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(6)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
    ice.configure("only")
    pc = RTCPeerConnection(ice.rtc_configuration())
    try:
        pc.addTransceiver(SampleTrack(tone(440)), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        lines = [line for line in pc.localDescription.sdp.split("\r\n") if not line.startswith("a=candidate:")]
        at = next(i for i, line in enumerate(lines) if line.startswith("a=ice-ufrag:"))
        candidates = [
            f"a=candidate:{n} 1 udp {2130706431 - n} 127.0.0.1 {sock.getsockname()[1]} typ host"
            for n, sock in enumerate(sockets)
        ]
        offer = "\r\n".join(lines[:at] + candidates + lines[at:])
        async with httpx.AsyncClient(timeout=20) as client:
            answer = await client.post(
                server.base + space["urls"]["whip"],
                content=offer.encode(),
                headers={**host(space), "Content-Type": "application/sdp"},
            )
        assert answer.status_code == 201, answer.text

        knocks = [0] * len(sockets)

        def knocked() -> None:
            for n, sock in enumerate(sockets):
                try:
                    while sock.recv(2048):
                        knocks[n] += 1
                except BlockingIOError:
                    pass

        def checked_twice() -> bool:
            knocked()
            return knocks[0] >= 2 and knocks[1] >= 2

        # The checks go out one pair at a time (every 20 ms), and one unanswered is sent again
        # only 0.5 s later: once the first two have had theirs again, checks to the others
        # would have come long before.
        await eventually(checked_twice, "the first two candidates checked, then checked again", timeout_s=15)
        knocked()
        seen = {n for n, count in enumerate(knocks) if count}
    finally:
        await pc.close()
        ice.configure("0")
        for sock in sockets:
            sock.close()
    # The first two were checked; the four past the limit never heard from the stage.
    assert seen == {0, 1}
