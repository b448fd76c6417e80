"""Spaces and their life: scheduled → live → ended. Pure rules, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from podium.errors import Conflict, InvalidInput
from podium.ids import SpaceId, UserId
from podium.text import clean_text


class SpaceState(StrEnum):
    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"


@dataclass(frozen=True)
class Space:
    id: SpaceId
    title: str
    state: SpaceState
    created_at: datetime
    starts_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    peak_listeners: int = 0
    # Recording is on unless the host switched it off before going live (then nothing is kept
    # after the end: no replay, no download, no clips).
    record: bool = True
    # A private space's audio (stream, replay, download) is only for holders of a signed listener
    # link; its page and timeline stay reachable by its (unguessable) id.
    private: bool = False
    # The signed-in account that created the space (None: created without an account). Only
    # spaces with an account behind them, or that went live, are announced publicly.
    created_by: UserId | None = None
    # The pre-show was closed because nobody connected or listened: it does not open again (the
    # host can still go live by connecting).
    preshow_closed: bool = False


# A space has no set length; where one must be announced (a calendar entry, a podcast live item),
# it is this.
ANNOUNCED_LENGTH = timedelta(hours=1)
# A start more than a year ahead is almost always a typo in the year.
MAX_SCHEDULE_AHEAD = timedelta(days=366)
# A start this far in the past is taken (the client's clock may be a little behind the server's);
# one further back is refused: it would open a pre-show at once, for a start that never comes.
STARTS_AT_GRACE = timedelta(minutes=1)


def clean_title(raw: object, max_chars: int) -> str:
    return clean_text(raw, "title", max_chars)


def parse_starts_at(raw: str | None, now: datetime) -> datetime | None:
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"starts_at {raw[:40]!r} is not an ISO 8601 time such as 2026-12-01T20:00:00Z") from None
    if value.tzinfo is None:
        raise InvalidInput("starts_at needs a time zone, for example 2026-12-01T20:00:00Z")
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+14:00 is a year 0 in UTC, which datetime cannot hold
        raise InvalidInput(f"starts_at {raw[:40]!r} is out of range") from None
    if value > now + MAX_SCHEDULE_AHEAD:
        raise InvalidInput("starts_at is more than a year ahead")
    if value < now - STARTS_AT_GRACE:
        raise InvalidInput("starts_at is in the past; leave it out to start as soon as the host connects")
    return value


def new_space(
    space_id: SpaceId,
    title: str,
    starts_at: datetime | None,
    now: datetime,
    record: bool = True,
    private: bool = False,
    created_by: UserId | None = None,
) -> Space:
    return Space(
        id=space_id,
        title=title,
        state=SpaceState.SCHEDULED,
        created_at=now,
        starts_at=starts_at,
        record=record,
        private=private,
        created_by=created_by,
    )


def set_recording(space: Space, record: bool) -> Space:
    """Recording is chosen before going live: switching it off later would break the promise of a
    replay to the audience already listening, and switching it on would leave the start unrecorded."""
    if space.state is not SpaceState.SCHEDULED and record != space.record:
        raise Conflict("recording can be switched on or off only before the space goes live")
    return replace(space, record=record)


def go_live(space: Space, now: datetime) -> Space:
    """The host's first publish makes a space live; live stays live (reconnects)."""
    if space.state is SpaceState.ENDED:
        raise Conflict("this space has ended; create a new one to go live again")
    if space.state is SpaceState.LIVE:
        return space
    return replace(space, state=SpaceState.LIVE, started_at=now)


def end(space: Space, now: datetime) -> Space:
    """Ending is final; ending an ended space changes nothing (retries are safe)."""
    if space.state is SpaceState.ENDED:
        return space
    return replace(space, state=SpaceState.ENDED, ended_at=now)


def with_peak(space: Space, listeners_now: int) -> Space:
    if listeners_now <= space.peak_listeners:
        return space
    return replace(space, peak_listeners=listeners_now)


def close_preshow(space: Space) -> Space:
    """Nobody came to the pre-show: it stays closed (through restarts); the space stays scheduled."""
    return replace(space, preshow_closed=True)


def announced(space: Space) -> bool:
    """Whether the public listing and the feed show the space: never a private one; a live or
    ended one that went live; a scheduled one only with a signed-in account behind it (so that a
    stranger's unlimited anonymous spaces cannot fill what everyone sees)."""
    if space.private:
        return False
    return space.started_at is not None or space.created_by is not None
