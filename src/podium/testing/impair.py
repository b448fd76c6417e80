"""A bad network on the speaker's side: drop and delay the RTP media packets an aiortc peer sends,
in the sender (this kernel has no netem, and a test wants to know exactly which packets were lost).

An `Impairment` gives `trace(n)`, the fate of the first n media packets (True: lost), and
`delays_ms(n)`, their extra delays. Invariants:
- the same impairment gives the same trace and delays, and a longer trace begins with the shorter
  one (`trace(n)[:k] == trace(k)`), so a test can compute before sending which packets will be
  lost, for instance to decode the same losses with libopus as the codec's own reference;
- packet index i is the i-th RTP media packet the peer sends, from 0 (RTCP is never counted,
  dropped nor delayed: it is what the receiver learns the loss from);
- loss and jitter draw from separate random streams, so adding jitter never changes which
  packets are lost.

Jitter: each packet waits an independent delay, uniform in [0, jitter_ms], so packets 20 ms apart
are reordered only with a `jitter_ms` over 20.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np
from aiortc import RTCPeerConnection

# The random streams of one seed: one for loss, one for delays (see the invariants above).
_LOSS_STREAM = 0
_DELAY_STREAM = 1
# Fixed 12-byte RTP header (RFC 3550): byte 1 is marker + payload type, bytes 2-3 the sequence number.
_RTP_HEADER_BYTES = 12


@dataclass(frozen=True)
class NoLoss:
    """Every packet arrives."""


@dataclass(frozen=True)
class RandomLoss:
    """Each packet is lost independently with probability `rate` (0-1)."""

    rate: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"a loss rate lies in [0, 1], not {self.rate}")


@dataclass(frozen=True)
class BurstLoss:
    """Losses in bursts: a two-state Gilbert-Elliott chain, losing everything in its bad state, whose
    stationary loss is `rate` and whose (geometric) bursts last `mean_burst` packets on average."""

    rate: float
    mean_burst: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate < 1.0:
            raise ValueError(f"a burst loss rate lies in [0, 1), not {self.rate}")
        if self.mean_burst < 1.0:
            raise ValueError(f"a burst lasts at least one packet on average, not {self.mean_burst}")
        if self.enter_bad > 1.0:
            raise ValueError(f"a loss of {self.rate} cannot come in bursts of {self.mean_burst} packets on average")

    @property
    def enter_bad(self) -> float:
        """The chance per packet that a burst starts."""
        return self.rate / (self.mean_burst * (1.0 - self.rate))

    @property
    def leave_bad(self) -> float:
        return 1.0 / self.mean_burst


@dataclass(frozen=True)
class FixedLoss:
    """Exactly the packets at these indices (counting RTP media packets sent, from 0) are lost."""

    indices: frozenset[int]

    @classmethod
    def every(cls, period: int, *, start: int, stop: int) -> FixedLoss:
        """Every `period`-th packet from `start` up to (not including) `stop`: a loss of 1/period, spread."""
        return cls(frozenset(range(start, stop, period)))


LossModel = NoLoss | RandomLoss | BurstLoss | FixedLoss


@dataclass(frozen=True)
class Impairment:
    """What the path does to the speaker's RTP media packets; deterministic for a `seed`."""

    loss: LossModel
    jitter_ms: float = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.jitter_ms < 0:
            raise ValueError(f"jitter is a delay, never negative: {self.jitter_ms}")

    def trace(self, n: int) -> list[bool]:
        """The fate of packets 0..n-1: True where the packet is lost."""
        loss = self.loss
        if isinstance(loss, NoLoss):
            return [False] * n
        if isinstance(loss, FixedLoss):
            return [index in loss.indices for index in range(n)]
        draws = np.random.default_rng([self.seed, _LOSS_STREAM]).random(n)
        if isinstance(loss, RandomLoss):
            return [bool(draw < loss.rate) for draw in draws]
        # Gilbert-Elliott: the chain starts in its stationary distribution (the first draw decides
        # the first state), then one draw per packet decides the next state.
        lost = bool(draws[0] < loss.rate) if n else False
        fates: list[bool] = []
        for index in range(n):
            if index > 0:
                lost = bool(draws[index] >= loss.leave_bad) if lost else bool(draws[index] < loss.enter_bad)
            fates.append(lost)
        return fates

    def delays_ms(self, n: int) -> list[float]:
        """The extra delay of packets 0..n-1 in ms: independent, uniform in [0, jitter_ms]."""
        if self.jitter_ms == 0:
            return [0.0] * n
        draws = np.random.default_rng([self.seed, _DELAY_STREAM]).random(n)
        return [float(draw) * self.jitter_ms for draw in draws]

    def lost_indices(self, n: int) -> list[int]:
        """The indices among packets 0..n-1 that are lost."""
        return [index for index, lost in enumerate(self.trace(n)) if lost]


def is_rtcp(data: bytes) -> bool:
    """Whether a datagram on a muxed RTP/RTCP port is RTCP: RFC 5761 section 4 keeps RTP payload
    types off 64-95, so byte 1 is 192-223 only for RTCP packet types."""
    return len(data) >= 2 and 192 <= data[1] <= 223


@dataclass
class ImpairedPath:
    """One peer's impaired sending path: the RTP sequence numbers it `dropped` (in sending order) and
    `sent` (in the order they left, which jitter may shuffle); `index` counts media packets seen."""

    impairment: Impairment
    sent: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    dropped_indices: list[int] = field(default_factory=list)
    index: int = 0
    _trace: list[bool] = field(default_factory=list, repr=False)
    _delays: list[float] = field(default_factory=list, repr=False)
    _pending: set[asyncio.TimerHandle] = field(default_factory=set, repr=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, repr=False)

    def admit(self, packet: bytes) -> float | None:
        """Decide the fate of the next RTP media packet: None if it is lost, else its delay in ms."""
        index = self.index
        self.index += 1
        if index >= len(self._trace):
            # Grown by doubling: traces are prefix-stable, so recomputing longer changes nothing before.
            size = max(256, 2 * (index + 1))
            self._trace = self.impairment.trace(size)
            self._delays = self.impairment.delays_ms(size)
        if self._trace[index]:
            self.dropped.append(sequence_number(packet))
            self.dropped_indices.append(index)
            return None
        return self._delays[index]

    def close(self) -> None:
        """Forget the packets still waiting out their delay (the peer is closing)."""
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()
        for task in self._tasks:
            task.cancel()


def sequence_number(packet: bytes) -> int:
    """The RTP sequence number of a serialised packet (16 bits, bytes 2-3 of the header)."""
    return int.from_bytes(packet[2:4], "big")


SendRtp = Callable[[bytes], Awaitable[None]]
_HOOKED = "_podium_impaired_path"


def impair_sender(pc: RTCPeerConnection, impairment: Impairment) -> ImpairedPath:
    """Impair the RTP media that `pc` sends, from now on; call it after adding the tracks.

    Each sender's DTLS transport gets an instance attribute shadowing `_send_rtp` (which aiortc hands
    each packet before SRTP): RTCP and too-short packets go straight through, media packets are
    dropped or sent later as `impairment` says. A dropped packet still took a sequence number, as
    on a real network. Every sender of `pc` shares one path (with BUNDLE, one transport)."""
    transports = {id(sender.transport): sender.transport for sender in pc.getSenders()}
    if not transports:
        raise ValueError("add the track (addTransceiver or addTrack) before impairing what it sends")
    path = ImpairedPath(impairment)
    for transport in transports.values():
        if getattr(transport, _HOOKED, None) is not None:
            raise ValueError("this transport is impaired already")
        original: SendRtp = transport._send_rtp
        setattr(transport, "_send_rtp", _impaired_send(original, path))  # noqa: B010 - shadows the method
        setattr(transport, _HOOKED, path)
    return path


def _impaired_send(original: SendRtp, path: ImpairedPath) -> SendRtp:
    async def send(data: bytes) -> None:
        if is_rtcp(data) or len(data) < _RTP_HEADER_BYTES:
            await original(data)
            return
        delay_ms = path.admit(data)
        if delay_ms is None:
            return
        if delay_ms <= 0:
            await original(data)
            path.sent.append(sequence_number(data))
            return
        # The sender's loop goes on at once, as it would with the packet on the wire.
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def deliver() -> None:
            if handle is not None:
                path._pending.discard(handle)
            task = loop.create_task(_send_late(original, data, path))
            path._tasks.add(task)
            task.add_done_callback(path._tasks.discard)

        handle = loop.call_later(delay_ms / 1000, deliver)
        path._pending.add(handle)

    return send


async def _send_late(original: SendRtp, data: bytes, path: ImpairedPath) -> None:
    # The connection may have closed while the packet waited: then it is lost, as on a real path.
    with contextlib.suppress(ConnectionError):
        await original(data)
        path.sent.append(sequence_number(data))


def hooked_path(transport: object) -> ImpairedPath | None:
    """The path impairing this DTLS transport, if any (for checks after negotiation)."""
    path = getattr(transport, _HOOKED, None)
    return path if isinstance(path, ImpairedPath) else None
