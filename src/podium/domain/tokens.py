"""Capability tokens: signed, so a forged one is refused by a signature check alone."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from enum import StrEnum

from itsdangerous import BadSignature, URLSafeSerializer

from podium.errors import Forbidden, Unauthenticated
from podium.ids import SpaceId, is_space_id


class Role(StrEnum):
    HOST = "host"
    LISTENER = "listener"


@dataclass(frozen=True)
class Grant:
    space_id: SpaceId
    role: Role
    token_id: str


class TokenSigner:
    """Makes and checks `Bearer` tokens naming a space and a role."""

    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeSerializer(secret, salt="podium.token.v1")

    def issue(self, space_id: SpaceId, role: Role) -> str:
        payload = {"s": space_id, "r": role.value, "t": secrets.token_urlsafe(9)}
        return str(self._serializer.dumps(payload))

    def verify(self, token: str) -> Grant:
        if not token or len(token) > 512:
            raise Unauthenticated("a token is required (Authorization: Bearer <token>)")
        try:
            payload = self._serializer.loads(token)
        except BadSignature:
            raise Unauthenticated("this token is not valid for this Podium instance") from None
        if not isinstance(payload, dict):
            raise Unauthenticated("this token is not valid for this Podium instance")
        space_id, role, token_id = payload.get("s"), payload.get("r"), payload.get("t")
        roles = {r.value for r in Role}
        if not (isinstance(space_id, str) and is_space_id(space_id)) or not isinstance(role, str) or role not in roles:
            raise Unauthenticated("this token is not valid for this Podium instance")
        return Grant(SpaceId(space_id), Role(role), str(token_id))

    def require(self, token: str, space_id: SpaceId, role: Role) -> Grant:
        grant = self.verify(token)
        if grant.space_id != space_id:
            raise Forbidden("this token belongs to another space")
        if grant.role is not role:
            raise Forbidden(f"this action needs the {role.value}'s token")
        return grant
