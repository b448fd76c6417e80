"""Getting in, in Chromium: the waiting room, the puzzle of under-attack mode, the pre-show, and
the host's go/no-go board and switch to the stage."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from podium.testing import eventually_sync
from tests.conftest import Server, free_port

pytestmark = pytest.mark.browser


@pytest.fixture
def slow_door(tmp_path: Path) -> Iterator[Server]:
    """One new listener a second, one at once."""
    srv = Server(
        tmp_path / "data",
        free_port(),
        tmp_path / "podium.log",
        env={"PODIUM_JOIN_RATE_PER_S": "1", "PODIUM_JOIN_BURST": "1"},
    )
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_the_line_the_puzzle_the_preshow_and_the_switch(slow_door: Server, browser: Browser, artifacts: Path) -> None:
    base = slow_door.base
    starts = (datetime.now(UTC) + timedelta(minutes=10)).replace(microsecond=0)
    space = httpx.post(
        f"{base}/api/spaces", json={"title": "The 20:00 interview", "starts_at": starts.isoformat()}
    ).json()
    eventually_sync(
        lambda: httpx.get(f"{base}/api/spaces/{space['id']}").json()["preshow"],
        "the pre-show opened",
        timeout_s=5,
        poll_s=0.1,
    )
    # Two people were quicker: the first is in, the second waits; this browser is third.
    for n in range(2):
        httpx.post(f"{base}/api/spaces/{space['id']}/join", json={"client_id": f"someone-else-{n}"})

    context = browser.new_context(viewport={"width": 1000, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/s/{space['id']}")
    status = page.locator("#status")
    expect(status).to_have_text(re.compile(r"You are number [12] in line"), timeout=10_000)
    expect(page.locator("#play")).to_be_disabled()
    page.screenshot(path=str(artifacts / "waiting-room.png"), full_page=True)
    expect(status).to_contain_text("The pre-show is on", timeout=15_000)
    page.locator("#play").click()
    expect(status).to_have_text("Playing the pre-show. The show starts on the second.", timeout=15_000)
    expect(page.locator("#state")).to_have_text("pre-show")
    expect(page.locator("#seek")).to_be_hidden()  # hold audio is not the show: nothing to rewind or clip
    page.wait_for_function("() => window.podium.analyser !== null", timeout=10_000)
    # The bed swells and fades every 8 s: its loudest moment over 8 s.
    level = page.evaluate(
        """() => new Promise((resolve) => {
            const data = new Float32Array(window.podium.analyser.fftSize);
            let loudest = 0;
            const timer = setInterval(() => {
                window.podium.analyser.getFloatTimeDomainData(data);
                loudest = Math.max(loudest, ...data.map(Math.abs));
            }, 100);
            setTimeout(() => { clearInterval(timer); resolve(loudest); }, 8000);
        })"""
    )
    assert level > 0.02, "the pre-show's hold audio is heard"
    page.screenshot(path=str(artifacts / "preshow.png"), full_page=True)

    # Under attack: a newcomer's browser solves the puzzle by itself and gets in.
    host = {"Authorization": f"Bearer {space['host_token']}"}
    httpx.post(f"{base}/api/spaces/{space['id']}/under-attack", json={"mode": "on"}, headers=host).raise_for_status()
    newcomer = browser.new_context().new_page()
    newcomer.goto(f"{base}/s/{space['id']}")
    expect(newcomer.locator("#status")).to_contain_text("The pre-show is on", timeout=30_000)
    board = httpx.get(f"{base}/api/spaces/{space['id']}/board", headers=host).json()
    assert board["under_attack"] == {"mode": "on", "active": True, "difficulty_bits": 12}
    assert board["joins"]["admitted"] >= 3

    # The host: the board says Ready, the microphone connects backstage, the switch goes on the air.
    console = context.new_page()
    console.goto(f"{base}/host/{space['id']}#token={space['host_token']}")
    expect(console.locator("#verdict")).to_have_text("Ready", timeout=10_000)
    expect(console.locator("#b-stream")).to_have_text("on time")
    expect(console.locator("#golive")).to_have_text("Connect microphone (backstage)")
    console.screenshot(path=str(artifacts / "board.png"), full_page=True)
    console.locator("#golive").click()
    expect(console.locator("#switch")).to_be_visible(timeout=15_000)
    assert httpx.get(f"{base}/api/spaces/{space['id']}").json()["state"] == "scheduled"
    console.locator("#switch").click()
    expect(console.locator("#state")).to_have_text("live", timeout=10_000)
    assert console.locator("#error").text_content() == ""
    expect(page.locator("#state")).to_have_text("live", timeout=15_000)
    expect(status).to_have_text(re.compile("Playing live|Playing, behind live"), timeout=15_000)
    console.screenshot(path=str(artifacts / "board-live.png"), full_page=True)
    context.close()
