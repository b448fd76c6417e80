"""The host console as a host uses it, in headless Chromium (desktop and phone): ready before going
live, self-mute that silences the host in the program, raised hands that alert, "mute everyone
else", a share sheet that copies the link, and an end that lets go of the microphone."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from podium.testing import eventually_sync
from tests.browser_support import Speakers
from tests.conftest import Server
from tests.test_live_media import create_space, dominant_hz, listen_with_ffmpeg, rms

pytestmark = [pytest.mark.browser, pytest.mark.media]

VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


def program(speakers: Speakers, server: Server, space: dict[str, Any]) -> tuple[float, float]:
    """Two seconds of what listeners hear now: its level (RMS) and loudest frequency."""
    audio = speakers.run(listen_with_ffmpeg(server.base + space["urls"]["hls"], 2.0))
    return rms(audio), dominant_hz(audio)


def member(server: Server, space: dict[str, Any], name: str) -> dict[str, Any]:
    stage = httpx.get(f"{server.base}/api/spaces/{space['id']}/stage").json()
    return next((person for person in stage["speakers"] if person["name"] == name), {})


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_host_runs_the_space_from_the_console(
    server: Server, browser: Browser, speakers: Speakers, viewport: str, artifacts: Any
) -> None:
    space = speakers.run(create_space(server, "Hosting made plain"))
    auth = {"Authorization": f"Bearer {space['host_token']}"}
    api = f"{server.base}/api/spaces/{space['id']}"
    context = browser.new_context(viewport=VIEWPORTS[viewport], is_mobile=viewport == "phone")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base)
    page: Page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # "End this space for everyone?"
    page.goto(f"{server.base}{space['urls']['host']}#token={space['host_token']}")

    # Before going live: ready, in words for a host; the operations view is folded away.
    expect(page.locator("#readiness")).to_have_text(
        "Ready when you are: listeners get in as soon as you go live.", timeout=10000
    )
    expect(page.locator("#state")).to_have_text("not live yet")  # made to start now: not "scheduled"
    expect(page.locator("#board-card")).not_to_have_attribute("open", "")
    expect(page.locator("#b-load")).to_be_hidden()

    # The host gives their name and goes live; their microphone (a 660 Hz tone) is what listeners hear.
    page.get_by_label("Your name").fill("Ada")
    page.get_by_role("button", name="Go live").click()
    expect(page.locator("#status")).to_have_text("You are live on stage.", timeout=20000)
    on_air = lambda: program(speakers, server, space)[1] == pytest.approx(660, abs=15)  # noqa: E731
    eventually_sync(on_air, "the host on air", timeout_s=30)

    # Self-mute silences the host in the program; unmuting brings them back.
    page.get_by_role("button", name="Mute me").click()
    expect(page.get_by_role("button", name="Unmute me")).to_have_attribute("aria-pressed", "true")
    assert member(server, space, "Ada")["muted"] is True
    eventually_sync(lambda: program(speakers, server, space)[0] < 0.005, "the muted host is silent", timeout_s=30)
    page.get_by_role("button", name="Unmute me").click()
    eventually_sync(lambda: program(speakers, server, space)[0] > 0.05, "the host is heard again", timeout_s=30)

    # A raised hand alerts the host wherever they are: a toast, a count on the heading and the tab.
    guest = httpx.post(f"{api}/guests", json={"name": "Grace"}).json()
    httpx.post(f"{api}/hand", headers={"Authorization": f"Bearer {guest['token']}"}).raise_for_status()
    expect(page.locator("#toast")).to_contain_text("Grace raised a hand.", timeout=10000)
    expect(page.locator("#hands-count")).to_have_text("1")
    expect(page).to_have_title("(1) Hosting made plain — host console")
    page.get_by_role("button", name="See raised hands").click()
    expect(page.get_by_role("button", name="Bring up")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#hands-count")).to_be_hidden(timeout=10000)

    # Grace speaks; "mute everyone else" mutes her and not the host.
    speakers.speak(server, space["urls"]["whip"], guest["token"], 440)
    eventually_sync(lambda: member(server, space, "Grace").get("connected"), "Grace on stage", timeout_s=20)
    page.get_by_role("button", name="Mute everyone else").click()
    eventually_sync(lambda: member(server, space, "Grace").get("muted"), "Grace is muted", timeout_s=10)
    assert member(server, space, "Ada")["muted"] is False
    expect(page.locator("#stage")).to_contain_text("Ada")

    # The share sheet: the link copied, with a word that it was.
    page.get_by_role("button", name="Share", exact=True).click()
    sheet = page.get_by_role("dialog", name="Share this space")
    expect(sheet).to_be_visible()
    qr = sheet.get_by_role("img", name="QR code of the listener link")
    expect(qr).to_be_visible()
    assert qr.evaluate("image => image.complete && image.naturalWidth > 0"), "the QR code did not load"
    sheet.get_by_role("button", name="Copy link").click()
    expect(sheet.locator("#share-status")).to_have_text("Link copied. Paste it anywhere.")
    assert page.evaluate("navigator.clipboard.readText()") == server.base + space["urls"]["page"]
    page.screenshot(path=str(artifacts / f"console-share-{viewport}.png"))
    sheet.get_by_role("button", name="Close").click()
    expect(page.get_by_role("button", name="Share", exact=True)).to_be_focused()
    page.screenshot(path=str(artifacts / f"console-{viewport}.png"), full_page=True)

    # The end: said, and the microphone let go (the browser's recording indicator goes out).
    microphone = page.evaluate_handle("session.stream.getAudioTracks()[0]")
    page.get_by_role("button", name="End space").click()
    expect(page.locator("#status")).to_have_text("This space has ended. Your microphone is off.", timeout=10000)
    assert page.evaluate("track => track.readyState", microphone) == "ended"
    assert httpx.get(api, headers=auth).json()["state"] == "ended"
    context.close()


def test_a_host_finds_their_spaces_on_the_home_page(server: Server, browser: Browser) -> None:
    """Spaces created in this browser are listed for it (live, upcoming, ended), each a way back
    into its console; another browser sees none of them."""
    page = browser.new_context(viewport=VIEWPORTS["phone"], is_mobile=True).new_page()
    made = []
    for title in ("Morning news", "Evening talk"):
        page.goto(server.base + "/")
        page.get_by_label("Title").fill(title)
        page.get_by_role("button", name="Create space").click()
        page.wait_for_url("**/host/**")
        made.append(page.url.split("/host/")[1].split("#")[0])
    token = page.evaluate(f"localStorage.getItem('podium.host.{made[0]}')")
    httpx.post(f"{server.base}/api/spaces/{made[0]}/end", headers={"Authorization": f"Bearer {token}"})

    page.goto(server.base + "/")
    mine = page.locator("#mine-list li")
    expect(mine).to_have_count(2)
    expect(mine.nth(0)).to_contain_text("Evening talk")  # upcoming before ended
    expect(mine.nth(1)).to_contain_text("Morning news")
    expect(mine.nth(1).locator(".badge")).to_have_text("ended")
    mine.nth(0).get_by_role("link").click()
    page.wait_for_url(f"**/host/{made[1]}")
    expect(page.locator("#title")).to_have_text("Evening talk")

    stranger = browser.new_context().new_page()
    stranger.goto(server.base + "/")
    expect(stranger.locator("#nothing-on")).to_be_visible()
    expect(stranger.locator("#mine-card")).to_be_hidden()
