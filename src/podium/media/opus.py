"""Opus encoding of a speaker's mix-minus: mono int16 20 ms frames in, RTP-ready packets out.

aiortc sends an `av.Packet` a track returns as it is. Encoding here spares each speaker's connection
what aiortc does for a raw frame: a thread-pool hop and a pure-Python RFC 6465 level over every
sample, which at 13 speakers cost more CPU than the whole mixer.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av
import numpy as np

from podium.media.mixer import FRAME_SAMPLES, SAMPLE_RATE, Samples

# Speech in mono for a speaker's ears: 32 kb/s of CELT is clear voice.
RETURN_BITRATE = 32_000
# libopus's complexity (0-10) trades CPU for quality at a given bitrate. One encoder runs per
# speaker, 50 times a second; at 3 it takes about half the CPU of the default 10 (measured on
# this project's 2-core machine: ~70 against ~140 us a frame), a difference that only matters to
# a speaker's own monitor mix, never to the program listeners hear (that is AAC).
RETURN_COMPLEXITY = 3
TIME_BASE = Fraction(1, SAMPLE_RATE)


class OpusEncoder:
    """One Opus stream: each `encode()` takes one 20 ms frame and returns its packet(s).

    The packets carry their own timestamps (pts in 1/48000 s, from 0, one frame apart), which aiortc
    turns into RTP timestamps, so the stream stays continuous whatever the encoder's look-ahead."""

    def __init__(self, bitrate: int = RETURN_BITRATE) -> None:
        codec = av.CodecContext.create("libopus", "w")
        codec.sample_rate = SAMPLE_RATE
        codec.layout = "mono"
        codec.format = "s16"
        codec.bit_rate = bitrate
        codec.time_base = TIME_BASE
        # "lowdelay" (CELT only): the least algorithmic delay, which a conversation needs most.
        codec.options = {"application": "lowdelay", "compression_level": str(RETURN_COMPLEXITY)}
        codec.open()
        self._codec = codec
        self._pts = 0
        # One frame, refilled for each encode: libopus has consumed the samples when encode() returns.
        self._frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        self._frame.sample_rate = SAMPLE_RATE
        self._frame.time_base = TIME_BASE

    def encode(self, samples: Samples) -> list[av.Packet[Any]]:
        if samples.shape != (FRAME_SAMPLES,) or samples.dtype != np.int16:
            raise ValueError(
                f"an Opus frame here is {FRAME_SAMPLES} int16 samples, not {samples.shape} {samples.dtype}"
            )
        self._frame.planes[0].update(samples.tobytes())
        self._frame.pts = self._pts
        packets = self._codec.encode(self._frame)
        for packet in packets:
            packet.pts = self._pts
            packet.time_base = TIME_BASE
            self._pts += FRAME_SAMPLES
        return packets


# libopus's complexity for a mix-minus with FEC: libopus 1.3.1 at 32 kb/s codes no FEC at all below
# complexity 7 (measured: at 5 and 5 % expected loss, every "recovered" frame equals concealment).
# It costs about twice complexity 3's CPU, and only for speakers whose path loses packets.
RETURN_FEC_COMPLEXITY = 8

# A speaker's own reports (RTCP) of the mix-minus they receive: from this loss on, their stream
# carries in-band FEC; it goes back to the low-delay mode after a clean spell.
FEC_FROM_LOSS = 0.01
CLEAN_BELOW_LOSS = 0.005
CLEAN_SPELL_S = 10.0


class LossAdaptation:
    """When a speaker's mix-minus needs FEC, from the loss their receiver reports (sans-IO): VOIP
    with in-band FEC sized for the loss from `FEC_FROM_LOSS` on, back to CELT "lowdelay" only after
    `CLEAN_SPELL_S` of reports under `CLEAN_BELOW_LOSS`, so a path that loses now and then does not flap."""

    def __init__(self) -> None:
        self.fec = False
        self.loss_percent = 0
        self._clean_since: float | None = None

    def report(self, fraction_lost: float, now_s: float) -> bool:
        """One receiver report's loss (0..1); True when the encoding must change."""
        percent = min(100, round(fraction_lost * 100))
        if fraction_lost >= FEC_FROM_LOSS:
            self._clean_since = None
            changed = not self.fec or percent != self.loss_percent
            self.fec, self.loss_percent = True, percent
            return changed
        if not self.fec:
            return False
        if fraction_lost >= CLEAN_BELOW_LOSS:
            self._clean_since = None
            return False
        if self._clean_since is None:
            self._clean_since = now_s
        if now_s - self._clean_since >= CLEAN_SPELL_S:
            self.fec, self.loss_percent, self._clean_since = False, 0, None
            return True
        return False


class OpusDecoder:
    """One speaker's Opus stream to mono int16 samples (libopus folds a stereo stream to mono)."""

    def __init__(self) -> None:
        codec = av.CodecContext.create("libopus", "r")
        codec.sample_rate = SAMPLE_RATE
        codec.layout = "mono"
        codec.format = "s16"
        self._codec = codec

    def decode(self, payload: bytes) -> list[Samples]:
        """Raises `av.FFmpegError` for a payload that is not Opus."""
        frames = self._codec.decode(av.Packet(payload))
        return [
            np.frombuffer(memoryview(frame.planes[0]), dtype=np.int16, count=frame.samples).copy() for frame in frames
        ]
