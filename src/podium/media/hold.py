"""Hold audio for the pre-show: what listeners hear before the show, 20 ms at a time, in a loop.

The default is a generated tone bed: a soft G major chord (196, 247, 294 Hz) that swells and
fades every 8 s, quiet (peak about -16 dBFS) so nobody turns the volume up and is startled at the
start. Every frequency is a whole number of cycles per loop, so the loop has no click. A host may
upload a file instead; it is decoded once (PyAV) to 48 kHz mono.

What a file costs is known before it is decoded: its stream must say a sample rate between 8 and
192 kHz and, where the container says one, a duration within the limit (a 1 Hz WAV of 1 KB would
otherwise resample to minutes of 48 kHz audio). Decoding then stops at the limit whatever the
headers said, so the decoded audio is never more than `max_s` seconds at 48 kHz (5.76 MB a minute).
"""

from __future__ import annotations

import io

import av
import numpy as np

from podium.errors import InvalidInput
from podium.media.mixer import FRAME_SAMPLES, SAMPLE_RATE, Samples

BED_SECONDS = 8
BED_HZ = (196.0, 247.0, 294.0)
BED_PEAK = 0.16
MAX_HOLD_S = 600.0
MIN_HOLD_S = 1.0
# Sample rates a real audio file has (telephone speech to studio masters).
MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 192_000


def tone_bed() -> Samples:
    t = np.arange(BED_SECONDS * SAMPLE_RATE) / SAMPLE_RATE
    chord = sum(np.sin(2 * np.pi * hz * t) for hz in BED_HZ) / len(BED_HZ)
    swell = 0.55 + 0.45 * np.sin(2 * np.pi * t / BED_SECONDS - np.pi / 2)  # 0.1 .. 1.0, starts low
    samples: Samples = np.round(chord * swell * BED_PEAK * 32767).astype(np.int16)
    return samples


def _check_rate(rate: int | None) -> None:
    if rate is None or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise InvalidInput(
            f"the audio's sample rate is {rate or 'unknown'} Hz;"
            f" hold audio must be between {MIN_SAMPLE_RATE // 1000} and {MAX_SAMPLE_RATE // 1000} kHz"
        )


def _too_long(max_s: float) -> InvalidInput:
    minutes = max_s / 60
    return InvalidInput(f"hold audio may last up to {minutes:g} minute{'s' if minutes != 1 else ''}")


def decode_hold_file(data: bytes, max_s: float = MAX_HOLD_S) -> Samples:
    """An uploaded file (any format FFmpeg reads) as 48 kHz mono samples, or a clear InvalidInput.
    The file is probed before anything is decoded (sample rate, duration), and decoding stops at
    `max_s` seconds of input whatever its headers said."""
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise InvalidInput("the file has no audio")
            stream = container.streams.audio[0]
            _check_rate(stream.codec_context.sample_rate or stream.sample_rate)
            # The container's duration (microseconds), where it says one: refused before decoding.
            if container.duration is not None and container.duration / 1_000_000 > max_s + 0.5:
                raise _too_long(max_s)
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            chunks: list[Samples] = []
            total = 0
            input_s = 0.0
            for frame in container.decode(stream):
                # Each frame's own rate too: a stream may change it midway.
                _check_rate(frame.sample_rate)
                input_s += frame.samples / frame.sample_rate
                if input_s > max_s + 0.5:
                    raise _too_long(max_s)
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1).astype(np.int16)
                    chunks.append(chunk)
                    total += len(chunk)
                    if total > (max_s + 0.5) * SAMPLE_RATE:
                        raise _too_long(max_s)
    except av.FFmpegError:
        raise InvalidInput("the file could not be read as audio (try WAV, MP3, AAC or Opus)") from None
    if total < MIN_HOLD_S * SAMPLE_RATE:
        raise InvalidInput("hold audio must last at least a second")
    samples: Samples = np.concatenate(chunks)
    return samples


class HoldAudio:
    """A loop of samples, handed out one mixer frame at a time."""

    def __init__(self, samples: Samples) -> None:
        if len(samples) < FRAME_SAMPLES:
            raise ValueError("hold audio shorter than one frame")
        self._samples = samples
        self._at = 0

    def next_frame(self) -> Samples:
        end = self._at + FRAME_SAMPLES
        if end <= len(self._samples):
            # A plain array even when the samples are a mapped file (`np.memmap`).
            frame: Samples = np.asarray(self._samples[self._at : end])
            self._at = end % len(self._samples)
            return frame
        wrapped = end - len(self._samples)
        frame = np.concatenate([self._samples[self._at :], self._samples[:wrapped]])
        self._at = wrapped
        return frame
