"""Recording, replay and clips; embedding a space elsewhere; the probes and the document itself."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from podium.media.clips import MAX_CLIP_S, MIN_CLIP_S
from podium.web import i18n
from podium.web.schemas import Model, Shape, Url
from podium.web.schemas.audience import PublicPost


class Query(msgspec.Struct, kw_only=True):
    """Query parameters: unknown ones are ignored (shared links gather parameters of their own)."""


# -- recording, replay and clips -----------------------------------------------------------------
class ReplaySpeaker(Shape):
    at_s: float
    member: str | None
    name: str


class ReplayReaction(Shape):
    at_s: float
    counts: dict[str, int]  # reaction → how many in that interval


class ReplayPost(PublicPost):
    at_s: float


class Replay(Shape):
    duration_s: float
    ended: bool
    speakers: list[ReplaySpeaker]
    reactions: list[ReplayReaction]
    first_program_date_time: str | None
    posts: list[ReplayPost]


class Fingerprint(Shape):
    sha256: str
    segments: int
    duration_s: float
    complete: bool


class NewClip(Model):
    # The bounds are documented here and checked by the recording (its message names them).
    start_s: Annotated[float, msgspec.Meta(extra_json_schema={"minimum": 0})]
    duration_s: Annotated[float, msgspec.Meta(extra_json_schema={"minimum": MIN_CLIP_S, "maximum": MAX_CLIP_S})]


class ClipUrls(Shape):
    page: Url
    file: Url
    context: Url
    verify: Url


class ClipWord(Shape):
    speaker: Annotated[str, msgspec.Meta(description="the speaker's name when they said it")]
    speaker_id: str
    start_s: Annotated[float, msgspec.Meta(description="from the clip's start")]
    end_s: float
    text: str


class Clip(Shape):
    id: str
    facts: Annotated[dict[str, Any], msgspec.Meta(description="what the signature covers")]
    key_id: str | None
    signature: str | None
    urls: ClipUrls
    words: Annotated[list[ClipWord], msgspec.Meta(description="the transcript within the clip")] = msgspec.field(
        default_factory=list
    )


class VerdictCheck(Shape):
    name: str
    ok: bool
    detail: str


class Verdict(Shape):
    valid: bool
    checks: list[VerdictCheck]
    facts: dict[str, Any]


# -- embedding -----------------------------------------------------------------------------------
Layout = Literal["compact", "full"]
Pixels = Annotated[int, msgspec.Meta(ge=1)]


class EmbedCodeQuery(Query):
    layout: Annotated[Layout, msgspec.Meta(description="the player's layout")] = "compact"
    lang: (
        Annotated[
            str,
            msgspec.Meta(description="the snippet's language", extra_json_schema={"enum": sorted(i18n.languages())}),
        ]
        | UnsetType
    ) = UNSET


class EmbedCode(Shape):
    html: str
    iframe: str


class OembedQuery(Query):
    url: Annotated[Url, msgspec.Meta(description="a space's page (/s/<id>) or player (/embed/<id>) on this instance")]
    format: Annotated[Literal["json", "xml"], msgspec.Meta(description="json (xml is not offered: 501)")] = "json"
    maxwidth: (
        Annotated[Pixels, msgspec.Meta(description="the widest frame the consumer takes, in pixels")] | UnsetType
    ) = UNSET
    maxheight: (
        Annotated[Pixels, msgspec.Meta(description="the tallest frame the consumer takes, in pixels")] | UnsetType
    ) = UNSET


class Oembed(Shape):
    type: Literal["rich"]
    version: Literal["1.0"]
    title: str
    provider_name: str
    provider_url: Url
    html: str
    width: int
    height: int
    cache_age: int


# -- operations ----------------------------------------------------------------------------------
class Alive(Shape):
    alive: bool
    node: str


class ReadyChecks(Shape):
    database: bool
    bus: bool


class Ready(Shape):
    ready: bool
    node: str
    checks: ReadyChecks
    error: str | UnsetType = UNSET  # when not ready: what cannot be reached
