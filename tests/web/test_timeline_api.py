"""The timeline as listeners read it: an index with a short max-age, immutable objects."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import httpx
from starlette.applications import Starlette

from podium.app import create_app
from podium.settings import Settings
from podium.testing import eventually, wait_all_tasks_blocked
from tests.web.test_posts_api import user


async def test_a_question_reaches_the_timeline(client: httpx.AsyncClient, app: Starlette) -> None:
    await question_reaches_the_timeline(client, app)


async def test_a_question_reaches_the_timeline_through_redis(tmp_path: Path) -> None:
    """The same, with the bus between the parts of Podium in Redis (as between nodes)."""
    app = create_app(Settings.load({}, data_dir=tmp_path / "data", bus_url="redis://127.0.0.1:6379"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://podium.test") as client:
            await question_reaches_the_timeline(client, app)


async def question_reaches_the_timeline(client: httpx.AsyncClient, app: Starlette) -> None:
    space = (await client.post("/api/spaces", json={"title": "Timeline"})).json()
    ada = await user(client, "ada")
    posted = await client.post(
        f"/api/spaces/{space['id']}/posts",
        json={"kind": "question", "text": "When does it start?", "client_id": uuid.uuid4().hex},
        headers=ada,
    )
    assert posted.status_code == 201
    await client.post(
        f"/api/spaces/{space['id']}/posts",
        json={"kind": "comment", "text": "Hello!", "client_id": uuid.uuid4().hex},
        headers=ada,
    )
    for _ in range(3):
        assert (await client.post(f"/api/spaces/{space['id']}/reactions", json={"emoji": "👏"})).status_code == 202

    async def shown() -> int | None:
        """The newest object's number once everything posted shows in the timeline."""
        await app.state.feed.tick(space["id"])  # close an interval now instead of waiting a second
        index = await client.get(f"/timeline/{space['id']}/index.json")
        assert index.status_code == 200 and index.headers["cache-control"] == "public, max-age=1"
        latest: int = index.json()["latest"]
        items = []
        for seq in range(latest + 1):
            response = await client.get(index.json()["item_url"].format(seq=seq))
            assert response.status_code == 200 and "immutable" in response.headers["cache-control"]
            items.append(json.loads(response.content))
        questions = [q["text"] for item in items for q in item.get("questions", [])]
        comments = [c["text"] for item in items for c in item["comments"]]
        reactions = sum(item["reactions"].get("👏", 0) for item in items)
        assert comments in ([], ["Hello!"]) and reactions <= 3
        return latest if "When does it start?" in questions and comments and reactions == 3 else None

    # Events reach the timeline through the bus (Redis: real I/O): close intervals until they show.
    latest = await eventually(shown, "the question, the comment and 3 reactions in the timeline", timeout_s=3)
    assert (await client.get(f"/timeline/{space['id']}/{latest + 50}.json")).status_code == 404


async def test_bad_reactions_are_refused(client: httpx.AsyncClient) -> None:
    space = (await client.post("/api/spaces", json={"title": "Reactions"})).json()
    response = await client.post(f"/api/spaces/{space['id']}/reactions", json={"emoji": "<b>"})
    assert response.status_code == 400 and "one of" in response.json()["error"]
    statuses = [
        (await client.post(f"/api/spaces/{space['id']}/reactions", json={"emoji": "🔥"})).status_code for _ in range(25)
    ]
    assert statuses.count(202) == 20 and statuses.count(429) == 5


async def test_the_next_object_is_held_until_it_exists(client: httpx.AsyncClient, app: Starlette) -> None:
    space = (await client.post("/api/spaces", json={"title": "Held"})).json()
    await client.post(f"/api/spaces/{space['id']}/reactions", json={"emoji": "🔥"})
    await app.state.feed.tick(space["id"])
    latest = (await client.get(f"/timeline/{space['id']}/index.json")).json()["latest"]
    waiting = asyncio.create_task(client.get(f"/timeline/{space['id']}/{latest + 1}.json"))
    await wait_all_tasks_blocked()
    assert not waiting.done()  # held: the object does not exist yet
    await client.post(f"/api/spaces/{space['id']}/reactions", json={"emoji": "👏"})
    await wait_all_tasks_blocked()  # the reaction went through the bus to the timeline
    await app.state.feed.tick(space["id"])
    answer = await asyncio.wait_for(waiting, 5)
    assert answer.status_code == 200 and json.loads(answer.content)["seq"] == latest + 1
    assert "immutable" in answer.headers["cache-control"]
    # Two ahead is not held: a clear, briefly cacheable "not yet".
    ahead = await client.get(f"/timeline/{space['id']}/{latest + 5}.json")
    assert ahead.status_code == 404 and ahead.headers["cache-control"] == "public, max-age=1"


async def test_keyframes_remember_comments_across_quiet_seconds(client: httpx.AsyncClient, app: Starlette) -> None:
    from podium.audience.timeline import KEYFRAME_EVERY

    space = (await client.post("/api/spaces", json={"title": "Quiet"})).json()
    ada = await user(client, "ada")
    feed = app.state.feed
    for text in ("before 1", "before 2"):
        await client.post(
            f"/api/spaces/{space['id']}/posts",
            json={"kind": "comment", "text": text, "client_id": uuid.uuid4().hex},
            headers=ada,
        )
    await wait_all_tasks_blocked()  # the comments went through the bus to the timeline
    await feed.tick(space["id"])
    await feed.tick(space["id"])  # a quiet second: the space stops ticking
    await client.post(f"/api/spaces/{space['id']}/reactions", json={"emoji": "👏"})
    await wait_all_tasks_blocked()
    while True:
        item = await feed.tick(space["id"])
        if item["seq"] % KEYFRAME_EVERY == 0:
            break
    assert [c["text"] for c in item["recent_comments"]] == ["before 1", "before 2"]
