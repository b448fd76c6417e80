import json
import subprocess
from pathlib import Path

import numpy as np

from podium.media import fmp4
from podium.media.aac import AacEncoder
from podium.media.packager import Packager, Part, Segment


def test_init_section_boxes() -> None:
    init = fmp4.init_section(b"\x11\x88", 48000)
    kinds = [kind for kind, _ in fmp4.iter_boxes(init)]
    assert kinds == [b"ftyp", b"moov"]
    moov = dict(fmp4.iter_boxes(init))[b"moov"]
    assert [k for k, _ in fmp4.iter_boxes(moov)] == [b"mvhd", b"trak", b"mvex"]


def test_what_the_packager_writes_decodes_in_ffmpeg_as_the_tone_it_was_fed(tmp_path: Path) -> None:
    """A reader Podium did not write (ffprobe/ffmpeg) finds 48 kHz mono AAC and the right pitch."""
    encoder = AacEncoder()
    seconds = 3
    t = np.arange(48000 * seconds) / 48000
    frames = encoder.encode((np.sin(2 * np.pi * 523.25 * t) * 12000).astype(np.int16))
    from datetime import UTC, datetime

    packager = Packager(datetime(2026, 1, 1, tzinfo=UTC))
    made = packager.push(frames) + packager.finish()
    segments = b"".join(m.data for m in made if isinstance(m, Segment))
    parts = b"".join(m.data for m in made if isinstance(m, Part))
    assert segments == parts
    path = tmp_path / "program.mp4"
    path.write_bytes(fmp4.init_section(encoder.audio_specific_config, 48000) + segments)
    probe = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    stream = probe["streams"][0]
    assert (stream["codec_name"], stream["profile"], stream["sample_rate"], stream["channels"]) == (
        "aac",
        "LC",
        "48000",
        1,
    )
    assert abs(float(probe["format"]["duration"]) - seconds) < 0.1
    pcm = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-ar", "48000", "-"],
        check=True,
        capture_output=True,
    ).stdout
    audio = np.frombuffer(pcm, dtype=np.int16).astype(float)
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    assert abs(np.argmax(spectrum) * 48000 / len(audio) - 523.25) < 2
