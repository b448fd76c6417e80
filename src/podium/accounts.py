"""Signing up and signing in. Passwords are hashed with argon2id; limits are checked before any
hashing, so a flood of guesses costs a counter, not a CPU.

Sign-in limits (nobody can lock an owner out from elsewhere):
- per address, whatever the name;
- per (address, name): a guesser uses up their own network's attempts, not the owner's;
- wrong passwords per name from everywhere are counted; past `login_failures_per_name` the name is
  under attack and every address may try it only at `login_limit_under_attack` (one a minute by
  default). That is slower, never none: the owner, from any network, gets in after at most that wait.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from podium.admission.limits import (
    LOGIN_FAILURES_PER_NAME,
    LOGIN_PER_ADDRESS,
    LOGIN_PER_ADDRESS_AND_NAME,
    LOGIN_UNDER_ATTACK,
    SIGNUP_PER_ADDRESS,
    RateLimits,
    with_limit,
)
from podium.backends.interfaces import AccountStore
from podium.clock import Clock
from podium.domain.accounts import Account, check_password, clean_username
from podium.domain.tokens import TokenSigner
from podium.errors import Conflict, Unauthenticated
from podium.ids import UserId, new_user_id

WRONG_CREDENTIALS = "wrong username or password"


class Accounts:
    def __init__(
        self,
        store: AccountStore,
        signer: TokenSigner,
        limits: RateLimits,
        clock: Clock,
        signup_limit: str = "10/hour",
        login_limit_per_address_and_name: str = LOGIN_PER_ADDRESS_AND_NAME.limit,
        login_failures_per_name: str = LOGIN_FAILURES_PER_NAME.limit,
        login_limit_under_attack: str = LOGIN_UNDER_ATTACK.limit,
    ) -> None:
        self._signup = with_limit(SIGNUP_PER_ADDRESS, signup_limit)
        self._per_pair = with_limit(LOGIN_PER_ADDRESS_AND_NAME, login_limit_per_address_and_name)
        self._failures = with_limit(LOGIN_FAILURES_PER_NAME, login_failures_per_name)
        self._under_attack = with_limit(LOGIN_UNDER_ATTACK, login_limit_under_attack)
        self._store = store
        self._signer = signer
        self._limits = limits
        self._clock = clock
        self._hasher = PasswordHasher()  # argon2id with the library's current parameters
        # Checked when the username does not exist, so both failures take the same time.
        self._decoy = self._hasher.hash("podium-decoy-password")

    async def sign_up(self, username: object, password: object, address: str) -> Account:
        self._limits.hit(self._signup, address)
        name = clean_username(username)
        secret = check_password(password)
        account = Account(new_user_id(), name, self._clock.now())
        password_hash = await asyncio.to_thread(self._hasher.hash, secret)
        if not await self._store.add_account(account, password_hash):
            raise Conflict(f"the username {name!r} is taken")
        return account

    async def sign_in(self, username: object, password: object, address: str) -> tuple[Account, str]:
        """Checks the limits first, then the password; answers the same for a wrong name or password."""
        self._limits.hit(LOGIN_PER_ADDRESS, address)
        if not isinstance(username, str) or not isinstance(password, str) or len(password) > 256:
            raise Unauthenticated(WRONG_CREDENTIALS)
        name = username.strip().lower()[:64]
        pair = f"{address} {name}"
        self._limits.hit(self._per_pair, pair)
        if not self._limits.allows(self._failures, name):
            self._limits.hit(self._under_attack, pair)
        found = await self._store.account_by_name(name)
        stored_hash = found[1] if found else self._decoy
        if not await asyncio.to_thread(self._matches, stored_hash, password) or found is None:
            self._limits.count(self._failures, name)
            raise Unauthenticated(WRONG_CREDENTIALS)
        account, _ = found
        if self._hasher.check_needs_rehash(stored_hash):
            await self._store.set_password_hash(account.id, await asyncio.to_thread(self._hasher.hash, password))
        return account, self._signer.issue_session(account.id, account.username)

    def authenticate(self, token: str) -> tuple[UserId, str]:
        return self._signer.verify_session(token)

    def _matches(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False
