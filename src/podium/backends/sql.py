"""Spaces, accounts and posts in a relational database through SQLAlchemy Core: SQLite embedded,
PostgreSQL for more than one node (`PODIUM_DATABASE_URL`). The schema comes from the migrations."""

from __future__ import annotations

import asyncio
import json
from dataclasses import fields
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from podium.backends.migrations import migrate
from podium.domain.accounts import Account
from podium.domain.posts import Post, PostKind, PostState
from podium.domain.space import Space, SpaceState
from podium.domain.webhooks import Attempt, Hook
from podium.ids import PostId, SpaceId, UserId

T = TypeVar("T")

metadata = sa.MetaData()

spaces = sa.Table(
    "spaces",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("title", sa.String(400), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("starts_at", sa.String(40)),
    sa.Column("started_at", sa.String(40)),
    sa.Column("ended_at", sa.String(40)),
    sa.Column("peak_listeners", sa.Integer, nullable=False, default=0),
    sa.Column("record", sa.Boolean, nullable=False, default=True, server_default=sa.true()),
    sa.Column("private", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sa.Column("created_by", sa.String(32)),
    sa.Column("preshow_closed", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
)


def _state_table(name: str, *space_key: sa.ForeignKey) -> sa.Table:
    """One JSON state per space (stage, moderation), replaced whole."""
    space_id = sa.Column("space_id", sa.String(32), *space_key, primary_key=True)
    return sa.Table(name, metadata, space_id, sa.Column("state", sa.Text, nullable=False))


stages = _state_table("stages", sa.ForeignKey("spaces.id"))
moderation = _state_table("moderation")


accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("username", sa.String(32), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(256), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
)


# Signed-out sessions, kept until their tokens would have expired anyway.
revoked_sessions = sa.Table(
    "revoked_sessions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("until", sa.String(40), nullable=False, index=True),
)


posts = sa.Table(
    "posts",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("space_id", sa.String(32), nullable=False),
    sa.Column("user_id", sa.String(32), nullable=False),
    sa.Column("username", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("client_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("votes", sa.Integer, nullable=False, default=0),
    # A retried post (same user, same client id) is the same post: the index makes it so.
    sa.UniqueConstraint("space_id", "user_id", "client_id", name="posts_once"),
    sa.Index("posts_by_space", "space_id", "kind", "state"),
)

votes = sa.Table(
    "votes",
    metadata,
    sa.Column("post_id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.String(32), primary_key=True),
)

webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("space_id", sa.String(32), sa.ForeignKey("spaces.id"), nullable=False, index=True),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("secret", sa.String(80), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
)

# Every delivery attempt, newest kept (a bounded number per space); `seq` orders them.
webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("space_id", sa.String(32), nullable=False),
    sa.Column("hook_id", sa.String(32), nullable=False),
    sa.Column("event_id", sa.String(40), nullable=False),
    sa.Column("event_type", sa.String(32), nullable=False),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("status", sa.Integer),
    sa.Column("error", sa.String(300)),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Index("webhook_attempts_by_space", "space_id", "seq"),
)


def _dump(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _row(item: Any, **columns: Any) -> dict[str, Any]:
    """A domain dataclass as its table's row (times as ISO strings in UTC, enums as their values)."""
    values = {f.name: getattr(item, f.name) for f in fields(item)} | columns
    return {
        k: _dump(v) if isinstance(v, datetime) else v.value if isinstance(v, Enum) else v for k, v in values.items()
    }


def _as(cls: type[T], row: Any) -> T:
    """A domain dataclass from its table's row (the columns it has no field for are left out)."""
    return msgspec.convert(row, cls, from_attributes=True)


# `domain.space.announced` as SQL: not private, and went live or has an account behind it.
_ANNOUNCED = sa.and_(
    spaces.c.private.is_(sa.false()), sa.or_(spaces.c.started_at.is_not(None), spaces.c.created_by.is_not(None))
)


class SqlSpaceStore:
    """Blocking SQLAlchemy calls run in a worker thread so the event loop (and the mixer) never waits."""

    def __init__(self, url: str) -> None:
        self._engine: Engine = sa.create_engine(url)
        if url.startswith("sqlite"):
            # WAL: readers do not block the writer; synchronous=FULL: a commit survives power loss.
            @sa.event.listens_for(self._engine, "connect")
            def _pragmas(conn: Any, _record: Any) -> None:
                cursor = conn.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=FULL")
                cursor.execute("PRAGMA busy_timeout=5000")
                cursor.close()

        # Statements sent to the database, counted: the board shows it, and the flood test proves
        # that what a flood sends never gets this far.
        self.statements = 0

        @sa.event.listens_for(self._engine, "before_cursor_execute")
        def _count(*_args: Any) -> None:
            self.statements += 1

        migrate(self._engine)

    async def add(self, space: Space) -> None:
        await asyncio.to_thread(self._execute, spaces.insert().values(**_row(space)))

    async def save(self, space: Space) -> None:
        values = _row(space)
        del values["id"]
        await asyncio.to_thread(self._execute, spaces.update().where(spaces.c.id == space.id).values(**values))

    async def get(self, space_id: SpaceId) -> Space | None:
        rows = await asyncio.to_thread(self._fetch, spaces.select().where(spaces.c.id == space_id))
        return _as(Space, rows[0]) if rows else None

    async def recent(self, limit: int, announced: bool = False) -> list[Space]:
        query = spaces.select()
        if announced:
            query = query.where(_ANNOUNCED)
        query = query.order_by(spaces.c.created_at.desc()).limit(limit)
        return [_as(Space, r) for r in await asyncio.to_thread(self._fetch, query)]

    async def upcoming(self, limit: int, announced: bool = False) -> list[Space]:
        query = spaces.select().where(spaces.c.state == SpaceState.SCHEDULED.value, spaces.c.starts_at.is_not(None))
        if announced:
            # Nor one whose pre-show closed because nobody came: its start has passed.
            query = query.where(_ANNOUNCED, spaces.c.preshow_closed.is_(sa.false()))
        query = query.order_by(spaces.c.starts_at).limit(limit)
        return [_as(Space, r) for r in await asyncio.to_thread(self._fetch, query)]

    async def unfinished(self) -> list[Space]:
        """Every space that is scheduled or live: what a node keeps in memory to answer joins."""
        query = spaces.select().where(spaces.c.state != SpaceState.ENDED.value)
        return [_as(Space, r) for r in await asyncio.to_thread(self._fetch, query)]

    async def live(self) -> list[Space]:
        rows = await asyncio.to_thread(self._fetch, spaces.select().where(spaces.c.state == SpaceState.LIVE.value))
        return [_as(Space, r) for r in rows]

    async def save_stage(self, space_id: SpaceId, stage: dict[str, Any]) -> None:
        await asyncio.to_thread(self._upsert, stages, space_id, stage)

    def _upsert(self, table: sa.Table, space_id: SpaceId, state: dict[str, Any]) -> None:
        """One JSON state per space (stage, moderation): replaced whole, in one transaction. Encoded
        here, in the worker thread: the event loop only hands over the (caller's own) dict."""
        text = json.dumps(state)
        with self._engine.begin() as conn:
            updated = conn.execute(table.update().where(table.c.space_id == space_id).values(state=text))
            if updated.rowcount == 0:
                conn.execute(table.insert().values(space_id=space_id, state=text))

    async def _load_json(self, table: sa.Table, space_id: SpaceId) -> dict[str, Any] | None:
        rows = await asyncio.to_thread(self._fetch, sa.select(table.c.state).where(table.c.space_id == space_id))
        loaded: dict[str, Any] | None = json.loads(rows[0].state) if rows else None
        return loaded

    async def load_stage(self, space_id: SpaceId) -> dict[str, Any] | None:
        return await self._load_json(stages, space_id)

    # -- accounts ----------------------------------------------------------------------------
    async def add_account(self, account: Account, password_hash: str) -> bool:
        """False when the username is taken (the unique index decides, so two racing sign-ups cannot both win)."""
        row = _row(account, password_hash=password_hash)
        try:
            await asyncio.to_thread(self._execute, accounts.insert().values(**row))
        except sa.exc.IntegrityError:
            return False
        return True

    async def account_by_name(self, username: str) -> tuple[Account, str] | None:
        rows = await asyncio.to_thread(self._fetch, accounts.select().where(accounts.c.username == username))
        if not rows:
            return None
        return _as(Account, rows[0]), rows[0].password_hash

    async def set_password_hash(self, user_id: UserId, password_hash: str) -> None:
        statement = accounts.update().where(accounts.c.id == user_id).values(password_hash=password_hash)
        await asyncio.to_thread(self._execute, statement)

    async def revoke_session(self, session_id: str, until: datetime, now: datetime) -> None:
        await asyncio.to_thread(self._revoke_session, session_id, until, now)

    def _revoke_session(self, session_id: str, until: datetime, now: datetime) -> None:
        # ISO strings in UTC compare as the times do.
        try:
            with self._engine.begin() as conn:
                conn.execute(revoked_sessions.delete().where(revoked_sessions.c.until < _dump(now)))
                found = conn.execute(sa.select(revoked_sessions.c.id).where(revoked_sessions.c.id == session_id))
                if found.first() is None:
                    conn.execute(revoked_sessions.insert().values(id=session_id, until=_dump(until)))
        except sa.exc.IntegrityError:
            pass  # signed out on two nodes at once: it is recorded by the other

    async def session_revoked(self, session_id: str) -> bool:
        statement = sa.select(revoked_sessions.c.id).where(revoked_sessions.c.id == session_id)
        return bool(await asyncio.to_thread(self._fetch, statement))

    # -- posts -------------------------------------------------------------------------------
    async def add_post(self, post: Post) -> tuple[Post, bool]:
        """Stores a post (committed before returning); a retry returns the stored one and False."""
        return await asyncio.to_thread(self._add_post, post)

    def _add_post(self, post: Post) -> tuple[Post, bool]:
        try:
            self._execute(posts.insert().values(**_row(post, votes=0)))
            return post, True
        except sa.exc.IntegrityError:
            existing = self._fetch(
                posts.select().where(
                    (posts.c.space_id == post.space_id)
                    & (posts.c.user_id == post.user_id)
                    & (posts.c.client_id == post.client_id)
                )
            )
            return _as(Post, existing[0]), False

    async def posts(self, space_id: SpaceId, kind: PostKind, limit: int, newest_first: bool) -> list[Post]:
        order = posts.c.created_at.desc() if newest_first else posts.c.created_at.asc()
        statement = (
            posts.select()
            .where((posts.c.space_id == space_id) & (posts.c.kind == kind.value))
            .order_by(order)
            .limit(limit)
        )
        return [_as(Post, r) for r in await asyncio.to_thread(self._fetch, statement)]

    async def vote(self, post_id: PostId, user_id: UserId) -> bool:
        """One vote per user and post; False when this user had voted already."""
        return await asyncio.to_thread(self._vote, post_id, user_id)

    def _vote(self, post_id: PostId, user_id: UserId) -> bool:
        with self._engine.begin() as conn:
            try:
                with conn.begin_nested():
                    conn.execute(votes.insert().values(post_id=post_id, user_id=user_id))
            except sa.exc.IntegrityError:
                return False
            conn.execute(posts.update().where(posts.c.id == post_id).values(votes=posts.c.votes + 1))
            return True

    async def set_post_state(self, post_id: PostId, state: PostState) -> None:
        await asyncio.to_thread(self._execute, posts.update().where(posts.c.id == post_id).values(state=state.value))

    async def save_moderation(self, space_id: SpaceId, state: dict[str, Any]) -> None:
        await asyncio.to_thread(self._upsert, moderation, space_id, state)

    async def load_moderation(self, space_id: SpaceId) -> dict[str, Any] | None:
        return await self._load_json(moderation, space_id)

    async def post(self, post_id: PostId) -> Post | None:
        rows = await asyncio.to_thread(self._fetch, posts.select().where(posts.c.id == post_id))
        return _as(Post, rows[0]) if rows else None

    # -- webhooks ----------------------------------------------------------------------------
    async def add_webhook(self, hook: Hook, limit: int) -> bool:
        return await asyncio.to_thread(self._add_webhook, hook, limit)

    def _add_webhook(self, hook: Hook, limit: int) -> bool:
        with self._engine.begin() as conn:
            # PostgreSQL: the space's row is locked, so two nodes registering at once count in turn
            # (SQLite has one writer at a time anyway, and one node).
            conn.execute(sa.select(spaces.c.id).where(spaces.c.id == hook.space_id).with_for_update())
            count = conn.execute(
                sa.select(sa.func.count()).select_from(webhooks).where(webhooks.c.space_id == hook.space_id)
            ).scalar_one()
            if count >= limit:
                return False
            conn.execute(webhooks.insert().values(**_row(hook)))
            return True

    async def webhooks(self, space_id: SpaceId) -> list[Hook]:
        statement = (
            webhooks.select().where(webhooks.c.space_id == space_id).order_by(webhooks.c.created_at, webhooks.c.id)
        )
        return [_as(Hook, r) for r in await asyncio.to_thread(self._fetch, statement)]

    async def remove_webhook(self, space_id: SpaceId, hook_id: str) -> bool:
        statement = webhooks.delete().where((webhooks.c.space_id == space_id) & (webhooks.c.id == hook_id))
        return await asyncio.to_thread(self._count_changed, statement) > 0

    async def add_attempt(self, space_id: SpaceId, attempt: Attempt, keep: int) -> None:
        await asyncio.to_thread(self._add_attempt, space_id, attempt, keep)

    def _add_attempt(self, space_id: SpaceId, attempt: Attempt, keep: int) -> None:
        row = _row(attempt, space_id=space_id, error=None if attempt.error is None else attempt.error[:300])
        # The oldest `seq` still kept (NULL while fewer are logged: nothing goes then).
        oldest_kept = (
            sa.select(webhook_attempts.c.seq)
            .where(webhook_attempts.c.space_id == space_id)
            .order_by(webhook_attempts.c.seq.desc())
            .limit(1)
            .offset(keep - 1)
            .scalar_subquery()
        )
        with self._engine.begin() as conn:
            conn.execute(webhook_attempts.insert().values(**row))
            conn.execute(
                webhook_attempts.delete().where(
                    (webhook_attempts.c.space_id == space_id) & (webhook_attempts.c.seq < oldest_kept)
                )
            )

    async def attempts(self, space_id: SpaceId, limit: int) -> list[Attempt]:
        statement = (
            webhook_attempts.select()
            .where(webhook_attempts.c.space_id == space_id)
            .order_by(webhook_attempts.c.seq.desc())
            .limit(limit)
        )
        return [_as(Attempt, r) for r in await asyncio.to_thread(self._fetch, statement)]

    async def ready(self) -> bool:
        try:
            await asyncio.wait_for(asyncio.to_thread(self._fetch, sa.select(1)), timeout=3)
        except (sa.exc.SQLAlchemyError, OSError, TimeoutError):
            return False
        return True

    async def close(self) -> None:
        await asyncio.to_thread(self._engine.dispose)

    def _execute(self, statement: Any) -> None:
        with self._engine.begin() as conn:
            conn.execute(statement)

    def _count_changed(self, statement: Any) -> int:
        with self._engine.begin() as conn:
            return int(conn.execute(statement).rowcount)

    def _fetch(self, statement: Any) -> list[Any]:
        with self._engine.connect() as conn:
            return list(conn.execute(statement))
