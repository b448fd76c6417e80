"""One contract for the durable stores, run unchanged over SQLite and PostgreSQL (a real server on
loopback, a database of its own made for the run and dropped after)."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from podium.backends.sql import SqlSpaceStore
from podium.domain.accounts import Account
from podium.domain.posts import Post, PostKind, PostState
from podium.domain.space import Space, SpaceState
from podium.domain.webhooks import Attempt, Hook
from podium.ids import PostId, SpaceId, UserId

POSTGRES = "postgresql://postgres@127.0.0.1:5432"
NOW = datetime(2026, 12, 1, 19, 0, tzinfo=UTC)


def _new_database() -> Iterator[str]:
    name = f"podium_contract_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(f"{POSTGRES}/test", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL is not running at {POSTGRES} ({error}); .ci/run starts it")
    with admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(f"{POSTGRES}/test", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    """A database shared by one module's tests (each test makes its own rows)."""
    yield from _new_database()


@pytest.fixture
def own_postgres_database() -> Iterator[str]:
    """A database for one test alone (a node that loads everything at start)."""
    yield from _new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlSpaceStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'podium.db'}"
    else:
        url = request.getfixturevalue("postgres_database")
    instance = SqlSpaceStore(url)
    yield instance
    await instance.close()


def space(title: str = "Talk", state: SpaceState = SpaceState.SCHEDULED, **extra: object) -> Space:
    return Space(SpaceId(secrets.token_hex(6)), title, state, NOW, **extra)  # type: ignore[arg-type]


async def test_spaces_round_trip_and_are_found_by_state(store: SqlSpaceStore) -> None:
    soon = space("Soon", starts_at=NOW + timedelta(hours=1), private=True)
    later = space("Later", starts_at=NOW + timedelta(hours=2), record=False)
    live = space("On air", SpaceState.LIVE, started_at=NOW)
    ended = space("Over", SpaceState.ENDED, started_at=NOW, ended_at=NOW + timedelta(hours=1), peak_listeners=7)
    for s in (later, soon, live, ended):
        await store.add(s)
    assert await store.get(soon.id) == soon and await store.get(ended.id) == ended
    assert await store.get(SpaceId("nosuchspace0")) is None
    assert [s.id for s in await store.upcoming(10)][-2:] == [soon.id, later.id]
    assert live.id in {s.id for s in await store.live()}
    assert {soon.id, later.id, live.id} <= {s.id for s in await store.unfinished()}
    assert ended.id not in {s.id for s in await store.unfinished()}
    saved = Space(soon.id, "Soon, renamed", SpaceState.LIVE, NOW, started_at=NOW, private=True)
    await store.save(saved)
    assert await store.get(soon.id) == saved


async def test_only_announced_spaces_are_listed_when_asked(store: SqlSpaceStore) -> None:
    anonymous = space("Anonymous, upcoming", starts_at=NOW + timedelta(hours=1))
    owned = space("An account's", starts_at=NOW + timedelta(hours=2), created_by=UserId("u" + secrets.token_hex(6)))
    owned_no_show = space("Nobody came", starts_at=NOW, created_by=UserId("u2"), preshow_closed=True)
    secret = space("Private", starts_at=NOW + timedelta(hours=3), created_by=UserId("u1"), private=True)
    aired = space("Went live", SpaceState.ENDED, started_at=NOW, ended_at=NOW + timedelta(hours=1))
    closed = space("No-show", starts_at=NOW, preshow_closed=True)
    for s in (anonymous, owned, owned_no_show, secret, aired, closed):
        await store.add(s)
    assert await store.get(owned.id) == owned and await store.get(closed.id) == closed
    upcoming = {s.id for s in await store.upcoming(100, announced=True)}
    assert owned.id in upcoming and not upcoming & {anonymous.id, owned_no_show.id, secret.id, aired.id, closed.id}
    recent = {s.id for s in await store.recent(100, announced=True)}
    assert {owned.id, aired.id} <= recent and not recent & {anonymous.id, secret.id, closed.id}
    assert {anonymous.id, secret.id} <= {s.id for s in await store.upcoming(100)}


async def test_json_states_are_replaced_whole(store: SqlSpaceStore) -> None:
    s = space()
    await store.add(s)
    assert await store.load_stage(s.id) is None
    await store.save_stage(s.id, {"members": {"a": 1}})
    await store.save_stage(s.id, {"members": {"b": 2}})
    assert await store.load_stage(s.id) == {"members": {"b": 2}}
    await store.save_moderation(s.id, {"slow_mode_s": 5})
    assert await store.load_moderation(s.id) == {"slow_mode_s": 5}


async def test_a_username_is_taken_once(store: SqlSpaceStore) -> None:
    name = f"ada{secrets.token_hex(3)}"
    assert await store.add_account(Account(UserId("u" + secrets.token_hex(6)), name, NOW), "hash-1")
    assert not await store.add_account(Account(UserId("u" + secrets.token_hex(6)), name, NOW), "hash-2")
    found = await store.account_by_name(name)
    assert found is not None and found[1] == "hash-1"
    await store.set_password_hash(found[0].id, "hash-3")
    assert (await store.account_by_name(name) or (None, ""))[1] == "hash-3"


async def test_a_signed_out_session_is_kept_until_its_token_would_have_expired(store: SqlSpaceStore) -> None:
    gone, kept = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    assert not await store.session_revoked(gone)
    await store.revoke_session(gone, NOW + timedelta(days=1), NOW)
    await store.revoke_session(gone, NOW + timedelta(days=1), NOW)  # twice: still one record
    assert await store.session_revoked(gone)
    # A later sign-out, past the first one's token lifetime, forgets it: the table stays bounded.
    await store.revoke_session(kept, NOW + timedelta(days=3), NOW + timedelta(days=2))
    assert not await store.session_revoked(gone) and await store.session_revoked(kept)


async def test_a_retried_post_is_the_same_post_and_a_vote_counts_once(store: SqlSpaceStore) -> None:
    s = space()
    await store.add(s)
    post = Post(
        PostId("p" + secrets.token_hex(6)), s.id, UserId("u1"), "ada", PostKind.QUESTION, "Why?", "c-1", NOW,
        PostState.OPEN,
    )  # fmt: skip
    assert await store.add_post(post) == (post, True)
    retry = Post(PostId("p" + secrets.token_hex(6)), s.id, UserId("u1"), "ada", PostKind.QUESTION, "Why?", "c-1", NOW)
    stored, created = await store.add_post(retry)
    assert not created and stored.id == post.id
    assert await store.vote(post.id, UserId("u2")) and not await store.vote(post.id, UserId("u2"))
    await store.set_post_state(post.id, PostState.HIDDEN)
    found = await store.post(post.id)
    assert found is not None and found.votes == 1 and found.state is PostState.HIDDEN
    assert [p.id for p in await store.posts(s.id, PostKind.QUESTION, 10, newest_first=True)] == [post.id]


def test_a_database_from_before_migrations_is_mended_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:  # what Podium 0.1 created, before `record` and `private`
        old.execute(
            "CREATE TABLE spaces (id VARCHAR(32) PRIMARY KEY, title VARCHAR(400) NOT NULL, state VARCHAR(16) NOT NULL,"
            " created_at VARCHAR(40) NOT NULL, starts_at VARCHAR(40), started_at VARCHAR(40), ended_at VARCHAR(40),"
            " peak_listeners INTEGER NOT NULL)"
        )
        old.execute(
            "INSERT INTO spaces VALUES ('oldspace0001', 'Kept', 'ended', ?, NULL, NULL, NULL, 3)", (NOW.isoformat(),)
        )
    store = SqlSpaceStore(f"sqlite:///{path}")
    kept = asyncio.run(store.get(SpaceId("oldspace0001")))
    assert kept is not None and kept.title == "Kept" and kept.record and not kept.private and kept.peak_listeners == 3
    SqlSpaceStore(f"sqlite:///{path}")  # a second start finds it current
    with sqlite3.connect(path) as db:
        # Stamped with the first revision, then upgraded to the newest (0004: space owner, pre-show).
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("0004",)]
        assert db.execute("SELECT count(*) FROM webhook_attempts").fetchall() == [(0,)]
        assert db.execute("SELECT count(*) FROM revoked_sessions").fetchall() == [(0,)]


def test_podium_serve_keeps_its_spaces_in_postgresql_across_a_restart(
    own_postgres_database: str, tmp_path: Path
) -> None:
    import httpx

    from tests.conftest import Server, free_port

    url = own_postgres_database.replace("postgresql+psycopg://", "postgresql://")
    server = Server(tmp_path / "data", free_port(), tmp_path / "podium.log", env={"PODIUM_DATABASE_URL": url})
    server.start()
    try:
        created = httpx.post(f"{server.base}/api/spaces", json={"title": "In PostgreSQL"}).json()
    finally:
        server.stop()
    (tmp_path / "data" / "podium.db").unlink(missing_ok=True)  # nothing of it is in SQLite
    server.start()
    try:
        again = httpx.get(f"{server.base}/api/spaces/{created['id']}")
        assert again.status_code == 200 and again.json()["title"] == "In PostgreSQL"
    finally:
        server.stop()
    assert not (tmp_path / "data" / "podium.db").exists()


async def test_a_node_starts_even_when_a_stored_stage_state_cannot_be_read(tmp_path: Path) -> None:
    from podium.app import create_app
    from podium.settings import Settings

    settings = Settings.load({}, data_dir=tmp_path / "data")
    first = create_app(settings)
    async with first.router.lifespan_context(first):
        transport = httpx.ASGITransport(app=first)
        async with httpx.AsyncClient(transport=transport, base_url="http://n") as client:
            space = (await client.post("/api/spaces", json={"title": "Kept"})).json()
        await first.state.space_store.save_stage(SpaceId(space["id"]), {"members": {"x": "not a member"}})
    again = create_app(settings)
    async with again.router.lifespan_context(again):
        transport = httpx.ASGITransport(app=again)
        async with httpx.AsyncClient(transport=transport, base_url="http://n") as client:
            assert (await client.get(f"/api/spaces/{space['id']}")).json()["title"] == "Kept"


async def test_webhooks_are_limited_per_space_and_their_log_keeps_the_newest(store: SqlSpaceStore) -> None:
    s = space()
    await store.add(s)
    hooks = [
        Hook(f"wh_{n}{secrets.token_hex(4)}", s.id, f"https://example.org/{n}", "whsec_AAAA", NOW) for n in range(3)
    ]
    assert [await store.add_webhook(hook, limit=2) for hook in hooks] == [True, True, False]
    assert await store.webhooks(s.id) == hooks[:2]
    assert await store.remove_webhook(s.id, hooks[0].id) and not await store.remove_webhook(s.id, hooks[0].id)
    assert await store.webhooks(s.id) == hooks[1:2]
    for n in range(1, 8):
        attempt = Attempt("msg_1", "space.ended", hooks[1].id, hooks[1].url, n, 500 if n < 7 else 200, None, n, NOW)
        await store.add_attempt(s.id, attempt, keep=5)
    logged = await store.attempts(s.id, 100)
    assert [a.attempt for a in logged] == [7, 6, 5, 4, 3] and logged[0].delivered and not logged[1].delivered
    assert await store.attempts(space().id, 100) == []
