from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from podium.media import fmp4
from podium.media.packager import Block, Layout, Packager, Part, Segment, SegmentRecord

GOLDEN = Path(__file__).parent.parent / "golden"
START = datetime(2026, 11, 24, 20, 0, 0, tzinfo=UTC)
FRAME = b"\xaa" * 10  # stands for one AAC access unit


def feed(packager: Packager, frames: int) -> list[Part | Segment]:
    return packager.push([FRAME] * frames)


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    assert text == path.read_text(), f"playlist differs from {path}"


def test_layout_matches_the_design() -> None:
    layout = Layout()
    assert layout.part_s == pytest.approx(0.512)
    assert layout.segment_s == pytest.approx(2.048)
    assert layout.target_duration_s == 2
    assert layout.part_hold_back_s >= 2 * layout.part_s


def test_a_part_every_24_frames_and_a_segment_every_4_parts() -> None:
    packager = Packager(START)
    assert feed(packager, 23) == []
    made = feed(packager, 1)
    assert [(p.msn, p.index) for p in made if isinstance(p, Part)] == [(0, 0)]
    made = feed(packager, 72)
    parts = [p for p in made if isinstance(p, Part)]
    segments = [s for s in made if isinstance(s, Segment)]
    assert [(p.msn, p.index) for p in parts] == [(0, 1), (0, 2), (0, 3)]
    assert [s.record.msn for s in segments] == [0]
    assert segments[0].record.duration_s == pytest.approx(2.048)
    assert made[-1] is segments[0]  # the segment comes after its last part


def test_segment_bytes_are_its_parts_concatenated_and_decode_times_continue() -> None:
    packager = Packager(START)
    made = feed(packager, 96 * 2)
    parts = [p for p in made if isinstance(p, Part)]
    segments = [s for s in made if isinstance(s, Segment)]
    assert segments[1].data == b"".join(p.data for p in parts[4:8])
    decode_times = []
    for part in parts:
        (moof_kind, moof), (mdat_kind, mdat) = fmp4.iter_boxes(part.data)
        assert (moof_kind, mdat_kind) == (b"moof", b"mdat")
        assert mdat == FRAME * 24
        traf = dict(fmp4.iter_boxes(moof[16:]))[b"traf"]
        tfdt = dict(fmp4.iter_boxes(traf))[b"tfdt"]
        decode_times.append(int.from_bytes(tfdt[4:12], "big"))
    assert decode_times == [i * 24 * 1024 for i in range(8)]


def test_golden_live_playlist() -> None:
    packager = Packager(START)
    feed(packager, 96 * 4 + 24 * 2)  # four whole segments and two parts of the fifth
    golden("live.m3u8", packager.playlist())


def test_golden_delta_playlist_skips_old_segments() -> None:
    packager = Packager(START)
    feed(packager, 96 * 10 + 24)
    text = packager.playlist(skip=True)
    golden("delta.m3u8", text)
    assert "#EXT-X-SKIP:SKIPPED-SEGMENTS=4" in text
    assert "s3.m4s" not in text and "s4.m4s" in text


def test_golden_ended_playlist() -> None:
    packager = Packager(START)
    feed(packager, 96 + 30)
    made = packager.finish()
    assert [type(m).__name__ for m in made] == ["Part", "Segment"]
    assert made[0].duration_s == pytest.approx(6 * 1024 / 48000)  # type: ignore[union-attr]
    text = packager.playlist()
    golden("ended.m3u8", text)
    assert text.endswith("#EXT-X-ENDLIST\n") and "PRELOAD-HINT" not in text
    with pytest.raises(RuntimeError):
        feed(packager, 1)


def test_only_recent_segments_list_their_parts() -> None:
    packager = Packager(START)
    feed(packager, 96 * 8)
    text = packager.playlist()
    assert 'URI="p4-0.m4s"' not in text
    assert 'URI="p5-0.m4s"' in text and 'URI="p7-3.m4s"' in text
    # One more segment stays fetchable than is listed, for players holding the previous playlist.
    assert packager.part(3, 0) is None and packager.part(4, 0) is not None and packager.part(7, 3) is not None


def test_blocking_reload_answers() -> None:
    packager = Packager(START)
    assert packager.block(0, 0) is Block.WAIT
    feed(packager, 24)
    assert packager.block(0, 0) is Block.READY
    assert packager.block(0, 1) is Block.WAIT
    assert packager.block(0, None) is Block.WAIT  # without a part: the whole segment
    feed(packager, 72)
    assert packager.block(0, None) is Block.READY
    assert packager.block(0, 4) is Block.WAIT  # past the last part of 0 means part 0 of 1
    feed(packager, 24)
    assert packager.block(0, 4) is Block.READY
    assert packager.block(3, 0) is Block.WAIT  # two segments ahead: hold
    assert packager.block(4, 0) is Block.TOO_FAR  # more than two ahead: 400
    packager.finish()
    assert packager.block(3, 0) is Block.READY  # ended: answer at once with ENDLIST


def test_preload_hint_names_the_next_part() -> None:
    packager = Packager(START)
    feed(packager, 24 * 5)
    assert packager.playlist().rstrip().endswith('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p1-1.m4s"')
    assert packager.is_next_part(1, 1)
    assert not packager.is_next_part(1, 2)


def test_a_restart_continues_numbering_with_a_discontinuity() -> None:
    first = Packager(START)
    feed(first, 96 * 2 + 10)  # the half-made third segment is lost with the process
    history = first.segments
    later = START + timedelta(minutes=1)
    second = Packager(later, history=history)
    made = feed(second, 96)
    segments = [m for m in made if isinstance(m, Segment)]
    assert segments[0].record.msn == 2 and segments[0].record.discontinuity
    text = second.playlist()
    assert "#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-11-24T20:01:00.000Z" in text
    kinds = [kind for kind, _ in fmp4.iter_boxes(segments[0].data)]
    assert kinds == [b"moof", b"mdat"] * 4


def test_ended_playlist_from_stored_records() -> None:
    records = [SegmentRecord(i, 2.048, START + timedelta(seconds=2.048 * i)) for i in range(3)]
    packager = Packager.from_records(records)
    text = packager.playlist()
    assert text.count("#EXTINF:2.048,") == 3 and text.endswith("#EXT-X-ENDLIST\n")
