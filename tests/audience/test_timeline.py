from datetime import UTC, datetime

import pytest

from podium.audience.timeline import Timeline, check_reaction
from podium.errors import InvalidInput

NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
LISTENERS = {"now": 3, "peak": 5}


def comment(n: int, author: str) -> dict:
    return {"id": f"p{n}", "author": author, "text": f"comment {n}"}


def test_one_object_per_interval_numbered_from_zero_even_when_empty() -> None:
    timeline = Timeline()
    items = [timeline.tick(NOW, LISTENERS, []) for _ in range(3)]
    assert [i["seq"] for i in items] == [0, 1, 2]
    assert items[1]["comments"] == [] and items[1]["reactions"] == {} and items[1]["listeners"] == LISTENERS


def test_reactions_are_coalesced_into_counts_per_interval() -> None:
    timeline = Timeline()
    for _ in range(500):
        timeline.react("👏")
    timeline.react("🔥", 3)
    assert timeline.tick(NOW, LISTENERS, [])["reactions"] == {"👏": 500, "🔥": 3}
    assert timeline.tick(NOW, LISTENERS, [])["reactions"] == {}


def test_a_flood_from_one_author_cannot_crowd_out_the_others() -> None:
    timeline = Timeline(max_comments=20, seed=7)
    for n in range(200):
        timeline.comment(comment(n, "flooder"))
    for n in range(200, 205):
        timeline.comment(comment(n, f"person{n}"))
    item = timeline.tick(NOW, LISTENERS, [])
    shown = item["comments"]
    assert len(shown) == 20 and item["comments_received"] == 205
    assert {c["author"] for c in shown} >= {f"person{n}" for n in range(200, 205)}
    assert [int(c["id"][1:]) for c in shown] == sorted(int(c["id"][1:]) for c in shown)  # oldest first


def test_all_comments_are_shown_when_few() -> None:
    timeline = Timeline(max_comments=20)
    for n in range(5):
        timeline.comment(comment(n, "same"))
    assert len(timeline.tick(NOW, LISTENERS, [])["comments"]) == 5


def test_questions_and_pinned_come_when_changed_and_removals_are_announced() -> None:
    timeline = Timeline()
    assert timeline.wants_questions and timeline.wants_pinned
    first = timeline.tick(NOW, LISTENERS, [], questions=[], pinned=None)
    assert "questions" in first and first["pinned"] is None
    assert not timeline.wants_questions
    second = timeline.tick(NOW, LISTENERS, [])
    assert "questions" not in second and "pinned" not in second
    timeline.comment(comment(1, "a"))
    timeline.removed("p1")
    timeline.pinned_changed()
    third = timeline.tick(NOW, LISTENERS, [], pinned={"text": "Read the rules"})
    assert third["comments"] == [] and third["removed"] == ["p1"] and third["pinned"] == {"text": "Read the rules"}


def test_only_the_fixed_reaction_set() -> None:
    assert check_reaction("👏") == "👏"
    with pytest.raises(InvalidInput, match="one of"):
        check_reaction("💩")


def test_keyframes_carry_the_whole_picture_so_late_readers_need_nothing_else() -> None:
    from podium.audience.timeline import KEYFRAME_EVERY, index

    timeline = Timeline()
    items = []
    for n in range(KEYFRAME_EVERY + 1):
        timeline.comment(comment(n, f"person{n}"))
        questions = [{"id": "q1", "text": "Why?"}] if timeline.wants_questions else None
        pinned = {"text": "Rules"} if timeline.wants_pinned else None
        items.append(timeline.tick(NOW, LISTENERS, [], questions=questions, pinned=pinned))
    keyframe = items[KEYFRAME_EVERY]
    assert keyframe["keyframe"] and keyframe["questions"] and keyframe["pinned"] == {"text": "Rules"}
    assert [c["id"] for c in keyframe["recent_comments"]][-3:] == ["p8", "p9", "p10"]
    assert "keyframe" not in items[KEYFRAME_EVERY - 1] and "questions" not in items[KEYFRAME_EVERY - 1]
    assert index(KEYFRAME_EVERY + 3, 1.0, "live", "/timeline/x")["keyframe"] == KEYFRAME_EVERY
