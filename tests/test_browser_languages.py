"""The pages in the browser's language, in Chromium: a German browser gets German everywhere,
including what the scripts write as the show goes on (the stage status, the player status), and
an English one gets English; nothing of the other language is left on the page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from podium.web import i18n
from tests.conftest import Server

pytestmark = pytest.mark.browser

# What the pages show of themselves, in the order a user sees it.
SHOWN = {
    "de": {
        "go_live": "Live gehen",
        "on_stage": "Sie sind live auf der Bühne.",
        "live": "live",
        "play": "Abspielen",
        "playing": re.compile(r"^(Live-Wiedergabe\.|Wiedergabe, hinter live\.)$"),
        "listening_now": "hören gerade zu",
        "heading": "Top-Fragen",
        "stream": "pünktlich",
        "ended": "beendet",
        "host": "Gastgeber",
    },
    "en": {
        "go_live": "Go live",
        "on_stage": "You are live on stage.",
        "live": "live",
        "play": "Play",
        "playing": re.compile(r"^(Playing live\.|Playing, behind live\.)$"),
        "listening_now": "listening now",
        "heading": "Top questions",
        "stream": "on time",
        "ended": "ended",
        "host": "Host",
    },
}


def visible_text(page: Page) -> str:
    """What a reader sees or hears of a page: its text, title, labels, placeholders and tooltips."""
    text: str = page.evaluate(
        """() => [document.title, document.body.innerText,
             ...[...document.querySelectorAll("[aria-label], [placeholder], [title]")]
               .filter((e) => e.offsetParent !== null || e.tagName === "CANVAS")
               .flatMap((e) => [e.getAttribute("aria-label"), e.getAttribute("placeholder"), e.getAttribute("title")])
               .filter(Boolean)].join("\\n")"""
    )
    return text


def foreign_strings(shown: str, lang: str) -> list[str]:
    """The other language's strings (those that differ from this one's) found on the page."""
    own = i18n.languages()[lang].strings
    found = []
    for other_tag, other in i18n.languages().items():
        if other_tag == lang:
            continue
        for key, text in other.strings.items():
            # A language's own name ("English" in a list of languages) is written in that language.
            if key.endswith("_html") or key.startswith(("embed.", "language.")) or text == own[key] or "{" in text:
                continue
            # Single short words ("on", "off") say nothing about which language is shown.
            if len(text) < 6 and " " not in text:
                continue
            if re.search(rf"(?<!\w){re.escape(text)}(?!\w)", shown):
                found.append(f"{key}: {text!r}")
    return found


@pytest.mark.parametrize("lang", ["de", "en"])
def test_the_listener_page_and_the_host_console_speak_the_browsers_language(
    server: Server, browser: Browser, artifacts: Path, lang: str
) -> None:
    words: dict[str, Any] = SHOWN[lang]
    locale = {"de": "de-DE", "en": "en-US"}[lang]
    space = httpx.post(server.base + "/api/spaces", json={"title": f"Sprachprobe / language check ({lang})"}).json()
    problems: list[str] = []

    host = browser.new_context(locale=locale, viewport={"width": 1000, "height": 1400}).new_page()
    host.on("console", lambda m: problems.append(f"host: {m.text}") if m.type == "error" else None)
    host.goto(f"{server.base}{space['urls']['host']}#token={space['host_token']}")
    expect(host.locator("html")).to_have_attribute("lang", lang)
    host.get_by_role("button", name=words["go_live"]).click()
    expect(host.locator("#status")).to_have_text(words["on_stage"], timeout=30_000)
    expect(host.locator("#state")).to_have_text(words["live"], timeout=10_000)
    expect(host.locator("#b-stream")).to_have_text(words["stream"], timeout=15_000)

    listener = browser.new_context(locale=locale, viewport={"width": 1000, "height": 1300}).new_page()
    listener.on("console", lambda m: problems.append(f"listener: {m.text}") if m.type == "error" else None)
    listener.goto(server.base + space["urls"]["page"])
    expect(listener.locator("#state")).to_have_text(words["live"], timeout=20_000)
    expect(listener.locator("#questions-heading")).to_have_text(words["heading"])
    listener.get_by_role("button", name=words["play"]).click()
    expect(listener.locator("#status")).to_have_text(words["playing"], timeout=30_000)
    expect(listener.locator("#stage li").first).to_contain_text(words["host"], timeout=15_000)
    expect(host.locator("#now")).not_to_have_text("0", timeout=15_000)
    expect(listener.locator(".stat small").first).to_have_text(words["listening_now"])

    listener.wait_for_timeout(500)
    host.wait_for_timeout(500)
    listener.screenshot(path=str(artifacts / f"listener-{lang}.png"), full_page=True)
    host.screenshot(path=str(artifacts / f"host-{lang}.png"), full_page=True)
    # Everything the console folds away or opens on demand is in the page's language too.
    host.locator("#board-card summary").click()
    for name, page in (("listener page", listener), ("host console", host)):
        left = foreign_strings(visible_text(page), lang)
        assert left == [], f"the {name} in {lang} shows strings of another language: {left}"
    host.locator("#share-open").click()
    expect(host.locator("#share-sheet")).to_be_visible()
    left = foreign_strings(visible_text(host), lang)
    assert left == [], f"the share sheet in {lang} shows strings of another language: {left}"
    host.locator("#share-close").click()

    # A speaker's view (with the audience on it), and the replay once the host has ended.
    invite = httpx.post(
        f"{server.base}/api/spaces/{space['id']}/invites",
        json={"role": "speaker"},
        headers={"Authorization": f"Bearer {space['host_token']}"},
    ).json()
    speaker = browser.new_context(locale=locale, viewport={"width": 1000, "height": 1300}).new_page()
    speaker.goto(server.base + "/join/" + space["id"] + "#invite=" + invite["token"])
    speaker.locator("#name").fill("Grace")
    speaker.locator("#name-form button").click()
    expect(speaker.locator("#controls")).to_be_visible(timeout=10_000)
    assert problems == [], "the pages logged errors"
    host.on("dialog", lambda dialog: dialog.accept())
    host.locator("#end").click()
    expect(listener.locator("#state")).to_have_text(words["ended"], timeout=20_000)
    for name, page in (("speaker's page", speaker), ("replay", listener)):
        left = foreign_strings(visible_text(page), lang)
        assert left == [], f"the {name} in {lang} shows strings of another language: {left}"
    # After the end, the timeline's reader learns it is at the end from a 404 ("not made yet").
    assert [p for p in problems if "Failed to load resource" not in p] == [], "the pages logged errors"
