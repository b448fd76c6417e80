"""The audience in headless Chromium: sign up, ask, and every reader sees it, as inert text."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import Server

pytestmark = pytest.mark.browser

HOSTILE = '<script>window.hacked=1</script><img src=x onerror="window.hacked=2"> abc\u202edcba\u200b'


def test_a_question_shows_for_every_reader_as_inert_text(server: Server, browser: Browser, artifacts: Path) -> None:
    space = httpx.post(server.base + "/api/spaces", json={"title": "Ask me anything"}).json()
    dialogs: list[str] = []
    asker = browser.new_context(viewport={"width": 1000, "height": 1800}).new_page()
    reader = browser.new_context(viewport={"width": 1000, "height": 1800}).new_page()
    for page in (asker, reader):
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(server.base + space["urls"]["page"])

    asker.get_by_label("Username").fill("ada")
    asker.get_by_label("Password").fill("correct horse battery")
    asker.get_by_role("button", name="Create account").click()
    expect(asker.locator("#signed-in-as")).to_contain_text("ada")
    asker.get_by_label("Your question or comment").fill(HOSTILE)
    asker.get_by_role("button", name="Ask").click()
    expect(asker.locator("#post-status")).to_contain_text("Question sent")

    # The other reader, who only follows the timeline, sees it; as text, with nothing hidden in it.
    shown = reader.locator("#questions li").first
    expect(shown).to_contain_text("<script>window.hacked=1</script>", timeout=10000)
    expect(shown).to_contain_text("abcdcba")
    assert reader.locator("#questions script, #questions img").count() == 0
    assert reader.evaluate("window.hacked === undefined")
    assert "\u202e" not in shown.inner_text() and "\u200b" not in shown.inner_text()

    # Reactions are counted for everyone.
    reader.get_by_role("button", name="React 👏").click()
    expect(asker.locator('.reaction[data-emoji="👏"] .count')).to_have_text("1", timeout=10000)

    asker.get_by_label("Your question or comment").fill("Greetings from Lyon")
    asker.get_by_role("button", name="Comment", exact=True).click()
    expect(reader.locator("#comments")).to_contain_text("Greetings from Lyon", timeout=10000)
    reader.screenshot(path=str(artifacts / "audience-listener-page.png"), full_page=True)

    # Signed in, ada raises her hand under the name she posts with, without giving it again.
    expect(asker.get_by_label("Your name")).to_be_hidden()
    asker.get_by_role("button", name="Raise your hand").click()
    expect(asker.locator("#hand-status")).to_contain_text("Your hand is raised, ada")

    # The host hides the question from the console; every reader's page drops it.
    host = browser.new_context(viewport={"width": 1000, "height": 2200}).new_page()
    host.goto(f"{server.base}{space['urls']['host']}#token={space['host_token']}")
    question = host.locator("#posts li", has_text="window.hacked=1")
    expect(question).to_be_visible(timeout=10000)
    host.get_by_label("Pinned on top for everyone").fill("One question each, please")
    host.get_by_role("button", name="Pin", exact=True).click()
    expect(reader.locator("#pinned")).to_contain_text("One question each, please", timeout=10000)
    question.get_by_role("button", name="Hide").focus()
    host.keyboard.press("Enter")  # from the keyboard: focus must stay on the post as it changes
    expect(reader.locator("#questions li")).to_have_count(0, timeout=10000)
    expect(host.locator("#posts li", has_text="window.hacked=1")).to_contain_text("hidden", timeout=10000)
    expect(host.locator("#posts li", has_text="window.hacked=1").get_by_role("button", name="Show")).to_be_focused()
    host.screenshot(path=str(artifacts / "audience-host-console.png"), full_page=True)
    assert dialogs == []
