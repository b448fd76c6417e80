"""Hold audio for the pre-show: what listeners hear before the show, 20 ms at a time, in a loop.

The default is a generated tone bed: a soft G major chord (196, 247, 294 Hz) that swells and
fades every 8 s, quiet (peak about -16 dBFS) so nobody turns the volume up and is startled at the
start. Every frequency is a whole number of cycles per loop, so the loop has no click. A host may
upload a file instead; it is decoded once (PyAV) to 48 kHz mono.
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


def tone_bed() -> Samples:
    t = np.arange(BED_SECONDS * SAMPLE_RATE) / SAMPLE_RATE
    chord = sum(np.sin(2 * np.pi * hz * t) for hz in BED_HZ) / len(BED_HZ)
    swell = 0.55 + 0.45 * np.sin(2 * np.pi * t / BED_SECONDS - np.pi / 2)  # 0.1 .. 1.0, starts low
    samples: Samples = np.round(chord * swell * BED_PEAK * 32767).astype(np.int16)
    return samples


def decode_hold_file(data: bytes) -> Samples:
    """An uploaded file (any format FFmpeg reads) as 48 kHz mono samples, or a clear InvalidInput."""
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise InvalidInput("the file has no audio")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            chunks: list[Samples] = []
            total = 0
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1).astype(np.int16)
                    chunks.append(chunk)
                    total += len(chunk)
                    if total > MAX_HOLD_S * SAMPLE_RATE:
                        raise InvalidInput(f"hold audio may last up to {MAX_HOLD_S / 60:.0f} minutes")
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
            frame = self._samples[self._at : end]
            self._at = end % len(self._samples)
            return frame
        wrapped = end - len(self._samples)
        frame = np.concatenate([self._samples[self._at :], self._samples[:wrapped]])
        self._at = wrapped
        return frame
