"""Rate limits by name, on the `limits` library (moving windows; memory here, Redis later).

Each policy is checked per key (a user, an address). A refusal says which limit was met and
when to try again; nothing past a refusal runs (no hashing, no database).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from podium.errors import RateLimited


@dataclass(frozen=True)
class Policy:
    name: str
    limit: str  # in the `limits` notation, e.g. "5/minute"
    message: str


LOGIN_PER_USERNAME = Policy("login-user", "10/minute", "too many sign-in attempts for this account")
LOGIN_PER_ADDRESS = Policy("login-address", "30/minute", "too many sign-in attempts from your network")
SIGNUP_PER_ADDRESS = Policy("signup-address", "10/hour", "too many accounts created from your network")
POST_PER_USER = Policy("post-user", "10/minute", "you are posting too fast")
POST_PER_ADDRESS = Policy("post-address", "120/minute", "too many posts from your network")


def with_limit(policy: Policy, limit: str) -> Policy:
    """The same policy with another limit (from the settings)."""
    return Policy(policy.name, limit, policy.message)


SPACE_PER_ADDRESS = Policy("space-address", "20/hour", "too many spaces created from your network")
SPACE_PER_ACCOUNT = Policy("space-account", "20/hour", "you have created too many spaces")
REACTION_PER_ADDRESS = Policy("reaction-address", "20/10seconds", "too many reactions from your network")
VOTE_PER_USER = Policy("vote-user", "60/minute", "you are voting too fast")


def storage_for(url: str) -> Storage:
    """Counters in this process ("memory://") or shared in Redis ("redis://host:port")."""
    if url.startswith("memory://"):
        return MemoryStorage()
    storage = storage_from_string(url)
    if not isinstance(storage, Storage):
        raise TypeError(f"{url} names an asynchronous storage; use a synchronous one")
    return storage


class RateLimits:
    def __init__(self, storage: Storage | None = None) -> None:
        self._limiter = MovingWindowRateLimiter(storage or MemoryStorage())
        self._items: dict[str, RateLimitItem] = {}

    def hit(self, policy: Policy, key: str) -> None:
        """Count one request against `policy` for `key`, or raise RateLimited with Retry-After."""
        item = self._items.get(policy.limit)
        if item is None:
            item = self._items[policy.limit] = parse(policy.limit)
        if not self._limiter.hit(item, policy.name, key):
            reset_at, _remaining = self._limiter.get_window_stats(item, policy.name, key)
            retry_after = int(reset_at - time.time()) + 1
            raise RateLimited(f"{policy.message}; try again in {retry_after} s", retry_after)
