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
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, ClassVar, Literal

from podium.ids import SpaceId, is_space_id

log = logging.getLogger(__name__)

Topic = Literal["spaces", "stage", "audience"]
SPACES: Topic = "spaces"  # a space's life: scheduled, started, ended, its recording ready
STAGE: Topic = "stage"  # who may do what on a stage changed
AUDIENCE: Topic = "audience"  # posts, votes, reactions, moderation: what the timelines show


# -- a space's life ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpaceScheduled:
    TOPIC: ClassVar[Topic] = SPACES
    TYPE: ClassVar[str] = "space.scheduled"
    space: SpaceId
    node: str


@dataclass(frozen=True)
class SpaceStarted:
    TOPIC: ClassVar[Topic] = SPACES
    TYPE: ClassVar[str] = "space.started"
    space: SpaceId
    node: str


@dataclass(frozen=True)
class SpaceEnded:
    TOPIC: ClassVar[Topic] = SPACES
    TYPE: ClassVar[str] = "space.ended"
    space: SpaceId
    node: str


@dataclass(frozen=True)
class RecordingReady:
    """The ended space's download is made (its replay is ready)."""

    TOPIC: ClassVar[Topic] = SPACES
    TYPE: ClassVar[str] = "replay.ready"
    space: SpaceId
    node: str


# -- the stage -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageChanged:
    """The stage rules changed (`action`: a stage action, "rotate" or "withdraw_links"): every
    node reads them again and makes its media match."""

    TOPIC: ClassVar[Topic] = STAGE
    TYPE: ClassVar[str] = "stage.changed"
    space: SpaceId
    node: str
    action: str


# -- the audience --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommentPosted:
    TOPIC: ClassVar[Topic] = AUDIENCE
    TYPE: ClassVar[str] = "comment"
    space: SpaceId
    node: str
    post: dict[str, Any]  # the post's public view


@dataclass(frozen=True)
class QuestionsChanged:
    """A question was asked, voted on, shown again or answered: the ranking is to be read again."""

    TOPIC: ClassVar[Topic] = AUDIENCE
    TYPE: ClassVar[str] = "question"
    space: SpaceId
    node: str


@dataclass(frozen=True)
class PostRemoved:
    TOPIC: ClassVar[Topic] = AUDIENCE
    TYPE: ClassVar[str] = "removed"
    space: SpaceId
    node: str
    post_id: str


@dataclass(frozen=True)
class Reacted:
    TOPIC: ClassVar[Topic] = AUDIENCE
    TYPE: ClassVar[str] = "reaction"
    space: SpaceId
    node: str
    emoji: str
    count: int = 1


@dataclass(frozen=True)
class PinChanged:
    TOPIC: ClassVar[Topic] = AUDIENCE
    TYPE: ClassVar[str] = "pinned"
    space: SpaceId
    node: str


@dataclass(frozen=True)
class ModerationChanged:
    """The space's moderation rules changed (slow mode, blocked users, ...)."""

    TOPIC: ClassVar[Topic] = AUDIENCE
    TYPE: ClassVar[str] = "moderation"
    space: SpaceId
    node: str


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
)

KINDS: tuple[type[Event], ...] = (
    SpaceScheduled,
    SpaceStarted,
    SpaceEnded,
    RecordingReady,
    StageChanged,
    CommentPosted,
    QuestionsChanged,
    PostRemoved,
    Reacted,
    PinChanged,
    ModerationChanged,
)
_BY_TYPE: dict[str, type[Event]] = {kind.TYPE: kind for kind in KINDS}
# The JSON type each field's annotation stands for (annotations are strings here).
_JSON_TYPES: dict[str, type] = {"SpaceId": str, "str": str, "int": int, "dict[str, Any]": dict}


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
    values: dict[str, Any] = {}
    for field in fields(kind):
        value = data.get(field.name, "" if field.name == "node" else field.default)
        expected = _JSON_TYPES[str(field.type)]
        if value is MISSING or type(value) is not expected:
            log.warning("bus: a %s event without a valid %r; skipped", kind.TYPE, field.name)
            return None
        values[field.name] = value
    if not is_space_id(values["space"]):
        log.warning("bus: a %s event names no valid space; skipped", kind.TYPE)
        return None
    return kind(**values)
