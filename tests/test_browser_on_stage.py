"""A listener goes on stage from the listener page, in headless Chromium: a raised hand, the host's
invitation as a toast, the microphone on the stage, self-mute and back to the audience; the stream
never stops playing through it all."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from podium.testing import eventually_sync
from tests.browser_support import Speakers
from tests.conftest import Server
from tests.test_browser_replay import end, wait_until
from tests.test_live_media import create_space, wait_for_media

pytestmark = [pytest.mark.browser, pytest.mark.media]


def on_stage(server: Server, space: dict[str, Any], name: str) -> dict[str, Any] | None:
    stage = httpx.get(f"{server.base}/api/spaces/{space['id']}/stage").json()
    return next((person for person in stage["speakers"] if person["name"] == name), None)


def advances(page: Page) -> None:
    """The listener's stream is playing and moving on (muted or not)."""
    before = float(page.evaluate("audio.currentTime"))
    wait_until(page, f"!audio.paused && audio.currentTime > {before + 1}")


VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_a_listener_invited_up_speaks_from_the_listener_page_and_the_stream_never_stops(
    server: Server, browser: Browser, speakers: Speakers, viewport: str
) -> None:
    space = speakers.run(create_space(server, "Questions from the floor"))
    host_auth = {"Authorization": f"Bearer {space['host_token']}"}
    speakers.speak(server, space["urls"]["whip"], space["host_token"], 440)
    speakers.run(wait_for_media(server, space, 2))

    # Grace listens (her microphone plays a 660 Hz tone) and raises her hand.
    page = browser.new_context(viewport=VIEWPORTS[viewport], is_mobile=viewport == "phone").new_page()
    page.goto(server.base + space["urls"]["page"])
    page.locator("#play").click()
    wait_until(page, "window.podium.playing && !audio.paused && audio.currentTime > 0.5")
    # A phone's lock screen shows the space and its controls.
    assert page.evaluate("[navigator.mediaSession.metadata.title, navigator.mediaSession.playbackState]") == [
        "Questions from the floor",
        "playing",
    ]
    page.evaluate("window.pauses = 0; audio.addEventListener('pause', () => { window.pauses += 1; })")
    page.get_by_label("Your name").fill("Grace")
    page.get_by_role("button", name="Raise your hand").click()
    expect(page.locator("#hand-status")).to_contain_text("Your hand is raised, Grace", timeout=10000)
    page.evaluate("window.scrollTo(0, 0)")  # she scrolled back up to the player

    # The host brings her up: wherever she is on the page, a toast says so.
    hands = httpx.get(f"{server.base}/api/spaces/{space['id']}/hands", headers=host_auth).json()["hands"]
    (hand,) = [h for h in hands if h["name"] == "Grace"]
    httpx.post(
        f"{server.base}/api/spaces/{space['id']}/members/{hand['id']}/accept", headers=host_auth
    ).raise_for_status()
    toast = page.locator("#toast")
    expect(toast).to_be_visible(timeout=10000)
    expect(toast).to_contain_text("The host invites you on stage.")
    box = toast.bounding_box()
    assert box is not None and box["y"] + box["height"] <= VIEWPORTS[viewport]["height"], "the toast is off screen"

    # She joins from the toast: her voice reaches the stage while the stream plays on, muted.
    toast.get_by_role("button", name="Join the stage").click()
    expect(page.locator("#up-status")).to_contain_text("You are on stage", timeout=20000)
    eventually_sync(
        lambda: (on_stage(server, space, "Grace") or {}).get("speaking"), "Grace is heard on stage", timeout_s=20
    )
    assert page.evaluate("audio.muted")
    advances(page)

    # She mutes herself, then goes back to the audience.
    page.get_by_role("button", name="Mute").click()
    expect(page.get_by_role("button", name="Unmute")).to_have_attribute("aria-pressed", "true")
    eventually_sync(lambda: (on_stage(server, space, "Grace") or {}).get("muted"), "Grace is muted", timeout_s=10)
    page.get_by_role("button", name="Leave the stage").click()
    expect(page.locator("#up-status")).to_have_text("You left the stage.")
    eventually_sync(lambda: on_stage(server, space, "Grace") is None, "Grace left the stage", timeout_s=10)
    assert not page.evaluate("audio.muted")
    advances(page)
    assert page.evaluate("window.pauses") == 0, "the stream stopped while she was on stage"

    # Up again, she is on stage when the host ends: her page says it ended, and lets go of the
    # microphone.
    page.get_by_role("button", name="Raise your hand").click()
    expect(page.locator("#hand-status")).to_contain_text("Your hand is raised, Grace", timeout=10000)
    hands = httpx.get(f"{server.base}/api/spaces/{space['id']}/hands", headers=host_auth).json()["hands"]
    (hand,) = [h for h in hands if h["name"] == "Grace"]
    httpx.post(
        f"{server.base}/api/spaces/{space['id']}/members/{hand['id']}/accept", headers=host_auth
    ).raise_for_status()
    expect(toast).to_be_visible(timeout=10000)
    toast.get_by_role("button", name="Join the stage").click()
    expect(page.locator("#up-status")).to_contain_text("You are on stage", timeout=20000)
    microphone = page.evaluate_handle("up.session.stream.getAudioTracks()[0]")
    end(server, space)
    expect(page.locator("#up-status")).to_have_text("The space has ended. Thank you for speaking.", timeout=20000)
    assert page.evaluate("track => track.readyState", microphone) == "ended"

    # She was listening live at the end: her page says the space ended (not "Playing live."), and
    # her next play is the replay, from its start to its end, with nothing live about it.
    expect(page.locator("#status")).not_to_have_text("Playing live.", timeout=20000)
    expect(page.locator("#status")).to_have_text("Press play to hear the replay.", timeout=30000)
    expect(page.locator("#now-stat")).to_be_hidden()
    page.locator("#play").click()
    wait_until(page, "window.podium.playing && !audio.paused && audio.currentTime > 0.5")
    replay = httpx.get(f"{server.base}/api/spaces/{space['id']}/replay").json()
    assert page.evaluate("audio.seekable.start(0)") == pytest.approx(0, abs=0.5)
    assert page.evaluate("audio.duration") == pytest.approx(replay["duration_s"], abs=1.5)


def test_a_speaker_sees_the_audience_on_their_page(server: Server, browser: Browser, speakers: Speakers) -> None:
    """Questions, comments and reactions reach the speaker's own page, as they reach listeners'."""
    space = speakers.run(create_space(server, "Ask the panel"))
    api = f"{server.base}/api/spaces/{space['id']}"
    host_auth = {"Authorization": f"Bearer {space['host_token']}"}
    speakers.speak(server, space["urls"]["whip"], space["host_token"], 440)
    speakers.run(wait_for_media(server, space, 2))
    invite = httpx.post(f"{api}/invites", json={"role": "speaker"}, headers=host_auth).json()

    page = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True).new_page()
    page.goto(server.base + invite["invite_url"].split(server.base)[-1])
    page.get_by_label("Your name, as the audience will see it").fill("Linus")
    page.get_by_role("button", name="Join the stage").click()
    expect(page.locator("#who")).to_contain_text("Linus", timeout=10000)

    credentials = {"username": "ada", "password": "correct horse battery"}
    httpx.post(f"{server.base}/api/accounts", json=credentials).raise_for_status()
    ada = {"Authorization": f"Bearer {httpx.post(f'{server.base}/api/sessions', json=credentials).json()['token']}"}
    for kind, text in (("question", "How did it start?"), ("comment", "Hello from Oslo")):
        body = {"kind": kind, "text": text, "client_id": f"speaker-view-{kind}"}
        httpx.post(f"{api}/posts", json=body, headers=ada).raise_for_status()
    for _ in range(3):
        httpx.post(f"{api}/reactions", json={"emoji": "❤️"}).raise_for_status()

    expect(page.locator("#questions")).to_contain_text("How did it start?", timeout=15000)
    expect(page.locator("#comments")).to_contain_text("Hello from Oslo", timeout=15000)
    expect(page.locator('.reaction[data-emoji="❤️"] .count')).to_have_text("3", timeout=15000)
    # Shown, not joined: a speaker neither votes nor reacts from here.
    assert page.locator("#questions button, #reactions button").count() == 0
