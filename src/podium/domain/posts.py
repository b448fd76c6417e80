"""Comments and questions: what a post is and how questions rank. Pure rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from podium.errors import InvalidInput
from podium.ids import PostId, SpaceId, UserId
from podium.text import clean_text


class PostKind(StrEnum):
    COMMENT = "comment"
    QUESTION = "question"


class PostState(StrEnum):
    OPEN = "open"  # shown (a comment) or waiting for an answer (a question)
    ANSWERED = "answered"
    HIDDEN = "hidden"  # by a moderator: kept, visible to moderators only


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


def parse_kind(raw: object) -> PostKind:
    if raw not in (PostKind.COMMENT.value, PostKind.QUESTION.value):
        raise InvalidInput('kind must be "comment" or "question"')
    return PostKind(str(raw))


def clean_post_text(raw: object, kind: PostKind) -> str:
    return clean_text(raw, "text", MAX_CHARS[kind], keep_newlines=kind is PostKind.QUESTION)


def check_client_id(raw: object) -> str:
    """The client's own id for a post, so a retry finds the post it already made."""
    if (
        not isinstance(raw, str)
        or not 8 <= len(raw) <= 64
        or not all(c.isascii() and (c.isalnum() or c in "-_") for c in raw)
    ):
        raise InvalidInput("client_id must be 8 to 64 letters, digits, '-' or '_' (a fresh one per post)")
    return raw


def ranked(questions: list[Post]) -> list[Post]:
    """Most votes first; among equals, the older question first."""
    return sorted(questions, key=lambda p: (-p.votes, p.created_at, p.id))
