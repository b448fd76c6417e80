"""Captions: the host's switch and language, how they keep up, and the transcript."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from podium.web.schemas import Model, Shape
from podium.web.schemas.recording import Query

CaptionState = Literal["live", "behind", "paused", "off", "unavailable"]


class CaptionsChange(Model):
    enabled: bool
    language: (
        Annotated[
            str,
            msgspec.Meta(
                min_length=2, max_length=3, description="ISO 639-1, one of the engine's `languages` (left out: as is)"
            ),
        ]
        | UnsetType
    ) = UNSET


class CaptionsStatus(Shape):
    enabled: bool
    language: str
    languages: Annotated[list[str], msgspec.Meta(description="what the node's engine recognizes")]
    engine: Annotated[str, msgspec.Meta(description='the engine name ("off" without one)')]
    available: bool
    reason: Annotated[str | None, msgspec.Meta(description="why the node has no captions")]
    state: CaptionState
    detail: Annotated[str, msgspec.Meta(description="for the host, in a sentence")]


class TranscriptSegment(Shape):
    speaker: Annotated[str, msgspec.Meta(description="the speaker's name when they said it")]
    speaker_id: str
    start_s: Annotated[float, msgspec.Meta(description="on the recording's time axis (the replay's)")]
    end_s: float
    text: str


class Transcript(Shape):
    language: str
    engine: str
    complete: Annotated[bool, msgspec.Meta(description="the space ended and its last words are in")]
    segments: list[TranscriptSegment]


class TranscriptQuery(Query):
    key: Annotated[str, msgspec.Meta(description="a private space's listener link key")] | UnsetType = UNSET
