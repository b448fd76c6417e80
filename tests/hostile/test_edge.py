"""The HTTP edge against a hostile stranger, on a real `podium serve` (issue 17, rows 5, 6, 12, 13,
17, 19): slow bodies, stage capacity, puzzle answers handed around, malformed playlist directives
and cache-busting names, oversized heads, clients that hang up mid-body, forged X-Forwarded-For.

Each test runs the attack over loopback sockets and checks what a person would see: the status
and message, a count that stops at its limit, a log without tracebacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from podium.admission.tickets import leading_zero_bits, pow_digest
from podium.testing import eventually
from tests.conftest import Server, free_port

# Generous bounds on waiting, so that a test never hangs; nothing here asserts how fast anything is.
PATIENCE_S = 20.0


@contextlib.contextmanager
def serving(tmp_path: Path, env: dict[str, str]) -> Iterator[Server]:
    srv = Server(tmp_path / "data", free_port(), tmp_path / "podium.log", env=env)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def client(server: Server, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """An HTTP client whose requests come from `address` (any of 127.0.0.0/8 is this machine)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=server.base, transport=transport, timeout=PATIENCE_S)


async def metrics(server: Server, address: str = "127.0.0.9") -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with client(server, address) as c:
        response = await c.get("/metrics")
    assert response.status_code == 200
    families = text_string_to_metric_families(response.text)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def sample(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def until(check: Any, what: str) -> None:
    """Waits (bounded) until `await check()` is true."""
    await eventually(check, what, timeout_s=PATIENCE_S)


async def create_space(server: Server, **extra: Any) -> dict[str, Any]:
    async with client(server, "127.0.0.8") as c:
        response = await c.post("/api/spaces", json={"title": "Hostile edge", **extra})
    assert response.status_code == 201, response.text
    space: dict[str, Any] = response.json()
    return space


class RawRequest:
    """One request written by hand on its own socket: a head, then as much of a body as we like."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(
        cls, server: Server, method: str, path: str, headers: dict[str, str], address: str = "127.0.0.1"
    ) -> RawRequest:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port, local_addr=(address, 0))
        head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        await writer.drain()
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self) -> bytes:
        """Everything the server sends until it closes (bounded wait)."""
        return await asyncio.wait_for(self.reader.read(), PATIENCE_S)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def slow_body(length: int = 4000) -> dict[str, str]:
    return {"Content-Type": "application/json", "Content-Length": str(length)}


# -- row 5: slow bodies, and stage capacity for strangers -----------------------------------------


async def test_a_trickling_body_is_cut_at_the_body_deadline_with_a_408(tmp_path: Path) -> None:
    with serving(tmp_path, {"PODIUM_BODY_TIMEOUT_S": "1.5"}) as server:
        space = await create_space(server)
        # The host's own moderation call (a stage request, never shed), its body a byte at a time.
        headers = {**slow_body(), "Authorization": f"Bearer {space['host_token']}"}
        request = await RawRequest.open(server, "POST", f"/api/spaces/{space['id']}/moderation", headers)

        async def trickle() -> None:
            for _ in range(200):
                # Real time on purpose: a body trickling in against a `podium serve` subprocess's
                # body deadline, which is the behaviour under test.
                await asyncio.sleep(0.3)
                with contextlib.suppress(ConnectionError):
                    await request.send(b" ")

        dripping = asyncio.create_task(trickle())
        try:
            answer = await request.answer()
        finally:
            dripping.cancel()
            await request.close()
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer[:200]
        assert answer.endswith(b"The request body did not arrive within 1.5 seconds.\n")
        assert sample(await metrics(server), "podium_connections_cut_total", reason="body_timeout") == 1

        async def released() -> bool:  # the scrape itself is the one request in the works
            return sample(await metrics(server), "podium_requests_in_flight") == 1

        await until(released, "the cut request ended")


async def test_strangers_slow_bodies_on_stage_routes_are_shed_and_the_host_is_served(tmp_path: Path) -> None:
    env = {"PODIUM_MAX_IN_FLIGHT": "8", "PODIUM_BODY_TIMEOUT_S": "60", "PODIUM_MAX_LAG_MS": "10000"}
    with serving(tmp_path, env) as server:
        space = await create_space(server)
        path = f"/api/spaces/{space['id']}/moderation"
        before = await metrics(server)

        def handled(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> float:
            return sum(
                sample(samples, name, **{"class": "other"}) - sample(before, name, **{"class": "other"})
                for name in ("podium_requests_served_total", "podium_requests_shed_total")
            )

        # Eight strangers' moderation calls (no token), each holding its body back after one byte.
        held: list[RawRequest] = []
        try:
            for n in range(8):
                request = await RawRequest.open(server, "POST", path, slow_body())
                await request.send(b"{")
                held.append(request)

                async def seen(count: int = n + 1) -> bool:
                    return handled(await metrics(server)) == count

                await until(seen, f"the door saw stranger {n + 1}")
            during = await metrics(server)
            # Served as strangers (OTHER), not as the stage: half the node's capacity, then shed.
            shed_now = sample(during, "podium_requests_shed_total", **{"class": "other"})
            assert shed_now - sample(before, "podium_requests_shed_total", **{"class": "other"}) == 4
            assert sample(during, "podium_requests_in_flight") == 4 + 1  # four held, and this scrape
            shed = [await asyncio.wait_for(r.reader.readuntil(b"\r\n\r\n"), PATIENCE_S) for r in held[4:]]
            assert all(head.startswith(b"HTTP/1.1 503 ") for head in shed)
            # The host, with its token, is the stage: served while strangers are shed.
            async with client(server, "127.0.0.7") as host:
                answer = await host.post(
                    path, json={"slow_mode_s": 5}, headers={"Authorization": f"Bearer {space['host_token']}"}
                )
                assert answer.status_code == 200, answer.text
                stranger = await host.post(f"/api/spaces/{space['id']}/end", json={})
                assert stranger.status_code == 503 and "very busy" in stranger.json()["error"]
        finally:
            for request in held:
                await request.close()

        async def released() -> bool:
            return sample(await metrics(server), "podium_requests_in_flight") == 1

        await until(released, "the held requests ended when their clients went away")


async def test_one_address_holds_at_most_its_share_of_requests(tmp_path: Path) -> None:
    env = {"PODIUM_MAX_IN_FLIGHT_PER_ADDRESS": "3", "PODIUM_BODY_TIMEOUT_S": "60"}
    with serving(tmp_path, env) as server:
        held: list[RawRequest] = []
        try:
            for _ in range(3):
                request = await RawRequest.open(server, "POST", "/api/spaces", slow_body())
                await request.send(b"{")
                held.append(request)

            async def three_held() -> bool:
                return sample(await metrics(server), "podium_requests_in_flight") == 3 + 1

            await until(three_held, "three slow requests in the works")
            # The fourth from the same address is refused at once, however small.
            async with client(server, "127.0.0.1") as same:
                refused = await same.post("/api/spaces", json={"title": "x"})
                assert refused.status_code == 429
                assert refused.json()["error"].startswith("too many requests at once from your network (at most 3)")
                assert refused.headers["retry-after"] == "1"
                # Listening is not counted: the audience behind one address reads the stream.
                assert (await same.get("/api/spaces/abcdefghijkl")).status_code in (404, 200)
            # Another address is served as usual.
            async with client(server, "127.0.0.2") as other:
                created = await other.post("/api/spaces", json={"title": "Somebody else"})
                assert created.status_code == 201
            after = await metrics(server)
            assert sample(after, "podium_requests_refused_per_address_total", **{"class": "other"}) == 1
        finally:
            for request in held:
                await request.close()


# -- row 17: a client that hangs up mid-body ---------------------------------------------------


async def test_a_client_that_hangs_up_mid_body_leaves_no_traceback(tmp_path: Path) -> None:
    with serving(tmp_path, {}) as server:
        space = await create_space(server)
        hosts = {**slow_body(), "Authorization": f"Bearer {space['host_token']}"}
        for n in range(5):
            stage = await RawRequest.open(server, "POST", f"/api/spaces/{space['id']}/moderation", hosts)
            await stage.send(b'{"slow_mode_s": 5' + b" " * 100)
            stranger = await RawRequest.open(server, "POST", "/api/spaces", slow_body())
            await stranger.send(b'{"title": "' + b"x" * 100)
            await stage.close()
            await stranger.close()

            async def abandoned(count: int = n + 1) -> bool:
                samples = await metrics(server)
                return all(
                    sample(samples, "podium_requests_abandoned_total", **{"class": kind}) == count
                    for kind in ("stage", "other")
                )

            await until(abandoned, f"{n + 1} requests of each class abandoned")
        log = server.log_path.read_text()
        assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-3000:]
        assert sample(await metrics(server), "podium_requests_in_flight") == 1


# -- row 13: oversized request heads ----------------------------------------------------------


async def raw_exchange(server: Server, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), PATIENCE_S)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def rss_kib(server: Server) -> int:
    assert server.process is not None
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


async def test_oversized_request_heads_are_refused_and_cost_no_memory(tmp_path: Path) -> None:
    with serving(tmp_path, {}) as server:
        start = "GET /api/spaces HTTP/1.1\r\nHost: x\r\n"
        # Within the limits (16 KiB in all, 8 KiB a line): served.
        fine = start + "".join(f"X-Pad-{n}: {'a' * 1000}\r\n" for n in range(12)) + "Connection: close\r\n\r\n"
        assert (await raw_exchange(server, fine.encode())).startswith(b"HTTP/1.1 200 ")
        # Twenty 1 KB headers: each fine, the head too large.
        many = start + "".join(f"X-Pad-{n}: {'a' * 1000}\r\n" for n in range(20)) + "\r\n"
        answer = await raw_exchange(server, many.encode())
        assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), answer[:200]
        assert answer.endswith(b"The request headers are larger than 16384 bytes.\n")
        # One header longer than a line may be.
        long_line = start + f"Cookie: {'c' * 9000}\r\n\r\n"
        answer = await raw_exchange(server, long_line.encode())
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert answer.endswith(b"A request header is longer than 8192 bytes.\n")
        # A request line longer than a line may be.
        answer = await raw_exchange(server, f"GET /{'u' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 414 "), answer[:200]
        assert answer.endswith(b"The request's address is longer than 8192 bytes.\n")

        # The attack: twelve connections, each sending 20 MB of one header. Each is cut early.
        before = rss_kib(server)

        async def flood() -> int:
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            sent = 0
            try:
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
                chunk = b"b" * 65536
                while sent < 20 * 1024 * 1024:
                    writer.write(chunk)
                    await writer.drain()
                    sent += len(chunk)
            except ConnectionError:
                pass
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()
            return sent

        sent = await asyncio.gather(*(flood() for _ in range(12)))
        assert all(s < 20 * 1024 * 1024 for s in sent), "a connection took 20 MB of headers"
        grown_mib = (rss_kib(server) - before) / 1024
        assert grown_mib < 40, f"the server grew by {grown_mib:.0f} MiB"
        cut = sample(await metrics(server), "podium_connections_cut_total", reason="head_too_large")
        assert cut >= 13  # the one above and the twelve
        async with client(server) as c:
            assert (await c.get("/api/spaces")).status_code == 200


# -- row 12: playlist directives and file names ------------------------------------------------


async def test_malformed_playlist_directives_get_a_400_and_aliases_of_files_a_404(tmp_path: Path) -> None:
    with serving(tmp_path, {}) as server:
        space = await create_space(server, starts_at=(datetime.now(UTC) + timedelta(minutes=5)).isoformat())
        hls = f"/hls/{space['id']}"
        async with client(server) as c:

            async def playing() -> bool:
                response = await c.get(f"{hls}/live.m3u8")
                return response.status_code == 200 and "#EXT-X-PART:" in response.text

            await until(playing, "the pre-show's stream has parts")

            async def segmented() -> bool:
                return "#EXTINF:" in (await c.get(f"{hls}/live.m3u8")).text

            await until(segmented, "the pre-show's stream has a whole segment")
            for query in (
                "_HLS_msn=%C2%B2",  # a superscript two
                "_HLS_msn=0&_HLS_part=%C2%B9",  # a superscript one
                "_HLS_msn=" + "9" * 5000,
                "_HLS_msn=%D9%A1",  # Arabic-Indic one
                "_HLS_msn=-1",
                "_HLS_msn=01",
                "_HLS_msn=1e3",
            ):
                answer = await c.get(f"{hls}/live.m3u8?{query}")
                assert answer.status_code == 400, (query[:40], answer.status_code, answer.text[:200])
                assert "must be a whole number in the digits 0-9" in answer.json()["error"]
            playlist = (await c.get(f"{hls}/live.m3u8")).text
            part = next(line for line in playlist.splitlines() if line.startswith("#EXT-X-PART:"))
            name = part.split('URI="')[1].split('"')[0]
            msn, index = name[1:-4].split("-")
            assert (await c.get(f"{hls}/{name}")).status_code == 200
            arabic = "".join(chr(0x660 + int(d)) for d in msn)
            for alias in (f"p0{msn}-{index}.m4s", f"p{msn}-0{index}.m4s", f"p{arabic}-{index}.m4s", f"{name}%0A"):
                answer = await c.get(f"{hls}/{alias}")
                assert answer.status_code == 404, (alias, answer.status_code)
            lines = playlist.splitlines()
            segment = next(lines[i + 1] for i, line in enumerate(lines) if line.startswith("#EXTINF:"))
            number = segment[1:-4]
            assert (await c.get(f"{hls}/{segment}")).status_code == 200
            arabic = "".join(chr(0x660 + int(d)) for d in number)
            for alias in (f"s0000{number}.m4s", f"s{arabic}.m4s", f"{segment}%0A", f"s+{number}.m4s"):
                answer = await c.get(f"{hls}/{alias}")
                assert answer.status_code == 404, (alias, answer.status_code)
        log = server.log_path.read_text()
        assert "Traceback" not in log, log[-3000:]


# -- row 6: puzzle answers handed around ----------------------------------------------------------


async def test_a_puzzle_answer_admits_once_and_its_pass_stays_with_its_network(tmp_path: Path) -> None:
    with serving(tmp_path, {}) as server:
        space = await create_space(server)
        join = f"/api/spaces/{space['id']}/join"
        async with client(server, "127.0.0.8") as host:
            switched = await host.post(
                f"/api/spaces/{space['id']}/under-attack",
                json={"mode": "on"},
                headers={"Authorization": f"Bearer {space['host_token']}"},
            )
            assert switched.status_code == 200
        me = "replayer-" + secrets.token_hex(4)
        async with client(server, "127.0.0.1") as first:
            puzzle = (await first.post(join, json={"client_id": me})).json()
            token, bits = puzzle["challenge"], puzzle["difficulty_bits"]
            counter = next(n for n in itertools.count() if leading_zero_bits(pow_digest(token, n)) >= bits)
            answer = {"client_id": me, "challenge": token, "counter": counter}
            admitted = await first.post(join, json=answer)
            assert admitted.status_code == 200 and admitted.json()["admitted"]
            solved = admitted.json()["solved"]

        # The same answer from thirty other addresses (and once more from the first): none gets in.
        async def replay(address: str) -> httpx.Response:
            async with client(server, address) as other:
                return await other.post(join, json=answer)

        replays = await asyncio.gather(*(replay(f"127.0.0.{n}") for n in range(1, 32)))
        assert [r.status_code for r in replays] == [409] * 31
        assert all("already used" in r.json()["error"] for r in replays)

        # The pass the answer earned works from where it was earned, and nowhere else.
        async with client(server, "127.0.0.1") as first:
            again = await first.post(join, json={"client_id": me, "solved": solved})
            assert again.status_code == 200 and "challenge" not in again.json()
        elsewhere = []
        for n in range(2, 12):
            async with client(server, f"127.0.0.{n}") as other:
                elsewhere.append(await other.post(join, json={"client_id": me, "solved": solved}))
        assert [r.status_code for r in elsewhere] == [403] * 10
        assert all("another network" in r.json()["error"] for r in elsewhere)


# -- row 19: a client-chosen X-Forwarded-For -----------------------------------------------------


async def join_from(server: Server, space_id: str, forwarded_for: str) -> httpx.Response:
    async with client(server) as c:
        return await c.post(
            f"/api/spaces/{space_id}/join",
            json={"client_id": "listener-" + secrets.token_hex(4)},
            headers={"X-Forwarded-For": forwarded_for},
        )


@pytest.mark.parametrize(
    ("trusted", "hops"),
    [
        ("*", ""),  # believes whoever connects, for one hop
        ("127.0.0.1,::1,198.51.100.200", ", 198.51.100.200"),  # a second proxy between client and nginx
    ],
)
async def test_a_forged_leftmost_forwarded_address_does_not_escape_the_per_address_limit(
    tmp_path: Path, trusted: str, hops: str
) -> None:
    env = {"PODIUM_FORWARDED_ALLOW_IPS": trusted, "PODIUM_JOIN_LIMIT_PER_ADDRESS": "3/minute"}
    with serving(tmp_path, env) as server:
        space = await create_space(server)
        # What nginx's $proxy_add_x_forwarded_for passes on: the client's own header, then its address.
        answers = [await join_from(server, space["id"], f"203.0.113.{n}, 198.51.100.7{hops}") for n in range(5)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
        assert "too many joins from your network" in answers[3].json()["error"]
        # Another client behind the same proxy has its own allowance.
        other = await join_from(server, space["id"], f"203.0.113.1, 198.51.100.8{hops}")
        assert other.status_code == 200


def test_every_per_address_limit_counts_an_ipv6_client_as_its_64() -> None:
    # One home or site gets a whole /64: a client that picks a new address for each request is
    # still one address for the limits on spaces, guests, joins, posts, sign-ups and reactions.
    from starlette.requests import Request

    from podium.web.accounts_api import client_address

    def seen_as(host: str) -> str:
        return client_address(Request({"type": "http", "client": (host, 50_000), "headers": []}))

    assert seen_as("2001:db8:5:6::1") == seen_as("2001:db8:5:6:ffff:ffff:ffff:fffe") == "2001:db8:5:6::/64"
    assert seen_as("2001:db8:5:7::1") != seen_as("2001:db8:5:6::1")
    assert seen_as("::ffff:198.51.100.7") == seen_as("198.51.100.7") == "198.51.100.7"
