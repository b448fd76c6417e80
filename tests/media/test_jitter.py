"""The jitter buffer: concrete cases for each named situation, then its contract over random traces."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.media.jitter import (
    Conceal,
    Continue,
    Decision,
    JitterBuffer,
    Packet,
    Play,
    Recover,
    Silence,
    opus_packet_samples,
)

FRAME = 960
SEQ_MOD = 1 << 16
TS_MOD = 1 << 32


# -- helpers -------------------------------------------------------------------------------------


def stream(
    count: int, *, seq: int = 0, ts: int = 0, voice: bool | None = True, slots: int = 1, first: int = 0
) -> list[Packet]:
    """`count` consecutive packets; the payload names the packet by its index, from `first`."""
    return [
        Packet((seq + i) % SEQ_MOD, (ts + i * FRAME * slots) % TS_MOD, str(first + i).encode(), voice, FRAME * slots)
        for i in range(count)
    ]


def scripted(**settings: Any) -> JitterBuffer:
    """A buffer for the scripted tests below: the first talk spurt starts one frame behind, as
    later ones do on a clean path (the default start of two frames has tests of its own)."""
    settings.setdefault("start_delay_ms", 20)
    return JitterBuffer(**settings)


def on_time(packets: list[Packet], *, start: int = 0, slots: int = 1) -> dict[int, list[Packet]]:
    return {start + i * slots: [p] for i, p in enumerate(packets)}


def run(jb: JitterBuffer, schedule: dict[int, list[Packet]], ticks: int, first: int = 0) -> list[Decision]:
    """Tick t is at 20 t ms; what is scheduled for tick t arrives 5 ms before it."""
    decisions: list[Decision] = []
    for t in range(first, first + ticks):
        for packet in schedule.get(t, []):
            jb.push(packet, t * 20 - 5)
        decisions.append(jb.pop(t * 20))
    return decisions


def names(decisions: list[Decision]) -> list[str]:
    """P3: play packet 3, R3: recover from packet 3's FEC, C: conceal, S: silence, -: continue."""
    out = []
    for d in decisions:
        match d:
            case Play(packet=p):
                out.append("P" + p.payload.decode())
            case Recover(packet=p):
                out.append("R" + p.payload.decode())
            case Conceal():
                out.append("C")
            case Silence():
                out.append("S")
            case Continue():
                out.append("-")
    return out


def played(decisions: list[Decision]) -> list[Packet]:
    return [d.packet for d in decisions if isinstance(d, Play)]


def conserved(jb: JitterBuffer) -> bool:
    s = jb.stats()
    accounted = s.duplicates + s.late + s.played + s.dropped_for_delay + s.dropped_overflow + s.flushed + s.buffered
    return s.received == accounted


# -- packets and decisions -----------------------------------------------------------------------


def test_packet_fields_are_rtp_sized() -> None:
    with pytest.raises(ValueError):
        Packet(65536, 0, b"x")
    with pytest.raises(ValueError):
        Packet(0, 1 << 32, b"x")
    with pytest.raises(ValueError):
        Packet(0, -1, b"x")
    with pytest.raises(ValueError):
        Packet(0, 0, b"x", samples=0)
    assert Packet(65535, (1 << 32) - 1, b"x").samples == FRAME


@pytest.mark.parametrize(
    ("payload", "samples"),
    [
        (bytes([1 << 3]), 960),  # SILK NB 20 ms, one frame
        (bytes([3 << 3]), 2880),  # SILK NB 60 ms
        (bytes([2 << 3]), 1920),  # SILK NB 40 ms
        (bytes([12 << 3]), 480),  # hybrid SWB 10 ms
        (bytes([31 << 3]), 960),  # CELT FB 20 ms
        (bytes([31 << 3 | 1]), 1920),  # two equal frames
        (bytes([31 << 3 | 2, 5]), 1920),  # two frames of different sizes
        (bytes([31 << 3 | 3, 3]), 2880),  # code 3: three frames
        (bytes([16 << 3 | 3, 0x80 | 8]), 960),  # code 3, VBR flag set: eight 2.5 ms frames
    ],
)
def test_opus_packet_samples_reads_the_toc(payload: bytes, samples: int) -> None:
    assert opus_packet_samples(payload) == samples


def test_opus_packet_samples_rejects_truncated_packets() -> None:
    with pytest.raises(ValueError):
        opus_packet_samples(b"")
    with pytest.raises(ValueError):
        opus_packet_samples(bytes([31 << 3 | 3]))
    with pytest.raises(ValueError):
        opus_packet_samples(bytes([31 << 3 | 3, 0]))


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        JitterBuffer(min_delay_ms=100, max_delay_ms=60)
    with pytest.raises(ValueError):
        JitterBuffer(quantile=1.0)


# -- the clean path ------------------------------------------------------------------------------


def test_silence_until_the_first_packet() -> None:
    jb = scripted()
    assert [jb.pop(t * 20.0) for t in range(3)] == [Silence()] * 3
    assert jb.next_timestamp is None
    assert jb.stats().silent == 3


def test_clean_stream_plays_each_packet_in_its_slot_one_frame_behind() -> None:
    jb = scripted()
    packets = stream(50)
    decisions = run(jb, on_time(packets), 50)
    assert played(decisions) == packets
    s = jb.stats()
    assert (s.played, s.concealed, s.recovered, s.late, s.duplicates) == (50, 0, 0, 0, 0)
    assert s.delay_ms == 20 and s.target_ms == 20
    assert s.loss_fraction == 0.0


@pytest.mark.parametrize(("seq", "ts"), [(0, 0), (31_000, 123_456_789), (65_530, 5), (17, TS_MOD - 3 * FRAME)])
def test_a_stream_may_start_at_any_sequence_number_and_timestamp(seq: int, ts: int) -> None:
    jb = scripted()
    packets = stream(20, seq=seq, ts=ts)
    assert played(run(jb, on_time(packets), 20)) == packets
    assert jb.stats().resets == 0


def test_sequence_numbers_wrap_from_65535_to_0() -> None:
    jb = scripted()
    packets = stream(8, seq=65_532, ts=48_000)
    assert [p.seq for p in packets] == [65532, 65533, 65534, 65535, 0, 1, 2, 3]
    lost = packets[5]  # seq 1, just after the wrap: recovered like any other
    schedule = {i: [p] for i, p in enumerate(packets) if p is not lost}
    schedule[4].append(packets[6])  # seq 2 arrives early, so seq 1's slot can use its FEC
    jb = scripted()
    assert names(run(jb, schedule, 8)) == ["P0", "P1", "P2", "P3", "P4", "R6", "P6", "P7"]
    assert jb.stats().resets == 0 and jb.stats().late == 0


def test_timestamps_wrap_from_2_32_minus_960_to_0() -> None:
    jb = scripted()
    packets = stream(6, seq=700, ts=TS_MOD - 3 * FRAME)
    assert [p.timestamp for p in packets][2:4] == [TS_MOD - FRAME, 0]
    reordered = {0: [packets[0]], 1: [packets[1]], 2: [packets[3], packets[2]], 3: [], 4: [packets[4], packets[5]]}
    assert names(run(jb, reordered, 6)) == ["P0", "P1", "P2", "P3", "P4", "P5"]
    assert jb.stats().resets == 0 and jb.stats().late == 0
    assert jb.next_timestamp == 3 * FRAME


def test_next_timestamp_is_the_slot_about_to_be_decided() -> None:
    jb = scripted()
    packets = stream(3, ts=90_000)
    run(jb, on_time(packets), 2)
    assert jb.next_timestamp == 90_000 + 2 * FRAME


# -- loss ----------------------------------------------------------------------------------------


def test_a_single_lost_packet_is_recovered_from_the_next_packets_fec() -> None:
    jb = scripted(min_delay_ms=40)  # two frames: the next packet is there in time
    packets = stream(10)
    schedule = on_time(packets)
    del schedule[4]
    decisions = run(jb, schedule, 11)
    assert names(decisions) == ["S", "P0", "P1", "P2", "P3", "R5", "P5", "P6", "P7", "P8", "P9"]
    s = jb.stats()
    assert (s.recovered, s.concealed, s.played) == (1, 0, 9)
    assert s.loss_fraction > 0


def test_a_lost_packet_with_nothing_after_it_yet_is_concealed_in_its_place() -> None:
    jb = scripted()
    packets = stream(8)
    schedule = on_time(packets)
    del schedule[4]
    # At one frame of delay packet 5 is not there when slot 4 is due: conceal; the concealment
    # then stands for slot 4, and packet 5 plays in its own slot: no delay is added.
    assert names(run(jb, schedule, 8)) == ["P0", "P1", "P2", "P3", "C", "P5", "P6", "P7"]
    assert jb.stats().delay_ms == 20


def test_a_burst_of_loss_is_concealed_and_its_last_slot_recovered() -> None:
    jb = scripted(min_delay_ms=60)
    packets = stream(12)
    schedule = on_time(packets)
    for lost in (4, 5, 6):
        del schedule[lost]
    decisions = run(jb, schedule, 14)
    assert names(decisions) == ["S", "S", "P0", "P1", "P2", "P3", "C", "C", "R7", "P7", "P8", "P9", "P10", "P11"]
    assert (jb.stats().concealed, jb.stats().recovered) == (2, 1)


def test_fec_needs_the_next_packet_in_time_so_a_lossy_path_holds_two_frames() -> None:
    # Packets that do not say whether they carry FEC: the buffer holds two frames once it sees
    # loss, and gets there in a pause (a second of speech, then a few non-voice packets).
    jb = scripted()
    packets = [Packet(p.seq, p.timestamp, p.payload, i % 50 < 45, p.samples) for i, p in enumerate(stream(400))]
    rng = random.Random(5)
    schedule = {i: [p] for i, p in enumerate(packets) if i < 20 or rng.random() > 0.05}
    decisions = run(jb, schedule, 402)
    s = jb.stats()
    assert s.target_ms == 40
    assert 0.02 < s.loss_fraction < 0.12
    # Once the loss is known, single losses are recovered rather than concealed.
    later = names(decisions[200:])
    assert sum(n.startswith("R") for n in later) > 2 * sum(n == "C" for n in later)


def fec_stream(count: int, *, fec: bool) -> list[Packet]:
    return [Packet(p.seq, p.timestamp, p.payload, p.voice, p.samples, fec) for p in stream(count)]


def test_a_sender_that_sends_fec_is_given_two_frames_from_its_first_packet() -> None:
    # libopus sends FEC only when told to expect loss: a sender that sends it needs the next
    # packet in time from the start, before the buffer has seen a loss of its own.
    jb = JitterBuffer()
    packets = fec_stream(30, fec=True)
    schedule = {i: [p] for i, p in enumerate(packets) if i != 10}
    decisions = run(jb, schedule, 31)  # up to the last packet's slot
    assert names(decisions)[:13] == ["S", "P0", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "R11", "P11"]
    assert (jb.stats().target_ms, jb.stats().concealed, jb.stats().recovered) == (40, 0, 1)


def test_a_sender_without_fec_keeps_one_frame_on_a_lossy_path() -> None:
    # Without FEC a second frame buys nothing: losses are concealed one frame behind.
    jb = scripted()
    packets = fec_stream(300, fec=False)
    lost = set(range(20, 300, 15))
    decisions = run(jb, {i: [p] for i, p in enumerate(packets) if i not in lost}, 300)
    s = jb.stats()
    assert s.loss_fraction > 0.03 and s.target_ms == 20
    assert (s.concealed, s.recovered, s.late) == (len(lost), 0, 0)
    assert "S" not in names(decisions)[1:300]


def test_the_first_spurt_starts_two_frames_behind_and_a_clean_path_gives_one_back_in_a_pause() -> None:
    # Nothing is known of the path at the start: a frame more, given back where nobody speaks.
    jb = JitterBuffer()
    packets = [Packet(p.seq, p.timestamp, p.payload, not 20 <= i < 25, p.samples) for i, p in enumerate(stream(60))]
    delays_held = []
    decisions = []
    for t in range(60):
        jb.push(packets[t], t * 20 - 5)
        decisions.append(jb.pop(t * 20))
        delays_held.append(jb.stats().delay_ms)
    assert names(decisions)[:3] == ["S", "P0", "P1"]
    assert delays_held[5] == 40 and delays_held[-1] == 20
    s = jb.stats()
    assert s.dropped_for_delay == 1 and s.target_ms == 20
    # A frame of the pause, once it is one (three non-voice frames), not speech nor a word's gap.
    assert [p for p in packets[:57] if p not in played(decisions)] == [packets[22]]


def test_a_pause_grows_the_delay_when_the_target_rises_never_speech() -> None:
    # A sender starts sending FEC mid-stream: the buffer wants two frames, and adds the second
    # as a slot of silence inside the next pause (once three non-voice frames show it is one).
    jb = scripted()
    packets = [
        Packet(p.seq, p.timestamp, p.payload, not 40 <= i < 45, p.samples, i >= 30) for i, p in enumerate(stream(80))
    ]
    decisions = run(jb, on_time(packets), 80)
    got = names(decisions)
    assert got.index("S") == 43 and got[42] == "P42" and got[44] == "P43"
    assert jb.stats().stretched == 1 and jb.stats().delay_ms == 40
    assert played(decisions) == packets[: len(played(decisions))]  # nothing skipped, nothing cut


def test_a_caller_that_heard_a_pause_may_stretch_it() -> None:
    # Packets that do not say whether they are speech: the caller decodes them and asks.
    jb = scripted()
    packets = [Packet(p.seq, p.timestamp, p.payload, None, p.samples, i >= 10) for i, p in enumerate(stream(40))]
    decisions = []
    asked_at = None
    for t in range(40):
        jb.push(packets[t], t * 20 - 5)
        decisions.append(jb.pop(t * 20))
        if t == 20:
            assert jb.stretch_pause()
            asked_at = t
    got = names(decisions)
    assert asked_at is not None and got[asked_at] == "P20" and got[asked_at + 1] == "S" and got[asked_at + 2] == "P21"
    assert not jb.stretch_pause()  # the target is held now: nothing more to add
    assert jb.stats().stretched == 1


def test_an_outage_is_concealed_up_to_the_limit_then_fades_to_silence() -> None:
    jb = scripted(conceal_limit_ms=100)
    packets = stream(60)
    schedule = {i: [p] for i, p in enumerate(packets) if not 10 <= i < 40}
    out = names(run(jb, schedule, 60))
    assert out[:10] == [f"P{i}" for i in range(10)]
    assert out[10:15] == ["C"] * 5
    assert out[15:40] == ["S"] * 25
    # So much loss makes a lossy path: the buffer holds two frames from now on, for FEC.
    assert jb.stats().loss_fraction > 0.1 and jb.stats().target_ms == 40
    assert out[40:] == ["S"] + [f"P{i}" for i in range(40, 59)]


# -- reordering, duplicates, late packets ------------------------------------------------------


def test_reordered_packets_play_in_timestamp_order() -> None:
    jb = scripted(min_delay_ms=60)
    packets = stream(10)
    schedule = {0: [packets[1], packets[0]], 1: [], 2: [packets[2]], 3: [packets[4], packets[3]], 4: []}
    schedule |= {i: [packets[i]] for i in range(5, 10)}
    assert played(run(jb, schedule, 13)) == packets
    assert jb.stats().late == 0


def test_duplicates_are_ignored_and_counted() -> None:
    jb = scripted()
    packets = stream(6)
    schedule = on_time(packets)
    schedule[2] = [packets[2], packets[2], Packet(2, 2 * FRAME, b"2")]  # the same packet, twice more
    schedule[5] = [packets[5], packets[1]]  # a copy of one played long ago
    decisions = run(jb, schedule, 6)
    assert played(decisions) == packets
    s = jb.stats()
    assert s.duplicates == 3 and s.late == 0 and conserved(jb)


def test_a_late_packet_is_waited_for_and_played_when_nothing_came_after_it() -> None:
    jb = scripted()
    packets = stream(9)
    schedule = on_time(packets)
    schedule[4] = []
    schedule[5] = [packets[4], packets[5]]  # 25 ms late
    # The underrun conceals one frame without moving on: nothing is lost, the delay grows a frame.
    assert names(run(jb, schedule, 9)) == ["P0", "P1", "P2", "P3", "C", "P4", "P5", "P6", "P7"]
    assert jb.stats().late == 0
    assert jb.stats().delay_ms == 40


def test_a_packet_arriving_after_its_slot_was_concealed_is_dropped_not_played_twice() -> None:
    jb = scripted()
    packets = stream(8)
    schedule = on_time(packets)
    schedule[4] = []
    schedule[6] = [packets[4], packets[6]]
    assert names(run(jb, schedule, 8)) == ["P0", "P1", "P2", "P3", "C", "P5", "P6", "P7"]
    assert jb.stats().late == 1 and conserved(jb)


def test_a_packet_arriving_after_its_slot_was_recovered_is_dropped_not_played_twice() -> None:
    jb = scripted(min_delay_ms=40)
    packets = stream(9)
    schedule = on_time(packets)
    schedule[4] = []
    schedule[7] = [packets[4], packets[7]]
    out = names(run(jb, schedule, 10))
    assert out == ["S", "P0", "P1", "P2", "P3", "R5", "P5", "P6", "P7", "P8"]
    assert jb.stats().late == 1 and conserved(jb)


# -- DTX -----------------------------------------------------------------------------------------


def _talk_pause_talk(pause_frames: int, voice_before: bool | None) -> tuple[list[Packet], dict[int, list[Packet]]]:
    before = stream(10, seq=500, ts=10_000, voice=voice_before)
    # The sender stops during silence: the next packet is the next sequence number, its
    # timestamp `pause_frames` further on.
    after = stream(10, seq=510, ts=10_000 + (10 + pause_frames) * FRAME, first=10)
    schedule = on_time(before) | on_time(after, start=10 + pause_frames)
    return before + after, schedule


def test_a_dtx_pause_is_silence_and_no_loss() -> None:
    jb = scripted()
    packets, schedule = _talk_pause_talk(pause_frames=40, voice_before=False)
    decisions = run(jb, schedule, 60)
    assert names(decisions) == [f"P{i}" for i in range(10)] + ["S"] * 40 + [f"P{i}" for i in range(10, 20)]
    assert played(decisions) == packets
    s = jb.stats()
    assert (s.concealed, s.late, s.silent) == (0, 0, 40)
    assert s.loss_fraction == 0.0


def test_a_dtx_pause_after_unknown_voice_conceals_at_most_the_limit_and_is_no_loss() -> None:
    jb = scripted(conceal_limit_ms=100)
    packets, schedule = _talk_pause_talk(pause_frames=40, voice_before=None)
    decisions = run(jb, schedule, 60)
    out = names(decisions)
    assert out[10:15] == ["C"] * 5 and out[15:50] == ["S"] * 35
    assert played(decisions) == packets
    assert jb.stats().loss_fraction == 0.0


def test_a_short_dtx_pause_is_not_concealed_when_the_next_packet_shows_it() -> None:
    jb = scripted(min_delay_ms=60)
    packets, schedule = _talk_pause_talk(pause_frames=1, voice_before=True)
    # Three frames of delay: the first packet after the pause is buffered before the pause is
    # reached, so the pause is known to be DTX (no sequence gap): silence, never concealment. The
    # next talk spurt starts once three frames of it are buffered.
    decisions = run(jb, schedule, 23)
    assert names(decisions) == ["S", "S"] + [f"P{i}" for i in range(10)] + ["S"] + [f"P{i}" for i in range(10, 20)]
    assert played(decisions) == packets
    assert (jb.stats().concealed, jb.stats().loss_fraction) == (0, 0.0)


def test_dtx_pauses_absorb_a_change_of_delay() -> None:
    # After a 3 s pause the packets come 60 ms later (a new route): the pause is stretched by
    # three frames, nothing is concealed, and the new delay is no jitter.
    jb = scripted()
    before = stream(10, voice=False)
    after = stream(10, seq=10, ts=160 * FRAME, first=10)
    schedule = on_time(before) | on_time(after, start=163)
    out = names(run(jb, schedule, 173))
    assert out == [f"P{i}" for i in range(10)] + ["S"] * 153 + [f"P{i}" for i in range(10, 20)]
    assert jb.stats().target_ms == 20


# -- multi-frame packets -------------------------------------------------------------------------


def test_a_40_ms_packet_plays_then_continues_for_its_second_slot() -> None:
    jb = scripted()
    packets = stream(5, slots=2)
    out = names(run(jb, on_time(packets, slots=2), 10))
    assert out == ["P0", "-", "P1", "-", "P2", "-", "P3", "-", "P4", "-"]
    assert jb.stats().concealed == 0


def test_60_ms_and_20_ms_packets_mix_on_one_timeline() -> None:
    jb = scripted()
    long = Packet(1, 0, b"0", True, 3 * FRAME)
    shorts = [Packet(2 + i, (3 + i) * FRAME, str(1 + i).encode(), True) for i in range(3)]
    schedule = {0: [long], 3: [shorts[0]], 4: [shorts[1]], 5: [shorts[2]]}
    assert names(run(jb, schedule, 6)) == ["P0", "-", "-", "P1", "P2", "P3"]


def test_the_slot_before_a_40_ms_packet_is_recovered_from_it() -> None:
    jb = scripted(min_delay_ms=60)
    first = stream(4)  # 20 ms packets, slots 0-3; packet 4 (slot 4) is lost
    long = [Packet(5 + i, (5 + 2 * i) * FRAME, str(5 + i).encode(), True, 2 * FRAME) for i in range(3)]
    schedule = on_time(first) | {5: [long[0]], 7: [long[1]], 9: [long[2]]}
    out = names(run(jb, schedule, 13))
    assert out == ["S", "S", "P0", "P1", "P2", "P3", "R5", "P5", "-", "P6", "-", "P7", "-"]


def test_packets_of_10_ms_are_not_supported_and_show_up_as_duplicates() -> None:
    jb = scripted()
    for i in range(8):
        jb.push(Packet(i, i * 480, b"x", True, 480), 0.0)
    assert (jb.stats().duplicates, jb.stats().buffered) == (3, 5)


# -- delay: the hard cap, shrinking in silence, drift --------------------------------------------


def test_a_burst_beyond_the_max_delay_drops_the_oldest_and_counts_them() -> None:
    jb = scripted(max_delay_ms=200)
    packets = stream(25)
    schedule = on_time(packets[:5]) | {25: packets[5:]}  # a 400 ms stall, then everything at once
    out = names(run(jb, schedule, 36))
    assert out[5:10] == ["C"] * 5 and out[10:25] == ["S"] * 15
    assert out[25:35] == [f"P{i}" for i in range(15, 25)]
    s = jb.stats()
    assert s.dropped_overflow == 10 and s.dropped_for_delay == 0
    assert conserved(jb)


def test_the_delay_never_exceeds_the_max_even_between_ticks() -> None:
    jb = scripted(max_delay_ms=100)
    for i, packet in enumerate(stream(30)):
        jb.push(packet, 0.0)
        assert jb.buffered_ms() <= 100
        assert jb.stats().buffered == min(i + 1, 5)


def _backlog(voice: list[bool | None]) -> tuple[list[Packet], dict[int, list[Packet]]]:
    """Eight packets at once (a backlog of 160 ms), then one a frame: the delay is too long."""
    packets = [Packet(i, i * FRAME, str(i).encode(), v) for i, v in enumerate(voice)]
    schedule = {0: packets[:8]} | {t: [packets[7 + t]] for t in range(1, len(packets) - 7)}
    return packets, schedule


def test_speech_is_never_cut_to_shrink_the_delay() -> None:
    jb = scripted()
    packets, schedule = _backlog([True] * 100)
    decisions = run(jb, schedule, 90)
    assert jb.stats().delay_ms == 160  # stays until there is silence to drop
    decisions += run(jb, schedule, 10, first=90)
    assert played(decisions) == packets
    assert jb.stats().dropped_for_delay == 0


def test_the_delay_shrinks_back_by_dropping_non_voice_frames_only() -> None:
    jb = scripted()
    voice = [True] * 30 + [False] * 20 + [True] * 50
    packets, schedule = _backlog(list(voice))
    decisions = run(jb, schedule, 30)
    assert jb.stats().delay_ms == 160
    decisions += run(jb, schedule, 50, first=30)
    assert jb.stats().delay_ms == 20
    decisions += run(jb, schedule, 20, first=80)
    dropped = [p for p in packets if p not in played(decisions)]
    assert len(dropped) == 7 == jb.stats().dropped_for_delay
    assert all(p.voice is False for p in dropped)
    assert played(decisions) == sorted(played(decisions), key=lambda p: p.seq)


def test_a_fast_sender_clock_is_trimmed_in_silence() -> None:
    packets, arrivals = _speech(seconds=60, drift=0.005, dtx=False)
    jb = scripted()
    ref = Referee(jb)
    decisions = simulate(jb, arrivals, referee=ref)
    s = jb.stats()
    assert max(delays(ref, 2_000, 59_000)) <= 60
    heard = set(played(decisions))
    never = [p for p in packets if p not in heard]
    assert s.dropped_for_delay >= 10  # 300 ms of drift, a frame at a time
    assert never and all(p.voice is False for p in never)
    assert s.dropped_overflow == 0


def test_a_slow_sender_clock_underruns_into_concealment_never_a_stall() -> None:
    packets, arrivals = _speech(seconds=60, drift=-0.005, dtx=False, talk=(10**6, 10**6))  # all speech
    jb = scripted()
    ref = Referee(jb)
    decisions = simulate(jb, arrivals, referee=ref)
    s = jb.stats()
    assert played(decisions) == packets  # every word, in order, none late
    assert 5 <= s.concealed <= 20  # 300 ms of drift, about a frame every 4 s
    assert s.late == 0
    assert max(delays(ref, 0, 60_000)) <= 40


# -- the sender restarts -------------------------------------------------------------------------


def test_a_sender_restart_resets_cleanly() -> None:
    jb = scripted()
    old = stream(10, seq=100, ts=1_000_000)
    new = stream(10, seq=40_000, ts=7, first=10)
    schedule = on_time(old) | on_time(new, start=10)
    schedule[12].append(Packet(105, 1_000_000 + 5 * FRAME, b"old"))  # a straggler of the old stream
    decisions = run(jb, schedule, 20)
    assert played(decisions) == old + new
    s = jb.stats()
    assert s.resets == 1 and s.late == 1 and conserved(jb)


def test_timestamps_running_backwards_are_a_restart() -> None:
    jb = scripted()
    old = stream(10, seq=100, ts=5_000_000)
    new = stream(10, seq=110, ts=3_000, first=10)  # sequence continues, time jumps back
    decisions = run(jb, on_time(old) | on_time(new, start=10), 20)
    assert played(decisions) == old + new
    assert jb.stats().resets == 1


def test_a_restart_mid_buffer_flushes_what_the_old_stream_left() -> None:
    jb = scripted(min_delay_ms=60)
    old = stream(6, seq=9)
    new = stream(6, seq=30_000, ts=123_456, first=6)
    schedule = on_time(old[:4]) | {4: [old[4], old[5], new[0]]} | on_time(new[1:], start=5)
    decisions = run(jb, schedule, 14)
    assert names(decisions) == ["S", "S", "P0", "P1", "S", "S", "P6", "P7", "P8", "P9", "P10", "P11", "C", "C"]
    s = jb.stats()
    assert (s.flushed, s.resets) == (4, 1) and conserved(jb)


def test_a_restart_that_looks_like_old_packets_starts_again_after_a_second_of_them() -> None:
    jb = scripted()
    run(jb, on_time(stream(5, seq=1000, ts=10_000_000)), 5)
    # The sender restarted a few hundred sequence numbers and some seconds of timestamps back:
    # each packet alone looks like a very late one of the old stream.
    behind = stream(80, seq=600, ts=1_000_000, first=5)
    decisions = []
    for i, packet in enumerate(behind):
        jb.push(packet, 100.0 + 20 * i)
        decisions.append(jb.pop(100.0 + 20 * i))
    s = jb.stats()
    assert (s.resets, s.late) == (1, 50)
    assert played(decisions) == behind[50:]


# -- statistics ----------------------------------------------------------------------------------


def test_the_loss_estimate_follows_the_path() -> None:
    jb = scripted()
    rng = random.Random(11)
    packets = stream(3000)
    for i, packet in enumerate(packets):
        if rng.random() > 0.1:
            jb.push(packet, 20.0 * i)
        jb.pop(20.0 * i + 10)
    assert 0.05 < jb.stats().loss_fraction < 0.15


def test_reordering_is_not_loss() -> None:
    jb = scripted(min_delay_ms=60)
    packets = stream(400)
    for i in range(0, 400, 2):
        jb.push(packets[i + 1], 40.0 * i)
        jb.push(packets[i], 40.0 * i)
    assert jb.stats().loss_fraction == 0.0 and jb.stats().duplicates == 0


# -- simulated paths -----------------------------------------------------------------------------


def _speech(
    *,
    seconds: float,
    drift: float = 0.0,
    dtx: bool = True,
    talk: tuple[int, int] = (40, 150),
    pause: tuple[int, int] = (15, 60),
    seq: int = 0,
    ts: int = 0,
    slots: int = 1,
    voice_known: bool = True,
    seed: int = 0,
) -> tuple[list[Packet], list[tuple[float, Packet]]]:
    """A speaker: talk spurts (voice) and pauses (three non-voice packets, then DTX or non-voice),
    sent on a clock running `drift` fast; returns the packets and their send times."""
    rng = random.Random(seed)
    sent: list[tuple[float, Packet]] = []
    frame = 0
    total = int(seconds * 50)
    seq_now = seq
    while frame < total:
        for _ in range(rng.randint(*talk) // slots):
            sent.append((frame, Packet(seq_now % SEQ_MOD, (ts + frame * FRAME) % TS_MOD, b"v", True, slots * FRAME)))
            seq_now += 1
            frame += slots
            if frame >= total:
                break
        pause_frames = rng.randint(*pause)
        for k in range(pause_frames // slots):
            if dtx and k >= 3 and k % 20:
                frame += slots  # nothing sent; a DTX update every 400 ms
                continue
            voice = False if voice_known else None
            sent.append((frame, Packet(seq_now % SEQ_MOD, (ts + frame * FRAME) % TS_MOD, b"s", voice, slots * FRAME)))
            seq_now += 1
            frame += slots
    # The sender's clock runs (1 + drift) fast: its 20 ms take less real time.
    timed = [(f * 20.0 / (1.0 + drift), p) for f, p in sent]
    return [p for _, p in timed], [(t + 50.0, p) for t, p in timed]


@dataclass
class Path:
    """What the network does to each packet."""

    jitter_ms: float = 0.0
    loss: float = 0.0
    burst: float = 0.0  # chance that a loss burst of 2-8 packets starts
    duplicate: float = 0.0
    spike: float = 0.0  # chance that a packet is held 100-300 ms (late, reordered)
    jitter_until_ms: float = float("inf")

    def carry(self, arrivals: list[tuple[float, Packet]], seed: int) -> list[tuple[float, Packet]]:
        rng = random.Random(seed)
        out: list[tuple[float, Packet]] = []
        burst_left = 0
        for sent_ms, packet in arrivals:
            if burst_left or rng.random() < self.loss:
                burst_left = max(0, burst_left - 1)
                continue
            if rng.random() < self.burst:
                burst_left = rng.randint(1, 7)
                continue
            delay = rng.uniform(0.0, self.jitter_ms) if sent_ms < self.jitter_until_ms else 0.0
            if rng.random() < self.spike:
                delay += rng.uniform(100.0, 300.0)
            out.append((sent_ms + delay, packet))
            if rng.random() < self.duplicate:
                out.append((sent_ms + delay + rng.uniform(0.0, 40.0), packet))
        out.sort(key=lambda a: a[0])
        return out


class Referee:
    """Drives a buffer and checks the contract of every decision as it is made."""

    def __init__(self, jb: JitterBuffer, max_delay_ms: int = 200) -> None:
        self.jb = jb
        self.max_delay_ms = max_delay_ms
        self.limit = jb.conceal_limit_frames
        self.resets = 0
        self.decisions: list[Decision] = []
        self.play_delays: list[tuple[float, int]] = []  # (when, delay_ms) of every Play
        self._new_stream()

    def _new_stream(self) -> None:
        self.started = False
        self.last: Packet | None = None
        self.played: set[tuple[int, int]] = set()
        self.run = 0  # Conceal decisions in a row
        self.pausing = False  # in a pause that only a new talk spurt ends
        self.continues = 0
        self.recovered: Packet | None = None
        self.overflow_at_recover = 0

    def push(self, packet: Packet, at_ms: float) -> None:
        self.jb.push(packet, at_ms)
        assert self.jb.buffered_ms() <= self.max_delay_ms
        resets = self.jb.stats().resets
        if resets != self.resets:
            self.resets = resets
            self._new_stream()

    def pop(self, now_ms: float) -> Decision:
        head = self.jb.peek()
        slot_ts = self.jb.next_timestamp
        before = self.jb.stats()
        decision = self.jb.pop(now_ms)
        after = self.jb.stats()
        self.decisions.append(decision)
        assert after.delay_ms <= self.max_delay_ms and self.jb.buffered_ms() <= self.max_delay_ms
        last = self.last
        follows = head is not None and last is not None and head.seq == (last.seq + 1) % SEQ_MOD
        if isinstance(decision, Continue):
            assert self.continues > 0
            self.continues -= 1
            return decision
        assert self.continues == 0, "a multi-frame packet's slots all continue"
        match decision:
            case Play(packet=packet):
                key = (packet.seq, packet.timestamp)
                assert key not in self.played, "played twice"
                if last is not None:
                    advance = (packet.timestamp - last.timestamp) % TS_MOD
                    assert 0 < advance < TS_MOD // 2, "played out of timestamp order"
                skipped = after.dropped_for_delay - before.dropped_for_delay
                assert packet is head or (skipped == 1 and head is not None and head.voice is False)
                if self.recovered is not None and after.dropped_overflow == self.overflow_at_recover:
                    assert packet is self.recovered, "a recovered-from packet plays in its own slot"
                self.played.add(key)
                self.play_delays.append((now_ms, after.delay_ms))
                self.last, self.started = packet, True
                self.continues = packet.samples // FRAME - 1
                self.run, self.recovered, self.pausing = 0, None, False
            case Recover(packet=packet):
                assert packet is head and last is not None and not follows, "FEC only for a real gap"
                self.run, self.pausing = 0, False
                self.recovered, self.overflow_at_recover = packet, after.dropped_overflow
            case Conceal():
                assert head is None or head.timestamp != slot_ts, "concealed a packet that was there"
                self.run += 1
                self.pausing = False
                assert self.run <= self.limit
            case Silence():
                # Allowed before the start, in a pause (DTX: the next packet follows the last one
                # played; or after a non-voice packet), and once concealment has faded out. A pause
                # lasts until a talk spurt starts, even if the cap drops that spurt's first packet.
                beyond = self.run >= self.limit
                pause = follows or (last is not None and last.voice is False)
                if head is not None:
                    assert not self.started or self.pausing or beyond or pause, "silence while a packet was buffered"
                elif self.started and last is not None and last.voice is not False:
                    assert beyond, "an interrupted talk spurt is concealed, not silenced"
                self.pausing = True
        return decision


def simulate(
    jb: JitterBuffer, arrivals: list[tuple[float, Packet]], *, phase: float = 0.0, referee: Referee | None = None
) -> list[Decision]:
    """Ticks every 20 ms from `phase` until a second after the last arrival; pushes come first."""
    ref = referee if referee is not None else Referee(jb)
    end = arrivals[-1][0] + 1000.0 if arrivals else 0.0
    i = 0
    tick = 0
    while (now := phase + 20.0 * tick) <= end:
        while i < len(arrivals) and arrivals[i][0] <= now:
            ref.push(arrivals[i][1], arrivals[i][0])
            i += 1
        ref.pop(now)
        tick += 1
    assert conserved(jb)
    return ref.decisions


def delays(ref: Referee, from_ms: float, to_ms: float) -> list[int]:
    """The delay of every packet played between two times (the audio buffered ahead of it)."""
    found = [delay for when, delay in ref.play_delays if from_ms <= when <= to_ms]
    assert found
    return found


# -- properties ----------------------------------------------------------------------------------

starts = st.tuples(
    st.one_of(st.integers(65_400, 65_535), st.integers(0, 65_535)),
    st.one_of(st.integers(TS_MOD - 200 * FRAME, TS_MOD - 1), st.integers(0, TS_MOD - 1)),
)


@settings(max_examples=150, deadline=None)
@given(
    start=starts,
    slots=st.sampled_from([1, 1, 1, 2, 3]),
    dtx=st.booleans(),
    voice_known=st.booleans(),
    drift=st.floats(-0.005, 0.005),
    path=st.builds(
        Path,
        jitter_ms=st.floats(0, 120),
        loss=st.floats(0, 0.2),
        burst=st.floats(0, 0.05),
        duplicate=st.floats(0, 0.1),
        spike=st.floats(0, 0.05),
    ),
    phase=st.floats(0, 19.99),
    seed=st.integers(0, 2**16),
)
def test_any_path_keeps_the_contract(
    start: tuple[int, int],
    slots: int,
    dtx: bool,
    voice_known: bool,
    drift: float,
    path: Path,
    phase: float,
    seed: int,
) -> None:
    _, sent = _speech(
        seconds=10, drift=drift, dtx=dtx, seq=start[0], ts=start[1], slots=slots, voice_known=voice_known, seed=seed
    )
    jb = JitterBuffer()
    decisions = simulate(jb, path.carry(sent, seed), phase=phase)
    s = jb.stats()
    assert s.resets == 0  # wrap-around, loss and reordering are no restart
    assert len(decisions) == s.played + s.recovered + s.concealed + s.silent + sum(
        isinstance(d, Continue) for d in decisions
    )
    assert 0.0 <= s.loss_fraction <= 1.0


@settings(max_examples=30, deadline=None)
@given(start=starts, dtx=st.booleans(), phase=st.floats(0, 19.99), seed=st.integers(0, 2**16))
def test_a_clean_path_plays_everything_one_frame_behind(
    start: tuple[int, int], dtx: bool, phase: float, seed: int
) -> None:
    packets, sent = _speech(seconds=10, dtx=dtx, seq=start[0], ts=start[1], seed=seed)
    jb = JitterBuffer()
    ref = Referee(jb)
    decisions = simulate(jb, sent, phase=phase, referee=ref)
    heard = played(decisions)
    # Everything plays but, at most, one packet of the first pause: the start's second frame.
    missing = [p for p in packets if p not in heard]
    assert len(missing) <= 1 and all(p.voice is False for p in missing)
    s = jb.stats()
    assert (s.concealed, s.recovered, s.late, s.dropped_overflow) == (0, 0, 0, 0)
    assert s.dropped_for_delay <= 1
    assert s.loss_fraction == 0.0  # DTX pauses are no loss
    assert s.target_ms == 20
    after_first_pause_ms = next(t for t, p in sent if p.voice is False) + 1_000
    assert set(delays(ref, after_first_pause_ms, 20_000)) == {20}  # each packet plays at the first tick after it came


@settings(max_examples=20, deadline=None)
@given(jitter_ms=st.floats(40, 80), dtx=st.booleans(), seed=st.integers(0, 2**16))
def test_jitter_grows_the_target_and_the_delay_shrinks_back_in_silence_when_it_goes(
    jitter_ms: float, dtx: bool, seed: int
) -> None:
    packets, sent = _speech(seconds=50, dtx=dtx, seed=seed)
    arrivals = Path(jitter_ms=jitter_ms, jitter_until_ms=20_000).carry(sent, seed)
    jb = JitterBuffer()
    ref = Referee(jb)
    end = arrivals[-1][0] + 1000.0
    i = tick = 0
    targets: list[int] = []
    concealed_at: list[int] = []
    while (now := 20.0 * tick) <= end:
        while i < len(arrivals) and arrivals[i][0] <= now:
            ref.push(arrivals[i][1], arrivals[i][0])
            i += 1
        ref.pop(now)
        targets.append(jb.stats().target_ms)
        concealed_at.append(jb.stats().concealed)
        tick += 1
    # While the path jitters, the target covers it...
    assert max(targets[:1000]) >= 60
    # ...and once adapted (after 4 s), few slots are concealed: under 2 %.
    assert concealed_at[1000] - concealed_at[200] <= 16
    # When the jitter goes, the target and the delay come back to about one frame...
    s = jb.stats()
    assert targets[-1] == 20
    assert max(delays(ref, 45_000, 50_000)) <= 40
    # ...by dropping non-voice frames and shortening pauses, never speech.
    heard = set(played(ref.decisions))
    never = [p for p in packets if p not in heard]
    assert sum(p.voice is True for p in never) <= s.late
    assert s.dropped_overflow == 0


@settings(max_examples=20, deadline=None)
@given(
    drift=st.one_of(st.floats(0.001, 0.005), st.floats(-0.005, -0.001)),
    dtx=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_clock_drift_is_absorbed_without_cutting_speech(drift: float, dtx: bool, seed: int) -> None:
    packets, sent = _speech(seconds=40, drift=drift, dtx=dtx, seed=seed)
    jb = JitterBuffer()
    ref = Referee(jb)
    decisions = simulate(jb, sent, referee=ref)
    s = jb.stats()
    heard = set(played(decisions))
    never = [p for p in packets if p not in heard]
    assert all(p.voice is False for p in never)  # only silence was dropped
    assert s.late == 0 and s.dropped_overflow == 0
    assert max(delays(ref, 0, 40_000)) <= 60
    if drift < 0:  # a slow sender: the buffer runs dry now and then and conceals, never stalls
        assert len(never) <= 1  # but the start's second frame, given back in the first pause
        assert s.concealed <= 40_000 * -drift / 20 + 3
