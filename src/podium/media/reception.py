"""One speaker's audio as the stage receives it: RTP Opus packets in, exactly one 20 ms frame out
per stage tick, every missing frame filled.

The jitter buffer (`media/jitter.py`) decides what each 20 ms slot gets; this object carries the
decision out with libopus (which, unlike PyAV, decodes in-band FEC and conceals a lost frame of a
given length). For senders that send no RFC 6464 level, a played frame that decodes to a pause is
skipped while the buffer holds more than its target, and stretched by a slot (the decoder carrying
the pause on) while it holds less: the delay changes where nobody speaks, not by a gap in a word.
Invariants: `pull()` returns exactly `FRAME_SAMPLES` int16 samples whatever arrived; a packet
libopus refuses is concealed and counted, never raised to the stage; nothing here reads a clock
(arrival and tick times come from the caller, in milliseconds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from podium.media.jitter import (
    PAUSE_FRAMES,
    Conceal,
    Continue,
    JitterBuffer,
    JitterStats,
    Packet,
    Play,
    Recover,
    opus_packet_samples,
)
from podium.media.libopus import Decoder, OpusError
from podium.media.mixer import FRAME_MS, FRAME_SAMPLES, Samples

# RFC 6464: the level is -dBov, 0 (loudest) to 127 (silence). A packet quieter than -50 dBov with
# its voice flag clear is a pause: the jitter buffer may skip it to shrink its delay.
QUIET_DBOV = 50
# An Opus packet of its TOC byte alone (or one more byte) carries no audio: DTX or comfort noise.
DTX_BYTES = 2

_SILENCE = np.zeros(FRAME_SAMPLES, dtype=np.int16)

# A decoded frame quieter than this (RMS, about -50 dBFS) is a pause: when the jitter buffer holds
# more than it aims to, such a frame is decoded but not played, and the delay shrinks by a frame.
PAUSE_RMS = 100.0

# A connection the host should hear about: past 3 % loss speech degrades even with FEC and
# concealment; a jitter buffer holding 100 ms or more means the network is delaying the speaker.
POOR_LOSS_FRACTION = 0.03
POOR_JITTER_BUFFER_MS = 100


@dataclass(frozen=True)
class ReceptionHealth:
    """How a speaker's connection treats their audio, for the host's board and /metrics."""

    packets: int  # received, duplicates included
    loss_fraction: float  # recent share of packets that never arrived (0..1)
    recovered_ms: int  # audio rebuilt from in-band FEC
    concealed_ms: int  # audio made up by concealment
    late: int  # packets that came after their moment had passed
    decode_errors: int  # packets libopus refused (concealed instead)
    delay_ms: int  # audio held in the jitter buffer now
    target_ms: int  # what the jitter buffer aims to hold, from the jitter it measures


def poor_connection(health: ReceptionHealth) -> bool:
    return health.loss_fraction >= POOR_LOSS_FRACTION or health.target_ms >= POOR_JITTER_BUFFER_MS


def opus_packet_has_fec(payload: bytes) -> bool:
    """Whether an Opus packet carries in-band FEC (LBRR) for the frame before it, read from the bits.

    RFC 6716, 4.2.3-4.2.4: a SILK or hybrid frame opens with one voice-activity flag per 20 ms SILK
    frame and then one LBRR flag, per channel; these are coded at probability 1/2, so they are the
    leading bits of the first frame's first byte. CELT-only packets never carry FEC."""
    if len(payload) < 2:
        return False
    toc = payload[0]
    config = toc >> 3
    if config >= 16:
        return False  # CELT
    silk_frames = 1 if config >= 12 else (1, 1, 2, 3)[config % 4]  # hybrid: 10 or 20 ms, one SILK frame
    start = _first_frame_offset(payload)
    if start is None or start >= len(payload):
        return False
    first = payload[start]
    channels = 2 if toc & 0x04 else 1
    return any(first & (0x80 >> ((channel + 1) * (silk_frames + 1) - 1)) for channel in range(channels))


def _first_frame_offset(payload: bytes) -> int | None:
    """Where the first frame's data starts (RFC 6716, 3.2), or None for a packet that lies."""
    code = payload[0] & 3
    if code in (0, 1):
        return 1
    if code == 2:
        return 2 if payload[1] < 252 else 3
    header = payload[1]
    offset = 2
    if header & 0x40:  # padding: lengths of 255 mean 254 bytes and another length byte
        while offset < len(payload) and payload[offset] == 255:
            offset += 1
        offset += 1
    if header & 0x80:  # VBR: the lengths of all frames but the last
        for _ in range((header & 0x3F) - 1):
            if offset >= len(payload):
                return None
            offset += 1 if payload[offset] < 252 else 2
    return offset


def packet_voice(payload: bytes, audio_level: tuple[bool, int] | None) -> bool | None:
    """Whether a packet carries speech, as far as can be told without decoding it; None: unknown.

    Only a clear "no" lets the jitter buffer skip a packet, so doubt answers None: browsers send the
    RFC 6464 level with a voice flag; aiortc's own senders send no level, or a level with the flag
    always clear (then only a quiet level counts as a pause)."""
    if len(payload) <= DTX_BYTES:
        return False
    if audio_level is None:
        return None
    voice, level = audio_level
    if voice:
        return True
    return False if level >= QUIET_DBOV else None


class SpeakerReception:
    """Jitter buffer and Opus decoder of one speaker (see the module docstring)."""

    def __init__(self, jitter: JitterBuffer | None = None) -> None:
        self.jitter = jitter if jitter is not None else JitterBuffer()
        self._decoder = Decoder()
        # Samples of the last packet played that later slots (its `Continue`s) still owe.
        self._rest: Samples = _SILENCE[:0]
        self.decode_errors = 0
        # Frames rebuilt from FEC, and frames made up by concealment (the jitter buffer asks for a
        # recovery whenever the next packet is there; only a packet with FEC can give one).
        self.recovered_frames = 0
        self.concealed_frames = 0
        self.skipped_pauses = 0  # frames of pauses decoded but not played, to shrink the delay
        self._quiet_run = 0  # frames in a row decoded as a pause

    def push(
        self, seq: int, timestamp: int, payload: bytes, arrival_ms: float, audio_level: tuple[bool, int] | None = None
    ) -> None:
        """One RTP packet's Opus payload as it arrives; a packet too broken to place is dropped."""
        try:
            samples = opus_packet_samples(payload)
        except ValueError:
            self.decode_errors += 1
            return
        if samples < FRAME_SAMPLES or samples % FRAME_SAMPLES:
            # 2.5-10 ms packets (and odd lengths) do not map onto 20 ms slots; WebRTC senders use 20 ms.
            self.decode_errors += 1
            return
        voice = packet_voice(payload, audio_level)
        packet = Packet(seq, timestamp, payload, voice, samples, fec=opus_packet_has_fec(payload))
        self.jitter.push(packet, arrival_ms)

    def pull(self, now_ms: float, *, may_skip: bool = True) -> Samples:
        """The next 20 ms of this speaker, decided now."""
        decision = self.jitter.pop(now_ms)
        stretching = self.jitter.stretching
        try:
            if isinstance(decision, Play):
                decoded = self._decoder.decode(decision.payload)
                self._rest = decoded[FRAME_SAMPLES:]
                quiet = decision.packet.voice is None and len(decoded) == FRAME_SAMPLES and _quiet(decoded)
                self._quiet_run = self._quiet_run + 1 if quiet else 0
                if quiet:
                    if may_skip and self._quiet_run >= PAUSE_FRAMES and self.jitter.skip_pause():
                        self.skipped_pauses += 1
                        return self.pull(now_ms, may_skip=False)  # at most one frame skipped a tick
                    if self._quiet_run >= PAUSE_FRAMES:
                        self.jitter.stretch_pause()
                return _whole_frame(decoded[:FRAME_SAMPLES])
            if isinstance(decision, Continue):
                frame, self._rest = self._rest[:FRAME_SAMPLES], self._rest[FRAME_SAMPLES:]
                return _whole_frame(frame)
            if isinstance(decision, Recover):
                if opus_packet_has_fec(decision.payload):
                    self.recovered_frames += 1
                    return _whole_frame(self._decoder.recover(decision.payload, FRAME_SAMPLES))
                self.concealed_frames += 1  # the sender sent no FEC: libopus could only conceal
                return _whole_frame(self._decoder.conceal(FRAME_SAMPLES))
            if isinstance(decision, Conceal):
                self.concealed_frames += 1
                return _whole_frame(self._decoder.conceal(FRAME_SAMPLES))
            if stretching:
                # The slot added to the pause just heard: the decoder carries that pause on, so a
                # speaker's room noise goes on instead of dropping to digital silence.
                return _whole_frame(self._decoder.conceal(FRAME_SAMPLES))
        except OpusError:
            self.decode_errors += 1
            self.concealed_frames += 1
            return self._conceal()
        return _SILENCE.copy()

    def health(self) -> ReceptionHealth:
        stats: JitterStats = self.jitter.stats()
        return ReceptionHealth(
            packets=stats.received,
            loss_fraction=round(stats.loss_fraction, 4),
            recovered_ms=self.recovered_frames * FRAME_MS,
            concealed_ms=self.concealed_frames * FRAME_MS,
            late=stats.late,
            decode_errors=self.decode_errors,
            delay_ms=stats.delay_ms,
            target_ms=stats.target_ms,
        )

    def close(self) -> None:
        self._decoder.close()

    def _conceal(self) -> Samples:
        try:
            return _whole_frame(self._decoder.conceal(FRAME_SAMPLES))
        except OpusError:
            return _SILENCE.copy()


def _quiet(frame: Samples) -> bool:
    return float(np.sqrt(np.mean(frame.astype(np.float32) ** 2))) < PAUSE_RMS


def _whole_frame(samples: Samples) -> Samples:
    if len(samples) == FRAME_SAMPLES:
        return samples
    whole: Samples = np.zeros(FRAME_SAMPLES, dtype=np.int16)
    whole[: min(len(samples), FRAME_SAMPLES)] = samples[:FRAME_SAMPLES]
    return whole
