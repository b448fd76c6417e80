"""The impaired sending path: loss models that lose what they say, and a hook on real aiortc peers
that drops and delays exactly those RTP media packets while RTCP goes through."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.rtp import RtcpSenderInfo, RtcpSrPacket, RtpPacket

from podium.media import ice
from podium.testing import eventually
from podium.testing.impair import (
    BurstLoss,
    FixedLoss,
    ImpairedPath,
    Impairment,
    NoLoss,
    RandomLoss,
    impair_sender,
    is_rtcp,
)
from podium.testing.whip_client import SampleTrack, tone

PACKETS = 200_000


def bursts(trace: list[bool]) -> list[int]:
    """Lengths of the runs of lost packets."""
    lengths: list[int] = []
    run = 0
    for lost in [*trace, False]:
        if lost:
            run += 1
        elif run:
            lengths.append(run)
            run = 0
    return lengths


def test_random_loss_loses_the_rate_asked_independently() -> None:
    trace = Impairment(RandomLoss(0.05), seed=7).trace(PACKETS)
    # Binomial: the standard deviation of the rate is about 0.0005 here; 0.002 is 4 of them.
    assert abs(sum(trace) / PACKETS - 0.05) < 0.002
    # Independent losses come in runs of 1/(1 - p) on average: about 1.05 packets.
    assert abs(float(np.mean(bursts(trace))) - 1 / 0.95) < 0.02


@pytest.mark.parametrize(("rate", "mean_burst"), [(0.02, 3.0), (0.1, 5.0), (0.05, 1.5)])
def test_burst_loss_has_the_rate_and_the_mean_burst_asked(rate: float, mean_burst: float) -> None:
    trace = Impairment(BurstLoss(rate, mean_burst), seed=3).trace(PACKETS)
    lengths = bursts(trace)
    assert abs(sum(trace) / PACKETS - rate) < rate * 0.15
    assert abs(float(np.mean(lengths)) - mean_burst) < mean_burst * 0.1
    # Bursts, not a scatter of single losses: with a mean of 3 or more, a good share are long.
    if mean_burst >= 3:
        assert sum(1 for n in lengths if n >= 3) / len(lengths) > 0.3


def test_fixed_loss_loses_exactly_those_packets() -> None:
    loss = FixedLoss.every(50, start=100, stop=500)
    assert loss.indices == frozenset(range(100, 500, 50))
    trace = Impairment(loss, seed=99).trace(600)
    assert [i for i, lost in enumerate(trace) if lost] == [100, 150, 200, 250, 300, 350, 400, 450]
    assert Impairment(loss).lost_indices(120) == [100]
    assert not any(Impairment(NoLoss()).trace(1000))


@pytest.mark.parametrize("loss", [RandomLoss(0.1), BurstLoss(0.1, 4.0)])
def test_a_seed_gives_one_trace_and_a_longer_trace_starts_with_a_shorter_one(
    loss: RandomLoss | BurstLoss,
) -> None:
    impairment = Impairment(loss, jitter_ms=30, seed=5)
    assert impairment.trace(5000) == Impairment(loss, jitter_ms=30, seed=5).trace(5000)
    assert impairment.trace(5000) != Impairment(loss, jitter_ms=30, seed=6).trace(5000)
    assert impairment.trace(5000)[:1234] == impairment.trace(1234)
    assert impairment.delays_ms(5000)[:77] == impairment.delays_ms(77)
    # Jitter draws from its own stream: adding it changes no loss.
    assert Impairment(loss, jitter_ms=0, seed=5).trace(5000) == impairment.trace(5000)


def test_jitter_delays_are_uniform_up_to_the_jitter_asked() -> None:
    delays = np.array(Impairment(NoLoss(), jitter_ms=40, seed=1).delays_ms(50_000))
    assert delays.min() >= 0 and delays.max() <= 40
    assert abs(delays.mean() - 20) < 0.5
    assert abs(np.mean(delays < 10) - 0.25) < 0.01
    assert Impairment(NoLoss()).delays_ms(3) == [0.0, 0.0, 0.0]


def test_impossible_impairments_are_refused() -> None:
    with pytest.raises(ValueError):
        RandomLoss(1.5)
    with pytest.raises(ValueError):
        BurstLoss(0.1, 0.5)
    with pytest.raises(ValueError):
        BurstLoss(0.6, 1.0)  # mostly lost, yet in bursts of one: the chain cannot do it
    with pytest.raises(ValueError):
        Impairment(NoLoss(), jitter_ms=-1)


def rtp_bytes(seq: int, marker: int = 1, payload_type: int = 111) -> bytes:
    packet = RtpPacket(payload_type=payload_type, sequence_number=seq, timestamp=seq * 960)
    packet.marker = marker
    packet.payload = b"\x78" + bytes(40)
    return packet.serialize()


def test_rtcp_is_told_from_rtp_by_the_payload_type_byte() -> None:
    report = RtcpSrPacket(ssrc=1, sender_info=RtcpSenderInfo(0, 0, 0, 0))
    assert is_rtcp(bytes(report))
    assert not is_rtcp(rtp_bytes(1, marker=1))
    assert not is_rtcp(rtp_bytes(1, marker=0))
    assert not is_rtcp(rtp_bytes(1, marker=1, payload_type=0))  # PCMU with the marker: 128


def test_the_path_records_which_sequence_numbers_it_dropped() -> None:
    path = ImpairedPath(Impairment(FixedLoss(frozenset({2, 5}))))
    fates = [path.admit(rtp_bytes((65534 + i) % 65536)) for i in range(8)]  # across the 16-bit wrap
    assert [fate is None for fate in fates] == [False, False, True, False, False, True, False, False]
    assert path.dropped == [0, 3] and path.dropped_indices == [2, 5] and path.index == 8


@dataclass
class Link:
    """An aiortc speaker sending a tone to an aiortc receiver on loopback, the speaker's path impaired."""

    sender: RTCPeerConnection
    path: ImpairedPath
    arrived: list[int] = field(default_factory=list)  # RTP sequence numbers, in arrival order
    reports: list[Any] = field(default_factory=list)  # RTCP packets the receiver got

    async def stop_sending(self, settle_s: float) -> None:
        """Stop the speaker and wait `settle_s` for what is on the way (delayed packets included)."""
        self.sender.getSenders()[0].replaceTrack(None)  # aiortc's sending loop idles without a track
        # Real time on purpose: delayed packets are in flight on real loopback sockets (the
        # impairment holds them on the event loop's clock); what arrives in `settle_s` is measured.
        await asyncio.sleep(settle_s)


@asynccontextmanager
async def link(impairment: Impairment) -> AsyncIterator[Link]:
    ice.configure("only")
    sender = RTCPeerConnection(ice.rtc_configuration())
    receiver = RTCPeerConnection(ice.rtc_configuration())
    try:
        sender.addTransceiver(SampleTrack(tone(440)), direction="sendonly")
        result = Link(sender, impair_sender(sender, impairment))
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        rtp_receiver = receiver.getReceivers()[0]
        handle_rtp, handle_rtcp = rtp_receiver._handle_rtp_packet, rtp_receiver._handle_rtcp_packet

        async def on_rtp(packet: RtpPacket, arrival_time_ms: int) -> None:
            result.arrived.append(packet.sequence_number)
            await handle_rtp(packet, arrival_time_ms=arrival_time_ms)

        async def on_rtcp(packet: Any) -> None:
            result.reports.append(packet)
            await handle_rtcp(packet)

        # Instance attributes shadow the methods the DTLS transport calls by name.
        rtp_receiver._handle_rtp_packet = on_rtp  # type: ignore[method-assign]
        rtp_receiver._handle_rtcp_packet = on_rtcp  # type: ignore[method-assign]
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(RTCSessionDescription(receiver.localDescription.sdp, "answer"))
        yield result
    finally:
        await sender.close()
        await receiver.close()
        ice.configure("0")


async def wait_until(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    await eventually(condition, "the condition", timeout_s=timeout_s, poll_s=0.02)


def sending_order(sequence_numbers: list[int]) -> list[int]:
    """Sequence numbers as offsets from the first one sent, across the 16-bit wrap (no loss)."""
    present = set(sequence_numbers)
    first = next(s for s in present if (s - 1) % 65536 not in present)
    return [(s - first) % 65536 for s in sequence_numbers]


async def test_real_peers_lose_exactly_the_packets_the_trace_says_and_rtcp_still_flows() -> None:
    impairment = Impairment(FixedLoss.every(7, start=3, stop=10_000))
    async with link(impairment) as peers:
        # The sender's first report comes 0.5 to 1.5 s in (aiortc's RTCP interval).
        await wait_until(lambda: peers.path.index >= 60 and any(isinstance(r, RtcpSrPacket) for r in peers.reports))
        await peers.stop_sending(0.3)
        path = peers.path
        assert path.dropped_indices == impairment.lost_indices(path.index)
        assert len(path.dropped) + len(path.sent) == path.index
        assert sorted(peers.arrived) == sorted(path.sent)
        assert not set(peers.arrived) & set(path.dropped)
        # The sender's reports went through untouched, and counted every packet it sent, lost or not.
        report = next(r for r in peers.reports if isinstance(r, RtcpSrPacket))
        assert report.sender_info.packet_count > 0


async def test_jitter_delays_and_reorders_without_losing() -> None:
    # Up to 80 ms of extra delay for packets 20 ms apart: many neighbours swap places.
    async with link(Impairment(NoLoss(), jitter_ms=80, seed=2)) as peers:
        await wait_until(lambda: len(peers.arrived) >= 75)
        await peers.stop_sending(0.3)
        assert not peers.path.dropped
        assert sorted(peers.arrived) == sorted(peers.path.sent)
        order = sending_order(peers.arrived)
        assert order != sorted(order)  # reordered on the way
        assert sorted(order) == list(range(len(order)))  # and none lost
