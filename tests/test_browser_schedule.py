"""What is on, in Chromium: the home page lists what is coming up, a scheduled space counts down
to its start and offers a calendar file."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import icalendar
import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import Server

pytestmark = pytest.mark.browser


def test_upcoming_spaces_count_down_and_remind(server: Server, browser: Browser, artifacts: Path) -> None:
    starts = (datetime.now(UTC) + timedelta(hours=2, minutes=5)).replace(microsecond=0)
    # Announced: created by an account. Not: one without a start, one without an account.
    account = {"username": "ada", "password": "a long enough password"}
    httpx.post(f"{server.base}/api/accounts", json=account).raise_for_status()
    ada = {"Authorization": f"Bearer {httpx.post(f'{server.base}/api/sessions', json=account).json()['token']}"}
    space = httpx.post(
        f"{server.base}/api/spaces", json={"title": "The 20:00 interview", "starts_at": starts.isoformat()}, headers=ada
    ).json()
    httpx.post(f"{server.base}/api/spaces", json={"title": "Not announced yet"}, headers=ada).raise_for_status()
    anonymous = {"title": "Anonymous", "starts_at": starts.isoformat()}
    httpx.post(f"{server.base}/api/spaces", json=anonymous).raise_for_status()

    context = browser.new_context(viewport={"width": 1000, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.goto(server.base + "/")
    items = page.locator("#upcoming-list li")
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("The 20:00 interview")
    expect(page.locator("#nothing-on")).to_be_hidden()
    page.screenshot(path=str(artifacts / "home-listing.png"), full_page=True)

    items.first.locator("a").click()
    page.wait_for_url(f"**/s/{space['id']}")
    countdown = page.locator("#countdown")
    expect(countdown).to_have_text(re.compile(r"Starts in 2 h 0[45] min \d\d s"))
    first = countdown.text_content()
    page.wait_for_timeout(1500)
    assert countdown.text_content() != first  # it ticks
    expect(page.locator("#play")).to_be_disabled()
    page.screenshot(path=str(artifacts / "countdown.png"), full_page=True)

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Remind me (add to calendar)").click()
    path = download_info.value.path()
    assert path is not None and download_info.value.suggested_filename.endswith(".ics")
    (event,) = icalendar.Calendar.from_ical(Path(path).read_bytes()).walk("VEVENT")
    assert event.decoded("dtstart") == starts and str(event["summary"]) == "The 20:00 interview"
    context.close()
