"""The `.m4a` remux: the recording's AAC frames, once, in a file every player reads."""

from __future__ import annotations

import io
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.media import m4a
from podium.media.aac import AacEncoder
from podium.media.fmp4 import init_section
from podium.media.packager import Packager, Segment
from podium.testing.whip_client import tone

START = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)


def recording(seconds: float, hz: float = 440) -> tuple[bytes, list[bytes], list[bytes]]:
    """init section, segments and the raw AAC frames of `seconds` of a tone, as the stage makes them."""
    encoder = AacEncoder()
    packager = Packager(START)
    source = tone(hz, 0.3)
    frames: list[bytes] = []
    segments: list[bytes] = []
    for n in range(int(seconds * 50)):
        made = encoder.encode(source(n))
        frames += made
        segments += [item.data for item in packager.push(made) if isinstance(item, Segment)]
    segments += [item.data for item in packager.finish() if isinstance(item, Segment)]
    return init_section(encoder.audio_specific_config, 48000), segments, frames


def decode(data: bytes) -> tuple[np.ndarray, float, dict[str, str]]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(stream)])
        assert stream.duration is not None
        return pcm, float(stream.duration * stream.time_base), dict(container.metadata)


def test_the_remux_holds_every_frame_once_and_plays(tmp_path: Path) -> None:
    init, segments, frames = recording(9.0)
    data = m4a.remux(init, segments, START, "Title — with ünïcode")
    # The AAC frames are the stage's own, byte for byte, in order, after the moov (fast start).
    assert data.index(b"moov") < data.index(b"mdat")
    assert b"".join(frames) in data
    pcm, duration, metadata = decode(data)
    assert duration == pytest.approx(len(frames) * 1024 / 48000, abs=0.001)
    assert abs(len(pcm) / 48000 - duration) < 0.05
    spectrum = np.abs(np.fft.rfft(pcm[24000:72000] * np.hanning(48000)))
    assert abs(int(np.argmax(spectrum)) - 440) < 3  # 1 Hz bins over one second
    assert metadata["title"] == "Title — with ünïcode"
    path = tmp_path / "r.m4a"
    path.write_bytes(data)
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,sample_rate,channels",
            "-of",
            "csv=p=0",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "aac,48000,1" and probe.stderr == ""


def test_the_same_input_gives_the_same_bytes() -> None:
    init, segments, _ = recording(3.0)
    assert m4a.remux(init, segments, START, "x") == m4a.remux(init, segments, START, "x")
    assert m4a.remux(init, segments, START, "x") != m4a.remux(init, segments, START, "y")


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 150), st.integers(1, 120))
def test_any_slice_is_those_frames(first: int, count: int) -> None:
    _init, segments, frames = RECORDING
    samples = m4a.fragment_samples(segments)
    assert len(samples) == len(frames)
    first = min(first, len(frames) - 1)
    count = min(count, len(frames) - first)
    part = samples.slice(first, count)
    assert part.data == b"".join(frames[first : first + count])
    assert part.sizes.tolist() == [len(f) for f in frames[first : first + count]]


RECORDING = recording(4.0)


def test_fragments_are_read_in_order_across_segments_and_parts() -> None:
    init, segments, frames = RECORDING
    stsd, timescale = m4a.sample_description(init)
    assert stsd[4:8] == b"stsd" and timescale == 48000
    samples = m4a.fragment_samples(segments)
    assert samples.total_duration == 1024 * len(frames)


def test_what_is_not_a_fragment_is_refused() -> None:
    with pytest.raises(m4a.NotAFragment):
        m4a.fragment_samples([b"\x00\x00\x00\x10moof\x00\x00"])
    with pytest.raises(m4a.NotAFragment):
        m4a.sample_description(b"\x00\x00\x00\x08free")
