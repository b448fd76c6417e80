"""Signing up, signing in and out. Passwords are hashed with argon2id; limits are checked before
any hashing, so a flood of guesses costs a counter, not a CPU.

Sign-in limits (nobody can lock an owner out from elsewhere):
- per address, whatever the name;
- per (address, name): a guesser uses up their own network's attempts, not the owner's;
- wrong passwords per name from everywhere are counted; past `login_failures_per_name` the name is
  under attack and every address may try it only at `login_limit_under_attack` (one a minute by
  default). That is slower, never none: the owner, from any network, gets in after at most that wait.

A session is a signed token with an id: signing out records the id as revoked (in the database, so
every node sees it), and every use checks that record, through a cache of a second or two.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

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
from podium.domain.tokens import SESSION_TTL_S, SessionGrant, TokenSigner
from podium.errors import Conflict, PodiumError, Unauthenticated
from podium.ids import new_user_id
from podium.settings import Settings

WRONG_CREDENTIALS = "wrong username or password"
# A sign-up must say that the name cannot be had (the person has to pick another): that much is
# unavoidable, and bounded by the sign-up limit per address. It says no more than that.
NAME_TAKEN = "this username is taken; choose another"
SIGNED_OUT = "this session was signed out; sign in again"
# How long a "not signed out" answer is believed without asking the database again, and how many
# sessions are remembered: a signed-in flood costs one lookup a second, not one per request.
REVOCATION_CACHE_S = 2.0
REVOCATION_CACHE_SIZE = 10_000


@dataclass(eq=False)
class Accounts:
    store: AccountStore
    signer: TokenSigner
    limits: RateLimits
    clock: Clock
    settings: Settings

    def __post_init__(self) -> None:
        self._signup = with_limit(SIGNUP_PER_ADDRESS, self.settings.signup_limit_per_address)
        self._per_pair = with_limit(LOGIN_PER_ADDRESS_AND_NAME, self.settings.login_limit_per_address_and_name)
        self._failures = with_limit(LOGIN_FAILURES_PER_NAME, self.settings.login_failures_per_name)
        self._under_attack = with_limit(LOGIN_UNDER_ATTACK, self.settings.login_limit_under_attack)
        self._hasher = PasswordHasher()  # argon2id with the library's current parameters
        # Checked when the username does not exist, so both failures take the same time.
        self._decoy = self._hasher.hash("podium-decoy-password")
        # Session id → when the store last said it was not signed out (monotonic seconds).
        self._not_revoked: dict[str, float] = {}

    async def sign_up(self, username: object, password: object, address: str) -> Account:
        """The same work whether the name is free or taken (the hash is made first): the only
        difference is the answer, which must tell the person to choose another name."""
        await self.limits.hit(self._signup, address)
        name = clean_username(username)
        secret = check_password(password)
        account = Account(new_user_id(), name, self.clock.now())
        password_hash = await asyncio.to_thread(self._hasher.hash, secret)
        if not await self.store.add_account(account, password_hash):
            raise Conflict(NAME_TAKEN)
        return account

    async def sign_in(self, username: object, password: object, address: str) -> tuple[Account, str]:
        """Checks the limits first, then the password; answers the same for a wrong name or password."""
        await self.limits.hit(LOGIN_PER_ADDRESS, address)
        if not isinstance(username, str) or not isinstance(password, str) or len(password) > 256:
            raise Unauthenticated(WRONG_CREDENTIALS)
        name = username.strip().lower()[:64]
        pair = f"{address} {name}"
        await self.limits.hit(self._per_pair, pair)
        if not await self.limits.allows(self._failures, name):
            await self.limits.hit(self._under_attack, pair)
        found = await self.store.account_by_name(name)
        stored_hash = found[1] if found else self._decoy
        if not await asyncio.to_thread(self._matches, stored_hash, password) or found is None:
            await self.limits.count(self._failures, name)
            raise Unauthenticated(WRONG_CREDENTIALS)
        account, _ = found
        if self._hasher.check_needs_rehash(stored_hash):
            await self.store.set_password_hash(account.id, await asyncio.to_thread(self._hasher.hash, password))
        return account, self.signer.issue_session(account.id, account.username)

    async def authenticate(self, token: str) -> SessionGrant:
        """A session that verifies and was not signed out."""
        grant = self.signer.verify_session(token)
        await self.check_not_revoked(grant)
        return grant

    async def check_not_revoked(self, grant: SessionGrant) -> None:
        checked = self._not_revoked.get(grant.session_id)
        if checked is not None and self.clock.monotonic() - checked < REVOCATION_CACHE_S:
            return
        if await self.store.session_revoked(grant.session_id):
            self._not_revoked.pop(grant.session_id, None)
            raise Unauthenticated(SIGNED_OUT)
        if len(self._not_revoked) >= REVOCATION_CACHE_SIZE:
            self._not_revoked.clear()  # bounded: a flood of sessions costs lookups, never memory
        self._not_revoked[grant.session_id] = self.clock.monotonic()

    async def sign_out(self, token: str) -> bool:
        """The session stops working everywhere; False when the token was no valid session."""
        try:
            grant = self.signer.verify_session(token)
        except PodiumError:
            return False
        try:
            await self.check_not_revoked(grant)
        except Unauthenticated:
            return True  # signed out already: a repeated sign-out writes nothing
        self._not_revoked.pop(grant.session_id, None)
        # Kept as long as the token itself could still verify, then dropped.
        until = self.clock.now() + timedelta(seconds=SESSION_TTL_S)
        await self.store.revoke_session(grant.session_id, until, self.clock.now())
        return True

    def _matches(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False
