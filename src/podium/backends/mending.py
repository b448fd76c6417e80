"""What every media store writes to mend a crash, and how it mends: sans-IO, shared by all stores.

A part is stored as it is made; with the first part of a segment goes the segment's head (its
number, start time and flags, `open-segment.json`). After a crash, the parts of the segment that
was being made, with its head and the init section, become that segment: short, but whole."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from podium.media import m4a
from podium.media.packager import Part, SegmentRecord

MAX_PARTS = 64  # no segment has more parts than this


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
