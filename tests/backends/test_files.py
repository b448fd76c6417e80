"""The local media store: durable parts, and the segment a crash cut short made whole again."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from podium.backends.files import FileMediaStore
from podium.ids import SpaceId
from podium.media import m4a
from podium.media.aac import AacEncoder
from podium.media.fmp4 import init_section
from podium.media.packager import INIT_NAME, Packager, Part, Segment
from podium.testing.whip_client import tone

SPACE = SpaceId("abcdefghij12")
START = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)


async def stage_output(store: FileMediaStore, seconds: float) -> list[Part]:
    """Writes what a stage would for `seconds` of audio; returns the parts of the open segment."""
    encoder = AacEncoder()
    await store.write(SPACE, INIT_NAME, init_section(encoder.audio_specific_config, 48000))
    packager = Packager(START)
    source = tone(440)
    open_parts: list[Part] = []
    for n in range(int(seconds * 50)):
        for item in packager.push(encoder.encode(source(n))):
            if isinstance(item, Part):
                await store.write_part(SPACE, item)
                open_parts.append(item)
            elif isinstance(item, Segment):
                await store.write(SPACE, item.record.name, item.data)
                await store.append_record(SPACE, item.record)
                await store.forget_parts(SPACE, item.record.msn)
                open_parts = []
    return open_parts


async def test_parts_of_finished_segments_are_not_kept(tmp_path: Path) -> None:
    store = FileMediaStore(tmp_path)
    open_parts = await stage_output(store, 5.0)
    records = await store.records(SPACE)
    assert [r.msn for r in records] == [0, 1]
    on_disk = sorted(p.name for p in (tmp_path / SPACE).glob("p*.m4s"))
    assert on_disk == sorted(p.name for p in open_parts) and on_disk
    assert await store.recover(SPACE) is not None  # the open segment's parts become segment 2


async def test_a_crash_mid_segment_loses_at_most_the_part_being_made(tmp_path: Path) -> None:
    store = FileMediaStore(tmp_path)
    open_parts = await stage_output(store, 5.5)  # 2 whole segments, then parts of the third
    assert len(open_parts) == 2
    recovered = await store.recover(SPACE)
    assert recovered is not None and recovered.msn == 2
    assert recovered.duration_s == sum(p.duration_s for p in open_parts)
    assert recovered.program_date_time == open_parts[0].segment_start
    records = await store.records(SPACE)
    assert [r.msn for r in records] == [0, 1, 2]
    data = (tmp_path / SPACE / recovered.name).read_bytes()
    assert data == b"".join(p.data for p in open_parts)
    assert not list((tmp_path / SPACE).glob("p*.m4s"))
    # Twice is harmless: nothing more to mend.
    assert await store.recover(SPACE) is None
    # The whole recording still reads as one stream of frames.
    files = await store.read_many(SPACE, [INIT_NAME] + [r.name for r in records])
    assert len(m4a.fragment_samples(files[1:])) == sum(round(r.duration_s * 48000 / 1024) for r in records)


async def test_nothing_to_mend_without_parts_or_with_a_torn_head(tmp_path: Path) -> None:
    store = FileMediaStore(tmp_path)
    assert await store.recover(SPACE) is None
    await stage_output(store, 4.3)  # two whole segments and a few frames: no part yet
    assert await store.recover(SPACE) is None
    (tmp_path / SPACE / "open-segment.json").write_text("{not json")
    assert await store.recover(SPACE) is None
