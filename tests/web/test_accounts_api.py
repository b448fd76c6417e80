"""Accounts for posting: argon2id hashes, sessions for API clients and browsers, limits before hashing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from podium.app import create_app
from podium.errors import InvalidInput
from podium.settings import Settings

PASSWORD = "correct horse battery"


async def sign_up(client: httpx.AsyncClient, username: str = "ada", password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/accounts", json={"username": username, "password": password})


async def test_sign_up_then_sign_in_gives_a_token_and_secure_cookies(client: httpx.AsyncClient, tmp_path: Path) -> None:
    created = await sign_up(client, "Ada")
    assert created.status_code == 201 and created.json()["username"] == "ada"
    response = await client.post("/api/sessions", json={"username": "ADA", "password": PASSWORD})
    assert response.status_code == 200
    token = response.json()["token"]
    cookies = response.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("podium_session="))
    assert "HttpOnly" in session and "Secure" in session and "SameSite=lax" in session
    assert any(c.startswith("podium_csrf=") and "HttpOnly" not in c for c in cookies)
    me = await client.get("/api/sessions/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["username"] == "ada"
    # The password is stored as an argon2id hash, never as itself.
    rows = sqlite3.connect(tmp_path / "data" / "podium.db").execute("SELECT password_hash FROM accounts").fetchall()
    assert rows[0][0].startswith("$argon2id$") and PASSWORD not in rows[0][0]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"username": "ab", "password": PASSWORD}, "3 to 32 characters"),
        ({"username": "<script>", "password": PASSWORD}, "3 to 32 characters"),
        ({"username": "grace", "password": "short"}, "at least 10"),
        ({"username": "grace", "password": "x" * 300}, "at most 256"),
        ({"username": 5, "password": PASSWORD}, "must be a string"),
    ],
)
async def test_bad_sign_ups_say_why(client: httpx.AsyncClient, body: dict, message: str) -> None:
    response = await client.post("/api/accounts", json=body)
    assert response.status_code == 400 and message in response.json()["error"]


async def test_a_username_is_taken_once(client: httpx.AsyncClient) -> None:
    assert (await sign_up(client, "linus")).status_code == 201
    again = await sign_up(client, "Linus")
    assert again.status_code == 409 and "taken" in again.json()["error"]


async def test_wrong_name_and_wrong_password_look_the_same(client: httpx.AsyncClient) -> None:
    await sign_up(client, "grace")
    wrong_password = await client.post("/api/sessions", json={"username": "grace", "password": "not the password"})
    no_such_user = await client.post("/api/sessions", json={"username": "nobody", "password": PASSWORD})
    assert wrong_password.status_code == no_such_user.status_code == 401
    assert wrong_password.json() == no_such_user.json()


async def test_sign_in_attempts_are_limited_before_hashing(client: httpx.AsyncClient, app: Starlette) -> None:
    await sign_up(client, "margaret")
    hashes = 0
    accounts = app.state.accounts
    original = accounts._matches

    def counting(stored: str, password: str) -> bool:
        nonlocal hashes
        hashes += 1
        return bool(original(stored, password))

    accounts._matches = counting
    statuses = []
    for _ in range(14):
        response = await client.post("/api/sessions", json={"username": "margaret", "password": "guess guess guess"})
        statuses.append(response.status_code)
    assert statuses[:10] == [401] * 10 and statuses[10:] == [429] * 4
    assert hashes == 10  # refused guesses never reached the hasher
    assert int(response.headers["retry-after"]) >= 1 and "try again" in response.json()["error"]


async def test_signing_out_by_cookie_revokes_the_session_and_its_csrf_token_is_its_own(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client, "hedy")
    first = await client.post("/api/sessions", json={"username": "hedy", "password": PASSWORD})
    second = await client.post("/api/sessions", json={"username": "hedy", "password": PASSWORD})
    assert first.cookies["podium_csrf"] != second.cookies["podium_csrf"]
    cookie = {"Cookie": f"podium_session={first.cookies['podium_session']}"}
    assert (await client.get("/api/sessions/me", headers=cookie)).status_code == 200
    signed_out = await client.delete("/api/sessions", headers=cookie)
    assert signed_out.status_code == 200
    assert any(c.startswith('podium_session=""') for c in signed_out.headers.get_list("set-cookie"))
    refused = await client.get("/api/sessions/me", headers=cookie)
    assert refused.status_code == 401 and "signed out" in refused.json()["error"]
    token = second.json()["token"]
    assert (await client.get("/api/sessions/me", headers={"Authorization": f"Bearer {token}"})).status_code == 200


async def test_the_sign_in_limits_are_settings_and_bad_ones_are_refused_by_name(tmp_path: Path) -> None:
    settings = Settings.load({"PODIUM_LOGIN_LIMIT_PER_ADDRESS_AND_NAME": "2/minute"}, data_dir=tmp_path / "data")
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    wrong = {"username": "barbara", "password": "wrong guess!"}
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await sign_up(client, "barbara")
        tries = [(await client.post("/api/sessions", json=wrong)).status_code for _ in range(3)]
    assert tries == [401, 401, 429]
    with pytest.raises(InvalidInput, match="PODIUM_LOGIN_FAILURES_PER_NAME must read like"):
        Settings.load({"PODIUM_LOGIN_FAILURES_PER_NAME": "often"})
    with pytest.raises(InvalidInput, match="PODIUM_MEMBER_TOKEN_TTL_S must be from 3600"):
        Settings.load({"PODIUM_MEMBER_TOKEN_TTL_S": "60"})
