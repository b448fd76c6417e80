"""What a joiner carries between calls, signed so that checking it needs no lookup at all.

- a ticket: a place in a space's waiting room, bound to one client, used once;
- a pass: "this client was admitted to this space" (a reload does not queue again);
- a challenge and a solved-challenge pass for under-attack mode's proof of work.

A client is a random id the page keeps; only its hash travels in what we sign. Every check is an
HMAC and a few comparisons: a forged, expired or foreign token is refused before any database,
waiting room or mixer sees it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, Serializer, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode

from podium.errors import Forbidden, Unauthenticated
from podium.ids import SpaceId

MAX_CHARS = 400
TICKET_TTL_S = 600
PASS_TTL_S = 6 * 3600
CHALLENGE_TTL_S = 120
SOLVED_TTL_S = 15 * 60


def client_hash(client_id: str) -> str:
    return hashlib.sha256(client_id.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Ticket:
    space_id: SpaceId
    epoch: str  # the waiting room's life: a ticket from before a restart is a fresh arrival
    seq: int


@dataclass(frozen=True)
class Challenge:
    token: str
    difficulty_bits: int


class _Serializer(URLSafeTimedSerializer):
    """itsdangerous's URL-safe timed tokens, without trying zlib on every one: these payloads are a
    few dozen bytes, which compression never shortens, and a crowd's joins each sign one."""

    def dump_payload(self, obj: Any) -> bytes:
        return base64_encode(Serializer.dump_payload(self, obj))


class BadToken(Unauthenticated):
    """A token that does not verify: forged, truncated, or from another instance."""


class ExpiredToken(Forbidden):
    pass


class TicketSigner:
    def __init__(self, secret: str) -> None:
        self._tickets = _Serializer(secret, salt="podium.ticket.v1")
        self._passes = _Serializer(secret, salt="podium.pass.v1")
        self._challenges = _Serializer(secret, salt="podium.challenge.v1")
        self._solved = _Serializer(secret, salt="podium.solved.v1")
        # Counted for the board and the flood test: refusals by signature alone.
        self.refused = 0

    # -- tickets -----------------------------------------------------------------------------

    def ticket(self, space_id: SpaceId, epoch: str, seq: int, client: str) -> str:
        return str(self._tickets.dumps({"s": space_id, "e": epoch, "q": seq, "c": client}))

    def open_ticket(self, token: object, space_id: SpaceId, client: str) -> Ticket:
        payload = self._open(self._tickets, token, TICKET_TTL_S, space_id, client, "place in line")
        seq, epoch = payload.get("q"), payload.get("e")
        if not isinstance(seq, int) or not isinstance(epoch, str):
            self.refused += 1
            raise BadToken("this place in line is not valid here; join again")
        return Ticket(space_id, epoch, seq)

    # -- passes ------------------------------------------------------------------------------

    def pass_(self, space_id: SpaceId, client: str) -> str:
        return str(self._passes.dumps({"s": space_id, "c": client}))

    def open_pass(self, token: object, space_id: SpaceId, client: str) -> None:
        self._open(self._passes, token, PASS_TTL_S, space_id, client, "listener pass")

    # -- proof of work -----------------------------------------------------------------------

    def challenge(self, space_id: SpaceId, client: str, difficulty_bits: int) -> Challenge:
        payload = {"s": space_id, "c": client, "d": difficulty_bits, "n": secrets.token_urlsafe(9)}
        return Challenge(str(self._challenges.dumps(payload)), difficulty_bits)

    def open_solution(self, token: object, counter: object, space_id: SpaceId, client: str) -> str:
        """A solved challenge: returns a pass for proof-of-work that is good for a while."""
        payload = self._open(self._challenges, token, CHALLENGE_TTL_S, space_id, client, "puzzle")
        bits = payload.get("d")
        if not isinstance(bits, int) or not isinstance(counter, int) or not 0 <= counter < 2**53:
            self.refused += 1
            raise BadToken("this puzzle answer is not valid; solve a new puzzle")
        assert isinstance(token, str)
        if leading_zero_bits(pow_digest(token, counter)) < bits:
            self.refused += 1
            raise Forbidden("this puzzle answer is wrong; solve the puzzle again")
        return str(self._solved.dumps({"s": space_id, "c": client}))

    def open_solved(self, token: object, space_id: SpaceId, client: str) -> None:
        self._open(self._solved, token, SOLVED_TTL_S, space_id, client, "puzzle pass")

    # -- shared ------------------------------------------------------------------------------

    def _open(
        self, serializer: URLSafeTimedSerializer, token: object, ttl_s: int, space_id: SpaceId, client: str, what: str
    ) -> dict[str, Any]:
        if not isinstance(token, str) or not token or len(token) > MAX_CHARS:
            self.refused += 1
            raise BadToken(f"this {what} is not valid here; join again")
        try:
            payload = serializer.loads(token, max_age=ttl_s)
        except SignatureExpired:
            self.refused += 1
            raise ExpiredToken(f"this {what} has expired; join again") from None
        except BadSignature:
            self.refused += 1
            raise BadToken(f"this {what} is not valid here; join again") from None
        if not isinstance(payload, dict) or payload.get("s") != space_id:
            self.refused += 1
            raise BadToken(f"this {what} belongs to another space; join again")
        if payload.get("c") != client:
            self.refused += 1
            raise Forbidden(f"this {what} belongs to another browser; join again")
        return payload


def pow_digest(challenge: str, counter: int) -> bytes:
    """What the client hashes: the challenge, a colon, the counter in decimal (as the page does)."""
    return hashlib.sha256(f"{challenge}:{counter}".encode()).digest()


def leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte == 0:
            bits += 8
            continue
        return bits + 8 - byte.bit_length()
    return bits
