"""Invariants of the packager under any way of feeding it (Hypothesis)."""

import re
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from podium.media.packager import Block, Packager, Part, Segment

START = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)


@settings(max_examples=60, deadline=None)
@given(pushes=st.lists(st.integers(min_value=0, max_value=150), max_size=25), finish=st.booleans())
def test_everything_listed_can_be_fetched_and_numbers_only_grow(pushes: list[int], finish: bool) -> None:
    packager = Packager(START)
    made: list[Part | Segment] = []
    frame_count = 0
    for n in pushes:
        frames = [bytes([i % 255 + 1]) * 7 for i in range(frame_count, frame_count + n)]
        frame_count += n
        made += packager.push(frames)
    if finish:
        made += packager.finish()

    parts = [m for m in made if isinstance(m, Part)]
    segments = [m for m in made if isinstance(m, Segment)]
    # Parts come in order, each segment is its parts, and no frame is lost or doubled.
    assert [(p.msn, p.index) for p in parts] == sorted((p.msn, p.index) for p in parts)
    assert [s.record.msn for s in segments] == list(range(len(segments)))
    for segment in segments:
        assert segment.data == b"".join(p.data for p in parts if p.msn == segment.record.msn)
    whole_frames = frame_count if finish else frame_count - frame_count % 24
    assert round(sum(p.duration_s for p in parts) * 48000 / 1024) == whole_frames

    playlist = packager.playlist()
    for name in re.findall(r'URI="(p\d+-\d+\.m4s)"', playlist):
        msn, index = map(int, re.match(r"p(\d+)-(\d+)", name).groups())  # type: ignore[union-attr]
        hinted = f'PRELOAD-HINT:TYPE=PART,URI="{name}"' in playlist
        assert packager.part(msn, index) is not None or (hinted and packager.is_next_part(msn, index))
    listed_segments = re.findall(r"^s(\d+)\.m4s$", playlist, re.M)
    assert [int(m) for m in listed_segments] == [s.record.msn for s in segments]
    assert playlist.endswith("#EXT-X-ENDLIST\n") == finish
    # Whatever is listed, a blocking reload for it is answered at once.
    last = packager.last_part()
    if last is not None:
        assert packager.block(*last) is Block.READY
