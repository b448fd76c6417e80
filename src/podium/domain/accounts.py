"""Accounts for posting (listening stays anonymous): what a username and a password must be."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from podium.errors import InvalidInput
from podium.ids import UserId

USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{2,31}$")
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 256


@dataclass(frozen=True)
class Account:
    id: UserId
    username: str
    created_at: datetime


def clean_username(raw: object) -> str:
    if not isinstance(raw, str):
        raise InvalidInput("username must be a string")
    name = raw.strip().lower()
    if not USERNAME.match(name):
        raise InvalidInput(
            "a username has 3 to 32 characters: letters a-z, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return name


def check_password(raw: object) -> str:
    if not isinstance(raw, str):
        raise InvalidInput("password must be a string")
    if len(raw) < MIN_PASSWORD_CHARS:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    if len(raw) > MAX_PASSWORD_CHARS:
        raise InvalidInput(f"a password has at most {MAX_PASSWORD_CHARS} characters")
    return raw
