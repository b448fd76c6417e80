"""Hold audio files: what a file costs is known before it is decoded, and bounded after."""

from __future__ import annotations

import io
import time
import wave

import numpy as np
import pytest

from podium.errors import InvalidInput
from podium.media.hold import HoldAudio, decode_hold_file
from podium.media.mixer import FRAME_SAMPLES


def wav(rate: int, seconds: float, declared_frames: int | None = None) -> bytes:
    samples = (0.2 * 32767 * np.sin(2 * np.pi * 300 * np.arange(int(rate * seconds)) / rate)).astype(np.int16)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    data = bytearray(out.getvalue())
    if declared_frames is not None:  # a header that lies about the length
        data[40:44] = (declared_frames * 2).to_bytes(4, "little")
        data[4:8] = (36 + declared_frames * 2).to_bytes(4, "little")
    return bytes(data)


def test_a_tiny_file_at_one_hertz_is_refused_before_it_is_decoded() -> None:
    attack = wav(1, 600)  # 1.2 KB, which resampled to 48 kHz would be 57.6 MB
    assert len(attack) < 1300
    started = time.monotonic()
    with pytest.raises(InvalidInput, match="sample rate is 1 Hz"):
        decode_hold_file(attack)
    assert time.monotonic() - started < 0.5
    with pytest.raises(InvalidInput, match="between 8 and 192 kHz"):
        decode_hold_file(wav(4000, 2))
    with pytest.raises(InvalidInput, match="between 8 and 192 kHz"):
        decode_hold_file(wav(384_000, 1))


def test_the_length_is_bounded_by_the_setting_before_and_while_decoding() -> None:
    with pytest.raises(InvalidInput, match=r"up to 0\.05 minutes"):
        decode_hold_file(wav(8000, 5), max_s=3)
    # Headers that lie about the length: one that says nothing (0) is measured by the file's
    # size and refused; one that says 2 s for 5 s of samples is read for its 2 s.
    with pytest.raises(InvalidInput, match=r"up to 0\.05 minutes"):
        decode_hold_file(wav(8000, 5, declared_frames=0), max_s=3)
    assert abs(len(decode_hold_file(wav(8000, 5, declared_frames=16000), max_s=3)) - 2 * 48000) < 1024
    samples = decode_hold_file(wav(8000, 2.5), max_s=3)
    assert abs(len(samples) - 2.5 * 48000) < 2048 and samples.dtype == np.int16


def test_a_mapped_file_plays_as_plain_frames(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "hold.pcm"
    source = np.arange(3 * FRAME_SAMPLES, dtype=np.int16)
    path.write_bytes(source.tobytes())
    loop = HoldAudio(np.memmap(path, dtype=np.int16, mode="r"))
    frames = [loop.next_frame() for _ in range(4)]
    assert all(type(frame) is np.ndarray and len(frame) == FRAME_SAMPLES for frame in frames)
    assert np.array_equal(np.concatenate(frames), np.concatenate([source, source[:FRAME_SAMPLES]]))
