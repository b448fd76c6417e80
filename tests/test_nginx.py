"""The shipped nginx configuration, in front of a real `podium serve`: listener objects are cached,
many simultaneous readers make one origin request, writes pass through."""

from __future__ import annotations

import asyncio
import gzip
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from podium.testing import eventually, eventually_sync
from podium.testing.whip_client import SampleTrack, publish, tone
from tests import listeners
from tests.conftest import Server, free_port
from tests.test_live_media import create_space, wait_for_media

pytestmark = pytest.mark.media

SHIPPED = Path(__file__).parent.parent / "deploy" / "nginx" / "podium.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture
def cache_tier(server: Server, tmp_path: Path) -> Iterator[str]:
    if not Path(NGINX).exists():
        pytest.fail("nginx is not installed (scripts/setup --test installs it)")
    port = free_port()
    site = SHIPPED.read_text()
    site = site.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{server.port};")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    site = site.replace("/var/cache/nginx/podium", str(tmp_path / "cache"))
    site = site.replace("/var/lib/podium/", f"{server.data_dir}/")
    (tmp_path / "podium.conf").write_text(site)
    # Workers run as the test's own user, so they can write the cache in the test's folder.
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
            httpx.get(base + "/", timeout=1)
        except httpx.HTTPError:
            return False
        return True

    eventually_sync(answers, "nginx answers", timeout_s=10, poll_s=0.1)
    try:
        yield base
    finally:
        process.terminate()
        process.wait(10)


async def test_the_cache_tier_absorbs_a_crowd(server: Server, cache_tier: str, tmp_path: Path) -> None:
    async with httpx.AsyncClient(base_url=server.base, timeout=20) as origin:
        space = (await origin.post("/api/spaces", json={"title": "Behind nginx"})).json()
    speaker = await publish(server.base + space["urls"]["whip"], space["host_token"], SampleTrack(tone(440)))
    try:
        await wait_for_media(server, space, 3)
        live = space["urls"]["hls"].replace("index.m3u8", "live.m3u8")
        async with httpx.AsyncClient(base_url=cache_tier, timeout=20) as edge:
            first = await edge.get(live)
            second = await edge.get(live)
            assert first.status_code == second.status_code == 200
            assert second.headers["x-cache-status"] in ("HIT", "UPDATING")
            part = next(
                line.split('URI="')[1].split('"')[0] for line in first.text.splitlines() if "EXT-X-PART:" in line
            )
            part_url = live.replace("live.m3u8", part)
            assert (await edge.get(part_url)).headers["x-cache-status"] == "MISS"
            assert (await edge.get(part_url)).headers["x-cache-status"] == "HIT"

            # 200 players ask at once for the next part's playlist: one origin request serves them all.
            hint = first.text.rsplit('PRELOAD-HINT:TYPE=PART,URI="p', 1)[1].split(".m4s")[0]
            msn, index = (int(x) for x in hint.split("-"))
            answers = await asyncio.gather(
                *(edge.get(live, params={"_HLS_msn": msn + 1, "_HLS_part": index}) for _ in range(200))
            )
            assert all(a.status_code == 200 for a in answers)
            statuses = [a.headers["x-cache-status"] for a in answers]
            assert statuses.count("MISS") == 1, statuses

            # Made-up query strings do not bust the cache.
            busted = [await edge.get(live, params={"junk": secrets.token_hex(4)}) for _ in range(3)]
            assert [b.headers["x-cache-status"] for b in busted][1:] != ["MISS", "MISS"]

            # Writes pass through: a heartbeat is answered by Podium, never from the cache; a flood
            # of other requests from one address meets the per-address limit at the edge.
            beat = await listeners.beat(edge, space["id"], "listener-behind-nginx")
            assert beat.status_code == 200 and "x-cache-status" not in beat.headers
            junk = [await edge.get(f"/api/{secrets.token_hex(4)}") for _ in range(150)]
            limited = [j for j in junk if j.status_code == 429]
            assert limited and {j.status_code for j in junk} == {404, 429}
            assert all(j.headers["retry-after"] == "5" for j in limited)
    finally:
        await speaker.close()


async def test_a_private_space_is_heard_only_through_signed_links_checked_at_the_edge(
    server: Server, cache_tier: str
) -> None:
    from podium.delivery.links import LinkSigner

    async with httpx.AsyncClient(base_url=server.base, timeout=20) as origin:
        space = (await origin.post("/api/spaces", json={"title": "Members only", "private": True})).json()
        host = {"Authorization": f"Bearer {space['host_token']}"}
        assert (await origin.post(f"/api/spaces/{space['id']}/listener-links", json={})).status_code == 401
        link = await origin.post(f"/api/spaces/{space['id']}/listener-links", json={"valid_for_s": 3600}, headers=host)
        assert link.status_code == 201
        signed = link.json()["hls"].replace("index.m3u8", "live.m3u8")
        assert link.json()["page"].endswith(f"#key={link.json()['token']}")
    speaker = await publish(server.base + space["urls"]["whip"], space["host_token"], SampleTrack(tone(440)))
    try:
        async with httpx.AsyncClient(base_url=cache_tier, timeout=20) as edge:

            async def with_parts() -> httpx.Response | None:
                playlist = await edge.get(signed)
                return playlist if "#EXT-X-PART" in playlist.text else None

            playlist = await eventually(with_parts, "the signed playlist lists parts", timeout_s=10, poll_s=0.1)
            assert playlist.status_code == 200
            part = next(
                line.split('URI="')[1].split('"')[0] for line in playlist.text.splitlines() if "EXT-X-PART:" in line
            )
            assert (await edge.get(signed.replace("live.m3u8", part))).status_code == 200
            # Without a link: Podium refuses (a JSON answer that says why).
            unsigned = await edge.get(space["urls"]["hls"].replace("index.m3u8", "live.m3u8"))
            assert unsigned.status_code == 403 and "private" in unsigned.json()["error"]
            # An altered link never reaches Podium: nginx's secure_link answers (an HTML page, not ours).
            nbf, exp, mac, md5 = link.json()["token"].split(".")
            altered = signed.replace(link.json()["token"], f"{nbf}.{int(exp) + 3600}.{mac}.{md5}")
            refused = await edge.get(altered)
            assert refused.status_code == 403 and "nginx" in refused.text
            # An expired link (signed with the instance's own key) is 410 at the edge.
            key_line = (server.data_dir / "link-key.nginx.conf").read_text().split('"')[1]
            signer = LinkSigner(key_line)
            now = int(time.time())
            old = signer.token(space["id"], now - 7200, now - 3600)
            assert (await edge.get(signed.replace(link.json()["token"], old))).status_code == 410
            # A link for later passes the edge and is refused by Podium, which checks not-before.
            early = signer.token(space["id"], now + 3600, now + 7200)
            too_early = await edge.get(signed.replace(link.json()["token"], early))
            assert too_early.status_code == 403 and "not valid yet" in too_early.json()["error"]
            # Joining needs the link too; with it, the answer gives the signed stream.
            path = f"/api/spaces/{space['id']}/join"
            assert (await edge.post(path, json={"client_id": "listener-000001"})).status_code == 403
            joined = await edge.post(path, json={"client_id": "listener-000001", "key": link.json()["token"]})
            assert joined.status_code == 200 and joined.json()["urls"]["hls"] == link.json()["hls"]
            # A burst of joins from one address meets the edge's limit, with a Retry-After.
            answers = [await edge.post(path, json={"client_id": f"burst-{n:06d}"}) for n in range(40)]
            limited = [a for a in answers if a.status_code == 429]
            assert limited and all(a.headers["retry-after"] == "5" for a in limited)
    finally:
        await speaker.close()


async def test_the_edge_keeps_a_nodes_metrics_to_its_operators(server: Server, cache_tier: str) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.get(cache_tier + "/metrics")).status_code == 404
        direct = await client.get(server.base + "/metrics")
        assert direct.status_code == 200 and "podium_listeners" in direct.text
        assert (await client.get(cache_tier + "/readyz")).status_code == 200


async def test_the_edge_caches_each_language_of_a_page_apart(server: Server, cache_tier: str) -> None:
    german = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.8"}
    english = {"Accept-Language": "en-US,en;q=0.9"}
    async with httpx.AsyncClient(base_url=cache_tier, timeout=20) as edge:
        answers = [await edge.get("/", headers=h) for h in (german, english, german, english)]
        asked = await edge.get("/?lang=de", headers=english)
    assert [a.headers["content-language"] for a in answers] == ["de", "en", "de", "en"]
    assert "Einen Live-Space starten" in answers[2].text and "Start a live space" in answers[3].text
    # The second reader of each language is served from the cache, in their language.
    assert [a.headers["x-cache-status"] for a in answers[2:]] == ["HIT", "HIT"]
    assert asked.headers["content-language"] == "de" and "Einen Live-Space starten" in asked.text


async def test_the_edge_keeps_compressed_and_plain_copies_apart(server: Server, cache_tier: str) -> None:
    """A browser that takes gzip gets the compressed copy, one that does not never gets it, even
    when the other put it in the cache; each is a cache hit the second time."""
    space = await create_space(server)
    gzip_ok, plain = {"Accept-Encoding": "gzip, deflate, br"}, {"Accept-Encoding": "identity"}
    async with httpx.AsyncClient(base_url=cache_tier, timeout=20) as edge:
        for path in ("/", space["urls"]["page"], "/static/listen.js", "/static/vendor/hls.js"):
            answers = []
            for headers in (gzip_ok, plain, gzip_ok, plain):
                async with edge.stream("GET", path, headers=headers) as response:
                    answers.append((response, b"".join([chunk async for chunk in response.aiter_raw()])))
            encodings = [response.headers.get("content-encoding") for response, _ in answers]
            assert encodings == ["gzip", None, "gzip", None], (path, encodings)
            assert gzip.decompress(answers[0][1]) == answers[1][1], path
            assert [response.headers["x-cache-status"] for response, _ in answers[2:]] == ["HIT", "HIT"], path
