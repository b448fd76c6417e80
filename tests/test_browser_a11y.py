"""The pages as keyboard and screen-reader users meet them, in headless Chromium: axe-core finds no
serious or critical violation on any page (desktop and phone, live and ended, English and German),
the reaction and vote buttons keep keyboard focus while the space changes around them, reactions
float, votes show their state and announcements are polite and never pile up."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser_support import Speakers
from tests.conftest import Server
from tests.test_browser_replay import end, wait_until
from tests.test_live_media import create_space, wait_for_media

pytestmark = [pytest.mark.browser, pytest.mark.media]

AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
PASSWORD = "correct horse battery"


@pytest.fixture
def axe_dir(artifacts: Path) -> Path:
    folder = artifacts / "axe"
    folder.mkdir(exist_ok=True)
    return folder


def audit(page: Page, name: str, folder: Path) -> list[str]:
    """axe-core's violations of `page`, all written to `folder/name.json`; the serious and critical
    ones returned as lines a person can act on."""
    if not AXE.exists():
        pytest.fail(f"axe-core is not installed at {AXE} (scripts/setup --test installs it)")
    page.add_script_tag(path=str(AXE))
    violations: list[dict[str, Any]] = page.evaluate("axe.run(document, {resultTypes: ['violations']})")["violations"]
    (folder / f"{name}.json").write_text(json.dumps(violations, indent=1, ensure_ascii=False))
    return [
        f"{name}: {v['id']} ({v['impact']}) at {node['target']}: {node['failureSummary']}"
        for v in violations
        if v["impact"] in ("serious", "critical")
        for node in v["nodes"][:3]
    ]


def sign_up(server: Server, name: str) -> dict[str, Any]:
    credentials = {"username": name, "password": PASSWORD}
    httpx.post(f"{server.base}/api/accounts", json=credentials).raise_for_status()
    return dict(httpx.post(f"{server.base}/api/sessions", json=credentials).json())


@pytest.fixture
def live_space(server: Server, speakers: Speakers) -> Iterator[dict[str, Any]]:
    """A live space whose host speaks (a tone: axe and focus need a stage, not words)."""
    space = speakers.run(create_space(server, "Accessible for all"))
    speakers.speak(server, space["urls"]["whip"], space["host_token"], 440)
    speakers.run(wait_for_media(server, space, 2))
    yield space


def test_no_page_has_a_serious_accessibility_violation_on_desktop_or_phone(
    server: Server, browser: Browser, speakers: Speakers, live_space: dict[str, Any], axe_dir: Path, artifacts: Path
) -> None:
    space, sid = live_space, live_space["id"]
    speakers.run(wait_for_media(server, space, 13))
    made = httpx.post(f"{server.base}/api/spaces/{sid}/clips", json={"start_s": 1.0, "duration_s": 10})
    assert made.status_code == 201, made.text
    clip = made.json()
    asker = sign_up(server, "ada")
    httpx.post(
        f"{server.base}/api/spaces/{sid}/posts",
        json={"kind": "question", "text": "Can everyone hear this?", "client_id": "a11y-question-01"},
        headers={"Authorization": f"Bearer {asker['token']}"},
    ).raise_for_status()

    live = {
        "home": ("/", "#title, h1"),
        "host": (f"{space['urls']['host']}#token={space['host_token']}", "#stage .person"),
        "listen": (space["urls"]["page"], "#stage .person"),
        "listen-de": (space["urls"]["page"] + "?lang=de", "#stage .person"),
        "speaker": (f"/join/{sid}", "h1"),
        "embed": (f"/embed/{sid}", "#title"),
        "embed-full": (f"/embed/{sid}?layout=full", "#questions li"),
        "verify": ("/verify", "h1"),
    }
    ended = {
        "replay": (space["urls"]["page"], "#play:enabled"),
        "replay-de": (space["urls"]["page"] + "?lang=de", "#play:enabled"),
        "clip": (clip["urls"]["page"], "#facts"),
        "embed-ended": (f"/embed/{sid}", "#play:enabled"),
    }
    problems: list[str] = []

    def visit(pages: dict[str, tuple[str, str]]) -> None:
        for viewport, size in VIEWPORTS.items():
            # Axe is injected as a script tag, which the pages' CSP (rightly) forbids: bypass it here.
            context = browser.new_context(viewport=size, bypass_csp=True, is_mobile=viewport == "phone")
            for name, (path, ready) in pages.items():
                page = context.new_page()
                page.goto(server.base + path)
                page.locator(ready).first.wait_for(timeout=20000)
                problems.extend(audit(page, f"{name}-{viewport}", axe_dir))
                page.screenshot(path=str(artifacts / f"a11y-{name}-{viewport}.png"), full_page=True)
                page.close()
            context.close()

    visit(live)
    end(server, space)
    visit(ended)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_reactions_float_votes_show_and_focus_stays_while_the_space_changes(
    server: Server, browser: Browser, live_space: dict[str, Any], viewport: str
) -> None:
    api = f"{server.base}/api/spaces/{live_space['id']}"
    asker, voter = sign_up(server, "ada"), sign_up(server, "grace")

    def ask(text: str, client_id: str) -> None:
        httpx.post(
            f"{api}/posts",
            json={"kind": "question", "text": text, "client_id": client_id},
            headers={"Authorization": f"Bearer {asker['token']}"},
        ).raise_for_status()

    ask("What comes next?", "a11y-focus-q-001")
    page = browser.new_context(viewport=VIEWPORTS[viewport], is_mobile=viewport == "phone").new_page()
    page.goto(server.base + live_space["urls"]["page"])
    page.get_by_label("Username").fill("grace")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#post-form")).to_be_visible()
    assert voter["user"]["username"] == "grace"

    # A keyboard user reacts with 🔥: the emoji floats up, and the count counts it.
    fire = page.get_by_role("button", name="React 🔥")
    fire.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#floats .float").first).to_be_attached()
    fire_count = page.locator('.reaction[data-emoji="🔥"] .count')
    expect(fire_count).to_have_text("1", timeout=15000)

    # Others react and ask while focus rests on the button: it is the same button, still focused,
    # and others' reactions float too.
    handle = fire.element_handle()
    for _ in range(4):
        httpx.post(f"{api}/reactions", json={"emoji": "🔥"}).raise_for_status()
    ask("Will the recording be published?", "a11y-focus-q-002")
    expect(fire_count).to_have_text("5", timeout=15000)
    expect(page.locator("#questions li")).to_have_count(2, timeout=15000)
    assert page.evaluate("b => b.isConnected && document.activeElement === b", handle)
    page.keyboard.press("Enter")  # a second press is not lost to a rebuilt button
    expect(fire_count).to_have_text("6", timeout=15000)

    # A vote shows as pressed, in words too, and keeps focus as the ranking moves.
    second = page.locator("#questions li", has_text="Will the recording be published?").locator("button.votes")
    second.focus()
    page.keyboard.press("Enter")
    expect(second).to_have_attribute("aria-pressed", "true")
    expect(second).to_have_accessible_name("1 vote, vote for this question", timeout=15000)
    expect(page.locator("#questions li").first).to_contain_text("Will the recording be published?")
    assert page.evaluate("document.activeElement.getAttribute('aria-pressed')") == "true"

    # The new question was announced politely; bursts of news wait their turn and only the newest
    # is read: of three announcements made at once, the first and the last are heard.
    expect(page.locator("#announce")).to_have_text(
        "New question from ada: Will the recording be published?", timeout=15000
    )
    page.evaluate(
        """() => {
          window.heard = [];
          new MutationObserver(() => window.heard.push(document.getElementById('announce').textContent))
            .observe(document.getElementById('announce'), {childList: true, characterData: true, subtree: true});
          announce('first'); announce('second'); announce('third');
        }"""
    )
    wait_until(page, "window.heard.includes('third')")
    heard = page.evaluate("window.heard")
    assert "second" not in heard and heard[-1] == "third", heard
