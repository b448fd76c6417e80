"""The bus's vocabulary: every event survives its JSON unchanged, the wire shape stays the one
nodes of the previous version read, and what this node cannot read is skipped, never raised."""

from __future__ import annotations

import json
import logging

import pytest

from podium import events
from podium.domain import webhooks as webhook_rules
from podium.events import (
    KINDS,
    CaptionMade,
    CommentPosted,
    Event,
    ModerationChanged,
    PinChanged,
    PostRemoved,
    QuestionsChanged,
    Reacted,
    RecordingReady,
    SpaceEnded,
    SpaceScheduled,
    SpaceStarted,
    StageChanged,
    decode,
    encode,
)
from podium.ids import SpaceId
from podium.webhooks import FROM_BUS

SPACE = SpaceId("abcdefghijkl")

ONE_OF_EACH: list[Event] = [
    SpaceScheduled(SPACE, "n1"),
    SpaceStarted(SPACE, "n1"),
    SpaceEnded(SPACE, "n1"),
    RecordingReady(SPACE, "n1"),
    StageChanged(SPACE, "n1", "mute"),
    CommentPosted(SPACE, "n1", {"id": "p1", "text": "ünïcode ✓"}),
    QuestionsChanged(SPACE, "n1"),
    PostRemoved(SPACE, "n1", "p1"),
    Reacted(SPACE, "n1", "👏", 2),
    PinChanged(SPACE, "n1"),
    ModerationChanged(SPACE, "n1"),
    CaptionMade(SPACE, "n1", "m1", "Ada", "m1.3", 1.5, 3.25, "hello & <welcome>", True),
]


def test_one_of_each_kind_is_listed() -> None:
    assert {type(e) for e in ONE_OF_EACH} == set(KINDS)


@pytest.mark.parametrize("event", ONE_OF_EACH, ids=lambda e: type(e).__name__)
def test_every_event_survives_its_json(event: Event) -> None:
    assert decode(json.loads(json.dumps(encode(event)))) == event


def test_the_wire_shape_is_the_one_older_nodes_read() -> None:
    assert encode(SpaceEnded(SPACE, "n1")) == {"type": "space.ended", "space": SPACE, "node": "n1"}
    assert encode(StageChanged(SPACE, "n1", "rotate")) == {
        "type": "stage.changed",
        "space": SPACE,
        "node": "n1",
        "action": "rotate",
    }
    assert encode(PostRemoved(SPACE, "n1", "p9"))["post_id"] == "p9"
    # What an older node sent: no node, a reaction without its count.
    assert decode({"type": "reaction", "space": SPACE, "emoji": "🔥"}) == Reacted(SPACE, "", "🔥", 1)


@pytest.mark.parametrize(
    "data",
    [
        {"type": "space.teleported", "space": SPACE, "node": "n1"},  # a newer node's
        {"space": SPACE, "node": "n1"},  # no type
        {"type": "space.ended", "node": "n1"},  # no space
        {"type": "space.ended", "space": "../../etc", "node": "n1"},  # not a space id
        {"type": "stage.changed", "space": SPACE, "node": "n1", "action": 7},  # a field of the wrong type
        {"type": "reaction", "space": SPACE, "node": "n1", "emoji": "👏", "count": True},
        ["space.ended"],  # not an object
    ],
)
def test_what_this_node_cannot_read_is_skipped_with_a_log_line(data: object, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=events.__name__):
        assert decode(data) is None
    assert caplog.records, "skipped silently"


def test_webhooks_are_sent_for_the_events_the_domain_names() -> None:
    assert tuple(kind.TYPE for kind in FROM_BUS) == webhook_rules.EVENTS
