"""Captions: what each speaker says, as text, live and in the transcript.

The stage decodes every speaker separately, so each caption carries its speaker without any
diarization. Recognition never runs on the stage's loop: the stage hands each talking speaker's
frames to worker processes (`workers.py`), which run a speech engine behind this interface.

Sans-IO: a `Recognizer` takes one utterance's 16 kHz mono int16 PCM and gives text; it does no
I/O and keeps no clock. Times are the caller's business (the space's recording time axis).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
Pcm = npt.NDArray[np.int16]


@dataclass(frozen=True)
class Caption:
    """One utterance's words: partial ones while it is spoken (streaming engines), one final."""

    space: str
    speaker: str  # the member id
    name: str  # the speaker's name when they said it
    utterance: str  # unique within the space; a partial and its final share it
    start_s: float  # on the space's recording time axis (the replay's)
    end_s: float
    text: str
    final: bool


class Recognizer(Protocol):
    """One speaker's stream: utterance after utterance, one at a time."""

    def accept(self, pcm: Pcm) -> str | None:
        """More of the current utterance. Returns the words so far when they changed (an engine
        with partial results), else None."""
        ...

    def finish(self) -> str:
        """The utterance ended: its final words (may be empty). Ready for the next one."""
        ...


class Engine(Protocol):
    """A loaded speech engine (its model in memory); makes a recognizer per speaker."""

    name: str
    partials: bool  # whether `accept` gives words before the utterance ends
    languages: tuple[str, ...]  # ISO 639-1 codes it recognizes

    def recognizer(self, language: str) -> Recognizer: ...


class CaptionsUnavailable(Exception):
    """The engine cannot run here (not installed, no model, a model that does not load): the
    message says why, in words an operator can act on. Podium then runs without captions."""
