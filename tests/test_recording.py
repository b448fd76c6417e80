"""Who spoke when, and where a moment falls on the recording's time axis."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from podium.backends.files import FileMediaStore
from podium.ids import SpaceId
from podium.media.packager import SegmentRecord
from podium.media.stage import SPEAKER_HOLD_FRAMES, SPEAKERS_NAME, Stage
from podium.recording import media_offset
from podium.testing.whip_client import tone

T0 = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)


def test_moments_map_onto_the_recording_across_a_gap() -> None:
    records = [
        SegmentRecord(0, 2.0, T0),
        SegmentRecord(1, 2.0, T0 + timedelta(seconds=2)),
        # The server was down for 10 s; the recording goes on after a discontinuity.
        SegmentRecord(2, 2.0, T0 + timedelta(seconds=14), discontinuity=True),
    ]
    assert media_offset(records, T0 - timedelta(seconds=5)) == 0.0
    assert media_offset(records, T0 + timedelta(seconds=3.5)) == 3.5
    assert media_offset(records, T0 + timedelta(seconds=8)) == 4.0  # in the gap: where the audio resumed
    assert media_offset(records, T0 + timedelta(seconds=15)) == 5.0
    assert media_offset(records, T0 + timedelta(hours=1)) == 6.0


async def test_the_stage_marks_who_speaks_and_ignores_short_interjections(tmp_path: Path) -> None:
    space = SpaceId("abcdefghij12")
    store = FileMediaStore(tmp_path)
    stage = Stage(space, store, T0, [SegmentRecord(0, 2.048, T0)])  # resumed: media time starts at 2.048 s
    stage.add_input("a", label="alice")
    stage.add_input("b", label="bob")
    await stage.start(paced=False)  # moved frame by frame below
    a, b = tone(440, 0.3), tone(660, 0.3)
    silence = np.zeros(960, dtype=np.int16)
    plan = [("a", 60), ("b", 10), ("a", 20), ("b", 60)]  # bob's first 0.2 s is an interjection
    n = 0
    for who, frames in plan:
        for _ in range(frames):
            stage.push("a", a(n) if who == "a" else silence)
            stage.push("b", b(n) if who == "b" else silence)
            n += 1
            stage.step()
    stage.step(15)  # 0.3 s more: the last change is noted
    await stage.stop()
    assert [name for _at, name in stage.speaker_changes] == ["alice", "bob"]
    first, second = (at for at, _ in stage.speaker_changes)
    assert 2.048 <= first < 2.048 + 0.5  # alice from (about) the start of this run
    # Bob took over after 90 frames (1.8 s) of this run; the mark is when he began, not when he was sure.
    assert abs(second - (2.048 + 90 * 0.02)) < 0.25, second
    lines = [json.loads(line) for line in await store.lines(space, SPEAKERS_NAME)]
    assert [(line["member"], line["at_s"]) for line in lines] == [(n, at) for at, n in stage.speaker_changes]
    assert SPEAKER_HOLD_FRAMES * 0.02 > 0.2  # the interjection was shorter than the hold


def test_nodes_sharing_a_secret_sign_clips_with_one_key(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from podium.recording import load_or_create_signing_key

    def public(key: Any) -> bytes:
        return bytes(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    secret = "s" * 48
    a = load_or_create_signing_key(tmp_path / "a", secret)
    b = load_or_create_signing_key(tmp_path / "b", secret)
    assert public(a) == public(b), "a clip made on one node verifies on the other"
    assert public(load_or_create_signing_key(tmp_path / "c", "t" * 48)) != public(a)
    (tmp_path / "d").mkdir()
    alone = load_or_create_signing_key(tmp_path / "d")  # one node, no secret given: a kept file
    assert public(load_or_create_signing_key(tmp_path / "d")) == public(alone) != public(a)
