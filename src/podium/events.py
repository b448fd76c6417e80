"""What happens, told on the bus: one frozen dataclass per kind of event, and its JSON.

Each event belongs to one topic (`TOPIC`) and has a wire name (`TYPE`); on the wire (the Redis
bus) an event is a JSON object of its fields plus `"type"`, the same shape nodes exchanged before
these types existed. Every event says which node published it (`node`): a node ignores its own
events where the change is already made, and webhooks are delivered by the publishing node alone.

A node that meets a type it does not know (a newer node's, during a rolling upgrade) or a
malformed object skips it with a log line: `decode` returns None, it never raises.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal, get_args

import msgspec

from podium.ids import SpaceId, is_space_id

log = logging.getLogger(__name__)

Topic = Literal["spaces", "stage", "audience"]
SPACES: Topic = "spaces"  # a space's life: scheduled, started, ended, its recording ready
STAGE: Topic = "stage"  # who may do what on a stage changed
AUDIENCE: Topic = "audience"  # posts, votes, reactions, moderation: what the timelines show


@dataclass(frozen=True)
class _Event:
    """What every event says: its space, and the node that published it."""

    TOPIC: ClassVar[Topic]
    TYPE: ClassVar[str]
    space: SpaceId
    node: str

    def __init_subclass__(cls, topic: Topic, type: str) -> None:
        cls.TOPIC, cls.TYPE = topic, type


# A space's life. RecordingReady: the ended space's download is made (its replay is ready).
class SpaceScheduled(_Event, topic=SPACES, type="space.scheduled"): ...


class SpaceStarted(_Event, topic=SPACES, type="space.started"): ...


class SpaceEnded(_Event, topic=SPACES, type="space.ended"): ...


class RecordingReady(_Event, topic=SPACES, type="replay.ready"): ...


@dataclass(frozen=True)
class StageChanged(_Event, topic=STAGE, type="stage.changed"):
    """The stage rules changed (`action`: a stage action, "rotate" or "withdraw_links"): every
    node reads them again and makes its media match."""

    action: str


@dataclass(frozen=True)
class CommentPosted(_Event, topic=AUDIENCE, type="comment"):
    post: dict[str, Any]  # the post's public view


@dataclass(frozen=True)
class PostRemoved(_Event, topic=AUDIENCE, type="removed"):
    post_id: str


@dataclass(frozen=True)
class Reacted(_Event, topic=AUDIENCE, type="reaction"):
    emoji: str
    count: int = 1


# QuestionsChanged: a question was asked, voted on, shown again or answered (rank them again);
# ModerationChanged: the space's moderation rules changed (slow mode, blocked users, ...).
class QuestionsChanged(_Event, topic=AUDIENCE, type="question"): ...


class PinChanged(_Event, topic=AUDIENCE, type="pinned"): ...


class ModerationChanged(_Event, topic=AUDIENCE, type="moderation"): ...


@dataclass(frozen=True)
class CaptionMade(_Event, topic=AUDIENCE, type="caption"):
    """A speaker's words, partial (still being said) or final; a partial and its final share
    `utterance`. Times are on the recording's axis (seconds); `text` is bounded by the service."""

    speaker: str  # the member id
    name: str  # the speaker's name when they said it
    utterance: str
    start_s: float
    end_s: float
    text: str
    final: bool


Event = (
    SpaceScheduled
    | SpaceStarted
    | SpaceEnded
    | RecordingReady
    | StageChanged
    | CommentPosted
    | QuestionsChanged
    | PostRemoved
    | Reacted
    | PinChanged
    | ModerationChanged
    | CaptionMade
)
KINDS: tuple[type[Event], ...] = get_args(Event)
_BY_TYPE: dict[str, type[Event]] = {kind.TYPE: kind for kind in KINDS}


def encode(event: Event) -> dict[str, Any]:
    """The event as the JSON object the Redis bus carries."""
    return {"type": event.TYPE, **asdict(event)}


def decode(data: object) -> Event | None:
    """An event from the bus's JSON, or None (logged) for an unknown type or a malformed object.

    An older node's event without `node` reads as from no node (""): never this one."""
    if not isinstance(data, dict):
        log.warning("bus: a message is not a JSON object; skipped")
        return None
    kind = _BY_TYPE.get(str(data.get("type")))
    if kind is None:
        log.info("bus: an event of unknown type %.40r (a newer node's?) skipped", data.get("type"))
        return None
    try:
        event = msgspec.convert({"node": "", **data}, kind, strict=True)
    except msgspec.ValidationError as error:
        log.warning("bus: a %s event that does not fit (%s); skipped", kind.TYPE, error)
        return None
    if not is_space_id(event.space):
        log.warning("bus: a %s event names no valid space; skipped", kind.TYPE)
        return None
    return event
