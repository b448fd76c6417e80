"""Capability tokens: signed, so a forged one is refused by a signature check alone.

Three kinds, told apart by their prefix:
- `m.` member tokens (the host's too) name a space, a member, the member's generation and role at
  issue, and when they expire (`x`, Unix seconds). The generation makes revocation cheap: when a
  right is taken away, or the host rotates the host token, the member's generation moves on and
  every older token fails the check against the stage rules. A token without `x` was issued before
  tokens expired: it is still taken, and the host's next rotation ends it.
- `i.` invite tokens name a space, a role and an invite id; they expire, and the stage rules let
  one person redeem an invite once.
- `u.` session tokens name an account and a session id (`i`): signing out records the id as
  revoked, and the CSRF token of a browser session is an HMAC of that id (bound to the session).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

from podium.domain.stage import Role
from podium.errors import Forbidden, Unauthenticated
from podium.ids import MemberId, SpaceId, UserId, is_space_id

MAX_TOKEN_CHARS = 512
INVITE_TTL_S = 24 * 3600
SESSION_TTL_S = 30 * 24 * 3600
MEMBER_TOKEN_TTL_S = 7 * 24 * 3600  # the default of PODIUM_MEMBER_TOKEN_TTL_S


@dataclass(frozen=True)
class Grant:
    space_id: SpaceId
    member_id: MemberId
    generation: int
    role: Role
    # When the token stops working (Unix seconds); None for a token issued before tokens expired.
    expires: int | None = None


@dataclass(frozen=True)
class SessionGrant:
    """A verified session token: whose it is, and the id that signing out revokes."""

    user_id: UserId
    username: str
    session_id: str


@dataclass(frozen=True)
class InviteGrant:
    space_id: SpaceId
    invite_id: str
    role: Role

    @property
    def member_id(self) -> MemberId:
        """Whoever redeems an invite becomes this member: one invite, one person."""
        return MemberId("i-" + self.invite_id)


_INVALID = "this token is not valid for this Podium instance"


class TokenSigner:
    def __init__(
        self,
        secret: str,
        invite_ttl_s: int = INVITE_TTL_S,
        member_ttl_s: int = MEMBER_TOKEN_TTL_S,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._members = URLSafeSerializer(secret, salt="podium.member.v1")
        self._invites = URLSafeTimedSerializer(secret, salt="podium.invite.v1")
        self._sessions = URLSafeTimedSerializer(secret, salt="podium.session.v1")
        self._csrf_key = hmac.new(secret.encode(), b"podium.csrf.v1", hashlib.sha256).digest()
        self.invite_ttl_s = invite_ttl_s
        self.member_ttl_s = member_ttl_s
        self._now = now

    def issue(
        self, space_id: SpaceId, member_id: MemberId, generation: int, role: Role, valid_from: float | None = None
    ) -> str:
        """A member token good for `member_ttl_s` from now, or from `valid_from` if that is later
        (the host's token of a scheduled space: from its start)."""
        expires = self.expires_at(valid_from)
        payload = {"s": space_id, "m": member_id, "g": generation, "r": role.value, "x": expires}
        return "m." + str(self._members.dumps(payload))

    def expires_at(self, valid_from: float | None = None) -> int:
        """When a member token issued now (good from `valid_from`, if later) stops working."""
        return int(max(self._now(), valid_from or 0.0)) + self.member_ttl_s

    def issue_invite(self, space_id: SpaceId, role: Role) -> tuple[str, str]:
        invite_id = secrets.token_urlsafe(9)
        return invite_id, "i." + str(self._invites.dumps({"s": space_id, "i": invite_id, "r": role.value}))

    def verify(self, token: str) -> Grant | InviteGrant:
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise Unauthenticated("a token is required (Authorization: Bearer <token>)")
        kind, _, body = token.partition(".")
        try:
            if kind == "m":
                payload = self._members.loads(body)
            elif kind == "i":
                payload = self._invites.loads(body, max_age=self.invite_ttl_s)
            else:
                raise Unauthenticated(_INVALID)
        except SignatureExpired:
            raise Forbidden("this invite link has expired; ask the host for a new one") from None
        except BadSignature:
            raise Unauthenticated(_INVALID) from None
        if not isinstance(payload, dict):
            raise Unauthenticated(_INVALID)
        space_id, role = payload.get("s"), payload.get("r")
        if not (isinstance(space_id, str) and is_space_id(space_id)) or role not in {r.value for r in Role}:
            raise Unauthenticated(_INVALID)
        if kind == "i":
            return InviteGrant(SpaceId(space_id), str(payload.get("i")), Role(str(role)))
        generation, expires = payload.get("g"), payload.get("x")
        if not isinstance(generation, int) or not (expires is None or type(expires) is int):
            raise Unauthenticated(_INVALID)
        if expires is not None and self._now() >= expires:
            raise Unauthenticated("this token has expired; ask the host for a new one")
        return Grant(SpaceId(space_id), MemberId(str(payload.get("m"))), generation, Role(str(role)), expires)

    def issue_session(self, user_id: UserId, username: str) -> str:
        """A signed-in account's token (also the session cookie's value); lives 30 days, or until
        signed out. Each sign-in is a session of its own, with its own id."""
        return "u." + str(self._sessions.dumps({"u": user_id, "n": username, "i": secrets.token_urlsafe(12)}))

    def verify_session(self, token: str) -> SessionGrant:
        """The signature and age only: whether the session was signed out is the store's to say."""
        if not token.startswith("u.") or len(token) > MAX_TOKEN_CHARS:
            raise Unauthenticated("sign in first (a session token is required)")
        try:
            payload = self._sessions.loads(token[2:], max_age=SESSION_TTL_S)
        except SignatureExpired:
            raise Unauthenticated("your session has expired; sign in again") from None
        except BadSignature:
            raise Unauthenticated("this session is not valid; sign in again") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("u"), str):
            raise Unauthenticated("this session is not valid; sign in again")
        session_id = payload.get("i")
        if not isinstance(session_id, str) or not 0 < len(session_id) <= 32:
            # Issued before sessions could be signed out: it could never be revoked, so it ends now.
            raise Unauthenticated("this session is from an older version of Podium; sign in again")
        return SessionGrant(UserId(payload["u"]), str(payload.get("n", "")), session_id)

    def csrf_for(self, session_id: str) -> str:
        """The CSRF token of a browser session: only the holder of that session's cookie gets it."""
        mac = hmac.new(self._csrf_key, session_id.encode(), hashlib.sha256).digest()[:18]
        return base64.urlsafe_b64encode(mac).decode()

    def verify_for(self, token: str, space_id: SpaceId) -> Grant | InviteGrant:
        grant = self.verify(token)
        if grant.space_id != space_id:
            raise Forbidden("this token belongs to another space")
        return grant
