"""`podium doctor`: each check's verdicts and fixes from given facts, PODIUM_ICE_SERVERS from the setting
to aiortc and the pages, and the real command against a real `podium serve` on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from podium.app import create_app
from podium.errors import InvalidInput
from podium.media import ice
from podium.media.ice_servers import IceServer, parse_ice_servers
from podium.ops.diagnosis import (
    ClockSync,
    HttpAnswer,
    Result,
    check_clock,
    check_cors,
    check_disk,
    check_host_candidates,
    check_ice_server_names,
    check_ice_servers,
    check_open_files,
    check_public_url,
    check_public_url_reaches,
    check_running,
    check_secret,
    check_udp_round_trip,
    check_writable,
    hours_of_recording,
)
from podium.ops.doctor import udp_round_trip
from podium.settings import Settings
from tests.conftest import Server, free_port

TURN = IceServer("turn", "turn.example.org", 3478, "udp", "alice", "s3cret")
CORS_OK = {"access-control-allow-origin": "*", "access-control-expose-headers": "Location, Link, ETag, Retry-After"}
GIB = 2**30

# -- PODIUM_ICE_SERVERS ------------------------------------------------------------------------


def test_ice_servers_are_read_from_uris_or_json() -> None:
    servers = parse_ice_servers(
        "stun:stun.example.org, turn:alice:s%40cret@turn.example.org:3478?transport=tcp,"
        " turns:bob:pw@turn.example.org:443"
    )
    assert [s.uri for s in servers] == [
        "stun:stun.example.org:3478",
        "turn:turn.example.org:3478?transport=tcp",
        "turns:turn.example.org:443?transport=tcp",
    ]
    assert (servers[1].username, servers[1].credential) == ("alice", "s@cret")
    as_json = parse_ice_servers('[{"urls": ["turn:turn.example.org"], "username": "alice", "credential": "s@cret"}]')
    assert as_json[0].browser_view() == {
        "urls": ["turn:turn.example.org:3478?transport=udp"],
        "username": "alice",
        "credential": "s@cret",
    }
    assert parse_ice_servers("  ") == ()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("turn:turn.example.org:3478", "a TURN server needs a user name and a password"),
        ("http://turn.example.org", "must start with stun:, turn: or turns:"),
        ("stun:stun.example.org:99999", "the port must be a number from 1 to 65535"),
        ("turns:alice:pw@turn.example.org:443?transport=udp", "turns: takes transport=tcp"),
        ("stun:alice:pw@stun.example.org", "a STUN server takes no user name or password"),
        ('[{"username": "alice"}]', "each JSON entry needs urls"),
        ("[not json", "not valid JSON"),
    ],
)
def test_a_wrong_ice_server_is_refused_with_a_clear_message(raw: str, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        Settings.load({"PODIUM_ICE_SERVERS": raw})
    assert message in refused.value.message
    # The message names the entry, never its password.
    assert ":pw@" not in refused.value.message


def test_ice_servers_reach_aiortcs_configuration() -> None:
    settings = Settings.load({"PODIUM_ICE_SERVERS": "stun:127.0.0.1:3478,turn:alice:s3cret@127.0.0.1:3478"})
    try:
        ice.configure("0", settings.ice_server_list())
        configured = ice.rtc_configuration().iceServers or []
        assert [(s.urls, s.username, s.credential) for s in configured] == [
            ("stun:127.0.0.1:3478", None, None),
            ("turn:127.0.0.1:3478?transport=udp", "alice", "s3cret"),
        ]
    finally:
        ice.configure("0")
    assert ice.rtc_configuration().iceServers == []


def test_whip_answers_name_the_servers_as_link_headers() -> None:
    assert TURN.link_header() == (
        '<turn:turn.example.org:3478?transport=udp>; rel="ice-server"; username="alice"; credential="s3cret"; '
        'credential-type="password"'
    )
    assert IceServer("stun", "stun.example.org", 3478).link_header() == '<stun:stun.example.org:3478>; rel="ice-server"'


@pytest.fixture
async def turn_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings.load({"PODIUM_ICE_SERVERS": "turn:alice:s3cret@127.0.0.1:3478"}, data_dir=tmp_path / "data")
    application: Starlette = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://podium.test") as client:
            yield client
    ice.configure("0")


async def test_the_speaker_page_gets_the_servers_with_its_token(turn_client: httpx.AsyncClient) -> None:
    space = (await turn_client.post("/api/spaces", json={"title": "Behind NAT"})).json()
    path = f"/api/spaces/{space['id']}/ice-servers"
    answer = await turn_client.get(path, headers={"Authorization": f"Bearer {space['host_token']}"})
    assert answer.status_code == 200
    assert answer.json() == {
        "ice_servers": [{"urls": ["turn:127.0.0.1:3478?transport=udp"], "username": "alice", "credential": "s3cret"}]
    }
    assert answer.headers["cache-control"] == "no-store"
    # TURN credentials are for the stage's people: a listener without a token gets none.
    anonymous = await turn_client.get(path)
    assert anonymous.status_code == 401 and "s3cret" not in anonymous.text
    # The public space state carries none either.
    assert "s3cret" not in (await turn_client.get(f"/api/spaces/{space['id']}")).text


def test_the_page_hands_the_servers_to_its_peer_connection() -> None:
    script = (Path(__file__).parent.parent / "src/podium/web/static/common.js").read_text()
    assert "new RTCPeerConnection({ iceServers: await api(`/api/spaces/${spaceId}/ice-servers`" in script


# -- The checks, from facts --------------------------------------------------------------------


def test_candidates_loopback_only_in_normal_mode_fails() -> None:
    result = check_host_candidates("0", [], [])
    assert result.status == "fail" and "no speaker on another machine can reach it" in result.found
    assert "PODIUM_ICE_SERVERS" in result.fix
    assert check_host_candidates("1", ["127.0.0.1", "::1"], []).status == "fail"


def test_candidates_private_only_without_turn_warns_of_nat() -> None:
    result = check_host_candidates("0", ["10.0.0.5", "fd00::5"], [])
    assert result.status == "warn" and "behind NAT" in result.found
    assert "PODIUM_ICE_SERVERS=turn:" in result.fix
    assert check_host_candidates("0", ["10.0.0.5"], [TURN]).status == "ok"
    public = check_host_candidates("0", ["203.0.113.9", "8.8.8.8"], [])
    assert public.status == "ok" and "8.8.8.8 (public)" in public.found and "inbound UDP" in public.found


def test_candidates_loopback_mode_says_who_can_connect() -> None:
    result = check_host_candidates("only", ["127.0.0.1"], [])
    assert result.status == "warn" and "only speakers on this machine" in result.found
    assert "unset PODIUM_ICE_LOOPBACK" in result.fix


def test_udp_round_trip_on_loopback_and_blocked() -> None:
    assert udp_round_trip("127.0.0.1") == ""
    assert check_udp_round_trip({"127.0.0.1": ""}).status == "ok"
    blocked = check_udp_round_trip({"127.0.0.1": "", "10.0.0.5": "nothing arrived within 1 s"})
    assert blocked.status == "fail" and "10.0.0.5: nothing arrived" in blocked.found
    assert "allow UDP" in blocked.fix
    # An address this machine does not have cannot be bound: reported, not raised.
    assert udp_round_trip("192.0.2.254") != ""


def test_ice_servers_check() -> None:
    result, servers = check_ice_servers("turn:nobody@turn.example.org", "")
    assert result.status == "fail" and servers == ()
    assert "write the credentials as user:password@host" in result.found and "stun:host:port" in result.fix
    result, servers = check_ice_servers("turn:alice:s3cret@turn.example.org", "https://podium.example.org")
    assert result.status == "warn" and "no turns: entry" in result.found and "turns:user:password@" in result.fix
    assert servers == (TURN,)
    result, _ = check_ice_servers("stun:stun.example.org", "")
    assert result.status == "warn" and "STUN only" in result.found
    result, _ = check_ice_servers("turn:a:b@t1.example.org,turns:a:b@t2.example.org:443,turn:a:b@t3.example.org", "")
    assert result.status == "ok" and "uses the first STUN and the first TURN" in result.found
    assert check_ice_servers("", "https://podium.example.org")[0].status == "ok"


def test_ice_server_names_must_resolve() -> None:
    result = check_ice_server_names({"turn.example.org": ["192.0.2.1"], "turn.example.invalid": "Name unknown"})
    assert result.status == "fail" and "turn.example.invalid (Name unknown)" in result.found
    assert "correct the host name in PODIUM_ICE_SERVERS" in result.fix
    assert check_ice_server_names({"turn.example.org": ["192.0.2.1"]}).status == "ok"


@pytest.mark.parametrize(
    ("url", "addresses", "status", "found", "fix"),
    [
        ("", [], "warn", "root-relative URLs", "PODIUM_PUBLIC_URL=https://"),
        ("podium.example.org", [], "fail", "not an http(s) address", "PODIUM_PUBLIC_URL=https://"),
        ("https://example.org/podium", ["192.0.2.1"], "fail", "has a path (/podium)", "=https://example.org"),
        ("http://podium.example.org", ["192.0.2.1"], "fail", "browsers refuse the microphone", "serve it over TLS"),
        ("https://podium.example.org", "Name unknown", "fail", "does not resolve", "DNS record"),
        ("http://localhost:8000", ["127.0.0.1", "::1"], "ok", "localhost -> 127.0.0.1", ""),
        ("https://podium.example.org/", ["192.0.2.1"], "ok", "podium.example.org -> 192.0.2.1", ""),
    ],
)
def test_public_url_check(url: str, addresses: list[str] | str, status: str, found: str, fix: str) -> None:
    result = check_public_url(url, addresses)
    assert (result.status, found in result.found, fix in result.fix) == (status, True, True)


def test_public_url_reaches_podium_or_says_how_to_check() -> None:
    alive = HttpAnswer("http://127.0.0.1:8000/healthz", 200, body=b'{"alive": true, "node": "a"}')
    assert check_public_url_reaches("http://127.0.0.1:8000", alive, "a").status == "ok"
    other = check_public_url_reaches("http://127.0.0.1:8000", alive, "b")
    assert other.status == "warn" and "answered by node a, not by this node (b)" in other.found
    refused = HttpAnswer("http://127.0.0.1:1/healthz", error="refused")
    closed = check_public_url_reaches("http://127.0.0.1:1", refused, "a")
    assert closed.status == "fail" and "nothing answers at http://127.0.0.1:1/healthz" in closed.found
    assert "PODIUM_PUBLIC_URL" in closed.fix
    site = check_public_url_reaches("http://127.0.0.1:80", HttpAnswer("http://127.0.0.1:80/healthz", 404), "a")
    assert site.status == "fail" and "not as Podium" in site.found
    remote = check_public_url_reaches("https://podium.example.org", None, "a")
    assert remote.status == "skip" and "curl -s https://podium.example.org/healthz" in remote.fix
    assert check_running(HttpAnswer("http://127.0.0.1:8000/healthz", error="refused")).status == "warn"
    assert check_running(alive).status == "ok"


def test_cors_check() -> None:
    url = "http://127.0.0.1:8000/api/spaces/x"
    assert check_cors("API answer", HttpAnswer(url, 404, CORS_OK), ("Location", "Retry-After")).status == "ok"
    stripped = check_cors("API answer", HttpAnswer(url, 200, {}), ())
    assert stripped.status == "fail" and "no Access-Control-Allow-Origin" in stripped.found
    assert "do not hide or override Access-Control-*" in stripped.fix
    partial = {"access-control-allow-origin": "*", "access-control-expose-headers": "Location"}
    hidden = check_cors("API answer", HttpAnswer(url, 200, partial), ("Location", "Retry-After"))
    assert hidden.status == "warn" and "Retry-After not in Access-Control-Expose-Headers" in hidden.found


def test_clock_check() -> None:
    synced = ClockSync("adjtimex", True, 0.016)
    ok = check_clock([synced], {"PostgreSQL": 0.01})
    assert ok.status == "ok" and "within 16 ms" in ok.found
    unsynced = check_clock([ClockSync("adjtimex", False)], {})
    assert unsynced.status == "warn" and "not synchronised" in unsynced.found
    assert "timedatectl set-ntp true" in unsynced.fix and "signed links (not-before, expiry)" in unsynced.fix
    assert check_clock([], {}).status == "warn"
    apart = check_clock([synced], {"Redis": -3.5})
    assert apart.status == "fail" and "differ by 3.5 s" in apart.found


def test_disk_check_shows_hours_left() -> None:
    assert round(hours_of_recording(28_800_000)) == 1  # 64 kb/s is 28.8 MB an hour
    ok = check_disk("data folder", Path("/srv/podium"), 100 * GIB, 2 * GIB)
    assert ok.status == "ok" and "100.0 GiB free, about 3,728 hours of recording" in ok.found
    low = check_disk("data folder", Path("/srv/podium"), 3 * GIB, 2 * GIB)
    assert low.status == "warn"
    full = check_disk("media folder", Path("/srv/media"), GIB, 2 * GIB)
    assert full.status == "fail" and "below the minimum of 2.0 GiB" in full.found
    assert "PODIUM_STORAGE_URL" in full.fix and "recordings stop" in full.fix
    denied = check_writable("data folder", Path("/srv/podium"), "Permission denied", True)
    assert denied.status == "fail" and "chown -R USER /srv/podium" in denied.fix


def test_secret_and_limits_checks() -> None:
    path = Path("/srv/podium/secret")
    assert check_secret(0, 0o600, path, several_nodes=False).status == "ok"
    shared = check_secret(0, 0o644, path, several_nodes=False)
    assert shared.status == "fail" and "mode 0644" in shared.found and shared.fix == "`chmod 600 /srv/podium/secret`"
    nodes = check_secret(0, None, path, several_nodes=True)
    assert nodes.status == "fail" and "same PODIUM_SECRET" in nodes.fix
    assert check_secret(48, None, path, several_nodes=True).status == "ok"
    few = check_open_files(1024, 4096)
    assert few.status == "warn" and "LimitNOFILE=65536" in few.fix
    assert check_open_files(65536, 65536).status == "ok"


# -- The command, against a real server ----------------------------------------------------------


def doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
    environ.update({"PODIUM_ICE_LOOPBACK": "only", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "podium", "doctor", *args], capture_output=True, text=True, env=environ, timeout=60
    )


def by_check(results: list[Result]) -> dict[str, Result]:
    return {r.check: r for r in results}


def parse(stdout: str) -> tuple[bool, dict[str, Result]]:
    answer = json.loads(stdout)
    return answer["ok"], by_check([Result(**r) for r in answer["results"]])


def test_doctor_passes_a_healthy_server(server: Server) -> None:
    done = doctor("--url", server.base, "--data-dir", str(server.data_dir), "--json")
    ok, results = parse(done.stdout)
    assert results["Podium answers"].status == "ok" and "alive" in results["Podium answers"].found
    assert results["CORS: API answer"].status == "ok"
    assert results["CORS: HLS playlist"].status == "ok"
    assert results["UDP for WebRTC: round trip"].status == "ok"
    assert results["Secret"].status == "ok" and "mode 0600" in results["Secret"].found
    assert [r for r in results.values() if r.status == "fail"] == []
    assert (ok, done.returncode) == (True, 0)


def test_doctor_reports_a_broken_config_with_its_fixes(server: Server) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    env = {"PODIUM_PUBLIC_URL": closed, "PODIUM_ICE_SERVERS": "turn:turn.example.org:3478"}
    done = doctor("--url", server.base, "--data-dir", str(server.data_dir), "--min-free-gib", "1e9", env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert f"✗ Public URL reaches Podium: nothing answers at {closed}/healthz" in out
    assert "fix: make PODIUM_PUBLIC_URL the address people reach Podium at" in out
    assert "✗ TURN/STUN (PODIUM_ICE_SERVERS): PODIUM_ICE_SERVERS entry 'turn:turn.example.org:3478'" in out
    assert "a TURN server needs a user name and a password" in out
    assert "✗ Disk: data folder:" in out and "below the minimum" in out
    assert "✓ Podium answers" in out and "✓ CORS: API answer" in out
    assert "failed" in out.splitlines()[-1] and "fix what failed before going live" in out.splitlines()[-1]


def test_doctor_refuses_plain_http_for_a_remote_name_without_contacting_it(tmp_path: Path) -> None:
    done = doctor("--data-dir", str(tmp_path / "data"), "--json", env={"PODIUM_PUBLIC_URL": "http://198.51.100.7"})
    ok, results = parse(done.stdout)
    public = results["Public URL (PODIUM_PUBLIC_URL)"]
    assert public.status == "fail" and "browsers refuse the microphone" in public.found
    assert "PODIUM_PUBLIC_URL=https://198.51.100.7" in public.fix
    assert results["Public URL reaches Podium"].status == "skip"
    assert "not checked from here" in results["Public URL reaches Podium"].found
    assert (ok, done.returncode) == (False, 1)


def test_doctor_reports_settings_podium_serve_would_refuse(tmp_path: Path) -> None:
    done = doctor("--data-dir", str(tmp_path / "data"), env={"PODIUM_LOG_FORMAT": "xml"})
    assert done.returncode == 1
    assert "✗ Settings: PODIUM_LOG_FORMAT must be one of text, json, not 'xml'" in done.stdout
