"""Typed identifiers: distinct types so a space id is never passed where a listener id belongs."""

from __future__ import annotations

import re
import secrets
from typing import NewType

SpaceId = NewType("SpaceId", str)
ListenerId = NewType("ListenerId", str)
SessionId = NewType("SessionId", str)

# Ids appear in URLs and file names: URL-safe alphabet only, fixed length, checked on every way in.
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
ID_LENGTH = 12


def new_space_id() -> SpaceId:
    return SpaceId("".join(secrets.choice(_ID_ALPHABET) for _ in range(ID_LENGTH)))


def new_session_id() -> SessionId:
    return SessionId(secrets.token_urlsafe(12))


def is_space_id(value: str) -> bool:
    return len(value) == ID_LENGTH and all(c in _ID_ALPHABET for c in value)


_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


def is_client_id(value: object) -> bool:
    """Ids a client chooses (a listener's, a post's): 8 to 64 URL-safe characters."""
    return isinstance(value, str) and _CLIENT_ID.fullmatch(value) is not None


MemberId = NewType("MemberId", str)


def new_member_id() -> MemberId:
    return MemberId("m" + secrets.token_hex(8))


UserId = NewType("UserId", str)


def new_user_id() -> UserId:
    return UserId("u" + secrets.token_hex(8))


PostId = NewType("PostId", str)


def new_post_id() -> PostId:
    return PostId("p" + secrets.token_hex(8))
