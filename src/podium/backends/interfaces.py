"""The seams between Podium and the engines it runs on. `app.py` alone picks implementations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from podium.backends.counts import Share
from podium.domain.accounts import Account
from podium.domain.posts import Post, PostKind, PostState
from podium.domain.space import Space
from podium.domain.webhooks import Attempt, Hook
from podium.events import Event, Topic
from podium.ids import PostId, SpaceId, UserId
from podium.media.packager import Part, SegmentRecord


class SpaceStore(Protocol):
    """Durable spaces. Every write is committed before the call returns."""

    statements: int  # sent to the database so far (the board shows it; floods must not move it)

    async def add(self, space: Space) -> None: ...

    async def get(self, space_id: SpaceId) -> Space | None: ...

    async def save(self, space: Space) -> None: ...

    async def unfinished(self) -> list[Space]: ...

    async def live(self) -> list[Space]: ...

    async def recent(self, limit: int, announced: bool = False) -> list[Space]:
        """Newest first; with `announced`, only what the public may be shown (`domain.space.announced`)."""

    async def upcoming(self, limit: int, announced: bool = False) -> list[Space]:
        """Scheduled with a start time, soonest first; `announced` as for `recent`."""

    async def save_stage(self, space_id: SpaceId, stage: dict[str, Any]) -> None:
        """The stage's members, roles, generations and used invites, committed before returning.
        `stage` is handed over: the caller never changes it afterwards (it may be encoded later)."""

    async def load_stage(self, space_id: SpaceId) -> dict[str, Any] | None: ...

    async def ready(self) -> bool:
        """Whether the database answers now (the readiness probe asks)."""

    async def close(self) -> None: ...


class AccountStore(Protocol):
    """Accounts and their password hashes (never the passwords)."""

    async def add_account(self, account: Account, password_hash: str) -> bool: ...

    async def account_by_name(self, username: str) -> tuple[Account, str] | None: ...

    async def set_password_hash(self, user_id: UserId, password_hash: str) -> None: ...

    async def revoke_session(self, session_id: str, until: datetime, now: datetime) -> None:
        """Record a signed-out session until its token would expire anyway (and forget those past it)."""

    async def session_revoked(self, session_id: str) -> bool: ...


class PostStore(Protocol):
    """Comments, questions and votes; every write committed before the call returns."""

    async def add_post(self, post: Post) -> tuple[Post, bool]: ...

    async def posts(self, space_id: SpaceId, kind: PostKind, limit: int, newest_first: bool) -> list[Post]: ...

    async def post(self, post_id: PostId) -> Post | None: ...

    async def vote(self, post_id: PostId, user_id: UserId) -> bool: ...

    async def set_post_state(self, post_id: PostId, state: PostState) -> None: ...

    async def save_moderation(self, space_id: SpaceId, state: dict[str, Any]) -> None: ...

    async def load_moderation(self, space_id: SpaceId) -> dict[str, Any] | None: ...


class WebhookStore(Protocol):
    """The host's webhook subscriptions and the log of delivery attempts; writes committed on return."""

    async def add_webhook(self, hook: Hook, limit: int) -> bool:
        """False (and nothing stored) when the space has `limit` subscriptions already."""

    async def webhooks(self, space_id: SpaceId) -> list[Hook]: ...

    async def remove_webhook(self, space_id: SpaceId, hook_id: str) -> bool: ...

    async def add_attempt(self, space_id: SpaceId, attempt: Attempt, keep: int) -> None:
        """Logs an attempt; only the space's newest `keep` attempts are kept."""

    async def attempts(self, space_id: SpaceId, limit: int) -> list[Attempt]:
        """Newest first."""


class SharedCounts(Protocol):
    """Listener counts summed over nodes: each reports its own, all read the sum of fresh reports."""

    async def report(self, space_id: SpaceId, node: str, share: Share) -> None: ...

    async def total(self, space_id: SpaceId) -> Share: ...

    async def close(self) -> None: ...


class Placement(Protocol):
    """Which node owns a space's stage: a lease with a time to live (see backends.placement)."""

    async def claim(self, space_id: SpaceId, node: str, ttl_s: float) -> bool: ...

    async def renew(self, space_id: SpaceId, node: str, ttl_s: float) -> bool: ...

    async def owner(self, space_id: SpaceId) -> str | None: ...

    async def release(self, space_id: SpaceId, node: str) -> None: ...

    async def announce(self, node: str, address: str, ttl_s: float) -> None:
        """Where `node` is reached (its own address), for `ttl_s`; announced again while it runs."""

    async def address(self, node: str) -> str | None: ...

    async def close(self) -> None: ...


class Bus(Protocol):
    """Fire-and-forget events (`podium.events`) between parts of Podium and between nodes; each
    event goes to every subscriber of its topic."""

    async def publish(self, event: Event) -> None: ...

    def subscribe(self, topic: Topic) -> AsyncIterator[Event]: ...

    async def ready(self) -> bool:
        """Whether the bus answers now (the readiness probe asks)."""

    async def close(self) -> None: ...


class MediaStore(Protocol):
    """Where a space's init section, segments and segment records live.

    `write` is durable when it returns (write, fsync, atomic rename): a crash leaves either the
    old file or the new one, never a torn one."""

    async def write(self, space_id: SpaceId, name: str, data: bytes) -> None: ...

    async def append_record(self, space_id: SpaceId, record: SegmentRecord) -> None: ...

    async def write_part(self, space_id: SpaceId, part: Part) -> None:
        """A part, durable on return (so that a crash loses at most the part being made)."""

    async def forget_parts(self, space_id: SpaceId, msn: int) -> None:
        """The parts of segment `msn`, once the segment itself is durable."""

    async def recover(self, space_id: SpaceId) -> SegmentRecord | None:
        """Makes the segment that a crash left in parts whole; returns its record, if any."""

    async def records(self, space_id: SpaceId) -> list[SegmentRecord]: ...

    async def append_line(self, space_id: SpaceId, name: str, line: str) -> None:
        """Appends one line (durable on return) to a log of the space's, such as who spoke when."""

    async def lines(self, space_id: SpaceId, name: str) -> list[str]: ...

    async def read(self, space_id: SpaceId, name: str) -> bytes | None: ...

    def local_path(self, space_id: SpaceId, name: str) -> Path | None: ...

    async def read_many(self, space_id: SpaceId, names: list[str]) -> list[bytes]:
        """Several files at once, in order; raises FileNotFoundError if one is missing."""

    async def remove_recording(self, space_id: SpaceId) -> None:
        """The audio of a space and all made from it (a space that was not to be recorded has ended)."""

    async def remove(self, space_id: SpaceId, name: str) -> None:
        """One file of a space's, if it is there (the hold audio, once the space has ended)."""
