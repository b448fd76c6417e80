"""What every media store writes to mend a crash, and how it mends, shared by all stores.

A part is stored as it is made; with the first part of a segment goes the segment's head (its
number, start time and flags, `open-segment.json`). After a crash, the parts of the segment that
was being made, with its head and the init section, become that segment: short, but whole."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from podium.backends.interfaces import MediaStore
from podium.ids import SpaceId
from podium.media import m4a
from podium.media.packager import INIT_NAME, Part, SegmentRecord, part_name

MAX_PARTS = 64  # no segment has more parts than this
OPEN_SEGMENT_NAME = "open-segment.json"


@dataclass(frozen=True)
class OpenSegment:
    msn: int
    program_date_time: datetime
    discontinuity: bool
    preshow: bool


def head_of(part: Part) -> bytes | None:
    """The head to store with `part`, if it is the first part of its segment."""
    if part.index != 0 or part.segment_start is None:
        return None
    head = {
        "msn": part.msn,
        "pdt": part.segment_start.isoformat(),
        "discontinuity": part.discontinuity,
        "preshow": part.preshow,
    }
    return json.dumps(head).encode()


def parse_head(data: bytes) -> OpenSegment | None:
    """A stored head, or None if it cannot be read (then nothing is mended)."""
    try:
        head = json.loads(data)
        return OpenSegment(
            int(head["msn"]),
            datetime.fromisoformat(head["pdt"]),
            bool(head["discontinuity"]),
            bool(head.get("preshow", False)),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def mended_record(head: OpenSegment, init: bytes, data: bytes) -> SegmentRecord | None:
    """The record of the segment made of the parts' `data`, or None if they are not ours to mend."""
    try:
        _stsd, timescale = m4a.sample_description(init)
        duration = m4a.fragment_samples([data]).total_duration / timescale
    except (m4a.NotAFragment, KeyError):
        return None
    return SegmentRecord(head.msn, round(duration, 6), head.program_date_time, head.discontinuity, head.preshow)


class Mending:
    """`write_part` and `recover` for a media store, made of its other reads and writes."""

    async def write_part(self: MediaStore, space_id: SpaceId, part: Part) -> None:
        head = head_of(part)
        if head is not None:
            await self.write(space_id, OPEN_SEGMENT_NAME, head)
        await self.write(space_id, part.name, part.data)

    async def recover(self: MediaStore, space_id: SpaceId) -> SegmentRecord | None:
        """After a crash: the parts of the segment that was being made become that segment (short),
        durable and recorded like any other, so at most the part in the making was lost."""
        head_data, init = await self.read(space_id, OPEN_SEGMENT_NAME), await self.read(space_id, INIT_NAME)
        if head_data is None or init is None:
            return None
        records = await self.records(space_id)
        head = parse_head(head_data)
        if head is None or head.msn != (records[-1].msn + 1 if records else 0):
            return None  # unreadable, or the segment it names was completed (or is older)
        parts: list[bytes] = []
        for index in range(MAX_PARTS):
            part = await self.read(space_id, part_name(head.msn, index))
            if part is None:
                break
            parts.append(part)
        if not parts:
            return None
        data = b"".join(parts)
        record = mended_record(head, init, data)
        if record is None:
            return None  # not ours to mend: leave the files as they are
        await self.write(space_id, record.name, data)
        await self.append_record(space_id, record)
        await self.forget_parts(space_id, record.msn)
        return record
