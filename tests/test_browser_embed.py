"""Embedding in headless Chromium, on a publisher's page served from another origin: the consent
snippet loads nothing from Podium before the click, then a player that plays (and, remembered,
loads by itself); oEmbed's frame plays; the keyboard alone starts the player."""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Frame, Page, Request, expect

from tests.browser_support import Speakers
from tests.conftest import Server
from tests.test_browser_replay import end
from tests.test_live_media import create_space, wait_for_media

pytestmark = [pytest.mark.browser, pytest.mark.media]

TONE_HZ = 440.0
PASSWORD = "correct horse battery"


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def publisher(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A publisher's site on another loopback address (so another origin): its base URL and folder."""
    folder = tmp_path / "site"
    folder.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.2", 0), partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, name="publisher", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.2:{httpd.server_address[1]}", folder
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def article(folder: Path, name: str, body: str, lang: str = "en") -> str:
    """A publisher's article page around `body` (a snippet or a frame)."""
    (folder / name).write_text(
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>An article</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
        '<body style="font-family: Georgia, serif; max-width: 640px; margin: 24px auto; padding: 0 12px;'
        ' background: #fbfaf7; color: #222">'
        "<h1>Tonight's interview</h1><p>We talk with our guest live at eight. Listen here:</p>"
        f'<div id="slot">{body}</div><p>The rest of the article.</p></body></html>',
        encoding="utf-8",
    )
    return name


def podium_requests(context: BrowserContext, server: Server) -> list[str]:
    """Every request any frame of the context makes to the Podium instance, as it happens."""
    seen: list[str] = []

    def on_request(request: Request) -> None:
        if request.url.startswith(server.base + "/") or request.url == server.base:
            seen.append(request.url)

    context.on("request", on_request)
    return seen


def player_frame(page: Page) -> Frame:
    for _ in range(100):
        for frame in page.frames:
            if "/embed/" in frame.url:
                return frame
        page.wait_for_timeout(100)
    raise AssertionError(f"no player frame in {[f.url for f in page.frames]}")


def heard(frame: Frame) -> tuple[float, float]:
    """The loudest frequency the player's analyser sees, and its level in dB."""
    result = frame.evaluate(
        """() => {
          const analyser = window.podium && window.podium.analyser;
          if (!analyser) return [0, -1000];
          const bins = new Float32Array(analyser.frequencyBinCount);
          analyser.getFloatFrequencyData(bins);
          let best = 2;
          for (let i = 2; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
          return [best * analyser.context.sampleRate / analyser.fftSize, bins[best]];
        }"""
    )
    return float(result[0]), float(result[1])


def assert_plays_the_tone(frame: Frame) -> None:
    """The player's audio moves on and carries the speaker's tone (polled: up to 30 s to start)."""
    tone = (0.0, -1000.0)
    for _ in range(60):
        frame.page.wait_for_timeout(500)
        tone = heard(frame)
        if abs(tone[0] - TONE_HZ) <= 15 and tone[1] > -60:
            break
    state = frame.evaluate(
        "(() => { const a = document.getElementById('audio'); return {t: a.currentTime, paused: a.paused,"
        " ready: a.readyState, status: document.getElementById('status').textContent,"
        " error: document.getElementById('error').textContent}; })()"
    )
    assert abs(tone[0] - TONE_HZ) <= 15 and tone[1] > -60, f"heard {tone[0]:.0f} Hz at {tone[1]:.0f} dB: {state}"
    before = float(frame.evaluate("document.getElementById('audio').currentTime"))
    frame.page.wait_for_timeout(1500)
    after = float(frame.evaluate("document.getElementById('audio').currentTime"))
    assert after > before, f"the audio stands still at {before:.2f} s"


def live_space(server: Server, speakers: Speakers, title: str) -> dict[str, Any]:
    space = speakers.run(create_space(server, title))
    speakers.speak(server, space["urls"]["whip"], space["host_token"], TONE_HZ)
    speakers.run(wait_for_media(server, space, 3))
    return space


def embed_code(server: Server, space: dict[str, Any], **params: str) -> dict[str, str]:
    response = httpx.get(f"{server.base}/api/spaces/{space['id']}/embed-code", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def post_some(server: Server, space: dict[str, Any]) -> None:
    """A question and comments, so the full layout has something to show."""
    with httpx.Client(base_url=server.base) as client:
        client.post("/api/accounts", json={"username": "mara", "password": PASSWORD})
        token = client.post("/api/sessions", json={"username": "mara", "password": PASSWORD}).json()["token"]
        posts = [
            ("question", "What made you start the project?"),
            ("question", "Will the recording be online tonight?"),
            ("comment", "Greetings from Leipzig!"),
            ("comment", "The sound is great."),
        ]
        for n, (kind, text) in enumerate(posts):
            body = {"kind": kind, "text": text, "client_id": f"embed-{n:02d}"}
            response = client.post(
                f"/api/spaces/{space['id']}/posts", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 201, response.text


def test_the_consent_snippet_loads_nothing_before_the_click_then_plays_and_remembers(
    server: Server, browser: Browser, speakers: Speakers, publisher: tuple[str, Path], artifacts: Path
) -> None:
    site, folder = publisher
    space = live_space(server, speakers, "Tonight: the interview, live")
    # The host copies the snippet from the console's embed box, in each language.
    console = browser.new_context(viewport={"width": 900, "height": 1400}, locale="en-GB")
    host = console.new_page()
    host.goto(f"{server.base}/host/{space['id']}#token={space['host_token']}")
    host.get_by_role("button", name="Share", exact=True).click()  # the share sheet holds the snippet
    for lang in ("en", "de"):
        host.select_option("#embed-lang", lang)
        code = host.locator("#embed-code")
        expect(code).to_have_value(re.compile("podium-consent"))
        expect(code).to_have_value(re.compile('lang="de"' if lang == "de" else 'lang="en"'))
        assert code.input_value() == embed_code(server, space, lang=lang)["html"]
        article(folder, f"consent-{lang}.html", code.input_value(), lang)
    host.locator("#embed-heading").scroll_into_view_if_needed()
    host.locator("#embed-heading").locator("xpath=..").screenshot(path=str(artifacts / "host-embed-box.png"))
    console.close()

    context = browser.new_context(viewport={"width": 700, "height": 520}, locale="en-GB")
    requests = podium_requests(context, server)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    for lang in ("de", "en"):
        page.goto(f"{site}/consent-{lang}.html", wait_until="networkidle")
        placeholder = page.locator(".podium-consent")
        expect(placeholder).to_be_visible()
        expect(placeholder.locator("time")).not_to_contain_text("UTC")  # the reader's own time, by the script
        placeholder.screenshot(path=str(artifacts / f"consent-placeholder-{lang}.png"))
    expect(page.get_by_text("Listen live — by clicking you agree that content from 127.0.0.1:")).to_be_visible()
    assert requests == [], f"the placeholder loaded from Podium before any click: {requests}"

    page.get_by_label("Always load content from").check()
    page.get_by_role("button", name="Load the player").click()
    frame = player_frame(page)
    assert requests, "the click loaded nothing"
    play = frame.get_by_role("button", name="Play")
    expect(play).to_be_enabled(timeout=20000)
    play.click()
    assert_plays_the_tone(frame)
    expect(frame.locator("#state")).to_have_text("Live")
    assert errors == []

    # Remembered on this site: the player comes by itself, without the placeholder.
    page.reload(wait_until="networkidle")
    expect(page.locator(".podium-consent")).to_have_count(0)
    expect(player_frame(page).get_by_role("button", name="Play")).to_be_enabled(timeout=20000)

    # Another reader (fresh storage) still sees only the placeholder, and Podium sees nothing of them.
    other = browser.new_context(viewport={"width": 700, "height": 520})
    theirs = podium_requests(other, server)
    other_page = other.new_page()
    other_page.goto(f"{site}/consent-en.html", wait_until="networkidle")
    expect(other_page.get_by_role("button", name="Load the player")).to_be_visible()
    assert theirs == []
    other.close()
    context.close()


def test_a_hostile_title_stays_text_in_the_snippet(
    server: Server, browser: Browser, publisher: tuple[str, Path]
) -> None:
    site, folder = publisher
    title = "</script><img src=x onerror=\"window.pwned=1\"><script>window.pwned=2</script> 'x'"
    space = httpx.post(server.base + "/api/spaces", json={"title": title}).json()
    article(folder, "hostile.html", embed_code(server, space)["html"])
    context = browser.new_context()
    requests = podium_requests(context, server)
    page = context.new_page()
    page.goto(f"{site}/hostile.html", wait_until="networkidle")
    expect(page.locator(".podium-consent p").first).to_have_text(title)
    assert page.evaluate("window.pwned === undefined")
    assert page.locator("#slot img").count() == 0
    assert requests == []
    page.get_by_role("button", name="Load the player").click()
    frame = player_frame(page)
    expect(frame.locator("#title")).to_have_text(title)
    assert page.locator("iframe").get_attribute("title") == f"Podium player: {title}"
    context.close()


def test_the_oembed_frame_plays_and_the_keyboard_alone_starts_it(
    server: Server, browser: Browser, speakers: Speakers, publisher: tuple[str, Path], artifacts: Path
) -> None:
    site, folder = publisher
    space = live_space(server, speakers, "Tonight: the interview, live")
    post_some(server, space)
    answer = httpx.get(f"{server.base}/oembed", params={"url": f"{server.base}/s/{space['id']}", "maxwidth": "560"})
    assert answer.status_code == 200, answer.text
    oembed = answer.json()
    assert (oembed["width"], oembed["height"]) == (560, 100)
    article(folder, "oembed.html", oembed["html"])

    context = browser.new_context(viewport={"width": 700, "height": 400})
    page = context.new_page()
    page.goto(f"{site}/oembed.html")
    frame = player_frame(page)
    expect(frame.get_by_role("button", name="Play")).to_be_enabled(timeout=20000)
    # Keyboard only: Tab from the article reaches the play button first, Enter plays, Space pauses.
    page.keyboard.press("Tab")
    assert frame.evaluate("document.activeElement.id") == "play"
    assert frame.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"  # focus is seen
    page.keyboard.press("Enter")
    assert_plays_the_tone(frame)
    expect(frame.get_by_role("button", name="Pause")).to_be_visible()
    expect(frame.get_by_role("status")).to_have_text("Playing live.")
    page.keyboard.press("Space")
    expect(frame.get_by_role("button", name="Play")).to_be_visible()
    assert frame.evaluate("document.getElementById('audio').paused")
    page.keyboard.press("Space")
    expect(frame.get_by_role("button", name="Pause")).to_be_visible()
    assert not frame.evaluate("document.getElementById('audio').paused")
    context.close()

    # The four looks, each in a frame of the size the embed code gives it, playing.
    for lang in ("en", "de"):
        for layout, height in (("compact", 100), ("full", 460)):
            src = html.escape(f"{server.base}/embed/{space['id']}?layout={layout}&lang={lang}")
            name = article(
                folder,
                f"{layout}-{lang}.html",
                f'<iframe src="{src}" width="600" height="{height}" '
                f'style="border:0;border-radius:14px" title="Podium"></iframe>',
                lang,
            )
            view = browser.new_context(viewport={"width": 680, "height": height + 260}, locale=lang)
            look = view.new_page()
            look.goto(f"{site}/{name}")
            player = player_frame(look)
            play = player.locator("#play")
            expect(play).to_be_enabled(timeout=20000)
            play.click()
            assert_plays_the_tone(player)
            if layout == "full":
                expect(player.locator("#questions li")).to_have_count(2)
                expect(player.locator("#comments li")).to_have_count(2)
            look.locator("iframe").screenshot(path=str(artifacts / f"embed-{layout}-{lang}.png"))
            view.close()


def test_the_player_fits_a_320_px_frame(
    server: Server, browser: Browser, publisher: tuple[str, Path], artifacts: Path
) -> None:
    site, folder = publisher
    space = httpx.post(server.base + "/api/spaces", json={"title": "A rather long title for a narrow frame"}).json()
    src = html.escape(f"{server.base}/embed/{space['id']}")
    article(folder, "narrow.html", f'<iframe src="{src}" width="320" height="100" style="border:0"></iframe>')
    page = browser.new_page(viewport={"width": 360, "height": 400})
    page.goto(f"{site}/narrow.html")
    frame = player_frame(page)
    expect(frame.locator("#title")).to_have_text("A rather long title for a narrow frame")
    # Nothing spills out of the row: the page is no wider than its frame, and the link stays inside.
    assert frame.evaluate("document.documentElement.scrollWidth") <= 320
    box = frame.locator("#open").bounding_box()
    frame_box = page.locator("iframe").bounding_box()
    assert box is not None and frame_box is not None
    assert box["x"] + box["width"] <= frame_box["x"] + 320
    page.locator("iframe").screenshot(path=str(artifacts / "embed-compact-320.png"))
    page.close()


def test_the_player_plays_the_replay_and_shows_where_it_is(
    server: Server, browser: Browser, speakers: Speakers, publisher: tuple[str, Path], artifacts: Path
) -> None:
    site, folder = publisher
    space = live_space(server, speakers, "Yesterday's interview")
    speakers.run(wait_for_media(server, space, 6))
    ended = end(server, space)
    assert "replay" in ended["urls"]
    src = html.escape(f"{server.base}/embed/{space['id']}?layout=compact&lang=en")
    article(folder, "replay.html", f'<iframe src="{src}" width="600" height="100" style="border:0"></iframe>')
    page = browser.new_page(viewport={"width": 680, "height": 360})
    page.goto(f"{site}/replay.html")
    frame = player_frame(page)
    expect(frame.locator("#state")).to_have_text("Replay")
    # The length is known before playing (from the playlist alone), and the seek bar has it.
    expect(frame.locator("#position")).to_have_text(re.compile(r"^0:00 / 0:0[5-9]$"), timeout=20000)
    expect(frame.get_by_label("Position in the recording")).to_be_visible()
    frame.get_by_role("button", name="Play").click()
    assert_plays_the_tone(frame)
    expect(frame.locator("#position")).not_to_have_text(re.compile(r"^0:00 /"), timeout=10000)
    page.locator("iframe").screenshot(path=str(artifacts / "embed-replay-en.png"))
    page.close()
