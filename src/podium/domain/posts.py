"""Comments and questions: what a post is and how questions rank. Pure rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from podium.errors import Conflict, Forbidden, InvalidInput, RateLimited
from podium.ids import PostId, SpaceId, UserId
from podium.text import clean_text


class PostKind(StrEnum):
    COMMENT = "comment"
    QUESTION = "question"


class PostState(StrEnum):
    OPEN = "open"  # shown (a comment) or waiting for an answer (a question)
    ANSWERED = "answered"
    HIDDEN = "hidden"  # by a moderator: kept, visible to moderators only
    DELETED = "deleted"  # by a moderator: kept in storage, shown to nobody


MAX_CHARS = {PostKind.COMMENT: 280, PostKind.QUESTION: 500}


@dataclass(frozen=True)
class Post:
    id: PostId
    space_id: SpaceId
    user_id: UserId
    username: str
    kind: PostKind
    text: str
    client_id: str
    created_at: datetime
    state: PostState = PostState.OPEN
    votes: int = 0


def public_view(post: Post) -> dict[str, Any]:
    """What everyone may see of a post (the API and the timeline show the same)."""
    return {
        "id": post.id,
        "kind": post.kind.value,
        "text": post.text,
        "author": post.username,
        "created_at": post.created_at.isoformat().replace("+00:00", "Z"),
        "state": post.state.value,
        "votes": post.votes,
    }


def parse_kind(raw: str) -> PostKind:
    if raw not in (PostKind.COMMENT.value, PostKind.QUESTION.value):
        raise InvalidInput('kind must be "comment" or "question"')
    return PostKind(raw)


def clean_post_text(raw: str, kind: PostKind) -> str:
    return clean_text(raw, "text", MAX_CHARS[kind], keep_newlines=kind is PostKind.QUESTION)


def check_client_id(raw: str) -> str:
    """The client's own id for a post, so a retry finds the post it already made."""
    if not 8 <= len(raw) <= 64 or not all(c.isascii() and (c.isalnum() or c in "-_") for c in raw):
        raise InvalidInput("client_id must be 8 to 64 letters, digits, '-' or '_' (a fresh one per post)")
    return raw


def ranked(questions: list[Post]) -> list[Post]:
    """Most votes first; among equals, the older question first."""
    return sorted(questions, key=lambda p: (-p.votes, p.created_at, p.id))


MAX_SLOW_MODE_S = 3600
MAX_PIN_CHARS = 300


@dataclass
class Moderation:
    """A space's posting rules, set by its host and co-hosts."""

    posting_open: bool = True
    slow_mode_s: int = 0  # minimum seconds between two posts of one user; 0: off
    pinned: dict[str, str] | None = None  # {"text": ..., "url": ...?}
    blocked: set[str] = field(default_factory=set)  # user ids that may not post here

    def to_dict(self) -> dict[str, Any]:
        return {
            "posting_open": self.posting_open,
            "slow_mode_s": self.slow_mode_s,
            "pinned": self.pinned,
            "blocked": sorted(self.blocked),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Moderation:
        return cls(
            posting_open=bool(data.get("posting_open", True)),
            slow_mode_s=int(data.get("slow_mode_s", 0)),
            pinned=data.get("pinned"),
            blocked=set(data.get("blocked", [])),
        )

    def public(self) -> dict[str, Any]:
        return {"posting_open": self.posting_open, "slow_mode_s": self.slow_mode_s, "pinned": self.pinned}

    def check_post(self, user_id: UserId, last_post_at: datetime | None, now: datetime) -> None:
        if user_id in self.blocked:
            raise Forbidden("the hosts have blocked you from posting in this space")
        if not self.posting_open:
            raise Conflict("the hosts have closed posting for now")
        if self.slow_mode_s and last_post_at is not None:
            wait = last_post_at + timedelta(seconds=self.slow_mode_s) - now
            if wait.total_seconds() > 0:
                seconds = int(wait.total_seconds()) + 1
                raise RateLimited(f"slow mode is on: one post every {self.slow_mode_s} s; wait {seconds} s", seconds)

    def configure(self, body: dict[str, Any]) -> None:
        """Apply the settings sent (their types checked by the API's model); a bad one changes nothing."""
        slow = body.get("slow_mode_s", self.slow_mode_s)
        if not 0 <= slow <= MAX_SLOW_MODE_S:
            raise InvalidInput(f"slow_mode_s must be a whole number of seconds from 0 to {MAX_SLOW_MODE_S}")
        pinned = _clean_pin(body["pinned"]) if "pinned" in body else self.pinned
        self.posting_open, self.slow_mode_s, self.pinned = body.get("posting_open", self.posting_open), slow, pinned


def _clean_pin(raw: dict[str, str | None] | None) -> dict[str, str] | None:
    if raw is None:
        return None
    pin = {"text": clean_text(raw["text"], "pinned text", MAX_PIN_CHARS)}
    url = raw.get("url")
    if url is not None:
        if (
            not url.startswith(("https://", "http://"))
            or len(url) > 500
            or any(c.isspace() or ord(c) < 32 for c in url)
        ):
            raise InvalidInput("a pinned link must be an http(s) URL without spaces, at most 500 characters")
        pin["url"] = url
    return pin
