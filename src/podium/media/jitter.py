"""A speaker's jitter buffer: RTP Opus packets in as they arrive, one decision per 20 ms slot out.

Sans-IO, after libwebrtc's NetEq (simplified): the caller `push()`es each packet with its arrival
time and calls `pop(now_ms)` once per 20 ms tick; times are the caller's milliseconds, no clock is
read. The sender's timeline is cut into *slots* of 960 samples (20 ms at 48 kHz) from the first
packet's timestamp; the *playout point* is the slot the next `pop()` decides.

What `pop()` returns, and what the caller does with it (each stands for exactly one slot):
- `Play(packet)`: decode `packet.payload`. A packet of N x 20 ms (`packet.samples`, read from the
  Opus TOC with `opus_packet_samples`) covers N slots: its Play is followed by N - 1 `Continue()`.
- `Continue()`: this slot is covered by the samples the last Play already gave; output nothing new.
- `Recover(packet)`: this slot's packet is missing and `packet`, the next one, is buffered: decode
  `packet.payload` with in-band FEC (`decode_fec=1`, 960 samples) for this slot. The same packet
  is returned as `Play` for its own slot right after (unless the hard cap below drops it).
- `Conceal()`: missing, nothing to recover from: run the decoder's loss concealment for 960 samples.
- `Silence()`: nothing to play: before the first packet, while the sender pauses (DTX: the next
  packet follows the last one played in sequence, its timestamp further on; also a gap after a
  non-voice packet, which DTX starts with), once an outage has been concealed for
  `conceal_limit_ms` (concealment fades to silence), or a slot added to a pause to grow the delay
  (`stretched`: before a known non-voice packet, or after a pause the caller heard and told of
  with `stretch_pause()`; the caller may carry that pause on with its decoder's concealment).

Invariants:
- `pop()` returns exactly one decision per call whatever was pushed; nothing ever stalls;
- packets play in timestamp order, each at most once; a packet arriving for a slot already played,
  recovered, concealed or skipped is dropped and counted as late, never played twice;
- buffered audio (playout point to the end of the newest packet) never exceeds `max_delay_ms`: a
  burst beyond it drops the oldest packets, speech or not (`dropped_overflow`);
- otherwise the delay shrinks only where there is no speech: by skipping `voice is False` packets
  (`dropped_for_delay`; or the caller skips a pause it decoded, `skip_pause()`) and by shortening
  DTX pauses; it grows in pauses (a talk spurt starts once the target delay is buffered; a slot
  of silence is added to a pause in a continuous stream) and when a late packet is waited for (an
  underrun conceals without moving the playout point, so a late packet still plays and a slow
  sender clock never stalls). Shrinking and growing in pauses follow the level smoothed over about
  16 frames, half a frame off the target, so a jittery path's level does not flip them back and
  forth; the first talk spurt of a stream starts `start_delay_ms` behind (nothing is known of the
  path yet), and a clean path gives that back in its first pause;
- a sender restart (a jump of the sequence number beyond any reordering, time running backwards, or
  a second of packets all late) flushes what is buffered (`flushed`) and starts again as with a
  first packet, jitter and loss estimates included. Only the counters stay.

Target delay: each packet's relative delay (its transit time minus the smallest transit in the
last `history_ms`) goes into a histogram of 5 ms buckets with a forgetting factor; the target is
its `quantile` plus one frame (less 5 ms of measurement slack) rounded up to whole frames, clamped
to [min_delay_ms, max_delay_ms]. It is at least two frames, so that the next packet (and its FEC)
is there in time, while the sender sends FEC (`Packet.fec`; a libopus sender spends bits on it only
when it expects loss, so the buffer follows from its first packet on), or, for packets that do not
say, once the path loses `fec_loss_threshold` of its packets (until it loses less than half of
that). That floor is reached in pauses: an underrun in speech is credited against the measured
jitter alone, so a lost packet is concealed in its place rather than a frame inserted. Packets of
10 ms or less are not supported: two of them share a slot, and the second counts as a duplicate
(WebRTC senders use 20 ms).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass
from typing import Final

from podium.media.mixer import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE

_SEQ_MOD: Final = 1 << 16
_TS_MOD: Final = 1 << 32
_SAMPLES_PER_MS: Final = SAMPLE_RATE // 1000
# A sequence jump this large (20 s of packets) is no loss or reordering: the sender restarted.
RESTART_SEQ_JUMP: Final = 1000
# This many packets in a row all late: the stream moved on behind the playout point; start again.
RESTART_LATE_RUN: Final = 50
# Sequence numbers remembered for telling duplicates (of packets played or not) from late packets.
_SEEN_WINDOW: Final = 256
_SEEN_MASK: Final = (1 << _SEEN_WINDOW) - 1
_BUCKET_MS: Final = 5
# A relative delay this small is measurement noise, not a reason to hold one more frame.
_SLACK_MS: Final = 5
# A pause is this many non-voice frames in a row: only then is it stretched or shortened (a gap
# between two words, or the closure of a stop inside one, is shorter).
PAUSE_FRAMES: Final = 3
# How fast the smoothed level follows the level: about 16 frames (320 ms).
LEVEL_FILTER: Final = 1 / 16
# The FEC floor holds while the sender sent a packet with FEC among its last this many (10 s).
FEC_MEMORY_PACKETS: Final = 500


@dataclass(frozen=True, slots=True)
class Packet:
    """One RTP packet of a speaker's Opus stream."""

    seq: int  # RTP sequence number, 16 bits
    timestamp: int  # RTP timestamp, 32 bits, 48 kHz
    payload: bytes  # Opus, opaque here
    voice: bool | None = None  # speech or not (RFC 6464 V flag, or a DTX-size heuristic); None: unknown
    samples: int = FRAME_SAMPLES  # duration at 48 kHz (`opus_packet_samples`); multiples of 960 are slots
    fec: bool | None = None  # carries in-band FEC for the frame before it (LBRR); None: unknown

    def __post_init__(self) -> None:
        if not 0 <= self.seq < _SEQ_MOD:
            raise ValueError(f"an RTP sequence number has 16 bits, not {self.seq}")
        if not 0 <= self.timestamp < _TS_MOD:
            raise ValueError(f"an RTP timestamp has 32 bits, not {self.timestamp}")
        if self.samples <= 0:
            raise ValueError(f"a packet holds some samples, not {self.samples}")


@dataclass(frozen=True, slots=True)
class Play:
    """Decode this packet; it covers `packet.samples // 960` slots."""

    packet: Packet

    @property
    def payload(self) -> bytes:
        return self.packet.payload


@dataclass(frozen=True, slots=True)
class Recover:
    """This slot is lost: decode 960 samples of the next packet's in-band FEC (it plays next)."""

    packet: Packet  # the packet *after* the missing one

    @property
    def payload(self) -> bytes:
        return self.packet.payload


@dataclass(frozen=True, slots=True)
class Continue:
    """This slot is already covered by the last Play of a multi-frame packet."""


@dataclass(frozen=True, slots=True)
class Conceal:
    """This slot is lost and nothing can recover it: 960 samples of loss concealment."""


@dataclass(frozen=True, slots=True)
class Silence:
    """Nothing to play: not started, a pause (DTX), or concealment has faded out."""


CONTINUE: Final = Continue()
CONCEAL: Final = Conceal()
SILENCE: Final = Silence()

Decision = Play | Recover | Continue | Conceal | Silence


@dataclass(frozen=True, slots=True)
class JitterStats:
    """Counters since the buffer was made (packets unless said), and its state now."""

    received: int  # pushes, duplicates included
    played: int
    recovered: int  # slots decoded from the next packet's FEC
    concealed: int  # slots given to loss concealment
    silent: int  # slots of Silence
    late: int  # arrived after their slot was decided
    duplicates: int
    dropped_for_delay: int  # non-voice packets skipped to shrink the delay
    stretched: int  # slots of silence added to pauses to grow the delay (counted in `silent` too)
    dropped_overflow: int  # oldest packets dropped at the max delay, speech or not
    flushed: int  # buffered when the sender restarted
    resets: int
    buffered: int  # packets now
    delay_ms: int  # buffered audio when the last slot was decided
    target_ms: int
    loss_fraction: float  # recent share of sequence numbers that never arrived (reordered ones do)


@dataclass(slots=True)
class _Entry:
    packet: Packet
    seq: int  # unwrapped
    slot: int
    slots: int
    arrival_ms: float
    play: Play  # made once at push: no allocation when the slot comes


def opus_packet_samples(payload: bytes) -> int:
    """Samples at 48 kHz in an Opus packet, from its TOC byte (RFC 6716, 3.1-3.2)."""
    if not payload:
        raise ValueError("an Opus packet has at least its TOC byte")
    config = payload[0] >> 3
    if config < 12:  # SILK: 10, 20, 40, 60 ms
        frame = (480, 960, 1920, 2880)[config % 4]
    elif config < 16:  # hybrid: 10, 20 ms
        frame = (480, 960)[config % 2]
    else:  # CELT: 2.5, 5, 10, 20 ms
        frame = (120, 240, 480, 960)[config % 4]
    code = payload[0] & 3
    if code == 0:
        count = 1
    elif code < 3:
        count = 2
    else:
        if len(payload) < 2:
            raise ValueError("an Opus code 3 packet has a frame count byte")
        count = payload[1] & 0x3F
        if count == 0:
            raise ValueError("an Opus code 3 packet holds at least one frame")
    return frame * count


def _signed(delta: int, modulus: int) -> int:
    """A difference of wrapping counters, as the shorter way round: -modulus/2 <= result < modulus/2."""
    delta %= modulus
    return delta - modulus if delta >= modulus // 2 else delta


class JitterBuffer:
    """One speaker's packets in, one decision per 20 ms tick out (see the module docstring)."""

    def __init__(
        self,
        *,
        min_delay_ms: int = FRAME_MS,
        start_delay_ms: int = 2 * FRAME_MS,
        max_delay_ms: int = 200,
        conceal_limit_ms: int = 100,
        quantile: float = 0.95,
        forget_factor: float = 0.995,
        history_ms: float = 2000.0,
        fec_loss_threshold: float | None = 0.01,
        loss_forget_factor: float = 0.995,
    ) -> None:
        if min_delay_ms < 0 or max_delay_ms < max(min_delay_ms, FRAME_MS):
            raise ValueError("max_delay_ms must be at least one frame and at least min_delay_ms")
        if not 0.0 < quantile < 1.0 or not 0.0 < forget_factor < 1.0 or not 0.0 < loss_forget_factor < 1.0:
            raise ValueError("quantile and forgetting factors lie strictly between 0 and 1")
        self.min_frames = max(1, math.ceil(min_delay_ms / FRAME_MS))
        self.max_frames = max(self.min_frames, max_delay_ms // FRAME_MS)
        self.start_frames = min(self.max_frames, max(self.min_frames, math.ceil(start_delay_ms / FRAME_MS)))
        self.conceal_limit_frames = max(0, conceal_limit_ms // FRAME_MS)
        self.quantile = quantile
        self.forget_factor = forget_factor
        self.history_ms = history_ms
        self.fec_loss_threshold = fec_loss_threshold
        self.loss_forget_factor = loss_forget_factor
        # The sender's timeline; None until the first packet.
        self._seq_high: int | None = None  # unwrapped, highest seen
        self._ts_high = 0  # unwrapped timestamp of that packet
        self._origin = 0  # unwrapped timestamp of slot 0
        self._previous_seq: int | None = None  # the stream before a restart, to spot its stragglers
        self._seen = 0  # bit i: sequence number seq_high - i arrived
        self._late_run = 0
        # Buffered packets by slot; the heap holds the same slots, smallest first.
        self._entries: dict[int, _Entry] = {}
        self._heap: list[int] = []
        self._newest_end = 0  # slot after the newest buffered packet's last
        # Playout. Not playing: before the start, in a pause or after an outage (Silence until ready).
        self._playing = False
        self._started = False  # a talk spurt of this stream has started
        self._pointer: int | None = None  # the slot the next pop() decides; only moves forward
        self._continue_left = 0
        self._held = 0  # underrun concealments in a row that did not move the pointer
        self._missing_run = 0  # slots in a row with no packet decoded (concealed or silent)
        self._last_seq: int | None = None
        self._last_voice: bool | None = None
        self._pause_run = 0  # non-voice packets played in a row
        self._last_end: int | None = None  # the slot after the last packet played
        self._last_recovered = False
        self._delay_frames = 0
        self._filtered = 0.0  # the level while playing, smoothed (frames)
        self._stretch_asked = False  # the caller heard a pause: stretch it by the next slot
        # The last pop() added a slot to a pause: the caller may carry the pause on (concealment).
        self.stretching = False
        self._stretch_run = 0  # slots in a row added to a pause
        # Jitter: a sliding minimum of transit times, a forgetting histogram of relative delays.
        self._transits: deque[tuple[float, float]] = deque()
        self._histogram = [0.0] * (max_delay_ms // _BUCKET_MS + 1)
        self._weight: float
        self._total: float
        self._target_frames: int  # what the buffer aims to hold, FEC floor included
        self._jitter_frames: int  # what the measured jitter alone asks for
        self._target_stale: bool
        self._fec_floor: bool  # the path loses enough for two frames (FEC in time); with hysteresis
        self._fec_seen: int | None  # unwrapped sequence number of the newest packet with FEC
        self._fec_unknown: bool  # the last packet did not say whether it carries FEC
        # Loss: sequence numbers expected and received.
        self._expected: float
        self._arrived: float
        self._forget_estimates()
        self._received = self._played = self._recovered = self._concealed = self._silent = 0
        self._late = self._duplicates = self._dropped_for_delay = self._dropped_overflow = 0
        self._stretched = self._flushed = self._resets = 0

    # -- input -------------------------------------------------------------------------------

    def push(self, packet: Packet, arrival_ms: float) -> None:
        self._received += 1
        if not self._follow(packet):
            self._count_late()  # a straggler of the stream before a restart
            return
        assert self._seq_high is not None
        seq_delta = _signed(packet.seq - self._seq_high, _SEQ_MOD)
        seq = self._seq_high + seq_delta  # unwrapped, as the timestamp
        ts = self._ts_high + _signed(packet.timestamp - self._ts_high, _TS_MOD)
        if not self._note_sequence(seq_delta, ts):
            self._duplicates += 1
            return
        self._target_stale = True
        if packet.fec and (self._fec_seen is None or seq > self._fec_seen):
            self._fec_seen = seq
        self._fec_unknown = packet.fec is None
        self._measure(ts, arrival_ms)
        slot = (ts - self._origin + FRAME_SAMPLES // 2) // FRAME_SAMPLES
        if self._pointer is not None and slot < self._pointer:
            self._count_late()
            return
        if slot in self._entries:
            self._duplicates += 1  # another packet for a slot already held (10 ms packets)
            return
        self._late_run = 0
        slots = max(1, -(-packet.samples // FRAME_SAMPLES))
        self._newest_end = max(self._newest_end, slot + slots) if self._heap else slot + slots
        self._entries[slot] = _Entry(packet, seq, slot, slots, arrival_ms, Play(packet))
        heapq.heappush(self._heap, slot)
        self._cap()

    def _follow(self, packet: Packet) -> bool:
        """Start or restart the stream if the packet says so; False for a packet of an old stream."""
        if self._seq_high is None:
            self._begin(packet)
            return True
        seq_delta = _signed(packet.seq - self._seq_high, _SEQ_MOD)
        ts_delta = _signed(packet.timestamp - self._ts_high, _TS_MOD)
        # Neither loss nor reordering moves the sequence this far, or moves it against time.
        jumped = abs(seq_delta) > RESTART_SEQ_JUMP or seq_delta > 0 > ts_delta or seq_delta < 0 < ts_delta
        if self._late_run >= RESTART_LATE_RUN:
            self._restart(packet)
        elif jumped:
            previous = self._previous_seq
            if previous is not None and abs(_signed(packet.seq - previous, _SEQ_MOD)) <= RESTART_SEQ_JUMP:
                return False
            self._restart(packet)
        return True

    def _note_sequence(self, seq_delta: int, ts: int) -> bool:
        """Account for a sequence number (loss estimate, newest packet); False for a duplicate."""
        if seq_delta > 0:
            self._seen = ((self._seen << seq_delta) | 1) & _SEEN_MASK if seq_delta < _SEEN_WINDOW else 1
            fade = self.loss_forget_factor**seq_delta
            self._expected = self._expected * fade + seq_delta
            self._arrived = self._arrived * fade + 1.0
            assert self._seq_high is not None
            self._seq_high += seq_delta
            self._ts_high = ts
            return True
        back = -seq_delta
        if back < _SEEN_WINDOW:
            if (self._seen >> back) & 1:
                return False
            self._seen |= 1 << back
        self._arrived += 1.0
        return True

    # -- output ------------------------------------------------------------------------------

    def pop(self, now_ms: float) -> Decision:
        """The decision for the next 20 ms slot; call once per tick."""
        self._delay_frames = self._level()
        self.stretching = False
        if self._playing:
            self._filtered += LEVEL_FILTER * (self._delay_frames - self._filtered)
        if self._continue_left:
            self._continue_left -= 1
            return CONTINUE
        if not self._playing:
            return self._pop_waiting(now_ms)
        return self._pop_playing(now_ms)

    def _pop_waiting(self, now_ms: float) -> Decision:
        # A talk spurt starts once the target delay is buffered, or once its first packet has
        # waited that long (a lone packet, a DTX update): pauses stretch or shrink to the target.
        if not self._heap:
            return self._silence()
        first = self._entries[self._heap[0]]
        # A stream's first talk spurt starts with `start_frames` at least: nothing is known of the
        # path yet, nor whether the sender sends FEC; a clean path gives it back in the first pause.
        target = self._target() if self._started else max(self._target(), self.start_frames)
        if self._newest_end - first.slot < target and now_ms - first.arrival_ms < (target - 1) * FRAME_MS:
            return self._silence()
        self._playing = self._started = True
        self._pointer = first.slot
        self._filtered = float(self._newest_end - first.slot)
        self._held = self._missing_run = 0
        return self._pop_playing(now_ms)

    def _pop_playing(self, now_ms: float) -> Decision:
        pointer = self._pointer
        assert pointer is not None  # set whenever playing
        entry = self._entries.get(pointer)
        stretch_asked, self._stretch_asked = self._stretch_asked, False
        if entry is not None:
            if self._may_stretch(entry, asked=stretch_asked):
                self.stretching = True
                self._stretch_run += 1
                self._stretched += 1
                self._filtered += 1.0
                return self._silence()
            self._stretch_run = 0
            return self._play(entry)
        self._stretch_run = 0
        if not self._heap:
            # Underrun: the packet is late or lost, no telling yet. Conceal without moving the
            # pointer, so that a late packet still plays (the delay grows by what was concealed).
            if self._last_voice is False or self._missing_run >= self.conceal_limit_frames:
                self._playing = False  # probably DTX, or too long an outage: wait for a new spurt
                self._held = 0
                return self._silence()
            self._held += 1
            self._missing_run += 1
            self._concealed += 1
            return CONCEAL
        following = self._entries[self._heap[0]]
        if self._last_seq is not None and following.seq == self._last_seq + 1:
            self._playing = False  # nothing missing in sequence: the sender paused (DTX)
            self._held = 0
            return self._pop_waiting(now_ms)
        # Lost: the slots up to the next packet are missing. What was concealed during the
        # underrun stands for the first of them, as far as the delay stays at the target; the
        # rest was inserted, the delay grows by it and the lost slot can still be recovered.
        credit = min(self._held, following.slot - pointer, max(0, self._newest_end - pointer - self._jitter_target()))
        self._held = 0
        if credit:
            pointer += credit
            self._advance(pointer)
        if pointer == following.slot:
            return self._play(following)
        self._advance(pointer + 1)
        if self._missing_run >= self.conceal_limit_frames:
            return self._silence()
        if pointer + 1 == following.slot:
            self._missing_run = 0
            self._recovered += 1
            self._last_recovered = True
            return Recover(following.packet)
        self._missing_run += 1
        self._concealed += 1
        return CONCEAL

    def _play(self, entry: _Entry) -> Play:
        if entry.packet.voice is False and self._pause_run >= PAUSE_FRAMES - 1 and not self._last_recovered:
            # More buffered than the target even without this non-voice packet: skip it, and
            # play the next one in its place.
            following = self._entries.get(entry.slot + entry.slots)
            if following is not None and self._newest_end - following.slot >= self._target() and self._wants_less():
                heapq.heappop(self._heap)
                del self._entries[entry.slot]
                self._dropped_for_delay += 1
                self._filtered -= 1.0
                entry = following
        heapq.heappop(self._heap)
        del self._entries[entry.slot]
        self._advance(entry.slot + entry.slots)
        self._continue_left = entry.slots - 1
        self._held = self._missing_run = 0
        self._last_recovered = False
        self._last_seq = entry.seq
        self._last_voice = entry.packet.voice
        self._pause_run = self._pause_run + 1 if entry.packet.voice is False else 0
        self._last_end = entry.slot + entry.slots
        self._played += 1
        return entry.play

    def _may_stretch(self, entry: _Entry, *, asked: bool) -> bool:
        # A pause grows by a slot of silence, before its next packet, while the buffer holds less
        # than its target: known pauses (voice False) here, others when the caller heard one. Only
        # in sequence (no loss to conceal first), and at most the target's worth in a row.
        return (
            (asked or (entry.packet.voice is False and self._pause_run >= PAUSE_FRAMES))
            and self._last_seq is not None
            and entry.seq == self._last_seq + 1
            and entry.slot == self._last_end  # a continuous stream: a DTX pause grows at its end instead
            and not self._last_recovered
            and self._delay_frames < self._target()
            and self._wants_more()
            and self._stretch_run < self._target()
        )

    def _wants_more(self) -> bool:
        # The level, smoothed (a jittery path moves it by frames from one packet to the next),
        # half a frame below the target; a slot added or skipped moves the smoothed level at once.
        return self._filtered < self._target() - 0.5

    def _wants_less(self) -> bool:
        return self._filtered >= self._target() + 0.5

    def skip_pause(self) -> bool:
        """The frame just played was a pause (the caller decoded it): True when the buffer holds
        more than its target even without it, and the caller plays the next slot in its place
        (calls `pop()` again in the same tick) to shrink the delay by a frame."""
        if self._continue_left or not self._heap or self._level() < self._target() or not self._wants_less():
            return False
        self._filtered -= 1.0
        return True

    def stretch_pause(self) -> bool:
        """The frame just played was a pause (the caller decoded it): if the buffer holds less than
        its target, the next slot is a slot of silence added to that pause, and the delay grows by
        a frame without touching speech. True when that will happen."""
        if not self._playing or self._continue_left or self._delay_frames >= self._target() or not self._wants_more():
            return False
        self._stretch_asked = True
        return True

    def _silence(self) -> Silence:
        self._silent += 1
        return SILENCE

    # -- state -------------------------------------------------------------------------------

    @property
    def next_timestamp(self) -> int | None:
        """RTP timestamp of the slot the next pop() decides; None while waiting for a talk spurt."""
        if not self._playing or self._pointer is None:
            return None
        return (self._origin + (self._pointer - self._continue_left) * FRAME_SAMPLES) % _TS_MOD

    def peek(self) -> Packet | None:
        """The earliest buffered packet."""
        return self._entries[self._heap[0]].packet if self._heap else None

    def stats(self) -> JitterStats:
        return JitterStats(
            received=self._received,
            played=self._played,
            recovered=self._recovered,
            concealed=self._concealed,
            silent=self._silent,
            late=self._late,
            duplicates=self._duplicates,
            dropped_for_delay=self._dropped_for_delay,
            stretched=self._stretched,
            dropped_overflow=self._dropped_overflow,
            flushed=self._flushed,
            resets=self._resets,
            buffered=len(self._entries),
            delay_ms=self._delay_frames * FRAME_MS,
            target_ms=self._target() * FRAME_MS,
            loss_fraction=self._loss(),
        )

    def buffered_ms(self) -> int:
        """Audio buffered right now, from the playout point to the end of the newest packet."""
        return self._level() * FRAME_MS

    # -- internals ---------------------------------------------------------------------------

    def _level(self) -> int:
        if not self._heap:
            return 0
        base = self._pointer if self._playing and self._pointer is not None else self._heap[0]
        return self._newest_end - base

    def _advance(self, slot: int) -> None:
        """Move the playout point to `slot`; what is buffered before it came too late."""
        self._pointer = slot
        while self._heap and self._heap[0] < slot:
            del self._entries[heapq.heappop(self._heap)]
            self._late += 1

    def _cap(self) -> None:
        if self._level() <= self.max_frames:
            return
        floor = self._newest_end - self.max_frames
        while self._heap and self._heap[0] < floor:
            del self._entries[heapq.heappop(self._heap)]
            self._dropped_overflow += 1
        if self._pointer is None or self._pointer < floor:
            self._pointer = floor
        self._held = 0

    def _count_late(self) -> None:
        self._late += 1
        self._late_run += 1

    def _begin(self, packet: Packet) -> None:
        # As if the packet before this one had just arrived: the first push then takes the usual path.
        self._seq_high = packet.seq - 1
        self._ts_high = self._origin = packet.timestamp
        self._seen = 0

    def _restart(self, packet: Packet) -> None:
        previous = self._seq_high
        self._flush()
        self._previous_seq = None if previous is None else previous % _SEQ_MOD
        self._begin(packet)

    def _flush(self) -> None:
        self._resets += 1
        self._flushed += len(self._entries)
        self._entries.clear()
        self._heap.clear()
        self._playing = self._started = False
        self._pointer = None
        self._continue_left = self._held = self._missing_run = self._late_run = self._stretch_run = 0
        self._stretch_asked = False
        self._last_seq = self._last_voice = self._last_end = None
        self._pause_run = 0
        self._last_recovered = False
        self._forget_estimates()

    def _forget_estimates(self) -> None:
        self._transits.clear()
        for i in range(len(self._histogram)):
            self._histogram[i] = 0.0
        self._weight = 1.0  # grows by 1/forget_factor a packet: old mass fades without touching it
        self._total = 0.0
        self._target_frames = self._jitter_frames = self.min_frames
        self._target_stale = False
        self._fec_floor = False
        self._fec_seen = None
        self._fec_unknown = False
        # Expected and received sequence numbers, both fading with the same factor, from a clean
        # path's worth of them (so that the first loss does not read as a lossy path).
        self._expected = self._arrived = 1.0 / (1.0 - self.loss_forget_factor)

    def _measure(self, ts: int, arrival_ms: float) -> None:
        transit = arrival_ms - ts / _SAMPLES_PER_MS
        window = self._transits
        while window and window[-1][1] >= transit:
            window.pop()
        window.append((arrival_ms, transit))
        while window[0][0] < arrival_ms - self.history_ms:
            window.popleft()
        relative_ms = transit - window[0][1]
        histogram = self._histogram
        self._weight /= self.forget_factor
        histogram[min(int(relative_ms / _BUCKET_MS), len(histogram) - 1)] += self._weight
        self._total += self._weight
        if self._weight > 1e100:  # rescale now and then; the shape stays the same
            for i, mass in enumerate(histogram):
                histogram[i] = mass / self._weight
            self._total /= self._weight
            self._weight = 1.0

    def _target(self) -> int:
        if self._target_stale:
            self._update_target()
        return self._target_frames

    def _jitter_target(self) -> int:
        if self._target_stale:
            self._update_target()
        return self._jitter_frames

    def _update_target(self) -> None:
        self._target_stale = False
        jitter = self._compute_target()
        threshold = self.fec_loss_threshold
        if threshold is None:
            self._fec_floor = False
        else:
            # On at the threshold, off at half of it: a path losing about the threshold does not
            # flip the target (and the delay) back and forth.
            loss = self._loss()
            self._fec_floor = loss >= (threshold / 2 if self._fec_floor else threshold)
        # A sender spends bits on FEC only when it expects loss (libopus sends none at a 0 % loss
        # estimate): then the buffer holds two frames from the first packet on, so that the FEC
        # arrives in time. A sender whose packets do not say (unknown) gets them once loss is seen.
        sends_fec = (
            self._fec_seen is not None
            and self._seq_high is not None
            and self._seq_high - self._fec_seen < FEC_MEMORY_PACKETS
        )
        floor = sends_fec or (self._fec_unknown and self._fec_floor)
        self._jitter_frames = jitter
        self._target_frames = min(self.max_frames, max(jitter, 2)) if floor else jitter

    def _compute_target(self) -> int:
        histogram = self._histogram
        tail = (1.0 - self.quantile) * self._total  # the mass allowed above the quantile
        above = 0.0
        quantile_ms = 0.0
        for i in range(len(histogram) - 1, -1, -1):
            mass = histogram[i]
            if above + mass > tail:
                quantile_ms = (i + 1) * _BUCKET_MS - _BUCKET_MS * (tail - above) / mass
                break
            above += mass
        frames = math.ceil((quantile_ms + FRAME_MS - _SLACK_MS) / FRAME_MS)
        return min(self.max_frames, max(self.min_frames, frames))

    def _loss(self) -> float:
        if self._expected <= 0.0:
            return 0.0
        return min(1.0, max(0.0, 1.0 - self._arrived / self._expected))
