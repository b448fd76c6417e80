"""Podium's Low-Latency HLS packager: AAC frames in; parts, segments and playlists out.

Sans-IO and deterministic: time comes in as arguments, bytes go out as return values. The
stage writes what it returns to storage and wakes waiting requests.

Layout (at 48 kHz, 1024-sample AAC frames): a part is 24 frames = 0.512 s, a segment is 4
parts = 2.048 s. Invariants:
- media sequence numbers and part indexes only grow; a segment's bytes are its parts' bytes
  concatenated, in order;
- the playlist is an EVENT playlist: it holds every segment since the start (it *is* the
  recording), and clients that support it fetch only the tail (`_HLS_skip=YES`);
- after `finish()` the playlist carries EXT-X-ENDLIST and nothing is added any more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from podium.media import fmp4

INIT_NAME = "init.mp4"


def part_name(msn: int, index: int) -> str:
    return f"p{msn}-{index}.m4s"


def segment_name(msn: int) -> str:
    return f"s{msn}.m4s"


@dataclass(frozen=True)
class Layout:
    sample_rate: int = 48_000
    frame_samples: int = 1024
    frames_per_part: int = 24
    parts_per_segment: int = 4
    # How far back a delta playlist may skip, in target durations (the spec asks for ≥ 6).
    skip_target_durations: int = 6
    # Parts are listed only for the newest segments (the spec allows dropping them after 3 target durations).
    segments_with_parts: int = 3

    @property
    def part_s(self) -> float:
        return self.frames_per_part * self.frame_samples / self.sample_rate

    @property
    def segment_s(self) -> float:
        return self.part_s * self.parts_per_segment

    @property
    def target_duration_s(self) -> int:
        return max(1, round(self.segment_s))

    @property
    def part_hold_back_s(self) -> float:
        return 3 * self.part_s


@dataclass(frozen=True)
class Part:
    msn: int
    index: int
    duration_s: float
    data: bytes
    # Of the segment the part opens or continues: what its record will say, so that a crash
    # before the segment is whole can still turn its stored parts into a segment on restart.
    segment_start: datetime | None = None
    discontinuity: bool = False
    preshow: bool = False

    @property
    def name(self) -> str:
        return part_name(self.msn, self.index)


@dataclass(frozen=True)
class SegmentRecord:
    """What is kept of a finished segment: enough to write its playlist lines again after a restart."""

    msn: int
    duration_s: float
    program_date_time: datetime
    discontinuity: bool = False
    preshow: bool = False  # hold audio before the show: streamed, never part of the recording

    @property
    def name(self) -> str:
        return segment_name(self.msn)


@dataclass(frozen=True)
class Segment:
    record: SegmentRecord
    data: bytes


class Block(Enum):
    """The answer to a blocking playlist reload (`_HLS_msn`, `_HLS_part`)."""

    READY = "ready"  # the playlist already holds what was asked for: answer now
    WAIT = "wait"  # it will soon: hold the request
    TOO_FAR = "too_far"  # more than two segments ahead: answer 400


@dataclass
class _OpenSegment:
    msn: int
    program_date_time: datetime
    discontinuity: bool
    preshow: bool = False
    parts: list[Part] = field(default_factory=list)


class Packager:
    def __init__(
        self,
        start: datetime,
        layout: Layout | None = None,
        history: Sequence[SegmentRecord] = (),
        preshow: bool = False,
    ) -> None:
        self.layout = layout or Layout()
        self.preshow = preshow
        self._history: list[SegmentRecord] = list(history)
        self._recent: list[tuple[SegmentRecord, list[Part]]] = []
        self._pending_frames: list[bytes] = []
        self._ended = False
        next_msn = self._history[-1].msn + 1 if self._history else 0
        # A run after a restart continues the numbering and is marked as a discontinuity.
        self._open = _OpenSegment(next_msn, start, discontinuity=bool(self._history), preshow=preshow)
        self._run_start = start
        self._samples_in_run = 0
        self._lines_cache: dict[int, str] = {}
        # Rendered playlists, valid until the next part: every listener asks for the same text.
        self._playlist_cache: dict[bool, bytes] = {}

    @classmethod
    def from_records(cls, records: Sequence[SegmentRecord], layout: Layout | None = None) -> Packager:
        """A finished packager over stored records: what serves an ended space's playlist."""
        start = records[-1].program_date_time if records else datetime.fromtimestamp(0).astimezone()
        packager = cls(start, layout, history=records)
        packager.finish()
        return packager

    # -- input -----------------------------------------------------------------------------

    def push(self, frames: Sequence[bytes]) -> list[Part | Segment]:
        """Add encoded frames; returns the parts and segments they completed, oldest first."""
        if self._ended:
            raise RuntimeError("the packager has finished; nothing more can be added")
        out: list[Part | Segment] = []
        for frame in frames:
            self._pending_frames.append(frame)
            if len(self._pending_frames) == self.layout.frames_per_part:
                out.extend(self._close_part())
        if out:
            self._playlist_cache.clear()
        return out

    def go_live(self) -> list[Part | Segment]:
        """The pre-show ends here: what is buffered closes as a short part and segment, and the
        next segment, the recording's first, starts with the next frame (no gap, no overlap)."""
        self.preshow = False
        out: list[Part | Segment] = []
        if self._pending_frames:
            out.extend(self._close_part(force_segment=True))
        elif self._open.parts:
            out.append(self._close_segment())
        self._open.preshow = False
        self._playlist_cache.clear()
        return out

    def finish(self) -> list[Part | Segment]:
        """Flush what is buffered as a last (possibly short) part and segment, and end the playlist."""
        out: list[Part | Segment] = []
        if self._ended:
            return out
        if self._pending_frames:
            out.extend(self._close_part(force_segment=True))
        elif self._open.parts:
            out.append(self._close_segment())
        self._ended = True
        self._playlist_cache.clear()
        return out

    def _close_part(self, force_segment: bool = False) -> list[Part | Segment]:
        layout = self.layout
        frames, self._pending_frames = self._pending_frames, []
        seg = self._open
        index = len(seg.parts)
        base = self._base_samples() + sum(round(p.duration_s * layout.sample_rate) for p in seg.parts)
        sequence_number = seg.msn * layout.parts_per_segment + index + 1
        data = fmp4.fragment(sequence_number, base, frames, layout.frame_samples)
        part = Part(
            seg.msn,
            index,
            len(frames) * layout.frame_samples / layout.sample_rate,
            data,
            seg.program_date_time,
            seg.discontinuity,
            seg.preshow,
        )
        seg.parts.append(part)
        out: list[Part | Segment] = [part]
        if force_segment or len(seg.parts) == layout.parts_per_segment:
            out.append(self._close_segment())
        return out

    def _close_segment(self) -> Segment:
        seg = self._open
        duration_s = sum(p.duration_s for p in seg.parts)
        record = SegmentRecord(seg.msn, round(duration_s, 6), seg.program_date_time, seg.discontinuity, seg.preshow)
        self._history.append(record)
        self._recent.append((record, seg.parts))
        del self._recent[: -self.layout.segments_with_parts - 1]
        self._samples_in_run += sum(round(p.duration_s * self.layout.sample_rate) for p in seg.parts)
        next_start = self._run_start + timedelta(seconds=self._samples_in_run / self.layout.sample_rate)
        self._open = _OpenSegment(seg.msn + 1, next_start, discontinuity=False, preshow=self.preshow)
        return Segment(record, b"".join(p.data for p in seg.parts))

    def _base_samples(self) -> int:
        # Decode time continues across runs so a player never sees time go back.
        return round(sum(r.duration_s for r in self._history) * self.layout.sample_rate)

    # -- queries ---------------------------------------------------------------------------

    @property
    def is_ended(self) -> bool:
        return self._ended

    @property
    def segments(self) -> list[SegmentRecord]:
        return list(self._history)

    def last_part(self) -> tuple[int, int] | None:
        """(msn, index) of the newest part, or None before the first."""
        if self._open.parts:
            return self._open.msn, len(self._open.parts) - 1
        if self._recent:
            record, parts = self._recent[-1]
            return record.msn, len(parts) - 1
        return None

    def part(self, msn: int, index: int) -> Part | None:
        for p in self._open.parts:
            if p.msn == msn and p.index == index:
                return p
        for record, parts in self._recent:
            if record.msn == msn and 0 <= index < len(parts):
                return parts[index]
        return None

    def is_next_part(self, msn: int, index: int) -> bool:
        """True for the part the preload hint names: it is being made now."""
        return not self._ended and (msn, index) == (self._open.msn, len(self._open.parts))

    def block(self, msn: int, part: int | None) -> Block:
        """Whether a playlist holding segment `msn` (and its part `part`) can be answered now."""
        if self._ended:
            return Block.READY
        last = self.last_part()
        newest_msn = self._open.msn
        if msn > newest_msn + 2:
            return Block.TOO_FAR
        if part is None:
            # Without a part, wait for the whole segment.
            done = self._history[-1].msn if self._history else -1
            return Block.READY if msn <= done else Block.WAIT
        if part >= self.layout.parts_per_segment:
            msn, part = msn + 1, 0
        if last is not None and (msn, part) <= last:
            return Block.READY
        return Block.WAIT

    # -- playlist --------------------------------------------------------------------------

    def playlist(self, skip: bool = False) -> str:
        return self.playlist_bytes(skip).decode()

    def playlist_bytes(self, skip: bool = False) -> bytes:
        """The playlist as UTF-8, rendered once per part however many listeners ask."""
        cached = self._playlist_cache.get(skip)
        if cached is None:
            cached = self._playlist_cache[skip] = self._render(skip).encode()
        return cached

    def _render(self, skip: bool) -> str:
        layout = self.layout
        skip_until_s = layout.skip_target_durations * layout.target_duration_s
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:9",
            f"#EXT-X-TARGETDURATION:{layout.target_duration_s}",
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,"
            f"CAN-SKIP-UNTIL={skip_until_s:.1f},PART-HOLD-BACK={layout.part_hold_back_s:.3f}",
            f"#EXT-X-PART-INF:PART-TARGET={layout.part_s:.3f}",
            "#EXT-X-PLAYLIST-TYPE:EVENT",
            f"#EXT-X-MEDIA-SEQUENCE:{self._history[0].msn if self._history else self._open.msn}",
            f'#EXT-X-MAP:URI="{INIT_NAME}"',
        ]
        history = self._history
        first_listed = 0
        if skip:
            # Keep the newest segments covering at least `skip_until_s`; replace the rest.
            kept_s = 0.0
            first_listed = len(history)
            while first_listed > 0 and kept_s < skip_until_s:
                first_listed -= 1
                kept_s += history[first_listed].duration_s
            if first_listed > 0:
                lines.append(f"#EXT-X-SKIP:SKIPPED-SEGMENTS={first_listed}")
        recent_parts = {record.msn: parts for record, parts in self._recent[-layout.segments_with_parts :]}
        for record in history[first_listed:]:
            parts = recent_parts.get(record.msn)
            if parts is None:
                lines.append(self._segment_lines(record))
            else:
                lines.append(self._segment_head(record))
                lines.extend(self._part_line(p) for p in parts)
                lines.append(f"#EXTINF:{record.duration_s:.3f},\n{record.name}")
        if self._ended:
            lines.append("#EXT-X-ENDLIST")
        else:
            if self._open.parts:
                lines.append(self._segment_head_open())
            lines.extend(self._part_line(p) for p in self._open.parts)
            hint = part_name(self._open.msn, len(self._open.parts))
            lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{hint}"')
        return "\n".join(lines) + "\n"

    def _segment_lines(self, record: SegmentRecord) -> str:
        cached = self._lines_cache.get(record.msn)
        if cached is None:
            cached = self._segment_head(record) + f"\n#EXTINF:{record.duration_s:.3f},\n{record.name}"
            self._lines_cache[record.msn] = cached
        return cached

    @staticmethod
    def _segment_head(record: SegmentRecord) -> str:
        head = f"#EXT-X-PROGRAM-DATE-TIME:{_iso(record.program_date_time)}"
        return ("#EXT-X-DISCONTINUITY\n" + head) if record.discontinuity else head

    def _segment_head_open(self) -> str:
        head = f"#EXT-X-PROGRAM-DATE-TIME:{_iso(self._open.program_date_time)}"
        return ("#EXT-X-DISCONTINUITY\n" + head) if self._open.discontinuity else head

    @staticmethod
    def _part_line(part: Part) -> str:
        return f'#EXT-X-PART:DURATION={part.duration_s:.3f},URI="{part.name}",INDEPENDENT=YES'


def program_records(records: Sequence[SegmentRecord]) -> list[SegmentRecord]:
    """The recording: every segment but the pre-show's hold audio."""
    return [record for record in records if not record.preshow]


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def multivariant_playlist(
    bitrate: int, media_uri: str = "live.m3u8", subtitles: tuple[str, str, str] | None = None
) -> str:
    """The entry playlist: one audio-only rendition, with its codec, so players pick MSE setup at
    once; with `subtitles` (name, language, playlist URI), a WebVTT rendition of group "cc"."""
    media, group = "", ""
    if subtitles is not None:
        name, language, uri = subtitles
        media = (
            f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="cc",NAME="{name}",LANGUAGE="{language}",'
            f'DEFAULT=NO,AUTOSELECT=YES,URI="{uri}"\n'
        )
        group = ',SUBTITLES="cc"'
    return (
        f"#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n{media}"
        f'#EXT-X-STREAM-INF:BANDWIDTH={int(bitrate * 1.1)},CODECS="mp4a.40.2"{group}\n{media_uri}\n'
    )
