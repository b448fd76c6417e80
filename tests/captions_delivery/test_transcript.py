"""The transcript's sans-IO core: stored lines to ordered segments, and the stream's WebVTT
segments placed on the audio's decode time (pre-show included) so that cues line up."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import webvtt

from podium.audience.timeline import MAX_CAPTIONS, RECENT_CAPTIONS, Timeline
from podium.captions.engine import Caption
from podium.captions.transcript import (
    Segment,
    line_of,
    parse_lines,
    render_vtt,
    slots,
    subtitle_playlist,
    subtitle_segment,
)
from podium.media.packager import Packager, SegmentRecord

T0 = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)


def caption(utterance: str, start_s: float, end_s: float, text: str, final: bool = True) -> Caption:
    return Caption("abcdefghijkl", "host", "Ada", utterance, start_s, end_s, text, final)


def test_stored_lines_read_back_ordered_once_per_utterance_skipping_garbage() -> None:
    lines = [
        line_of(caption("host.2", 4.0, 5.0, "second")),
        "{not json",
        json.dumps({"utterance": "x", "speaker": "host"}),  # fields missing
        json.dumps({"utterance": "y", "speaker": "h", "name": "A", "start_s": "NaN", "end_s": 1, "text": "nan"}),
        line_of(caption("host.1", 1.0, 2.0, "first")),
        line_of(caption("host.2", 4.0, 5.5, "second, stored again")),  # a retry: the last one wins
    ]
    assert [(s.utterance, s.text) for s in parse_lines(lines)] == [
        ("host.1", "first"),
        ("host.2", "second, stored again"),
    ]


def record(msn: int, duration_s: float, at_s: float, preshow: bool = False) -> SegmentRecord:
    return SegmentRecord(msn, duration_s, T0 + timedelta(seconds=at_s), preshow=preshow)


def test_subtitle_segments_map_recording_time_onto_the_audios_decode_time_past_the_pre_show() -> None:
    # Two pre-show segments (the second cut short by going live), then the recording.
    records = [record(0, 2.048, 0, True), record(1, 1.0, 2.048, True), record(2, 2.048, 3.048), record(3, 2.048, 5.096)]
    placed = slots(records)
    assert [s.recording_s for s in placed] == [-3.048, -1.0, 0.0, 2.048]
    # Exactly the decode time the packager gives each segment's first fragment.
    packager = Packager(T0, history=records[:2])
    assert placed[2].decode_samples == packager._base_samples() == round(3.048 * 48000)

    words = [Segment("host.1", "host", "Ada", 1.5, 2.5, "across the boundary")]
    pre = subtitle_segment(placed[1], words)
    assert "-->" not in pre  # the pre-show has no words
    # Its map still names where recording time 0 falls in the audio: the pre-show's end.
    assert "MPEGTS:274320,LOCAL:00:00:00.000" in pre  # 3.048 s at 90 kHz
    first, second = subtitle_segment(placed[2], words), subtitle_segment(placed[3], words)
    assert first.startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:274320,LOCAL:00:00:00.000\n\n")
    assert second.startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:458640,LOCAL:00:00:02.048\n\n")
    for text in (first, second):  # a cue over a boundary is in both segments, with the same times
        (cue,) = webvtt.from_string(text)
        assert (cue.start, cue.end, cue.voice, cue.text) == (
            "00:00:01.500",
            "00:00:02.500",
            "Ada",
            "across the boundary",
        )

    playlist = subtitle_playlist(placed[2:], 2, 2, ended=True)
    assert playlist.splitlines() == [
        "#EXTM3U",
        "#EXT-X-VERSION:6",
        "#EXT-X-TARGETDURATION:2",
        "#EXT-X-MEDIA-SEQUENCE:2",
        "#EXT-X-PLAYLIST-TYPE:EVENT",
        "#EXT-X-PROGRAM-DATE-TIME:2026-12-07T18:00:03.048Z",
        "#EXTINF:2.048,",
        "c2.vtt",
        "#EXT-X-PROGRAM-DATE-TIME:2026-12-07T18:00:05.096Z",
        "#EXTINF:2.048,",
        "c3.vtt",
        "#EXT-X-ENDLIST",
    ]


def test_the_whole_transcript_as_webvtt_escapes_what_would_be_markup() -> None:
    text = render_vtt([Segment("u", "m", "A & B", 0.0, 0.0, "x < y > z\n\nnext")])
    (cue,) = webvtt.from_string(text)
    assert cue.voice == "A &amp; B" and cue.text == "x &lt; y &gt; z next"
    assert cue.end == "00:00:00.020"  # a cue always lasts a little


def view(utterance: str, text: str, final: bool) -> dict[str, object]:
    return {"id": utterance, "speaker": "host", "name": "Ada", "start_s": 0, "end_s": 1, "text": text, "final": final}


def test_a_flood_of_captions_cannot_grow_a_timeline_object() -> None:
    timeline = Timeline()
    timeline.caption(view("keep.final", "said", True))
    for n in range(500):
        timeline.caption(view(f"u{n}", "partial words", False))
    item = timeline.tick(T0, {"now": 0, "peak": 0}, [])
    captions = item["captions"]
    assert len(captions) == MAX_CAPTIONS
    assert captions[0]["id"] == "keep.final"  # partials went first
    assert captions[-1]["id"] == "u499"
    assert "captions" not in timeline.tick(T0, {"now": 0, "peak": 0}, [])  # nothing new: no field


def test_keyframes_carry_the_last_finals() -> None:
    timeline = Timeline()
    for n in range(8):
        timeline.caption(view(f"f{n}", f"final {n}", True))
        timeline.caption(view(f"p{n}", "partial", False))
        timeline.tick(T0, {"now": 0, "peak": 0}, [])
    while not timeline.next_is_keyframe:
        timeline.tick(T0, {"now": 0, "peak": 0}, [])
    keyframe = timeline.tick(T0, {"now": 0, "peak": 0}, [])
    assert [c["id"] for c in keyframe["recent_captions"]] == [f"f{n}" for n in range(8 - RECENT_CAPTIONS, 8)]
