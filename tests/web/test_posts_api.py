"""Comments, questions and votes: stored once, ranked, limited, cleaned, refused with reasons."""

from __future__ import annotations

import uuid

import httpx
import pytest

PASSWORD = "correct horse battery"


async def user(client: httpx.AsyncClient, name: str) -> dict[str, str]:
    await client.post("/api/accounts", json={"username": name, "password": PASSWORD})
    token = (await client.post("/api/sessions", json={"username": name, "password": PASSWORD})).json()["token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def space(client: httpx.AsyncClient) -> dict:
    return (await client.post("/api/spaces", json={"title": "Questions welcome"})).json()


def body(kind: str, text: str, client_id: str | None = None) -> dict[str, str]:
    return {"kind": kind, "text": text, "client_id": client_id or uuid.uuid4().hex}


async def test_a_retried_post_exists_once(client: httpx.AsyncClient, space: dict) -> None:
    ada = await user(client, "ada")
    url = f"/api/spaces/{space['id']}/posts"
    first = await client.post(url, json=body("question", "Will it start on time?", "retry-me-0001"), headers=ada)
    again = await client.post(url, json=body("question", "Will it start on time?", "retry-me-0001"), headers=ada)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    questions = (await client.get(f"/api/spaces/{space['id']}/questions")).json()["questions"]
    assert [q["text"] for q in questions] == ["Will it start on time?"]


async def test_questions_rank_by_votes_then_age_and_one_vote_per_user(client: httpx.AsyncClient, space: dict) -> None:
    ada, grace, linus = await user(client, "ada"), await user(client, "grace"), await user(client, "linus")
    url = f"/api/spaces/{space['id']}/posts"
    ids = []
    for text in ("First?", "Second?", "Third?"):
        ids.append((await client.post(url, json=body("question", text), headers=ada)).json()["id"])
    vote = f"/api/spaces/{space['id']}/questions/{{}}/vote"
    for voter in (grace, linus):
        assert (await client.post(vote.format(ids[2]), headers=voter)).json()["counted"] is True
    assert (await client.post(vote.format(ids[2]), headers=grace)).json()["counted"] is False  # once per user
    await client.post(vote.format(ids[1]), headers=grace)
    ranked = (await client.get(f"/api/spaces/{space['id']}/questions")).json()["questions"]
    assert [(q["text"], q["votes"]) for q in ranked] == [("Third?", 2), ("Second?", 1), ("First?", 0)]
    assert all(q["state"] == "open" for q in ranked)
    comment = (await client.post(url, json=body("comment", "Hello from Lyon"), headers=ada)).json()
    refused = await client.post(vote.format(comment["id"]), headers=grace)
    assert refused.status_code == 409
    comments = (await client.get(f"/api/spaces/{space['id']}/comments")).json()["comments"]
    assert [c["text"] for c in comments] == ["Hello from Lyon"]


async def test_a_burst_meets_429_and_other_users_are_not_slowed(client: httpx.AsyncClient, space: dict) -> None:
    ada, grace = await user(client, "ada"), await user(client, "grace")
    url = f"/api/spaces/{space['id']}/posts"
    statuses = [(await client.post(url, json=body("comment", f"spam {n}"), headers=ada)).status_code for n in range(40)]
    assert statuses.count(201) == 10 and statuses.count(429) == 30
    limited = await client.post(url, json=body("comment", "one more"), headers=ada)
    assert int(limited.headers["retry-after"]) >= 1 and "too fast" in limited.json()["error"]
    assert (await client.post(url, json=body("comment", "I am not slowed"), headers=grace)).status_code == 201


async def test_hostile_text_is_stored_clean(client: httpx.AsyncClient, space: dict) -> None:
    ada = await user(client, "ada")
    payload = '<script>alert(1)</script><img src=x onerror="alert(2)">\u202egnp.exe\u200b'
    response = await client.post(f"/api/spaces/{space['id']}/posts", json=body("question", payload), headers=ada)
    assert response.status_code == 201
    assert response.json()["text"] == '<script>alert(1)</script><img src=x onerror="alert(2)">gnp.exe'


@pytest.mark.parametrize(
    ("sent", "status", "message"),
    [
        ({"kind": "rant", "text": "x", "client_id": "abcdefgh"}, 400, "kind must be"),
        ({"kind": "comment", "text": "", "client_id": "abcdefgh"}, 400, "must not be empty"),
        ({"kind": "comment", "text": "x" * 281, "client_id": "abcdefgh"}, 400, "limit is 280"),
        ({"kind": "comment", "text": "hi", "client_id": "short"}, 400, "client_id"),
        ({"kind": "comment", "text": "hi"}, 400, "client_id"),
    ],
)
async def test_bad_posts_say_why(client: httpx.AsyncClient, space: dict, sent: dict, status: int, message: str) -> None:
    ada = await user(client, "ada")
    response = await client.post(f"/api/spaces/{space['id']}/posts", json=sent, headers=ada)
    assert response.status_code == status and message in response.json()["error"]


async def test_posting_needs_an_account_and_cookies_need_the_csrf_echo(client: httpx.AsyncClient, space: dict) -> None:
    url = f"/api/spaces/{space['id']}/posts"
    anonymous = await client.post(url, json=body("comment", "hi"))
    assert anonymous.status_code == 401 and "sign in" in anonymous.json()["error"]
    await user(client, "barbara")
    signed_in = await client.post("/api/sessions", json={"username": "barbara", "password": PASSWORD})
    client.cookies.update(
        {"podium_session": signed_in.cookies["podium_session"], "podium_csrf": signed_in.cookies["podium_csrf"]}
    )
    forged = await client.post(url, json=body("comment", "a cross-site post"))
    assert forged.status_code == 403 and "X-CSRF-Token" in forged.json()["error"]
    echoed = await client.post(
        url, json=body("comment", "from the page"), headers={"X-CSRF-Token": signed_in.cookies["podium_csrf"]}
    )
    assert echoed.status_code == 201 and echoed.json()["author"] == "barbara"


async def test_posting_closes_when_the_space_ends(client: httpx.AsyncClient, space: dict) -> None:
    ada = await user(client, "ada")
    await client.post(f"/api/spaces/{space['id']}/end", headers={"Authorization": f"Bearer {space['host_token']}"})
    response = await client.post(f"/api/spaces/{space['id']}/posts", json=body("comment", "late"), headers=ada)
    assert response.status_code == 409 and "closed" in response.json()["error"]


async def test_moderation_is_for_hosts_and_cohosts(client: httpx.AsyncClient, space: dict) -> None:
    ada = await user(client, "ada")
    host = {"Authorization": f"Bearer {space['host_token']}"}
    base = f"/api/spaces/{space['id']}"
    question = (await client.post(f"{base}/posts", json=body("question", "Why?"), headers=ada)).json()
    guest = (await client.post(f"{base}/guests", json={"name": "Listener"})).json()
    as_guest = {"Authorization": f"Bearer {guest['token']}"}
    for action in ("hide", "answer", "delete"):
        for headers in (ada, as_guest):
            refused = await client.post(f"{base}/posts/{question['id']}/{action}", headers=headers)
            assert refused.status_code in (401, 403), (action, refused.text)
    assert (await client.post(f"{base}/moderation", json={"slow_mode_s": 5}, headers=as_guest)).status_code == 403

    answered = await client.post(f"{base}/posts/{question['id']}/answer", headers=host)
    assert answered.json()["state"] == "answered"
    await client.post(f"{base}/posts/{question['id']}/hide", headers=host)
    assert (await client.get(f"{base}/questions")).json()["questions"] == []
    everything = (await client.get(f"{base}/posts", headers=host)).json()["posts"]
    assert [p["state"] for p in everything] == ["hidden"]  # still stored, seen by moderators


async def test_pin_slow_mode_close_and_block(client: httpx.AsyncClient, space: dict) -> None:
    ada, grace = await user(client, "ada"), await user(client, "grace")
    host = {"Authorization": f"Bearer {space['host_token']}"}
    base = f"/api/spaces/{space['id']}"
    pinned = {"text": "Questions go to the host first", "url": "https://example.org/rules"}
    configured = await client.post(f"{base}/moderation", json={"pinned": pinned, "slow_mode_s": 30}, headers=host)
    assert configured.status_code == 200
    assert (await client.get(f"{base}/moderation")).json() == {
        "posting_open": True,
        "slow_mode_s": 30,
        "pinned": pinned,
    }
    bad = await client.post(
        f"{base}/moderation", json={"pinned": {"text": "x", "url": "javascript:alert(1)"}}, headers=host
    )
    assert bad.status_code == 400 and (await client.get(f"{base}/moderation")).json()["pinned"] == pinned

    assert (await client.post(f"{base}/posts", json=body("comment", "one"), headers=ada)).status_code == 201
    slowed = await client.post(f"{base}/posts", json=body("comment", "two"), headers=ada)
    assert (
        slowed.status_code == 429 and "slow mode" in slowed.json()["error"] and int(slowed.headers["retry-after"]) > 0
    )

    ada_id = (await client.get("/api/sessions/me", headers=ada)).json()["id"]
    assert (await client.post(f"{base}/blocked/{ada_id}", headers=host)).json()["blocked"] is True
    blocked = await client.post(f"{base}/posts", json=body("comment", "three"), headers=ada)
    assert blocked.status_code == 403 and "blocked" in blocked.json()["error"]

    await client.post(f"{base}/moderation", json={"posting_open": False}, headers=host)
    closed = await client.post(f"{base}/posts", json=body("comment", "hello"), headers=grace)
    assert closed.status_code == 409 and "closed posting" in closed.json()["error"]
