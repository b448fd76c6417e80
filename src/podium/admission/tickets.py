"""What a joiner carries between calls, signed so that checking it needs no lookup at all.

- a ticket: a place in a space's waiting room, bound to one client, used once;
- a pass: "this client was admitted to this space" (a reload does not queue again);
- a challenge and a solved-challenge pass for under-attack mode's proof of work.

A client is a random id the page keeps; only its hash travels in what we sign. Every check is an
HMAC and a few comparisons: a forged, expired or foreign token is refused before any database,
waiting room or mixer sees it.

A puzzle's answer is worth one arrival: the challenge it answers is spent when it is used
(`SpentAnswers`, or Redis between nodes), so one solved puzzle cannot be handed around. The
`solved` pass it earns names the client and the network it was solved from, and lives a few
minutes: long enough for the page to come back with it, too short to be worth sharing.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, Serializer, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode

from podium.errors import Forbidden, PodiumError, Unauthenticated
from podium.ids import SpaceId

MAX_CHARS = 400
TICKET_TTL_S = 600
PASS_TTL_S = 6 * 3600
CHALLENGE_TTL_S = 120
SOLVED_TTL_S = 5 * 60
# Spent puzzle answers remembered at once (about 150 bytes each). Reaching it takes this many
# puzzles solved within one challenge's life (CHALLENGE_TTL_S), each from a join the per-address
# limit let through.
MAX_SPENT_ANSWERS = 100_000


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


@dataclass(frozen=True)
class Solution:
    """A right answer to a puzzle: the pass it earns, and what makes the answer single-use."""

    solved: str  # the puzzle pass, bound to the client and its network (SOLVED_TTL_S)
    answer_id: str  # the challenge's nonce: one challenge, one arrival
    spent_until: float  # Unix time by which the challenge has surely expired


class SpentAnswers:
    """Puzzle answers already used. Sans-IO.

    Invariants: an answer is refused a second time until `spent_until` (its challenge's expiry,
    after which the signature check refuses it anyway); at most `capacity` are remembered, the
    oldest forgotten first (one could be used again only if `capacity` puzzles were solved within
    one challenge's life).
    """

    def __init__(self, capacity: int = MAX_SPENT_ANSWERS) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._until: OrderedDict[str, float] = OrderedDict()  # oldest first

    def __len__(self) -> int:
        return len(self._until)

    def spend(self, answer_id: str, until: float, now: float) -> bool:
        """True the first time an answer is spent, False every time after (until `until`)."""
        while self._until and next(iter(self._until.values())) <= now:
            self._until.popitem(last=False)
        if answer_id in self._until:
            return False
        if len(self._until) >= self.capacity:
            self._until.popitem(last=False)
        self._until[answer_id] = until
        return True


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
            raise self._refuse(BadToken("this place in line is not valid here; join again"))
        return Ticket(space_id, epoch, seq)

    # -- passes ------------------------------------------------------------------------------
    def pass_(self, space_id: SpaceId, client: str) -> str:
        return str(self._passes.dumps({"s": space_id, "c": client}))

    def open_pass(self, token: object, space_id: SpaceId, client: str) -> None:
        self._open(self._passes, token, PASS_TTL_S, space_id, client, "listener pass")

    def pass_is_for(self, token: str, space_id: SpaceId) -> bool:
        """Whether a pass was signed here for this space (the door's check: the client it is bound
        to is checked with the beat's body, by `open_pass`)."""
        if not token or len(token) > MAX_CHARS:
            return False
        try:
            payload = self._passes.loads(token, max_age=PASS_TTL_S)
        except BadSignature:  # SignatureExpired included
            return False
        return isinstance(payload, dict) and payload.get("s") == space_id

    # -- proof of work -----------------------------------------------------------------------
    def challenge(self, space_id: SpaceId, client: str, difficulty_bits: int) -> Challenge:
        payload = {"s": space_id, "c": client, "d": difficulty_bits, "n": secrets.token_urlsafe(9)}
        return Challenge(str(self._challenges.dumps(payload)), difficulty_bits)

    def open_solution(self, token: str, counter: int | None, space_id: SpaceId, client: str, network: str) -> Solution:
        """A right answer to a challenge: the pass it earns (for `client` on `network`, a hash of
        where the answer came from), and the answer's id, which the caller spends once. `counter`
        is a whole number already (the API's `Join` model refuses anything else, a boolean too)."""
        payload = self._open(self._challenges, token, CHALLENGE_TTL_S, space_id, client, "puzzle")
        bits, nonce = payload.get("d"), payload.get("n")
        if not isinstance(bits, int) or not isinstance(nonce, str) or counter is None or not 0 <= counter < 2**53:
            raise self._refuse(BadToken("this puzzle answer is not valid; solve a new puzzle"))
        if leading_zero_bits(pow_digest(token, counter)) < bits:
            raise self._refuse(Forbidden("this puzzle answer is wrong; solve the puzzle again"))
        solved = str(self._solved.dumps({"s": space_id, "c": client, "a": network}))
        # Issued at most CHALLENGE_TTL_S ago: by then it has surely expired. Wall time of the real
        # clock, as the signature's own expiry (itsdangerous reads the system clock) is.
        return Solution(solved, nonce, time.time() + CHALLENGE_TTL_S)

    def open_solved(self, token: object, space_id: SpaceId, client: str, network: str) -> None:
        payload = self._open(self._solved, token, SOLVED_TTL_S, space_id, client, "puzzle pass")
        if payload.get("a") != network:
            raise self._refuse(Forbidden("this puzzle pass was earned on another network; solve a new puzzle"))

    # -- shared ------------------------------------------------------------------------------
    def _refuse(self, error: PodiumError) -> PodiumError:
        """Counts a refusal by signature alone; returns the error to raise."""
        self.refused += 1
        return error

    def _open(
        self, serializer: URLSafeTimedSerializer, token: object, ttl_s: int, space_id: SpaceId, client: str, what: str
    ) -> dict[str, Any]:
        if not isinstance(token, str) or not token or len(token) > MAX_CHARS:
            raise self._refuse(BadToken(f"this {what} is not valid here; join again"))
        try:
            payload = serializer.loads(token, max_age=ttl_s)
        except SignatureExpired:
            raise self._refuse(ExpiredToken(f"this {what} has expired; join again")) from None
        except BadSignature:
            raise self._refuse(BadToken(f"this {what} is not valid here; join again")) from None
        if not isinstance(payload, dict) or payload.get("s") != space_id:
            raise self._refuse(BadToken(f"this {what} belongs to another space; join again"))
        if payload.get("c") != client:
            raise self._refuse(Forbidden(f"this {what} belongs to another browser; join again"))
        return payload


def pow_digest(challenge: str, counter: int) -> bytes:
    """What the client hashes: the challenge, a colon, the counter in decimal (as the page does)."""
    return hashlib.sha256(f"{challenge}:{counter}".encode()).digest()


def leading_zero_bits(digest: bytes) -> int:
    return len(digest) * 8 - int.from_bytes(digest, "big").bit_length()
