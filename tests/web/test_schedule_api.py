"""What is on, and the calendar file of a scheduled space."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import icalendar

from tests.web.test_api import create

SOON = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
LATER = SOON + timedelta(days=3)


async def signed_in(client: httpx.AsyncClient, username: str = "ada") -> dict[str, str]:
    """An account's Authorization header."""
    account = {"username": username, "password": "a long enough password"}
    assert (await client.post("/api/accounts", json=account)).status_code == 201
    session = await client.post("/api/sessions", json=account)
    return {"Authorization": f"Bearer {session.json()['token']}"}


async def test_upcoming_spaces_are_listed_soonest_first(client: httpx.AsyncClient) -> None:
    ada = await signed_in(client)
    later = await create(client, title="Later", starts_at=LATER.isoformat(), headers=ada)
    soon = await create(client, title="Soon", starts_at=SOON.isoformat(), headers=ada)
    await create(client, title="No start time", headers=ada)  # being prepared: not announced
    response = await client.get("/api/spaces")
    assert response.status_code == 200 and "max-age" in response.headers["cache-control"]
    listing = response.json()
    assert listing["live"] == []
    assert [s["id"] for s in listing["upcoming"]] == [soon["id"], later["id"]]
    assert all("host_token" not in s for s in listing["upcoming"])


async def test_a_strangers_anonymous_spaces_fill_neither_the_listing_nor_the_feed(client: httpx.AsyncClient) -> None:
    ada = await signed_in(client)
    announced = await create(client, title="Ada's interview", starts_at=SOON.isoformat(), headers=ada)
    for n in range(15):  # anonymous: anyone may create some, nobody is shown them
        await create(client, title=f"spam {n}", starts_at=(SOON - timedelta(hours=1)).isoformat())
    listing = (await client.get("/api/spaces")).json()
    assert [s["id"] for s in listing["upcoming"]] == [announced["id"]]
    feed = (await client.get("/feed.xml")).text
    assert "Ada's interview" in feed and "spam" not in feed


async def test_the_calendar_file_reminds_before_the_start(client: httpx.AsyncClient) -> None:
    space = await create(client, title="The 20:00 interview; with, commas", starts_at=SOON.isoformat())
    response = await client.get(f"/api/spaces/{space['id']}/calendar.ics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    assert "attachment" in response.headers["content-disposition"]
    assert b"\r\n" in response.content  # RFC 5545 lines end in CRLF
    calendar = icalendar.Calendar.from_ical(response.content)
    (event,) = calendar.walk("VEVENT")
    assert str(event["summary"]) == "The 20:00 interview; with, commas"
    assert event.decoded("dtstart") == SOON
    assert event.decoded("dtend") - event.decoded("dtstart") == timedelta(hours=1)
    assert str(event["url"]).endswith(f"/s/{space['id']}") and str(event["url"]).startswith("http")
    assert str(event["uid"]).startswith(space["id"] + "@")
    (alarm,) = event.walk("VALARM")
    assert alarm.decoded("trigger") == -timedelta(minutes=15)


async def test_a_space_starting_soon_gets_an_alarm_that_can_still_ring(client: httpx.AsyncClient) -> None:
    now = datetime.now(UTC)
    for minutes_away, lead in ((10, 5), (3, 1), (1, None)):
        starts = (now + timedelta(minutes=minutes_away, seconds=20)).replace(microsecond=0)
        space = await create(client, starts_at=starts.isoformat())
        calendar = icalendar.Calendar.from_ical((await client.get(f"/api/spaces/{space['id']}/calendar.ics")).content)
        (event,) = calendar.walk("VEVENT")
        alarms = event.walk("VALARM")
        if lead is None:
            assert alarms == [], "an alarm that could never ring"
        else:
            (alarm,) = alarms
            assert alarm.decoded("trigger") == -timedelta(minutes=lead)
            assert f"starts in {lead} minutes" in str(alarm["description"])


async def test_no_calendar_without_a_start_time_or_after_the_end(client: httpx.AsyncClient) -> None:
    space = await create(client)
    response = await client.get(f"/api/spaces/{space['id']}/calendar.ics")
    assert response.status_code == 409 and "no start time" in response.json()["error"]
    assert (await client.get("/api/spaces/nosuchspace1/calendar.ics")).status_code == 404
    timed = await create(client, starts_at=SOON.isoformat())
    auth = {"Authorization": f"Bearer {timed['host_token']}"}
    assert (await client.post(f"/api/spaces/{timed['id']}/end", headers=auth)).status_code == 200
    ended = await client.get(f"/api/spaces/{timed['id']}/calendar.ics")
    assert ended.status_code == 409 and "ended" in ended.json()["error"]
