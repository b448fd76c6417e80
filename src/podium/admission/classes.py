"""Request classes: who suffers first when a node is past its capacity.

Lower is more important. Under pressure the highest classes are shed first (`503`/`429` with
`Retry-After`); the stage is never shed and listeners already in are shed only past everything
else. New joins are not shed with an error: they wait in the waiting room (`202`).

STAGE is a privilege, not a path: a request is served as STAGE only if it carries a member token
of the space it acts on (the door checks the signature, see `admission.gate`); without one it is
a stranger's request like any other and is served as OTHER, shed first. The probes and CORS
preflights, which carry no token and no body, keep their class.
"""

from __future__ import annotations

import enum


class RequestClass(enum.IntEnum):
    STAGE = 0  # WHIP, the host's and speakers' control: the conversation itself
    LISTENING = 1  # listeners already in: playlists, parts, segments, the timeline
    JOIN = 2  # new listeners: the join call, the pages and their assets
    POST = 3  # comments, questions, votes, heartbeats: listeners' writes
    REACTION = 4  # reactions: many, small, and the first thing nobody misses
    OTHER = 5  # everything else: replay API, clips, feed, accounts, listings

    @property
    def label(self) -> str:
        return self.name.lower()


_STAGE_ACTIONS = (
    "invites",
    "stage",
    "hands",
    "hand",
    "leave",
    "members",
    "end",
    "host-token",
    "moderation",
    "blocked",
    "board",
    "me",
    "pre-show",
    "under-attack",
    "listener-links",
    "rehearsals",
    "webhooks",
)
_LISTENING_PREFIXES = ("/hls/", "/timeline/")
# Not the recording's fingerprint (`recording`): it hashes the recording, and no page asks for it,
# so it is OTHER, shed first (and cached at the edge once the space has ended).
_LISTENER_READS = ("", "questions", "comments", "replay", "calendar.ics")
_JOIN_PREFIXES = ("/s/", "/static/", "/join/")


PROBES = ("/healthz", "/readyz", "/metrics")


def classify(method: str, path: str) -> RequestClass:
    """The class of a request, from its method and path alone (no body, no lookup)."""
    if path.startswith("/whip/") or path in PROBES:
        return RequestClass.STAGE  # the probes too: a busy node is not a dead one
    if path.startswith(_LISTENING_PREFIXES):
        return RequestClass.LISTENING
    if path.startswith(_JOIN_PREFIXES) or path == "/" or path.startswith("/host/"):
        return RequestClass.JOIN  # the host's page is a page; its calls carry the host's token
    if method in ("GET", "HEAD") and path in ("/api/spaces", "/api/sessions/me"):
        return RequestClass.JOIN  # what the pages ask as they open
    if path.startswith("/api/spaces/"):
        parts = path.split("/")  # ["", "api", "spaces", id, action, ...]
        action = parts[4] if len(parts) > 4 else ""
        if action in ("join", "challenge"):
            return RequestClass.JOIN
        if action in _STAGE_ACTIONS or method == "PATCH":
            return RequestClass.STAGE
        if action == "reactions":
            return RequestClass.REACTION
        if action in ("posts", "questions", "heartbeat", "guests") and method == "POST":
            return RequestClass.POST
        if method in ("GET", "HEAD") and action in _LISTENER_READS:
            return RequestClass.LISTENING  # what a listener's page reads (cacheable, cheap)
    return RequestClass.OTHER


def needs_credential(method: str, path: str) -> bool:
    """Whether a STAGE-class request keeps its class only with a member token: all but the probes
    and CORS preflights (bodiless, answered without a lookup)."""
    return method != "OPTIONS" and path not in PROBES


def stage_space(path: str) -> str | None:
    """The space a STAGE-class path acts on (`/whip/{id}…`, `/api/spaces/{id}…`), if it names one."""
    parts = path.split("/")
    if path.startswith("/whip/") or path.startswith("/api/spaces/"):
        index = 2 if path.startswith("/whip/") else 3
        return parts[index] if len(parts) > index and parts[index] else None
    return None
