"""The pages in headless Chromium: a host goes live with a (fake) microphone, a listener hears it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import Server

pytestmark = pytest.mark.browser

TONE_HZ = 660.0


def dominant_frequency(page: Page, analyser: str = "analyser") -> tuple[float, float]:
    """The loudest frequency a page's analyser sees, and its level in dB."""
    result = page.evaluate(
        """(name) => {
          const analyser = window.podium && window.podium[name];
          if (!analyser) return [0, -1000];
          const bins = new Float32Array(analyser.frequencyBinCount);
          analyser.getFloatFrequencyData(bins);
          let best = 0;
          for (let i = 2; i < bins.length; i++) if (bins[i] > bins[best] || best < 2) best = i;
          return [best * analyser.context.sampleRate / analyser.fftSize, bins[best]];
        }""",
        analyser,
    )
    return float(result[0]), float(result[1])


def test_host_goes_live_from_the_console_and_a_listener_hears_the_tone(
    server: Server, browser: Browser, artifacts: Path
) -> None:
    space = httpx.post(server.base + "/api/spaces", json={"title": "Browser check: a 660 Hz tone"}).json()

    host = browser.new_context(viewport={"width": 1000, "height": 900}).new_page()
    problems: list[str] = []
    host.on("console", lambda m: problems.append(f"host: {m.text}") if m.type == "error" else None)
    host.goto(f"{server.base}{space['urls']['host']}#token={space['host_token']}")
    host.get_by_role("button", name="Go live").click()
    expect(host.locator("#status")).to_contain_text("live on stage", timeout=30000)
    expect(host.locator("#state")).to_have_text("live", timeout=10000)

    listener = browser.new_context(viewport={"width": 1000, "height": 800}).new_page()
    listener.on("console", lambda m: problems.append(f"listener: {m.text}") if m.type == "error" else None)
    # Each beat carries the join's pass as a bearer token too: the door serves it as a listener's.
    beats: list[str] = []
    listener.on(
        "request",
        lambda r: beats.append(r.headers.get("authorization", "")) if r.url.endswith("/heartbeat") else None,
    )
    listener.goto(server.base + space["urls"]["page"])
    expect(listener.locator("#state")).to_have_text("live", timeout=20000)
    listener.get_by_role("button", name="Play").click()

    heard = (0.0, -1000.0)
    for _ in range(60):  # up to 30 s for the player to start and the tone to come through
        listener.wait_for_timeout(500)
        heard = dominant_frequency(listener)
        if abs(heard[0] - TONE_HZ) <= 15 and heard[1] > -60:
            break
    assert abs(heard[0] - TONE_HZ) <= 15, f"the listener page heard {heard[0]:.0f} Hz at {heard[1]:.0f} dB"
    assert heard[1] > -60, f"the tone is too faint: {heard[1]:.0f} dB"

    expect(listener.locator("#now")).not_to_have_text("0", timeout=15000)
    expect(host.locator("#now")).not_to_have_text("0", timeout=15000)
    assert int(listener.locator("#now").inner_text()) >= 1
    assert beats and all(beat.startswith("Bearer ") and len(beat) > 20 for beat in beats), beats
    host.wait_for_timeout(500)
    host.screenshot(path=str(artifacts / "host-console.png"), full_page=True)
    listener.screenshot(path=str(artifacts / "listener-page.png"), full_page=True)
    assert host.locator("#meter").get_attribute("aria-valuenow") not in (None, "0")
    assert problems == [], "the pages logged errors (a refused script or style breaks what people see)"


def test_home_page_creates_a_space_and_opens_its_console(server: Server, browser: Browser, artifacts: Path) -> None:
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    page.goto(server.base + "/")
    page.screenshot(path=str(artifacts / "home.png"), full_page=True)
    page.get_by_label("Title").fill("  Made from the <b>home</b> page  ")
    page.get_by_role("button", name="Create space").click()
    page.wait_for_url("**/host/*")
    expect(page.locator("#title")).to_have_text("Made from the <b>home</b> page")  # text, never HTML
    assert page.locator("#title b").count() == 0
    page.goto(server.base + "/")
    page.get_by_label("Title").fill("x" * 200)
    page.evaluate(
        "document.getElementById('title').removeAttribute('maxlength'); document.getElementById('title').value += 'yz'"
    )
    page.get_by_role("button", name="Create space").click()
    expect(page.locator("#error")).to_contain_text("limit is 200")
