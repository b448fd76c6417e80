"""Joining a space as a listener: signature checks first, then the per-address limit, the puzzle of
under-attack mode, and the waiting room. Nothing here touches a database: the rooms are in memory,
or, between nodes (`rooms_url`), in Redis, one room per space for the whole instance.

A listener's heartbeats carry the pass (`admit_beat`): only the admitted are counted, and a
stranger's beats meet a per-address limit and a signature check before any count moves.

The answers:
- `200 {"admitted": true, "pass"}`: in; the pass lets a reload back in without queueing again;
- `202 {"admitted": false, "position", "ticket"}` + `Retry-After`: in line; come back with the ticket;
- `202 {"admitted": false, "challenge", "difficulty_bits"}`: solve the puzzle first (under attack).

Each puzzle answer is spent on its first use (`409` after), and the `solved` pass names the client
and its network. The stream itself (playlists, parts, segments) needs no pass, under attack or
not: it is what the cache tier serves to any audience (bet 1), a pass in its URLs would make every
listener's copy a different object, and at the origin it is answered from memory, never from the
database or the mixer. What protects the stream is the cache in front; a private space's stream
needs its signed listener link.
"""

from __future__ import annotations

import math
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from podium.admission.classes import RequestClass
from podium.admission.limits import Policy, RateLimits, network_of, with_limit
from podium.admission.load import Governor
from podium.admission.shared_room import (
    PREFIX,
    MemoryRoom,
    RedisWaitingRoom,
    Room,
    SharedEpoch,
    reachable,
    rooms_client,
)
from podium.admission.tickets import TICKET_TTL_S, Solution, SpentAnswers, Ticket, TicketSigner, client_hash
from podium.admission.waiting_room import Admitted, WaitingRoom
from podium.clock import Clock
from podium.errors import Conflict, InvalidInput, Unauthenticated
from podium.ids import ListenerId, SpaceId, is_client_id
from podium.settings import Settings

JOIN_PER_ADDRESS = Policy("join-address", "60/minute", "too many joins from your network")
BEAT_PER_ADDRESS = Policy("heartbeat-address", "1200/minute", "too many heartbeats from your network")
BASE_DIFFICULTY_BITS = 12  # about 4,000 hashes: a few tenths of a second on a phone
MAX_DIFFICULTY_BITS = 16  # about 65,000 hashes: still about a second on a phone
SURGE_WINDOW_S = 10
SURGE_HOLD_S = 60.0


@dataclass
class Surge:
    """Fresh join arrivals per second over the last `SURGE_WINDOW_S`, and under-attack mode.

    In "auto", the mode switches on when arrivals reach `factor` x the admission rate and stays on
    until they have been below it for `SURGE_HOLD_S`. The puzzle grows one bit per doubling of the
    surge past that point.
    """

    rate_per_s: float
    factor: float
    mode: str = "auto"
    _buckets: deque[list[int]] = field(default_factory=deque)  # [second, arrivals]
    _on_until: float = -math.inf

    def note(self, now: float) -> None:
        second = int(now)
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += 1
        else:
            self._buckets.append([second, 1])
        self._trim(now)

    def arrivals_per_s(self, now: float) -> float:
        self._trim(now)
        return sum(count for _, count in self._buckets) / SURGE_WINDOW_S

    def active(self, now: float) -> bool:
        if self.mode != "auto":
            return self.mode == "on"
        if self.arrivals_per_s(now) >= self.factor * self.rate_per_s:
            self._on_until = now + SURGE_HOLD_S
        return now < self._on_until

    def difficulty_bits(self, now: float) -> int:
        surge = self.arrivals_per_s(now) / (self.factor * self.rate_per_s)
        extra = round(math.log2(surge)) if surge > 1 else 0
        return max(BASE_DIFFICULTY_BITS, min(MAX_DIFFICULTY_BITS, BASE_DIFFICULTY_BITS + extra))

    def _trim(self, now: float) -> None:
        while self._buckets and self._buckets[0][0] <= now - SURGE_WINDOW_S:
            self._buckets.popleft()


@dataclass(frozen=True)
class JoinAnswer:
    status: int
    body: dict[str, Any]
    retry_after_s: int | None = None


@dataclass(eq=False)
class Joins:
    signer: TicketSigner
    governor: Governor
    limits: RateLimits
    clock: Clock
    settings: Settings

    def __post_init__(self) -> None:
        self.rate_per_s, self.burst = self.settings.join_rate_per_s, self.settings.join_burst
        self.surge_factor = self.settings.under_attack_surge
        self.policy = with_limit(JOIN_PER_ADDRESS, self.settings.join_limit_per_address)
        self.beat_policy = with_limit(BEAT_PER_ADDRESS, self.settings.heartbeat_limit_per_address)
        # Tickets carry their room's epoch: this process's for rooms in memory, the instance's
        # (kept in Redis) for shared rooms, so that a ticket from any node is good on every node.
        self._epoch = secrets.token_urlsafe(6)
        self._redis = rooms_client(self.settings.bus_url) if self.settings.bus_url else None
        self._shared_epoch = SharedEpoch(self._redis) if self._redis is not None else None
        self._rooms: dict[SpaceId, Room] = {}
        self._surges: dict[SpaceId, Surge] = {}
        self.spent = SpentAnswers()  # puzzle answers used on this node (between nodes: in Redis)
        self.admitted = 0
        self.queued = 0

    def room(self, space_id: SpaceId) -> Room:
        if space_id not in self._rooms:
            if self._redis is not None:
                self._rooms[space_id] = RedisWaitingRoom(
                    self._redis, space_id, self.rate_per_s, self.burst, TICKET_TTL_S, self._shared_epoch
                )
            else:
                local = WaitingRoom(self.rate_per_s, self.burst, self.clock.monotonic(), TICKET_TTL_S)
                self._rooms[space_id] = MemoryRoom(local, self.clock, self._epoch)
        return self._rooms[space_id]

    def surge(self, space_id: SpaceId) -> Surge:
        if space_id not in self._surges:
            self._surges[space_id] = Surge(self.rate_per_s, self.surge_factor)
        return self._surges[space_id]

    def set_mode(self, space_id: SpaceId, mode: str) -> None:
        """`mode`: "auto", "on" or "off" (the API's UnderAttack model takes no other)."""
        self.surge(space_id).mode = mode

    def check(self, space_id: SpaceId, body: dict[str, Any], address: str) -> tuple[str, dict[str, Any]]:
        """The signature checks, before the space is even looked up. Returns the client's hash and
        what verified: {"pass": True} | {"ticket": Ticket} | {"solution": Solution} | {"solved": token}."""
        if not is_client_id(body["client_id"]):  # a string: the API's `Join` model requires one
            raise InvalidInput("client_id must be 8 to 64 letters, digits, '-' or '_' (the page makes one)")
        client = client_hash(body["client_id"])
        if body.get("pass") is not None:
            self.signer.open_pass(body["pass"], space_id, client)
            return client, {"pass": True}
        verified: dict[str, Any] = {}
        if body.get("ticket") is not None:
            verified["ticket"] = self.signer.open_ticket(body["ticket"], space_id, client)
        network = client_hash(network_of(address))
        if body.get("challenge") is not None:
            verified["solution"] = self.signer.open_solution(
                body["challenge"], body.get("counter"), space_id, client, network
            )
        elif body.get("solved") is not None:
            self.signer.open_solved(body["solved"], space_id, client, network)
            verified["solved"] = body["solved"]
        return client, verified

    async def admit_beat(self, space_id: SpaceId, client_id: str, token: str | None, address: str) -> ListenerId:
        """A heartbeat's proof of admission: the per-address limit first, then the pass the join
        gave, bound to the client id the beat names. Returns the listener the pass names (the
        client's hash: what presence counts and samples). Raises before any count moves."""
        await self.limits.hit(self.beat_policy, address)
        if not is_client_id(client_id):
            raise InvalidInput(
                "listener_id must be 8 to 64 letters, digits, '-' or '_' (the client_id you joined with)"
            )
        if token is None:
            raise Unauthenticated("only listeners who joined are counted: send the pass your join returned")
        client = client_hash(client_id)
        self.signer.open_pass(token, space_id, client)
        return ListenerId(client)

    async def spend(self, solution: Solution) -> bool:
        """Marks a puzzle answer used: True the first time, False if it was used before (on any
        node, when the rooms are shared)."""
        if self._redis is None:
            # The real clock's wall time, as `Solution.spent_until` is (see `open_solution`).
            return self.spent.spend(solution.answer_id, solution.spent_until, time.time())
        with reachable():
            first = await self._redis.set(
                f"{PREFIX}pow:{solution.answer_id}", 1, nx=True, exat=math.ceil(solution.spent_until)
            )
        return bool(first)

    async def join(self, space_id: SpaceId, client: str, verified: dict[str, Any], address: str) -> JoinAnswer:
        """After `check` and after the space was found live or upcoming."""
        if verified.get("pass"):
            return self._admitted(space_id, client, None)
        solution: Solution | None = verified.get("solution")
        solved: str | None = solution.solved if solution is not None else verified.get("solved")
        now = self.clock.monotonic()
        room = self.room(space_id)
        surge = self.surge(space_id)
        ticket = verified.get("ticket")
        # A ticket from this room's line keeps its place; one from another life of it is a fresh arrival.
        held: Ticket | None = ticket if ticket is not None and ticket.epoch == await room.epoch() else None
        if held is None:
            await self.limits.hit(self.policy, address)
            surge.note(now)
            if surge.active(now) and solved is None:
                challenge = self.signer.challenge(space_id, client, surge.difficulty_bits(now))
                return JoinAnswer(
                    202,
                    {
                        "admitted": False,
                        "challenge": challenge.token,
                        "difficulty_bits": challenge.difficulty_bits,
                        "message": "Many people are joining right now: your browser solves a small puzzle first.",
                    },
                    0,
                )
        # Spent only once the address's limit let it through: a refused arrival may come back with it.
        if solution is not None and not await self.spend(solution):
            raise Conflict("this puzzle answer was already used; solve a new puzzle")
        paused = self.governor.shedding(RequestClass.JOIN)
        if held is not None:
            outcome = await room.redeem(held.seq, paused)
        else:
            outcome = await room.arrive(paused)
        if isinstance(outcome, Admitted):
            return self._admitted(space_id, client, solved)
        if paused:
            self.governor.count_shed(RequestClass.JOIN)
        self.queued += 1
        body: dict[str, Any] = {
            "admitted": False,
            "position": outcome.position,
            "ticket": self.signer.ticket(space_id, await room.epoch(), outcome.seq, client),
            "retry_after_s": outcome.retry_after_s,
            "retry_after_ms": outcome.retry_after_ms,
            "message": f"You are number {outcome.position} in line; you are let in automatically.",
            "solved": solved,  # None: left out of the answer
        }
        return JoinAnswer(202, body, outcome.retry_after_s)

    def _admitted(self, space_id: SpaceId, client: str, solved: str | None) -> JoinAnswer:
        self.admitted += 1
        return JoinAnswer(200, {"admitted": True, "pass": self.signer.pass_(space_id, client), "solved": solved})

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
