"""Request classes: who suffers first when a node is past its capacity.

Lower is more important: the highest classes are shed first (`503`/`429` with `Retry-After`), the
stage never, listeners already in only past everything else; new joins wait in the waiting room
(`202`). STAGE is a privilege, not a path: only with a member token of the space (checked at the
door, see `admission.gate`); without one a request is OTHER, shed first. Likewise a heartbeat is
LISTENING only with its join's pass, else a JOIN. Probes and CORS preflights keep their class.
Each route's class is said once, in the route table (`podium.web.routes`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class RequestClass(enum.IntEnum):
    STAGE = 0  # WHIP, the host's and speakers' control: the conversation itself
    LISTENING = 1  # listeners already in: playlists, parts, segments, the timeline, their heartbeats
    JOIN = 2  # new listeners: the join call, the pages and their assets
    POST = 3  # comments, questions, votes: listeners' writes
    REACTION = 4  # reactions: many, small, and the first thing nobody misses
    OTHER = 5  # everything else: replay API, clips, feed, accounts, listings

    @property
    def label(self) -> str:
        return self.name.lower()


class Credential(enum.Enum):
    """What keeps a request in its class, checked at the door by a signature alone (no lookup)."""

    MEMBER = "member"  # a member token (the host's too) of the space the path names
    PASS = "pass"  # a listener's pass from the join, for the space the path names (a bearer token)


@dataclass(frozen=True)
class Door:
    """How the door treats a request: its class, and the credential without which it is served
    as `without` instead (a stranger's request to a host's control is a stranger's request)."""

    klass: RequestClass
    credential: Credential | None = None
    without: RequestClass = RequestClass.OTHER
