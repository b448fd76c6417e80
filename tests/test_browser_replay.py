"""Time on the listener page in headless Chromium: rewind while live and back to live, the replay
with who-spoke-when markers and the posts in step with the audio, a clip's page and the verify page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Response, expect

from tests.browser_support import Speakers
from tests.conftest import Server
from tests.test_browser import dominant_frequency
from tests.test_live_media import create_space, listed_seconds, wait_for_media

pytestmark = [pytest.mark.browser, pytest.mark.media]

PASSWORD = "correct horse battery"


def end(server: Server, space: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {space['host_token']}"}
    response = httpx.post(f"{server.base}/api/spaces/{space['id']}/end", headers=headers, timeout=20)
    assert response.status_code == 200, response.text
    return dict(httpx.get(f"{server.base}/api/spaces/{space['id']}").json())


def watch(page: Page, problems: list[str]) -> None:
    """Collects what a user would not want: script errors and failed requests (but the timeline's
    "not yet" for the object after the last, which is how its reader learns it is at the end)."""

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(message.text)

    def on_response(response: Response) -> None:
        if response.status >= 400 and not (response.status == 404 and "/timeline/" in response.url):
            problems.append(f"{response.status} {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("response", on_response)


def absolute(server: Server, url: str) -> str:
    """Clip URLs are absolute (they travel inside the signed file); space URLs are paths."""
    return str(httpx.URL(server.base).join(url))


def clock(seconds: float) -> str:
    """A time as the page writes it (m:ss)."""
    s = int(seconds)
    return f"{s // 60}:{s % 60:02d}"


def media_time(page: Page) -> float:
    return float(page.evaluate("document.getElementById('audio').currentTime"))


def behind(page: Page) -> float:
    return float(page.evaluate("window.podiumReplay.behind()"))


def wait_until(page: Page, condition: str, timeout_ms: int = 20000) -> None:
    """Waits for a JavaScript condition on the page, polled from here (the page's CSP forbids the
    eval that `page.wait_for_function` uses); `audio` is the page's player element."""
    expression = f"(() => {{ const audio = document.getElementById('audio'); return Boolean({condition}); }})()"
    for _ in range(timeout_ms // 200):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(200)
    state = page.evaluate(
        "(() => { const a = document.getElementById('audio'), status = document.getElementById('status');"
        " return {t: a.currentTime, paused: a.paused, ready: a.readyState, status: status.textContent}; })()"
    )
    raise AssertionError(f"still not {condition} after {timeout_ms} ms: {state}")


def advances(page: Page, seconds: float = 1.5) -> float:
    """How far the audio moves while `seconds` pass (it plays if this is close to `seconds`)."""
    before = media_time(page)
    page.wait_for_timeout(seconds * 1000)
    return media_time(page) - before


def test_rewind_30_s_while_live_plays_there_and_back_to_live_returns(
    server: Server, browser: Browser, speakers: Speakers, artifacts: Path
) -> None:
    space = speakers.run(create_space(server, "Rewind check"))
    speakers.speak(server, space["urls"]["whip"], space["host_token"], 440)
    speakers.run(wait_for_media(server, space, 40))

    page = browser.new_context(viewport={"width": 1000, "height": 900}).new_page()
    problems: list[str] = []
    watch(page, problems)
    page.goto(server.base + space["urls"]["page"])
    expect(page.locator("#state")).to_have_text("live", timeout=20000)
    page.locator("#play").click()
    # Playing, at the live edge, with more than 30 s behind it to go back to.
    wait_until(page, "window.podium.playing && !audio.paused && audio.currentTime > 35")
    wait_until(page, "window.podiumReplay.behind() < 5")
    expect(page.locator("#seek")).to_be_visible()
    expect(page.locator("#golive")).to_be_hidden()
    expect(page.locator("#length")).to_have_text("live")

    before = media_time(page)
    page.locator("#back30").click()
    after = media_time(page)
    assert 27 <= before - after <= 33, f"-30 s moved from {before:.1f} s to {after:.1f} s"
    expect(page.locator("#golive")).to_be_visible(timeout=2000)
    expect(page.locator("#length")).to_contain_text("behind live")
    assert 27 <= behind(page) <= 33, f"{behind(page):.1f} s behind live"

    # It plays there: the media clock moves on at about real speed, and the tone comes through.
    wait_until(page, f"audio.currentTime > {after + 0.5} && !audio.paused && audio.readyState >= 3")
    moved = advances(page)
    assert 1.0 <= moved <= 2.5, f"the audio moved {moved:.2f} s in 1.5 s"
    heard = dominant_frequency(page)
    assert abs(heard[0] - 440) <= 15 and heard[1] > -60, f"heard {heard[0]:.0f} Hz at {heard[1]:.0f} dB"
    # (A little more than 30 s: the live edge moved on while the player fetched the older audio.)
    assert 26 <= behind(page) <= 36, f"{behind(page):.1f} s behind live while playing back there"
    expect(page.locator("#status")).to_have_text("Playing, behind live.")
    # "Clip 30 s" cuts what was just heard, back there, not at the live edge.
    heard_at = media_time(page)
    page.locator("#clip").click()
    expect(page.locator("#clip-status")).to_contain_text("Clip ready", timeout=10000)
    clip_page = page.locator("#clip-status a").get_attribute("href") or ""
    # Root-relative: without PODIUM_PUBLIC_URL, a clip names no instance (never the Host header's).
    assert clip_page.removeprefix(server.base).startswith(f"/c/{space['id']}/"), clip_page
    clip = httpx.get(f"{server.base}/api/spaces/{space['id']}/clips/{clip_page.rsplit('/', 1)[1]}").json()
    assert clip["facts"]["offset_s"] + clip["facts"]["duration_s"] == pytest.approx(heard_at, abs=1.5)
    page.screenshot(path=str(artifacts / "listen-rewind.png"), full_page=True)

    page.locator("#golive").click()
    wait_until(page, "window.podiumReplay.behind() < 5", timeout_ms=10000)
    expect(page.locator("#golive")).to_be_hidden(timeout=2000)
    expect(page.locator("#length")).to_have_text("live")
    wait_until(page, "!audio.paused && audio.readyState >= 3", timeout_ms=10000)
    assert advances(page, 1.0) > 0.5
    assert behind(page) < 5
    expect(page.locator("#status")).to_have_text("Playing live.")
    assert problems == []


def test_the_replay_shows_who_spoke_when_and_the_posts_in_step(
    server: Server, browser: Browser, speakers: Speakers, artifacts: Path
) -> None:
    space = speakers.run(create_space(server, "Replay with two voices"))
    host_auth = {"Authorization": f"Bearer {space['host_token']}"}
    api = f"{server.base}/api/spaces/{space['id']}"
    host = speakers.speak(server, space["urls"]["whip"], space["host_token"], 440)
    speakers.run(wait_for_media(server, space, 2))

    # A listener comments while the host speaks.
    httpx.post(f"{server.base}/api/accounts", json={"username": "ada", "password": PASSWORD}).raise_for_status()
    session = httpx.post(f"{server.base}/api/sessions", json={"username": "ada", "password": PASSWORD}).json()
    posted = httpx.post(
        f"{api}/posts",
        json={"kind": "comment", "text": "Greetings from Lyon", "client_id": "replay-check-0001"},
        headers={"Authorization": f"Bearer {session['token']}"},
    )
    assert posted.status_code == 201, posted.text
    for _ in range(2):
        httpx.post(f"{api}/reactions", json={"emoji": "👏"}).raise_for_status()
    speakers.run(wait_for_media(server, space, 5))

    # The host hands over to Grace.
    invite = httpx.post(f"{api}/invites", json={"role": "speaker"}, headers=host_auth).json()
    grace = httpx.post(
        f"{api}/invites/redeem", json={"name": "Grace"}, headers={"Authorization": f"Bearer {invite['token']}"}
    ).json()
    speakers.leave(host)
    guest = speakers.speak(server, space["urls"]["whip"], grace["token"], 660)
    joined_s = listed_seconds(speakers.run(wait_for_media(server, space, 0)))
    speakers.run(wait_for_media(server, space, joined_s + 4))
    speakers.leave(guest)
    view = end(server, space)
    assert view["urls"]["replay"] and view["urls"]["download"]

    replay = httpx.get(f"{api}/replay").json()
    changes = replay["speakers"]
    assert len(changes) >= 2 and changes[0]["name"] == "Host" and changes[-1]["name"] == "Grace", changes
    (post,) = replay["posts"]
    assert 0 < post["at_s"] < changes[-1]["at_s"] < replay["duration_s"]

    page = browser.new_context(viewport={"width": 1000, "height": 1000}).new_page()
    problems: list[str] = []
    watch(page, problems)
    page.goto(f"{server.base}{space['urls']['page']}?t=0")
    expect(page.locator("#state")).to_have_text("ended", timeout=20000)
    expect(page.locator("#play")).to_be_enabled()
    expect(page.locator("#status")).to_have_text("Press play to hear the replay.")
    expect(page.locator("#download")).to_be_visible()
    assert page.locator("#download").get_attribute("href") == view["urls"]["download"]
    # What the server would refuse now is not offered: reactions, posts, hands; nobody is on stage.
    for card in ("#stage-card", "#react-card", "#post-card", "#hand-card"):
        expect(page.locator(card)).to_be_hidden()
    # Nothing that looks live: no "listening now", no live question list with vote buttons; the
    # replay's one list shows the record until play, then what was said up to where it plays.
    for card in ("#now-stat", "#questions-card", "#comments-card"):
        expect(page.locator(card)).to_be_hidden()
    expect(page.locator("#replay-posts")).to_contain_text("Greetings from Lyon")

    page.locator("#play").click()
    wait_until(page, "window.podium.playing && !audio.paused && audio.currentTime > 0.5")
    assert media_time(page) < 4, "the replay did not start at ?t=0"
    expect(page.locator("#seek")).to_be_visible()
    expect(page.locator("#golive")).to_be_hidden()
    expect(page.locator("#length")).to_have_text(clock(replay["duration_s"]))
    # One mark per change of speaker, where it happened on the bar.
    marks = page.locator("#markers .marker")
    expect(marks).to_have_count(len(changes))
    expect(marks.last).to_have_attribute("title", f"{clock(changes[-1]['at_s'])} Grace")
    left = float(marks.last.evaluate("m => parseFloat(m.style.left)"))
    assert left == pytest.approx(100 * changes[-1]["at_s"] / replay["duration_s"], abs=2)
    expect(page.locator("#speaker-now")).to_have_text("Speaking: Host")

    # The comment shows once the replay reaches the moment it was posted, not before.
    page.locator("#play").click()
    expect(page.locator("#play")).to_have_attribute("aria-label", "Play")
    page.evaluate("window.podiumReplay.seek(0)")
    expect(page.locator("#replay-posts-card")).to_be_visible()
    expect(page.locator("#no-replay-posts")).to_be_visible()
    expect(page.locator("#replay-posts li")).to_have_count(0)
    page.evaluate(f"window.podiumReplay.seek({post['at_s'] + 0.3})")
    expect(page.locator("#replay-posts li")).to_have_count(1)
    expect(page.locator("#replay-posts li")).to_contain_text("Greetings from Lyon")
    expect(page.locator("#replay-posts li .author")).to_have_text(f"ada · {clock(post['at_s'])}")
    expect(page.locator("#no-replay-posts")).to_be_hidden()
    # So do the reactions sent then, for the few seconds after the moment they came.
    claps = replay["reactions"]  # one timeline second, or two if they straddled a tick
    assert sum(r["counts"]["👏"] for r in claps) == 2 and claps[-1]["at_s"] - claps[0]["at_s"] < 2
    clap = claps[-1]
    page.evaluate(f"window.podiumReplay.seek({clap['at_s'] + 0.5})")
    expect(page.locator("#replay-reactions")).to_have_text("Reactions: 👏 2")
    page.evaluate(f"window.podiumReplay.seek({clap['at_s'] + 4})")
    expect(page.locator("#replay-reactions")).to_have_text("")

    # Grace's turn: the page names her, and her tone plays.
    page.locator("#play").click()
    page.evaluate(f"window.podiumReplay.seek({changes[-1]['at_s'] + 1.5})")
    expect(page.locator("#speaker-now")).to_have_text("Speaking: Grace")
    wait_until(page, f"!audio.paused && audio.currentTime > {changes[-1]['at_s'] + 1.8}", timeout_ms=10000)
    heard = dominant_frequency(page)
    assert abs(heard[0] - 660) <= 15 and heard[1] > -60, f"heard {heard[0]:.0f} Hz at {heard[1]:.0f} dB"
    page.screenshot(path=str(artifacts / "replay.png"), full_page=True)

    # At the end the button offers to play again, and does, from the start.
    page.evaluate(f"window.podiumReplay.seek({replay['duration_s'] - 1})")
    expect(page.locator("#play")).to_have_attribute("aria-label", "Play", timeout=10000)
    expect(page.locator("#status")).to_contain_text("That was the end")
    page.locator("#play").click()
    wait_until(page, "window.podium.playing && !audio.paused && audio.currentTime > 0.3 && audio.currentTime < 4")

    # A shared link's ?t= starts there.
    later = browser.new_context(viewport={"width": 1000, "height": 1000}).new_page()
    watch(later, problems)
    later.goto(f"{server.base}{space['urls']['page']}?t=6")
    expect(later.locator("#play")).to_be_enabled(timeout=20000)
    later.locator("#play").click()
    wait_until(later, "window.podium.playing && !audio.paused && audio.currentTime > 6.2")
    assert media_time(later) < 9, f"?t=6 started at {media_time(later):.1f} s"
    assert problems == []


def test_a_clip_page_plays_and_shows_its_facts_and_the_verify_page_judges_files(
    server: Server, browser: Browser, speakers: Speakers, artifacts: Path, tmp_path: Path
) -> None:
    space = speakers.run(create_space(server, "Clip source"))
    speakers.speak(server, space["urls"]["whip"], space["host_token"], 440)
    speakers.run(wait_for_media(server, space, 13))
    made = httpx.post(f"{server.base}/api/spaces/{space['id']}/clips", json={"start_s": 1.0, "duration_s": 10})
    assert made.status_code == 201, made.text
    clip = made.json()
    end(server, space)

    page = browser.new_context(viewport={"width": 1000, "height": 1000}).new_page()
    problems: list[str] = []
    watch(page, problems)
    page.goto(absolute(server, clip["urls"]["page"]))
    expect(page.locator("#title")).to_have_text("Clip source (clip)")
    expect(page).to_have_title("Clip source (clip) — Podium")
    facts = page.locator("#facts")
    expect(facts).to_contain_text(clip["facts"]["clip_sha256"])
    expect(facts).to_contain_text(clip["facts"]["recording_sha256"])
    expect(page.locator("#where")).to_contain_text("10.0 s from 1.0 s")
    assert page.locator("#context").get_attribute("href") == clip["urls"]["context"]
    wait_until(page, "document.getElementById('audio').readyState >= 1")
    duration = float(page.evaluate("document.getElementById('audio').duration"))
    assert duration == pytest.approx(10, abs=0.1)
    page.screenshot(path=str(artifacts / "clip.png"), full_page=True)

    data = httpx.get(absolute(server, clip["urls"]["file"])).content
    good, bad = tmp_path / "clip.m4a", tmp_path / "changed.m4a"
    good.write_bytes(data)
    changed = bytearray(data)
    changed[len(changed) // 2] ^= 0x01
    bad.write_bytes(bytes(changed))

    page.goto(server.base + "/verify")
    page.get_by_label("Clip file").set_input_files(good)
    page.get_by_role("button", name="Check").click()
    expect(page.locator("#verdict")).to_contain_text("Valid: an unaltered excerpt of “Clip source (clip)”")
    expect(page.locator("#verdict")).to_have_attribute("data-valid", "true")
    expect(page.locator("#checks li[data-ok=false]")).to_have_count(0)
    expect(page.locator("#context-line")).to_be_visible()
    page.screenshot(path=str(artifacts / "verify.png"), full_page=True)

    page.get_by_label("Clip file").set_input_files(bad)
    page.get_by_role("button", name="Check").click()
    expect(page.locator("#verdict")).to_contain_text("Not valid")
    expect(page.locator("#verdict")).to_have_attribute("data-valid", "false")
    expect(page.locator("#checks li[data-ok=false]")).not_to_have_count(0)
    expect(page.locator("#context-line")).to_be_hidden()
    page.screenshot(path=str(artifacts / "verify-not-valid.png"), full_page=True)
    assert problems == []
