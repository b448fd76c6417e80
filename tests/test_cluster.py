"""Podium as a cluster: nginx in front of three `podium serve` nodes sharing Redis, PostgreSQL and a
media folder. Listeners land on nodes that do not run the stage and hear it; what is posted through
one node is read through another; counts add up; a node dies and nothing a listener or a writer
was promised is lost; the stage's own node dies and the stage moves; Redis restarts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from podium.testing import eventually, eventually_sync
from podium.testing.whip_client import SampleTrack, publish, tone
from tests import listeners
from tests.backends.test_bus_contract import own_redis  # noqa: F401 - the fixture
from tests.backends.test_sql_contract import own_postgres_database  # noqa: F401 - the fixture
from tests.conftest import Server, free_port
from tests.test_live_media import listed_seconds
from tests.test_stage_media import band_energy, decode

pytestmark = pytest.mark.media

SHIPPED = Path(__file__).parent.parent / "deploy" / "nginx" / "podium.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PASSWORD = "correct horse battery staple"
_PART_URI = re.compile(r'#EXT-X-PART:[^\n]*URI="(p(\d+)-(\d+)\.m4s)"')
LISTENERS = 20  # each from its own loopback address: nginx spreads them over the nodes by address
_HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p(\d+)-(\d+)\.m4s"')


@dataclass
class Cluster:
    nodes: dict[str, Server]
    edge: str
    nginx: subprocess.Popen[bytes]
    media: Path
    stop_redis: Callable[[], None] = field(default=lambda: None)
    start_redis: Callable[[], None] = field(default=lambda: None)

    def node(self, name: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.nodes[name].base, timeout=20)


def _start_nginx(tmp_path: Path, nodes: dict[str, Server]) -> tuple[subprocess.Popen[bytes], str]:
    if not Path(NGINX).exists():
        pytest.fail("nginx is not installed (scripts/setup --test installs it)")
    port = free_port()
    upstream = "".join(f"    server 127.0.0.1:{server.port};\n" for server in nodes.values())
    site = SHIPPED.read_text()
    site = site.replace("    server 127.0.0.1:8000;\n", upstream)
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    site = site.replace("/var/cache/nginx/podium", str(tmp_path / "cache"))
    site = site.replace("/var/lib/podium/", f"{next(iter(nodes.values())).data_dir}/")
    (tmp_path / "podium.conf").write_text(site)
    user = "user root;\n" if os.geteuid() == 0 else ""
    (tmp_path / "nginx.conf").write_text(
        f"{user}worker_processes 1;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        "events { worker_connections 4096; }\n"
        f"http {{ access_log {tmp_path}/access.log; include {tmp_path}/podium.conf; }}\n"
    )
    check = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")], capture_output=True)
    assert check.returncode == 0, check.stderr.decode()
    process = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"])
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            httpx.get(base + "/healthz", timeout=1)
        except httpx.HTTPError:
            return False
        return True

    eventually_sync(answers, "nginx answers", timeout_s=10, poll_s=0.1)
    return process, base


def _cluster(tmp_path: Path, redis_url: str, database: str, names: tuple[str, ...]) -> Iterator[Cluster]:
    media = tmp_path / "shared-media"
    secret = secrets.token_urlsafe(40)
    nodes: dict[str, Server] = {}
    for name in names:
        port = free_port()
        nodes[name] = Server(tmp_path / f"data-{name}", port, tmp_path / f"{name}.log")
    nginx: subprocess.Popen[bytes] | None = None
    try:
        for name, server in nodes.items():
            server.env = {
                "PODIUM_DATABASE_URL": database,
                "PODIUM_BUS_URL": redis_url,
                "PODIUM_LIMITS_URL": redis_url,
                "PODIUM_STORAGE_URL": media.as_uri(),
                "PODIUM_SECRET": secret,
                "PODIUM_NODE_ID": name,
                "PODIUM_NODE_URL": server.base,
                "PODIUM_SIGNUP_LIMIT_PER_ADDRESS": "100/minute",
            }
            server.start()
        nginx, edge = _start_nginx(tmp_path, nodes)
        yield Cluster(nodes, edge, nginx, media)
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(10)
        for server in nodes.values():
            server.stop()


@pytest.fixture
def cluster(tmp_path: Path, own_redis: tuple[str, Any], own_postgres_database: str) -> Iterator[Cluster]:  # noqa: F811
    url, (start, stop) = own_redis
    for made in _cluster(tmp_path, url, own_postgres_database, ("a", "b", "c")):
        made.start_redis, made.stop_redis = start, stop
        yield made


# -- a listener as an LL-HLS player: blocking reload for the next part, then the part ---------------


@dataclass
class Heard:
    parts: list[tuple[int, int]] = field(default_factory=list)
    audio: list[bytes] = field(default_factory=list)
    nodes: set[str] = field(default_factory=set)  # the nodes that answered
    stage_nodes: set[str] = field(default_factory=set)  # where relayed answers were made
    missed: list[tuple[int, int]] = field(default_factory=list)
    discontinuity: bool = False


async def follow(base: str, space_id: str, seconds: float, heard: Heard, address: str = "127.0.0.1") -> None:
    """Follow the live stream for `seconds` like a player from `address`, through `base` (the edge,
    or a node)."""
    prefix = f"/hls/{space_id}/"
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(base_url=base, timeout=15, transport=transport) as client:
        first = await client.get(prefix + "live.m3u8")
        assert first.status_code == 200, first.text
        hint = _HINT.search(first.text)
        assert hint is not None, first.text
        msn, index = int(hint.group(1)), int(hint.group(2))
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            playlist = await _get(client, f"{prefix}live.m3u8?_HLS_msn={msn}&_HLS_part={index}", heard)
            part = None if playlist is None else await _get(client, f"{prefix}p{msn}-{index}.m4s", heard)
            if playlist is None or part is None:
                heard.missed.append((msn, index))
                # As a player does: start again from the newest playlist (`_get` has waited
                # between its tries; without one, the part is tried again, and missed again).
                fresh = await _get(client, prefix + "live.m3u8", heard)
                if fresh is None or (hint := _HINT.search(fresh.text)) is None:
                    continue
                msn, index = int(hint.group(1)), int(hint.group(2))
                continue
            heard.parts.append((msn, index))
            heard.audio.append(part.content)
            heard.discontinuity |= "#EXT-X-DISCONTINUITY" in playlist.text
            hint = _HINT.search(playlist.text)
            assert hint is not None
            msn, index = int(hint.group(1)), int(hint.group(2))


def address(n: int) -> str:
    return f"127.0.0.{10 + n}"


async def beat(base: str, space_id: str, n: int) -> str:
    """Listener `n`'s heartbeat from its own address; returns the node that counted it."""
    transport = httpx.AsyncHTTPTransport(local_address=address(n))
    async with httpx.AsyncClient(base_url=base, timeout=10, transport=transport) as client:
        answer = await listeners.beat(client, space_id, f"listener-{n:04d}")
    assert answer.status_code == 200, answer.text
    return answer.headers["x-podium-node"]


async def listeners_on(node: httpx.AsyncClient, space_id: str, expected: int) -> int:
    """The listener count `node` shows, once it reaches `expected` (bounded wait: 10 s)."""
    seen: list[int] = []

    async def reached() -> bool:
        seen.append(int((await node.get(f"/api/spaces/{space_id}")).json()["listeners"]["now"]))
        return seen[-1] == expected

    # The nodes report their counts to each other every second: polled.
    with contextlib.suppress(AssertionError):  # the caller asserts on the count it is given
        await eventually(reached, f"{expected} listeners counted", timeout_s=10, poll_s=0.2)
    return seen[-1]


async def _get(client: httpx.AsyncClient, url: str, heard: Heard) -> httpx.Response | None:
    """`url`'s answer, in at most three tries 0.2 s apart (a player's retries); None without one."""

    async def answered() -> httpx.Response | None:
        try:
            response = await client.get(url)
        except httpx.HTTPError:
            return None
        return response if response.status_code == 200 else None

    try:
        response = await eventually(answered, url, timeout_s=0.4, poll_s=0.2)
    except AssertionError:
        return None
    heard.nodes.add(response.headers.get("x-podium-node", "?"))
    if response.headers.get("x-podium-stage-node"):
        heard.stage_nodes.add(response.headers["x-podium-stage-node"])
    return response


async def init_section(base: str, space_id: str) -> bytes:
    async with httpx.AsyncClient(base_url=base, timeout=15) as client:
        response = await client.get(f"/hls/{space_id}/init.mp4")
    assert response.status_code == 200, response.text
    return response.content


async def wait_for_stream(base: str, space_id: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=15) as client:

        async def started() -> bool:
            response = await client.get(f"/hls/{space_id}/live.m3u8")
            return response.status_code == 200 and _PART_URI.search(response.text) is not None

        await eventually(started, "the stream started", timeout_s=30, poll_s=0.1)


async def stream_moves_on(base: str, space_id: str, seconds: float) -> None:
    """Until the stream lists `seconds` more of audio than it does now (bounded: 30 s)."""
    async with httpx.AsyncClient(base_url=base, timeout=15) as client:

        async def listed() -> float:
            return listed_seconds((await client.get(f"/hls/{space_id}/live.m3u8")).text)

        start = await listed()

        async def moved_on() -> bool:
            return await listed() >= start + seconds

        await eventually(moved_on, f"the stream made {seconds} s more", timeout_s=30, poll_s=0.1)


async def signed_in(client: httpx.AsyncClient, name: str) -> dict[str, str]:
    await client.post("/api/accounts", json={"username": name, "password": PASSWORD})
    session = await client.post("/api/sessions", json={"username": name, "password": PASSWORD})
    assert session.status_code in (200, 201), session.text
    return {"Authorization": f"Bearer {session.json()['token']}"}


async def timeline_text(client: httpx.AsyncClient, space_id: str, looking_for: str, within_s: float) -> str:
    """The timeline object that shows `looking_for`, read through `client`'s node (bounded wait)."""

    async def shown() -> str | None:
        index = await client.get(f"/timeline/{space_id}/index.json")
        assert index.status_code == 200, index.text
        latest = index.json()["latest"]
        for seq in range(max(0, latest - 3), latest + 1):
            item = await client.get(f"/timeline/{space_id}/{seq}.json")
            if item.status_code == 200 and looking_for in item.text:
                return item.text
        return None

    found: str = await eventually(shown, f"{looking_for!r} shows in the timeline", timeout_s=within_s, poll_s=0.3)
    return found


# -- the tests -------------------------------------------------------------------------------------


async def test_listeners_on_any_node_hear_the_stage_and_nothing_is_lost_when_a_node_dies(cluster: Cluster) -> None:
    async with cluster.node("a") as a, cluster.node("b") as b, cluster.node("c") as c:
        space = (await a.post("/api/spaces", json={"title": "Three nodes"})).json()
        space_id = space["id"]
        speaker = await publish(
            f"{cluster.nodes['a'].base}/whip/{space_id}", space["host_token"], SampleTrack(tone(440))
        )
        try:
            await wait_for_stream(cluster.nodes["a"].base, space_id)

            # Nodes B and C run no stage: they answer from A, and say so.
            for other, name in ((b, "b"), (c, "c")):
                playlist = await other.get(f"/hls/{space_id}/live.m3u8")
                assert playlist.status_code == 200 and _PART_URI.search(playlist.text)
                assert playlist.headers["x-podium-node"] == name
                assert playlist.headers["x-podium-stage-node"] == "a"

            # Listeners through nginx, each from its own address, are spread over the nodes by
            # address (their heartbeats, never cached, say where they landed): B and C included.
            # They hear 440 Hz, and the count read on A is the sum over the nodes, once each.
            landed = [await beat(cluster.edge, space_id, n) for n in range(LISTENERS)]
            assert {"b", "c"} <= set(landed), landed
            assert [await beat(cluster.edge, space_id, n) for n in range(LISTENERS)] == landed, "each stays"
            init = await init_section(cluster.edge, space_id)
            crowd = [Heard() for _ in range(LISTENERS)]
            await asyncio.gather(
                *(follow(cluster.edge, space_id, 4, heard, address(n)) for n, heard in enumerate(crowd))
            )
            for heard in crowd:
                assert not heard.missed and len(heard.parts) >= 5, heard
                assert band_energy(decode(init, b"".join(heard.audio)), 440) > 0.5
            assert await listeners_on(a, space_id, LISTENERS) == LISTENERS

            # A question asked through B is in the timeline read through C.
            question = f"Will it scale, {uuid.uuid4().hex[:6]}?"
            headers = await signed_in(b, "asker")
            asked = await b.post(
                f"/api/spaces/{space_id}/posts",
                json={"kind": "question", "text": question, "client_id": uuid.uuid4().hex},
                headers=headers,
            )
            assert asked.status_code in (200, 201), asked.text
            await timeline_text(c, space_id, question, within_s=10)
            assert question in (await c.get(f"/api/spaces/{space_id}/questions")).text

            # Kill B while the listeners follow through nginx: nginx goes on with A and C, no
            # listener loses more than one part, B's listeners beat on another node and the count
            # comes back whole, and the comments B acknowledged are all there.
            comments = []
            for n in range(5):
                text = f"comment {n} through B"
                posted = await b.post(
                    f"/api/spaces/{space_id}/posts",
                    json={"kind": "comment", "text": text, "client_id": uuid.uuid4().hex},
                    headers=headers,
                )
                assert posted.status_code in (200, 201), posted.text
                comments.append(text)
            crowd = [Heard() for _ in range(LISTENERS)]
            following = [
                asyncio.create_task(follow(cluster.edge, space_id, 6, heard, address(n)))
                for n, heard in enumerate(crowd)
            ]

            def under_way() -> bool:  # every listener follows, well before the end of its 6 s
                return all(len(heard.parts) >= 3 for heard in crowd)

            await eventually(under_way, "the crowd follows the stream", timeout_s=4)
            cluster.nodes["b"].kill()
            await asyncio.gather(*following)
            for heard in crowd:
                assert len(heard.missed) <= 1, heard.missed
                assert len(heard.parts) >= 10
            after = [await beat(cluster.edge, space_id, n) for n in range(LISTENERS)]
            assert "b" not in after and all(was == now for was, now in zip(landed, after, strict=True) if was != "b")
            assert await listeners_on(a, space_id, LISTENERS) == LISTENERS
            shown = (await c.get(f"/api/spaces/{space_id}/comments")).text
            assert all(text in shown for text in comments)
        finally:
            await speaker.close()


async def test_the_stage_moves_when_its_node_dies_and_the_recording_goes_on(cluster: Cluster) -> None:
    async with cluster.node("a") as a, httpx.AsyncClient(base_url=cluster.edge, timeout=20) as edge:
        space = (await a.post("/api/spaces", json={"title": "Failover"})).json()
        space_id, host = space["id"], space["host_token"]
        speaker = await publish(f"{cluster.nodes['a'].base}/whip/{space_id}", host, SampleTrack(tone(440)))
        await wait_for_stream(cluster.nodes["a"].base, space_id)
        await stream_moves_on(cluster.nodes["a"].base, space_id, 3)  # a few seconds of 440 Hz, on the shared storage
        cluster.nodes["a"].kill()
        await speaker.close()

        # The host reconnects through the edge (to B or C): refused while A's lease lives,
        # then the stage starts on the node that took it, from the recording's end.

        async def reconnected() -> Any:
            try:
                return await publish(f"{cluster.edge}/whip/{space_id}", host, SampleTrack(tone(660)))
            except Exception:
                return None  # refused: A's lease still lives

        # Bounded: the lease lives a few seconds past A's death.
        moved = await eventually(reconnected, "the stage moved", timeout_s=30, poll_s=0.5)
        try:
            await wait_for_stream(cluster.edge, space_id)
            heard = Heard()
            await follow(cluster.edge, space_id, 3, heard)
            assert heard.nodes & {"b", "c"} and not heard.missed
            init = await init_section(cluster.edge, space_id)
            assert band_energy(decode(init, b"".join(heard.audio)), 660) > 0.5
            ended = await edge.post(f"/api/spaces/{space_id}/end", headers={"Authorization": f"Bearer {host}"})
            assert ended.status_code == 200, ended.text
        finally:
            await moved.close()

        # The recording holds both sides of the move, with a discontinuity between them.

        async def ended_list() -> httpx.Response | None:
            playlist = await edge.get(f"/hls/{space_id}/live.m3u8")
            return playlist if "#EXT-X-ENDLIST" in playlist.text else None

        playlist = await eventually(ended_list, "the playlist ends", timeout_s=10, poll_s=0.2)
        assert "#EXT-X-DISCONTINUITY" in playlist.text
        before, after = playlist.text.split("#EXT-X-DISCONTINUITY", 1)
        first = re.findall(r"^(s\d+\.m4s)$", before, re.M)
        last = re.findall(r"^(s\d+\.m4s)$", after, re.M)
        assert first and last
        init = await init_section(cluster.edge, space_id)
        segment = (await edge.get(f"/hls/{space_id}/{first[-2] if len(first) > 1 else first[0]}")).content
        assert band_energy(decode(init, segment), 440) > 0.5
        segment = (await edge.get(f"/hls/{space_id}/{last[-1]}")).content
        assert band_energy(decode(init, segment), 660) > 0.3


async def test_nodes_are_not_ready_while_redis_restarts_and_recover_by_themselves(cluster: Cluster) -> None:
    async with cluster.node("a") as a, cluster.node("b") as b, cluster.node("c") as c:
        space = (await a.post("/api/spaces", json={"title": "Redis restarts"})).json()
        live = (await a.post("/api/spaces", json={"title": "On stage meanwhile"})).json()
        speaker = await publish(
            f"{cluster.nodes['a'].base}/whip/{live['id']}", live["host_token"], SampleTrack(tone(440))
        )
        await wait_for_stream(cluster.nodes["a"].base, live["id"])
        for node in (a, b, c):
            assert (await node.get("/readyz")).status_code == 200
        cluster.stop_redis()
        for node in (a, b, c):
            probe = await node.get("/readyz")
            assert probe.status_code == 503 and "bus" in probe.json()["error"], probe.text
            assert (await node.get("/healthz")).status_code == 200  # not ready, and not dead
        cluster.start_redis()
        for node in (a, b, c):

            async def ready(node: httpx.AsyncClient = node) -> bool:
                return (await node.get("/readyz")).status_code == 200

            await eventually(ready, "a node is ready again after Redis came back", timeout_s=10, poll_s=0.1)

        # Redis came back empty: A claimed its stage's lease again, and B finds the stage there.
        async def relayed() -> httpx.Response | None:
            playlist = await b.get(f"/hls/{live['id']}/live.m3u8")
            return playlist if playlist.status_code == 200 else None

        playlist = await eventually(relayed, "B finds the stage", timeout_s=10, poll_s=0.1)
        assert playlist.headers["x-podium-stage-node"] == "a", playlist.text
        await speaker.close()

        # The nodes' subscriptions resumed: a space ended through A is ended on B and C at once
        # (they keep open spaces in memory and learn of the end only through the bus).
        # Resumed once an end published through A reaches both (the back-off is at most 2 s): a
        # space of its own is ended for each look, until one end is heard by B and C at once.
        async def heard_through_the_bus(ended_space: dict, within_s: float) -> bool:
            for node in (b, c):

                async def gone(node: httpx.AsyncClient = node) -> bool:
                    join = await node.post(
                        f"/api/spaces/{ended_space['id']}/join", json={"client_id": uuid.uuid4().hex}
                    )
                    return join.status_code == 404

                try:
                    await eventually(gone, "the end is known", timeout_s=within_s, poll_s=0.1)
                except AssertionError:
                    return False
            return True

        async def resumed() -> bool:
            probe = (await a.post("/api/spaces", json={"title": "Probe"})).json()
            for node in (b, c):  # in their memory, as an open space
                assert (await node.get(f"/api/spaces/{probe['id']}")).status_code == 200
            probe_host = {"Authorization": f"Bearer {probe['host_token']}"}
            assert (await a.post(f"/api/spaces/{probe['id']}/end", headers=probe_host)).status_code == 200
            return await heard_through_the_bus(probe, 0.5)

        await eventually(resumed, "the nodes' subscriptions resumed", timeout_s=20, poll_s=0.3)
        ended = await a.post(
            f"/api/spaces/{space['id']}/end", headers={"Authorization": f"Bearer {space['host_token']}"}
        )
        assert ended.status_code == 200, ended.text
        assert await heard_through_the_bus(space, 5.0), "a space ended through A is ended on B and C"
