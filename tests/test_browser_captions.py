"""Captions as people meet them in headless Chromium, desktop and phone: live lines under the player
with each speaker's name (a partial replaced by its final), the CC button that hides them and is
remembered, the host's switch that takes them off every listener's page, and the replay's
transcript beside the player (the line being heard marked, a press seeks there, a search goes from
match to match), a clip's words, a private replay's transcript through its listener link; axe-core
finds nothing serious in any of these states.

The captions come in through the node's own entry point (`services.captioning.on_caption`, on the
server's event loop), as the speech workers deliver them: Podium runs in this process for that,
served by uvicorn on loopback in a thread of its own. Its workers' seam is the delivery tests'
`Recorder` (it records the frames the stage hands over and recognizes nothing): the engines are
tested with real speech in their own tests; here the words are the test's, so that the pages can
be held to them exactly."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect
from starlette.applications import Starlette

from podium.app import create_app, served
from podium.captions.engine import Caption
from podium.settings import Settings
from podium.testing import eventually_sync
from tests.browser_support import Speakers
from tests.captions_delivery.support import Recorder
from tests.conftest import free_port
from tests.test_browser_a11y import VIEWPORTS, audit
from tests.test_browser_replay import wait_until
from tests.test_live_media import create_space, wait_for_media

pytestmark = [pytest.mark.browser, pytest.mark.media]


@dataclass
class InProcess:
    """`podium serve` as a user runs it, but in this process: the test reaches its services."""

    app: Starlette
    server: uvicorn.Server
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    port: int
    workers: Recorder

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def say(
        self, space: str, speaker: dict[str, Any], utterance: str, start_s: float, text: str, final: bool = True
    ) -> None:
        """One caption, handed to the captions service on the server's loop as a worker's would be."""
        caption = Caption(
            space=space,
            speaker=speaker["id"],
            name=speaker["name"],
            utterance=utterance,
            start_s=start_s,
            end_s=start_s + 2.5,
            text=text,
            final=final,
        )
        on_caption = self.app.state.services.captioning.on_caption
        done = asyncio.run_coroutine_threadsafe(_call(on_caption, caption), self.loop)
        done.result(10)


async def _call(function: Any, *args: Any) -> None:
    function(*args)


@pytest.fixture
def podium(tmp_path: Path) -> Iterator[InProcess]:
    port = free_port()
    settings = Settings.load({"PODIUM_ICE_LOOPBACK": "only"}, data_dir=tmp_path / "data", host="127.0.0.1", port=port)
    app = create_app(settings)
    workers = Recorder()
    app.state.services.captioning.use(workers)
    config = uvicorn.Config(served(app), host="127.0.0.1", port=port, log_level="warning", ws="none", access_log=False)
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),), name="podium", daemon=True)
    thread.start()
    eventually_sync(lambda: server.started, "podium came up", timeout_s=30)
    try:
        yield InProcess(app, server, loop, thread, port, workers)
    finally:
        server.should_exit = True
        thread.join(30)
        loop.close()


@pytest.fixture
def axe_dir(artifacts: Path) -> Path:
    folder = artifacts / "axe"
    folder.mkdir(exist_ok=True)
    return folder


def auth(space: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {space['host_token']}"}


def on_stage(
    podium: InProcess, speakers: Speakers, title: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A live space whose host, Ada, speaks (a tone: the words come from the test), and Ben, a guest."""
    space = speakers.run(create_space(podium, title))
    api = f"{podium.base}/api/spaces/{space['id']}"
    ada = httpx.put(f"{api}/me/name", json={"name": "Ada"}, headers=auth(space)).raise_for_status().json()
    ben = httpx.post(f"{api}/guests", json={"name": "Ben"}).raise_for_status().json()["member"]
    speakers.speak(podium, space["urls"]["whip"], space["host_token"], 440)
    speakers.run(wait_for_media(podium, space, 2))
    return space, ada, ben


def context(browser: Browser, viewport: str, **options: Any) -> Any:
    return browser.new_context(viewport=VIEWPORTS[viewport], is_mobile=viewport == "phone", **options)


def lines(page: Page) -> Any:
    return page.locator("#caption-lines .caption")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_live_captions_show_who_said_what_and_cc_hides_them_remembered(
    podium: InProcess, browser: Browser, speakers: Speakers, artifacts: Path, axe_dir: Path, viewport: str
) -> None:
    space, ada, ben = on_stage(podium, speakers, "Captions for all")
    sid = space["id"]
    # bypass_csp: axe is injected as a script tag, which the pages' CSP (rightly) forbids.
    page = context(browser, viewport, bypass_csp=True).new_page()
    page.goto(podium.base + space["urls"]["page"])
    expect(page.locator("#captions")).to_be_visible(timeout=20000)
    expect(page.locator("#cc")).to_have_attribute("aria-pressed", "true")

    # Words still being recognised show lighter, and their final takes their place: one line.
    podium.say(sid, ada, "ada.1", 1.0, "hello every", final=False)
    expect(page.locator("#caption-lines .caption.partial")).to_have_text("Ada: hello every", timeout=15000)
    podium.say(sid, ada, "ada.1", 1.0, "hello everyone and welcome")
    expect(lines(page)).to_have_text(["Ada: hello everyone and welcome"], timeout=15000)
    expect(page.locator("#caption-lines .caption.partial")).to_have_count(0)
    podium.say(sid, ben, "ben.1", 4.0, "thanks for having me")
    expect(lines(page)).to_have_text(["Ada: hello everyone and welcome", "Ben: thanks for having me"], timeout=15000)
    # The name is its own element, styled apart from the words.
    expect(page.locator("#caption-lines .caption .who")).to_have_text(["Ada:", "Ben:"])
    assert page.locator("#caption-lines .who").first.evaluate("e => getComputedStyle(e).fontWeight") == "700"

    # Only the last three lines stay, in the order they were said.
    podium.say(sid, ada, "ada.2", 7.0, "our first question is about the weather")
    podium.say(sid, ben, "ben.2", 10.0, "it is raining here")
    expect(lines(page)).to_have_text(
        ["Ben: thanks for having me", "Ada: our first question is about the weather", "Ben: it is raining here"],
        timeout=15000,
    )
    page.screenshot(
        path=str(artifacts / f"captions-listener-{viewport}.png"), full_page=viewport == "phone", animations="disabled"
    )
    problems = audit(page, f"captions-listener-{viewport}", axe_dir)
    assert problems == [], "\n".join(problems)

    # CC off: the lines go, the button says so; the choice outlives a reload.
    page.locator("#cc").click()
    expect(page.locator("#cc")).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#caption-lines")).to_be_hidden()
    page.reload()
    expect(page.locator("#cc")).to_be_visible(timeout=20000)
    expect(page.locator("#cc")).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#caption-lines")).to_be_hidden()
    page.locator("#cc").click()
    expect(page.locator("#caption-lines")).to_be_visible()
    podium.say(sid, ada, "ada.3", 13.0, "back to you")
    expect(lines(page).last).to_have_text("Ada: back to you", timeout=15000)
    # A new line slides in, but not for those who asked for less motion.
    page.emulate_media(reduced_motion="reduce")
    podium.say(sid, ben, "ben.9", 14.0, "calm and still")
    expect(lines(page).last).to_have_text("Ben: calm and still", timeout=15000)
    assert lines(page).last.evaluate("e => getComputedStyle(e).animationName") == "none"

    # The embedded player shows them too while it plays (one line in the compact layout).
    # In a frame of the compact layout's size (100 px high, the snippet's default).
    frame = {"width": 480 if viewport == "desktop" else 320, "height": 100}
    embed = browser.new_context(viewport=frame, is_mobile=viewport == "phone").new_page()
    embed.goto(f"{podium.base}/embed/{sid}")
    embed.locator("#play:enabled").click()
    expect(embed.locator("#caption-lines")).to_be_visible(timeout=20000)
    podium.say(sid, ben, "ben.3", 16.0, "thank you Ada")
    expect(embed.locator("#caption-lines .caption")).to_have_text(["Ben: thank you Ada"], timeout=15000)
    embed.screenshot(path=str(artifacts / f"captions-embed-{viewport}.png"), animations="disabled")


# The switch on a desktop, the notices on a phone: the console's captions card is one layout each.
@pytest.mark.parametrize("viewport", ["desktop"])
def test_the_host_switches_captions_off_and_listeners_no_longer_see_them(
    podium: InProcess, browser: Browser, speakers: Speakers, artifacts: Path, axe_dir: Path, viewport: str
) -> None:
    space, ada, _ben = on_stage(podium, speakers, "Captions on and off")
    sid = space["id"]
    described = httpx.get(f"{podium.base}/api/spaces/{sid}/captions", headers=auth(space)).raise_for_status().json()
    host = context(browser, viewport, bypass_csp=True).new_page()
    host.goto(f"{podium.base}{space['urls']['host']}#token={space['host_token']}")
    switch = host.get_by_role("switch", name="Live captions")
    expect(switch).to_be_checked(timeout=20000)
    expect(host.locator("#captions-language")).to_have_value(described["language"])
    expect(host.locator("#captions-language option")).to_have_count(len(described["languages"]))
    expect(host.locator("#captions-engine")).to_contain_text(described["engine"])
    # The console shows the live captions too.
    podium.say(sid, ada, "ada.1", 1.0, "can everyone read this")
    expect(host.locator("#console-caption-lines .caption")).to_have_text(["Ada: can everyone read this"], timeout=15000)
    host.screenshot(path=str(artifacts / f"captions-console-{viewport}.png"), full_page=True, animations="disabled")
    problems = audit(host, f"captions-console-{viewport}", axe_dir)

    listener = context(browser, viewport).new_page()
    listener.goto(podium.base + space["urls"]["page"])
    expect(listener.locator("#captions")).to_be_visible(timeout=20000)

    switch.uncheck()
    expect(host.locator("#captions-notice")).to_have_text("Captions are off for this space.", timeout=15000)
    captions = httpx.get(f"{podium.base}/api/spaces/{sid}/captions", headers=auth(space)).json()
    assert captions["enabled"] is False
    expect(listener.locator("#captions")).to_be_hidden(timeout=20000)
    expect(listener.locator("#cc")).to_be_hidden()
    problems += audit(host, f"captions-console-off-{viewport}", axe_dir)
    assert problems == [], "\n".join(problems)

    # And on again: the listener's page offers them again, by itself.
    switch.check()
    expect(listener.locator("#captions")).to_be_visible(timeout=20000)
    assert httpx.get(f"{podium.base}/api/spaces/{sid}/captions", headers=auth(space)).json()["enabled"] is True


@pytest.mark.parametrize("viewport", ["phone"])
def test_the_console_says_when_captions_pause_and_why_a_node_has_none(
    podium: InProcess, browser: Browser, speakers: Speakers, axe_dir: Path, viewport: str
) -> None:
    space = speakers.run(create_space(podium, "Over budget"))
    host = context(browser, viewport, bypass_csp=True).new_page()
    # The workers say a speaker waits (the node's budget is two speakers at a time).
    podium.workers.state, podium.workers.detail = "paused", "Ben waits: this node captions two speakers at once"
    host.goto(f"{podium.base}{space['urls']['host']}#token={space['host_token']}")
    notice = host.locator("#captions-notice")
    expect(notice).to_have_text(
        "Captions are paused. Ben waits: this node captions two speakers at once", timeout=15000
    )
    expect(notice).to_have_class("muted warning")
    problems = audit(host, f"captions-console-paused-{viewport}", axe_dir)
    assert problems == [], "\n".join(problems)
    podium.workers.state, podium.workers.detail = "behind", "4 s behind"
    expect(notice).to_have_text("Captions are behind. 4 s behind", timeout=15000)

    # A node whose engine cannot run: the console says why, the switch cannot promise them, and
    # listeners are offered none.
    podium.loop.call_soon_threadsafe(podium.app.state.services.captioning.use, None, "the model did not load")
    expect(notice).to_have_text("Captions unavailable: the model did not load", timeout=15000)
    expect(host.get_by_role("switch", name="Live captions")).to_be_disabled()
    expect(host.get_by_role("switch", name="Live captions")).not_to_be_checked()
    expect(host.locator("#console-captions")).to_be_hidden()
    assert httpx.get(f"{podium.base}/api/spaces/{space['id']}").json()["captions"]["enabled"] is False


SAID = [
    ("ada", 1.0, "Welcome to the show about open captions"),
    ("ben", 4.0, "Thanks Ada it is good to be here"),
    ("ada", 7.0, "Tell us how speech recognition works here"),
    ("ben", 10.0, "Each speaker is heard on their own so every line has a name"),
    ("ada", 13.0, "And you are welcome back any time"),
]


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_replay_shows_the_transcript_in_step_with_the_audio_and_finds_words(
    podium: InProcess, browser: Browser, speakers: Speakers, artifacts: Path, axe_dir: Path, viewport: str
) -> None:
    space, ada, ben = on_stage(podium, speakers, "Transcribed")
    sid = space["id"]
    who = {"ada": ada, "ben": ben}
    for n, (speaker, start_s, text) in enumerate(SAID):
        podium.say(sid, who[speaker], f"{speaker}.{n}", start_s, text)
    speakers.run(wait_for_media(podium, space, 18))
    httpx.post(f"{podium.base}/api/spaces/{sid}/end", headers=auth(space), timeout=20).raise_for_status()
    eventually_sync(
        lambda: httpx.get(f"{podium.base}/api/spaces/{sid}/transcript").json().get("complete"),
        "the transcript is complete",
        timeout_s=30,
    )

    page = context(browser, viewport, bypass_csp=True).new_page()
    page.goto(podium.base + space["urls"]["page"])
    transcript = page.locator("#transcript-lines button.line")
    expect(transcript).to_have_count(len(SAID), timeout=20000)
    expect(transcript.nth(1)).to_have_text("0:04 Ben Thanks Ada it is good to be here")
    expect(page.locator("#transcript-lines .who")).to_have_text(["Ada", "Ben", "Ada", "Ben", "Ada"])
    # Beside the player on a wide screen, below it on a phone.
    player = page.locator("section.card").first.bounding_box()
    card = page.locator("#transcript-card").bounding_box()
    assert player is not None and card is not None
    if viewport == "desktop":
        assert card["x"] >= player["x"] + player["width"] - 1 and card["y"] < player["y"] + player["height"]
    else:
        assert card["y"] >= player["y"] + player["height"] - 1

    # Playing from the start: the line being heard is marked as the audio moves.
    page.locator("#play:enabled").click()
    wait_until(page, "audio.currentTime > 1.5 && !audio.paused")
    expect(transcript.first).to_have_attribute("aria-current", "true")
    wait_until(page, "audio.currentTime > 4.5")
    expect(transcript.nth(1)).to_have_attribute("aria-current", "true")
    expect(transcript.first).not_to_have_attribute("aria-current", "true")

    # A press on a line plays from there, and the mark follows.
    transcript.nth(3).click()
    wait_until(page, "audio.currentTime >= 9.9 && audio.currentTime < 13")
    expect(transcript.nth(3)).to_have_attribute("aria-current", "true")
    expect(page.locator('#transcript-lines [aria-current="true"]')).to_have_count(1)
    # By keyboard: the list is one Tab stop, the arrows move in it, Enter plays from the line.
    transcript.nth(3).focus()
    page.keyboard.press("ArrowUp")
    assert page.evaluate("document.activeElement.dataset.index") == "2"
    page.keyboard.press("Enter")
    wait_until(page, "audio.currentTime >= 6.9 && audio.currentTime < 10")
    expect(transcript.nth(2)).to_have_attribute("aria-current", "true")

    # The search finds words whatever their case, from the line being heard on (the third): the
    # match after it first, then on to the next (round to the first), and back; focus stays put.
    search = page.get_by_role("searchbox", name="Find words in the transcript")
    search.fill("WELCOME")
    expect(page.locator("#transcript-found")).to_have_text("2 of 2")
    expect(page.locator("#transcript-lines mark")).to_have_text(["Welcome", "welcome"])
    found = page.locator("#transcript-lines button.line.found")
    expect(found).to_have_text("0:13 Ada And you are welcome back any time")
    search.press("Enter")
    expect(page.locator("#transcript-found")).to_have_text("1 of 2")
    expect(found).to_have_text("0:01 Ada Welcome to the show about open captions")
    search.press("Shift+Enter")
    expect(page.locator("#transcript-found")).to_have_text("2 of 2")
    search.press("Enter")
    assert page.evaluate("document.activeElement.id") == "transcript-search"
    # Tab from the search reaches the match found (past the Next button), and Enter plays it.
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.index") == "0"
    page.keyboard.press("Enter")
    wait_until(page, "audio.currentTime >= 0.9 && audio.currentTime < 4")
    search.fill("raining")
    expect(page.locator("#transcript-found")).to_have_text("No match")
    search.fill("speech")
    expect(page.locator("#transcript-found")).to_have_text("1 of 1")
    wait_until(page, "audio.currentTime > 4.5")
    expect(transcript.nth(1)).to_have_attribute("aria-current", "true")
    page.screenshot(
        path=str(artifacts / f"captions-replay-{viewport}.png"), full_page=viewport == "phone", animations="disabled"
    )
    problems = audit(page, f"captions-replay-{viewport}", axe_dir)
    assert problems == [], "\n".join(problems)

    # The files: WebVTT with the speakers' voices, and SRT.
    vtt = httpx.get(podium.base + page.locator("#transcript-vtt").get_attribute("href", timeout=5000))
    srt = httpx.get(podium.base + page.locator("#transcript-srt").get_attribute("href", timeout=5000))
    assert vtt.status_code == 200 and vtt.text.startswith("WEBVTT") and "<v Ben>" in vtt.text
    assert srt.status_code == 200 and "Thanks Ada it is good to be here" in srt.text

    # A clip's page shows the words said in it (from 7 s on: the third line and after).
    made = httpx.post(f"{podium.base}/api/spaces/{sid}/clips", json={"start_s": 7.0, "duration_s": 10})
    assert made.status_code == 201, made.text
    clip = context(browser, viewport).new_page()
    clip.goto(str(httpx.URL(podium.base).join(made.json()["urls"]["page"])))
    words = clip.locator("#clip-words .words")
    expect(words.first).to_have_text("Tell us how speech recognition works here", timeout=20000)
    assert "Thanks Ada it is good to be here" not in words.all_text_contents()


def test_a_private_replay_shows_its_transcript_to_those_with_the_link(
    podium: InProcess, browser: Browser, speakers: Speakers
) -> None:
    made = httpx.post(f"{podium.base}/api/spaces", json={"title": "Members only", "private": True})
    assert made.status_code == 201, made.text
    space = made.json()
    sid = space["id"]
    ada = httpx.put(f"{podium.base}/api/spaces/{sid}/me/name", json={"name": "Ada"}, headers=auth(space)).json()
    link = httpx.post(f"{podium.base}/api/spaces/{sid}/listener-links", json={}, headers=auth(space)).json()
    signed = {"urls": {"hls": link["hls"]}}  # the stream of a private space, as its link opens it
    speakers.speak(podium, space["urls"]["whip"], space["host_token"], 440)
    speakers.run(wait_for_media(podium, signed, 2))
    podium.say(sid, ada, "ada.1", 1.0, "only for those invited")
    speakers.run(wait_for_media(podium, signed, 6))
    httpx.post(f"{podium.base}/api/spaces/{sid}/end", headers=auth(space), timeout=20).raise_for_status()
    assert httpx.get(f"{podium.base}/api/spaces/{sid}/transcript").status_code == 403

    page = context(browser, "desktop").new_page()
    page.goto(str(httpx.URL(podium.base).join(link["page"])))
    expect(page.locator("#transcript-lines .words")).to_have_text(["only for those invited"], timeout=20000)
    # The files carry the link's key too (it never shows in the address bar: the page keeps it).
    vtt = page.locator("#transcript-vtt").get_attribute("href")
    assert vtt is not None and "key=" in vtt and "#key" not in page.url
    answer = httpx.get(podium.base + vtt)
    assert answer.status_code == 200 and "<v Ada>only for those invited" in answer.text
