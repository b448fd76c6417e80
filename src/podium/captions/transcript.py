"""The transcript: the final captions of a space, as stored lines in, segments and files out.

Sans-IO. `captions.jsonl` holds one JSON object per final caption (utterance, speaker, name,
start_s, end_s, text), appended as they come; this module reads those lines into `Segment`s and
renders them as JSON, WebVTT (with `<v Name>` voices) and SRT, and cuts the WebVTT segments of
the stream's subtitles rendition.

Invariants: times are seconds on the recording's axis (the replay's); segments come out ordered
by start (then end, then speaker), one per utterance (a line stored twice, after a retry, counts
once: the last one wins); a malformed line is skipped, never fatal; rendered text never carries a
line break (a blank line would end a cue); WebVTT text has `&`, `<` and `>` escaped, SRT text
(which has no escapes) never carries an angle bracket.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from podium.captions.engine import Caption
from podium.media.packager import SegmentRecord

CAPTIONS_NAME = "captions.jsonl"
# The rendition's 90 kHz clock (MPEG-TS), which X-TIMESTAMP-MAP speaks in.
MPEGTS_HZ = 90_000


@dataclass(frozen=True)
class Segment:
    """One utterance's final words."""

    utterance: str
    speaker_id: str
    speaker: str  # the name
    start_s: float
    end_s: float
    text: str

    def view(self) -> dict[str, Any]:
        return {
            "speaker": self.speaker,
            "speaker_id": self.speaker_id,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "text": self.text,
        }


def line_of(caption: Caption) -> str:
    """The stored line of a final caption."""
    return json.dumps(
        {
            "utterance": caption.utterance,
            "speaker": caption.speaker,
            "name": caption.name,
            "start_s": round(caption.start_s, 3),
            "end_s": round(caption.end_s, 3),
            "text": caption.text,
        },
        ensure_ascii=False,
    )


def segment_of(caption: Caption) -> Segment:
    return Segment(
        caption.utterance,
        caption.speaker,
        caption.name,
        round(caption.start_s, 3),
        round(caption.end_s, 3),
        caption.text,
    )


def parse_lines(lines: Iterable[str]) -> list[Segment]:
    """Stored lines to ordered segments; malformed lines and empty words are left out."""
    by_utterance: dict[str, Segment] = {}
    for line in lines:
        try:
            item = json.loads(line)
            segment = Segment(
                str(item["utterance"]),
                str(item["speaker"]),
                str(item["name"]),
                float(item["start_s"]),
                float(item["end_s"]),
                str(item["text"]).strip(),
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
        if not (math.isfinite(segment.start_s) and math.isfinite(segment.end_s)) or not segment.text:
            continue
        by_utterance[segment.utterance] = segment
    return ordered(by_utterance.values())


def ordered(segments: Iterable[Segment]) -> list[Segment]:
    return sorted(segments, key=lambda s: (s.start_s, s.end_s, s.speaker_id, s.utterance))


def overlapping(segments: Sequence[Segment], start_s: float, end_s: float) -> list[Segment]:
    """The segments with words in [start_s, end_s)."""
    return [s for s in segments if s.start_s < end_s and s.end_s > start_s]


# -- WebVTT and SRT -------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split())


def escape_vtt(text: str) -> str:
    return _one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clock(seconds: float, decimal: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{whole:02d}{decimal}{millis:03d}"


def vtt_time(seconds: float) -> str:
    return _clock(seconds, ".")


def srt_time(seconds: float) -> str:
    return _clock(seconds, ",")


def _cue_end(segment: Segment) -> float:
    # A cue lasts at least a frame: players drop cues whose end is not after their start.
    return max(segment.end_s, segment.start_s + 0.02)


def _vtt_cue(segment: Segment) -> str:
    voice = escape_vtt(segment.speaker) or "?"
    return f"{vtt_time(segment.start_s)} --> {vtt_time(_cue_end(segment))}\n<v {voice}>{escape_vtt(segment.text)}</v>"


def render_vtt(segments: Sequence[Segment]) -> str:
    """The whole transcript as WebVTT, each cue voiced by its speaker's name."""
    return "WEBVTT\n\n" + "".join(_vtt_cue(segment) + "\n\n" for segment in segments)


def escape_srt(text: str) -> str:
    """SubRip has no escapes, and players read `<b>`, `<font …>` as markup: angle brackets become
    their single-quotation lookalikes, so that words are shown as said, never as markup."""
    return _one_line(text).replace("<", "\u2039").replace(">", "\u203a")


def render_srt(segments: Sequence[Segment]) -> str:
    """The whole transcript as SubRip: numbered cues, the speaker's name before their words."""
    cues = []
    for number, segment in enumerate(segments, start=1):
        times = f"{srt_time(segment.start_s)} --> {srt_time(_cue_end(segment))}"
        cues.append(f"{number}\n{times}\n{escape_srt(segment.speaker)}: {escape_srt(segment.text)}\n")
    return "\n".join(cues)


# -- the subtitles rendition -----------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """Where one audio segment sits: its record (number, length, wall-clock start, as the audio
    playlist lists it), its decode time in the fMP4 (`decode_samples`, counted from the stream's
    first segment, pre-show included, exactly as the packager counts) and its start on the
    recording's axis (`recording_s`; negative in the pre-show, which is not recorded)."""

    record: SegmentRecord
    decode_samples: int
    recording_s: float

    @property
    def msn(self) -> int:
        return self.record.msn

    @property
    def duration_s(self) -> float:
        return self.record.duration_s

    @property
    def end_s(self) -> float:
        """Its end on the decode axis, in seconds."""
        return self.decode_samples / SAMPLE_RATE + self.duration_s


# The audio's sample rate: the fMP4's timescale.
SAMPLE_RATE = 48_000


def slots(records: Sequence[SegmentRecord]) -> list[Slot]:
    """Every segment of the stream (all its records, pre-show included, in order) placed on the
    decode and recording axes. The pre-show's segments all come first: the recording starts at
    its end."""
    preshow_s = sum(record.duration_s for record in records if record.preshow)
    placed, decoded_s = [], 0.0
    for record in records:
        placed.append(Slot(record, round(decoded_s * SAMPLE_RATE), round(decoded_s - preshow_s, 6)))
        decoded_s += record.duration_s
    return placed


def subtitle_segment(slot: Slot, segments: Sequence[Segment]) -> str:
    """The WebVTT segment `c{msn}.vtt`: the cues with words in the audio segment, in recording
    time, mapped onto the audio's decode time with X-TIMESTAMP-MAP, so that a player lines them
    up with the fMP4 audio (hls.js and Safari both read the map)."""
    local = max(0.0, slot.recording_s)
    mpegts = slot.decode_samples * MPEGTS_HZ // SAMPLE_RATE + round((local - slot.recording_s) * MPEGTS_HZ)
    head = f"WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{mpegts},LOCAL:{vtt_time(local)}\n\n"
    end = slot.recording_s + slot.duration_s
    if end <= 0:
        return head  # the pre-show: no words (the transcript starts with the recording)
    return head + "".join(_vtt_cue(s) + "\n\n" for s in overlapping(segments, max(0.0, slot.recording_s), end))


def subtitle_playlist(listed: Sequence[Slot], target_duration_s: int, first_msn: int, ended: bool) -> str:
    """`captions.m3u8`: a plain (not low-latency) media playlist of WebVTT segments, one per audio
    segment listed, with the same numbers, lengths and dates."""
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:6",
        f"#EXT-X-TARGETDURATION:{target_duration_s}",
        f"#EXT-X-MEDIA-SEQUENCE:{listed[0].msn if listed else first_msn}",
        "#EXT-X-PLAYLIST-TYPE:EVENT",
    ]
    for slot in listed:
        if slot.record.discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        moment = slot.record.program_date_time.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{moment}")
        lines.append(f"#EXTINF:{slot.duration_s:.3f},")
        lines.append(subtitle_name(slot.msn))
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def subtitle_name(msn: int) -> str:
    return f"c{msn}.vtt"
