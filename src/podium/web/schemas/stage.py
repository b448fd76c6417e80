"""The stage and admission: invites, guests, hands and members; joining as a listener (the waiting
room, the puzzle), the host's board, listener links and rehearsal reports."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from podium.domain.stage import Role
from podium.web.schemas import Model, Shape, Url
from podium.web.schemas.spaces import SpaceUrls, State

# Names are cleaned and bounded by the stage rules (`domain.stage.clean_name`), with their own message.
Name = Annotated[str, msgspec.Meta(extra_json_schema={"maxLength": 60})]
InviteRole = Literal["speaker", "cohost"]
AttackMode = Literal["auto", "on", "off"]
# The same values in answers, built from the domain's strings.
InviteRoleText = Annotated[str, msgspec.Meta(extra_json_schema={"enum": ["speaker", "cohost"]})]
AttackModeText = Annotated[str, msgspec.Meta(extra_json_schema={"enum": ["auto", "on", "off"]})]
RetryMs = Annotated[
    int, msgspec.Meta(ge=0, description="when to come back, to the millisecond (Retry-After is whole seconds)")
]


# -- the stage -----------------------------------------------------------------------------------
class NewInvite(Model):
    role: Annotated[InviteRole | None, msgspec.Meta(description="a co-host invites speakers only")] = None


class Naming(Model):
    name: Name


class Hand(Shape):
    id: str
    name: str


class Member(Hand):
    role: Role
    muted: bool
    hand_raised: bool
    blocked: bool


class MemberWithToken(Shape):
    member: Member
    token: Annotated[str, msgspec.Meta(description="the member's own token: keep it")]


class Redeemed(MemberWithToken):
    whip: Url


class Invite(Shape):
    token: str
    role: InviteRoleText
    whip: Url
    invite_url: Annotated[Url, msgspec.Meta(description="the speaker's page; the token rides in the fragment")]
    expires_in_s: int


class Speaker(Hand):
    role: Role
    muted: bool
    connected: bool
    level: float
    speaking: bool


class Stage(Shape):
    speakers: list[Speaker]
    hands: Annotated[int, msgspec.Meta(description="how many hands are raised")]


class Hands(Shape):
    hands: list[Hand]


# -- joining as a listener -------------------------------------------------------------------------
class Join(Model):
    # Checked by the joins (`admission.joins`), with a message that says what the page should send.
    client_id: Annotated[
        str,
        msgspec.Meta(
            description="the browser's own id (the page makes one)",
            extra_json_schema={"minLength": 8, "maxLength": 64, "pattern": "^[A-Za-z0-9_-]+$"},
        ),
    ]
    ticket: str | None = None
    pass_: Annotated[str | None, msgspec.Meta(description="the pass an earlier join returned")] = msgspec.field(
        default=None, name="pass"
    )
    challenge: str | None = None
    counter: int | None = None
    solved: str | None = None
    key: Annotated[str | None, msgspec.Meta(description="a private space's listener link token")] = None


class Admitted(Shape, omit_defaults=True):
    admitted: Annotated[bool, msgspec.Meta(extra_json_schema={"const": True})]
    pass_: Annotated[str, msgspec.Meta(description="send it with the heartbeats and to come back")] = msgspec.field(
        name="pass"
    )
    urls: SpaceUrls
    state: State
    sample_point: Annotated[
        float, msgspec.Meta(ge=0, le=1, description="heartbeat while this is below the announced sample rate")
    ]
    solved: Annotated[str | None, msgspec.Meta(description="the puzzle's pass, when one was solved")] = None


class Waiting(Shape, omit_defaults=True):
    admitted: Annotated[bool, msgspec.Meta(extra_json_schema={"const": False})]
    message: Annotated[str, msgspec.Meta(description="for the person waiting")]
    position: int | None = None
    ticket: str | None = None
    retry_after_s: int | None = None
    retry_after_ms: RetryMs | None = None
    challenge: str | None = None
    difficulty_bits: int | None = None
    solved: str | None = None


# -- the host's controls ---------------------------------------------------------------------------
class UnderAttack(Model):
    mode: AttackMode


class Attack(Shape):
    mode: AttackModeText
    active: bool


class NewListenerLink(Model):
    valid_for_s: Annotated[int, msgspec.Meta(ge=60, le=31 * 24 * 3600, description="seconds")] = 24 * 3600
    not_before: Annotated[int | None, msgspec.Meta(description="Unix seconds, at most 31 days ahead")] = None


class ListenerLink(Shape):
    token: str
    page: Url
    hls: Url
    not_before: Annotated[int, msgspec.Meta(description="Unix seconds")]
    expires: Annotated[int, msgspec.Meta(description="Unix seconds")]


class Withdrawn(Shape):
    withdrawn: bool
    link_generation: int


# A `podium rehearse` report: only what the board keeps is read, the rest of the report is let be.
class ReportJoins(msgspec.Struct, kw_only=True):
    success: float


class ReportPlan(msgspec.Struct, kw_only=True):
    listeners: int
    peak_joins_per_s: float
    flood_per_s: float = 0.0


class ReportTimes(msgspec.Struct, kw_only=True):
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


class RehearsalReport(msgspec.Struct, kw_only=True):
    verdict: Literal["GO", "NO-GO"]
    reasons: list[str] = msgspec.field(default_factory=list)
    joins: ReportJoins
    plan: ReportPlan
    time_to_first_audio_s: ReportTimes


class Rehearsal(Shape):
    at: Annotated[int, msgspec.Meta(description="Unix seconds")]
    verdict: Literal["GO", "NO-GO"]
    reasons: list[str]
    listeners: int
    peak_joins_per_s: float
    flood_per_s: float
    success: float
    ttfa_s: ReportTimes


class BoardListeners(Shape):
    now: int
    peak: int


class BoardJoins(Shape):
    arrivals_per_s: float
    admitted: int
    called: int
    waiting: int
    rate_per_s: float


class BoardAttack(Attack):
    difficulty_bits: int


class BoardLoad(Shape):
    pressure: float
    lag_ms: float
    in_flight: int
    shedding: list[str]


class Served(Shape):
    served: int
    shed: int


class BoardCaptions(Shape):
    state: Literal["live", "behind", "paused", "off", "unavailable"]
    detail: Annotated[str | None, msgspec.Meta(description="for the host, in a sentence")]


class Board(Shape):
    listeners: BoardListeners
    joins: BoardJoins
    under_attack: BoardAttack
    load: BoardLoad
    requests: Annotated[dict[str, Served], msgspec.Meta(description="by request class")]
    refused_by_signature: int
    database_statements: int
    stream: Annotated[dict[str, Any], msgspec.Meta(description="is the program being made, on time")]
    last_rehearsal: Rehearsal | None
    captions: Annotated[BoardCaptions, msgspec.Meta(description="are live captions on, and keeping up")]
