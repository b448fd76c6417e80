"""The stage in headless Chromium: a host (440 Hz) and an invited speaker (660 Hz), each with a
microphone of their own, hear each other; a listener hears both; the stage shows who speaks."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, Playwright, expect

from tests.browser_support import launch, write_tone_wav
from tests.conftest import Server
from tests.test_browser import dominant_frequency

pytestmark = pytest.mark.browser


def level_at(page: Page, analyser: str, hz: float) -> float:
    """The analyser's level in dB at `hz` (the loudest bin within ±15 Hz)."""
    return float(
        page.evaluate(
            """([name, hz]) => {
              const analyser = window.podium && window.podium[name];
              if (!analyser) return -1000;
              const bins = new Float32Array(analyser.frequencyBinCount);
              analyser.getFloatFrequencyData(bins);
              const width = analyser.context.sampleRate / analyser.fftSize;
              let best = -1000;
              const last = Math.ceil((hz + 15) / width);
              for (let i = Math.floor((hz - 15) / width); i <= last; i++) best = Math.max(best, bins[i]);
              return best;
            }""",
            [analyser, hz],
        )
    )


def hears(page: Page, analyser: str, hz: float, attempts: int = 60) -> tuple[float, float]:
    heard = (0.0, -1000.0)
    for _ in range(attempts):
        page.wait_for_timeout(500)
        heard = dominant_frequency(page, analyser)
        if abs(heard[0] - hz) <= 15 and heard[1] > -60:
            break
    return heard


def test_host_and_invited_speaker_hear_each_other_and_the_audience_hears_both(
    server: Server, playwright: Playwright, tmp_path: Path, artifacts: Path
) -> None:
    write_tone_wav(tmp_path / "host.wav", 440)
    write_tone_wav(tmp_path / "guest.wav", 660)
    host_browser = launch(playwright, tmp_path / "host.wav")
    guest_browser = launch(playwright, tmp_path / "guest.wav")
    try:
        space = httpx.post(server.base + "/api/spaces", json={"title": "Two voices, one stage"}).json()
        host = host_browser.new_context(viewport={"width": 1000, "height": 1300}).new_page()
        host.goto(f"{server.base}{space['urls']['host']}#token={space['host_token']}")
        host.get_by_role("button", name="Go live").click()
        expect(host.locator("#status")).to_contain_text("live on stage", timeout=30000)

        host.get_by_role("button", name="Invite a speaker").click()
        expect(host.locator("#invite-link")).to_contain_text("/join/")
        invite_link = host.locator("#invite-link").inner_text()

        guest = guest_browser.new_context(viewport={"width": 1000, "height": 1000}).new_page()
        guest.goto(invite_link)
        guest.get_by_label("Your name").fill("Grace")
        guest.get_by_role("button", name="Join the stage").click()
        guest.get_by_role("button", name="Go live").click()
        expect(guest.locator("#status")).to_contain_text("live on stage", timeout=30000)

        # Each hears the other and not themselves.
        host_hears = hears(host, "returnAnalyser", 660)
        assert abs(host_hears[0] - 660) <= 15, f"the host hears {host_hears[0]:.0f} Hz at {host_hears[1]:.0f} dB"
        guest_hears = hears(guest, "returnAnalyser", 440)
        assert abs(guest_hears[0] - 440) <= 15, f"the guest hears {guest_hears[0]:.0f} Hz at {guest_hears[1]:.0f} dB"
        host.wait_for_timeout(1000)
        own, other = level_at(host, "returnAnalyser", 440), level_at(host, "returnAnalyser", 660)
        assert own < other - 20, f"the host hears their own voice at {own:.0f} dB against {other:.0f} dB"

        # The audience hears both.
        listener = host_browser.new_context(viewport={"width": 1000, "height": 1200}).new_page()
        listener.goto(server.base + space["urls"]["page"])
        expect(listener.locator("#state")).to_have_text("live", timeout=20000)
        listener.get_by_role("button", name="Play").click()
        both = False
        for _ in range(60):
            listener.wait_for_timeout(500)
            if level_at(listener, "analyser", 440) > -60 and level_at(listener, "analyser", 660) > -60:
                both = True
                break
        assert both, "the listener page does not hear both speakers"

        # Everyone sees both on stage, speaking.
        for page in (host, guest, listener):
            expect(page.locator("#stage li.speaking")).to_have_count(2, timeout=15000)
        expect(host.locator("#stage")).to_contain_text("Grace")
        host.screenshot(path=str(artifacts / "stage-host-console.png"), full_page=True)
        guest.screenshot(path=str(artifacts / "stage-speaker-view.png"), full_page=True)
        listener.screenshot(path=str(artifacts / "stage-listener-page.png"), full_page=True)

        # A listener raises a hand; the host brings them up; their page offers the way on stage.
        listener.get_by_label("Your name").fill("Linus")
        listener.get_by_role("button", name="Raise your hand").click()
        expect(listener.locator("#hand-status")).to_contain_text("Your hand is raised, Linus")
        expect(host.locator("#hands")).to_contain_text("Linus", timeout=10000)
        host.locator("#hands li", has_text="Linus").get_by_role("button", name="Bring up").click()
        expect(listener.locator("#toast")).to_contain_text("The host invites you on stage.", timeout=10000)
        expect(listener.get_by_role("button", name="Join the stage").first).to_be_visible()
        expect(host.locator("#stage")).to_contain_text("Linus")

        # The host moves Grace to the audience: her page says so and the stage shows one speaker.
        host.locator("#stage li", has_text="Grace").get_by_role("button", name="To audience").click()
        expect(host.locator("#stage li")).to_have_count(2, timeout=10000)
        expect(host.locator("#stage")).not_to_contain_text("Grace")
        expect(guest.locator("#controls")).to_be_hidden(timeout=10000)
    finally:
        host_browser.close()
        guest_browser.close()
