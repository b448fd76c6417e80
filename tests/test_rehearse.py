"""`podium rehearse` against a real local server: a verdict, a JSON report, counts that add up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from podium.ops.rehearse import Plan, parse_target
from podium.testing.whip_client import SampleTrack, publish, tone
from tests.conftest import Server
from tests.test_live_media import create_space, wait_for_media


def rehearse(server: Server, space_id: str, report: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "podium", "rehearse", f"{server.base}/s/{space_id}", "--report", str(report), *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.media
async def test_a_rehearsal_of_a_live_space_says_go_and_writes_its_report(server: Server, tmp_path: Path) -> None:
    space = await create_space(server, "Dress rehearsal")
    speaker = await publish(server.base + space["urls"]["whip"], space["host_token"], SampleTrack(tone(440)))
    await wait_for_media(server, space, 3)
    report_path = tmp_path / "report.json"
    args = ("--listeners", "40", "--peak-joins-per-s", "20", "--flood", "10", "--slow", "3", "--stay", "3")
    run = rehearse(server, space["id"], report_path, *args, "--host-token", space["host_token"])
    await speaker.close()
    assert run.returncode == 0, run.stdout + run.stderr
    assert "VERDICT: GO" in run.stdout and "joins [" in run.stderr  # a progress bar while it runs
    report = json.loads(report_path.read_text())
    assert report["verdict"] == "GO" and report["reasons"] == []
    assert report["joins"] == {"attempted": 40, "succeeded": 40, "success": 1.0, "failures": {}}
    ttfa = report["time_to_first_audio_s"]
    assert 0 < ttfa["p50"] <= ttfa["p95"] <= ttfa["p99"]
    requests = report["requests"]
    # Every listener asked for the space and joined, then two playlists, the init section and a part.
    assert requests["join"] == {"200": 80} and requests["media"] == {"200": 80}
    assert requests["playlist"]["200"] >= 80 and requests["heartbeat"]["200"] >= 40
    # The flood was refused for what it is: forged tokens (401/403), random paths (404), replayed
    # tickets (409, when a listener had to wait); never a 5xx.
    assert report["flood"]["sent"] > 0
    assert set(requests["flood"]) <= {"401", "403", "404", "409"}
    assert sum(requests["flood"].values()) == report["flood"]["sent"]
    assert report["legitimate_5xx"] == {"join": 0, "playlist": 0, "media": 0, "heartbeat": 0}
    assert report["origin_answers_per_s"]["max"] > 0
    # The verdict is on the host's board.
    assert "host's go/no-go board" in run.stdout
    async with httpx.AsyncClient(base_url=server.base) as client:
        board = await client.get(
            f"/api/spaces/{space['id']}/board", headers={"Authorization": f"Bearer {space['host_token']}"}
        )
    last = board.json()["last_rehearsal"]
    assert last["verdict"] == "GO" and last["listeners"] == 40 and last["success"] == 1.0


async def test_a_space_that_is_not_live_gets_a_no_go_with_the_reason(server: Server, tmp_path: Path) -> None:
    async with httpx.AsyncClient(base_url=server.base) as client:
        space = (await client.post("/api/spaces", json={"title": "Not yet"})).json()
    run = rehearse(
        server, space["id"], tmp_path / "r.json", "--listeners", "5", "--peak-joins-per-s", "10", "--stay", "1"
    )
    assert run.returncode == 1
    assert "VERDICT: NO-GO" in run.stdout and "joins succeeded 0.0%" in run.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["joins"]["failures"] == {"the space is not live": 5}


def test_bad_targets_are_refused_before_any_traffic(tmp_path: Path) -> None:
    for args, message in (
        (["ftp://example/s/abc"], "not an http"),
        (["http://127.0.0.1:9/"], "--space"),
        (["http://127.0.0.1:9/s/abc", "--listeners", "0"], "--listeners"),
    ):
        run = subprocess.run(
            [sys.executable, "-m", "podium", "rehearse", *args, "--report", str(tmp_path / "x.json")],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert run.returncode == 2 and message in run.stderr, run.stderr
        assert not (tmp_path / "x.json").exists()


def test_targets_and_the_flash_crowd_curve() -> None:
    assert parse_target("https://podium.example/s/abc123", None) == ("https://podium.example", "abc123")
    assert parse_target("http://127.0.0.1:8000", "xyz") == ("http://127.0.0.1:8000", "xyz")
    times = Plan("http://x", "s", 300, peak_joins_per_s=30).join_times()
    assert len(times) == 300 and times == sorted(times) and times[0] == 0
    # The rate climbs: the first tenth of the joins takes longer than the last tenth; the end holds the peak.
    assert times[30] - times[0] > times[-1] - times[-31]
    assert times[-1] - times[-31] == pytest.approx(30 / 30, rel=0.01)
