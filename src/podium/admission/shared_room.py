"""The waiting room as the join path sees it: one small async interface, two implementations.

- `MemoryRoom`: one node's room, a thin async shell around the sans-IO `WaitingRoom`;
- `RedisWaitingRoom`: one room for every node, in Redis: each arrival and return is one Lua script
  (atomic across nodes) on Redis's own `TIME`, so the nodes' clocks do not matter.

Both keep `WaitingRoom`'s rules (numbers called in order, each admitted at most once, at most
burst + rate x window admitted, no refill while `paused`, used numbers remembered for the ticket
lifetime). Tickets carry the room's `epoch`, the life of its line: a ticket from another life is a
fresh arrival. The epoch is the process's in memory, one per instance in Redis (set anew if lost).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from podium.admission.waiting_room import Admitted, Waiting, WaitingRoom, waiting
from podium.clock import Clock
from podium.errors import Conflict, RateLimited
from podium.ids import SpaceId

PREFIX = "podium:room:"
EPOCH_KEY = PREFIX + "epoch"
# A room nobody touched for a ticket's lifetime holds no number a valid ticket could name; the
# margin covers the nodes' wall clocks, which sign and check tickets, being a little apart.
IDLE_MARGIN_S = 60
UNREACHABLE_RETRY_S = 2
_LOST = (RedisConnectionError, RedisTimeoutError, OSError)


class Room(Protocol):
    """One space's waiting room, whichever node asks."""

    async def epoch(self) -> str:
        """The life of this room's line, signed into tickets."""

    async def arrive(self, paused: bool = False) -> Admitted | Waiting: ...

    async def redeem(self, seq: int, paused: bool = False) -> Admitted | Waiting:
        """A ticket holder comes back. Raises Conflict for a number used before or not known."""

    async def waiting(self) -> int:
        """Numbers taken and not yet called."""

    async def called(self) -> int:
        """Places in line whose turn has come."""

    async def admitted(self) -> int:
        """Joiners let in, on arrival or with a called number."""


class MemoryRoom:
    """One node's room: the sans-IO `WaitingRoom` on this process's clock."""

    def __init__(self, room: WaitingRoom, clock: Clock, epoch: str) -> None:
        self.room = room
        self.clock = clock
        self._epoch = epoch

    async def epoch(self) -> str:
        return self._epoch

    async def arrive(self, paused: bool = False) -> Admitted | Waiting:
        return self.room.arrive(self.clock.monotonic(), paused)

    async def redeem(self, seq: int, paused: bool = False) -> Admitted | Waiting:
        return self.room.redeem(seq, self.clock.monotonic(), paused)

    async def waiting(self) -> int:
        return self.room.waiting

    async def called(self) -> int:
        return self.room.called

    async def admitted(self) -> int:
        return self.room.admitted


def rooms_client(url: str) -> redis.Redis:
    """A client for the rooms: short timeouts and few retries, a joiner is better told to come back."""
    retry = Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.05), retries=2)
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2, decode_responses=True, retry=retry)


# -- the scripts ------------------------------------------------------------------------------
# KEYS: 1 the room's state (a hash), 2 its used numbers (a sorted set, scored by the time of use
# in microseconds), 3 the instance's epoch. ARGV: 1 epoch, 2 rate per s, 3 burst, 4 ticket
# lifetime in microseconds, 5 idle expiry in ms, 6 paused ("1"/"0"), 7 the number (redeem).
# Answers: {code (one of the five below), seq, called}; times are whole microseconds of Redis's clock.

ADMITTED, WAITING, USED, UNKNOWN, STALE = 0, 1, 2, 3, 4

_PROLOGUE = """
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return {4, -1, 0} end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local rate, burst, ttl_us = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local paused = ARGV[6] == '1'
local s = redis.call('HMGET', KEYS[1], 'epoch', 'tokens', 'last', 'issued', 'called', 'admitted')
local tokens, last, issued, called, admitted
if s[1] == ARGV[1] then
  tokens, last = tonumber(s[2]), tonumber(s[3])
  issued, called, admitted = tonumber(s[4]), tonumber(s[5]), tonumber(s[6])
else
  -- A new room, or one from a line that was lost: a full bucket and nobody in line.
  redis.call('DEL', KEYS[2])
  tokens, last, issued, called, admitted = burst, now, 0, 0, 0
end
-- Time passed calls numbers at the rate; only what nobody waited for is saved, up to burst.
local elapsed_s = math.max(0, now - last) / 1000000
last = now
if not paused then
  local available = tokens + elapsed_s * rate
  local calls = math.min(math.floor(available), issued - called)
  called = called + calls
  tokens = math.min(burst, available - calls)
end
-- A used number older than a ticket's lifetime fails its signature before it gets here.
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. string.format('%d', now - ttl_us))
local function save()
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'tokens', string.format('%.17g', tokens),
    'last', string.format('%d', last), 'issued', issued, 'called', called, 'admitted', admitted)
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
"""

_ARRIVE = (
    _PROLOGUE
    + """
local answer
if issued == called and tokens >= 1 and not paused then
  tokens = tokens - 1
  admitted = admitted + 1
  answer = {0, -1, called}
else
  answer = {1, issued, called}
  issued = issued + 1
end
save()
return answer
"""
)

_REDEEM = (
    _PROLOGUE
    + """
local seq = tonumber(ARGV[7])
local answer
if redis.call('ZSCORE', KEYS[2], ARGV[7]) then
  answer = {2, seq, called}
elseif seq < 0 or seq >= issued then
  answer = {3, seq, called}
elseif seq < called then
  redis.call('ZADD', KEYS[2], now, ARGV[7])
  admitted = admitted + 1
  answer = {0, seq, called}
else
  answer = {1, seq, called}
end
save()
return answer
"""
)

# The instance's epoch: the one already set, or this proposal (atomically, whoever asks first).
_EPOCH = """
local epoch = redis.call('GET', KEYS[1])
if epoch then return epoch end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""


class SharedEpoch:
    """The instance's epoch, read from Redis once and kept until a script finds it changed."""

    def __init__(self, client: redis.Redis) -> None:
        self._script = client.register_script(_EPOCH)
        self._value: str | None = None

    async def get(self) -> str:
        if self._value is None:
            with reachable():
                value = await self._script(keys=[EPOCH_KEY], args=[secrets.token_urlsafe(6)])
            self._value = str(value)
        return self._value

    def forget(self) -> None:
        self._value = None


class RedisWaitingRoom:
    """One space's room shared by every node through Redis (keys `podium:room:<space>:…`)."""

    def __init__(
        self,
        client: redis.Redis,
        space_id: SpaceId,
        rate_per_s: float,
        burst: int,
        ticket_ttl_s: float,
        epoch: SharedEpoch | None = None,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("the admission rate and burst must be positive")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.ticket_ttl_s = ticket_ttl_s
        self._redis = client
        self._epoch = epoch or SharedEpoch(client)
        self.state_key = f"{PREFIX}{space_id}:state"
        self.used_key = f"{PREFIX}{space_id}:used"
        self._arrive = client.register_script(_ARRIVE)
        self._redeem = client.register_script(_REDEEM)

    async def epoch(self) -> str:
        return await self._epoch.get()

    async def arrive(self, paused: bool = False) -> Admitted | Waiting:
        code, seq, called = await self._run(self._arrive, paused)
        if code == STALE:  # Redis lost the line (and the epoch): a new line, under a new epoch
            code, seq, called = await self._run(self._arrive, paused)
        return self._outcome(code, seq, called)

    async def redeem(self, seq: int, paused: bool = False) -> Admitted | Waiting:
        code, seq, called = await self._run(self._redeem, paused, seq)
        if code == STALE:  # the ticket's line was lost with Redis
            raise Conflict("the waiting room started over; join again")
        return self._outcome(code, seq, called)

    async def waiting(self) -> int:
        issued, called, _ = await self._counts()
        return issued - called

    async def called(self) -> int:
        return (await self._counts())[1]

    async def admitted(self) -> int:
        return (await self._counts())[2]

    async def _counts(self) -> tuple[int, int, int]:
        epoch = await self.epoch()
        with reachable():
            state = await self._redis.hmget(self.state_key, ["epoch", "issued", "called", "admitted"])
        if state[0] != epoch:
            return 0, 0, 0  # no room yet (or only one from a line that was lost)
        issued, called, admitted = (int(value or 0) for value in state[1:])
        return issued, called, admitted

    async def _run(self, script: AsyncScript, paused: bool, seq: int = -1) -> tuple[int, int, int]:
        keys = [self.state_key, self.used_key, EPOCH_KEY]
        idle_ms = int((self.ticket_ttl_s + IDLE_MARGIN_S) * 1000)
        ttl_us = int(self.ticket_ttl_s * 1_000_000)
        rate = repr(float(self.rate_per_s))
        args: list[str | int] = [await self.epoch(), rate, self.burst, ttl_us, idle_ms, int(paused), seq]
        with reachable():
            answer = await script(keys=keys, args=args)
        code, number, called = (int(value) for value in answer)
        if code == STALE:
            self._epoch.forget()
        return code, number, called

    def _outcome(self, code: int, seq: int, called: int) -> Admitted | Waiting:
        if code == ADMITTED:
            return Admitted(None if seq < 0 else seq)
        if code == USED:
            raise Conflict("this place in line was already used; join again")
        if code == UNKNOWN:
            raise Conflict("this place in line is not known here; join again")
        if code == STALE:  # lost twice in a row: Redis is starting over right now
            raise RateLimited("the waiting room is starting over; trying again", UNREACHABLE_RETRY_S)
        # The same maths as WaitingRoom's: 1 = next to be called; come back when it should be.
        position = seq - called + 1
        return waiting(seq, position, self.rate_per_s)


@contextmanager
def reachable() -> Iterator[None]:
    """Redis out of reach: the joiner is told to come back shortly (429 + Retry-After), ticket kept."""
    try:
        yield
    except _LOST:
        raise RateLimited("the waiting room cannot be reached right now; trying again", UNREACHABLE_RETRY_S) from None
