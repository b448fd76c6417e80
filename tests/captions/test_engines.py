"""The speech engines with their real models on espeak-ng speech: words right, languages, bad models."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

from podium.captions.engine import CaptionsUnavailable, Engine
from podium.captions.engines import load_engine
from podium.captions.utterances import Downsampler
from tests.captions.speech import SENTENCES, said, silence, tiny_en, words, words_right

CHUNK = 2560  # 160 ms at 16 kHz, as the workers feed an engine


@pytest.fixture(scope="module")
def sphinx() -> Engine:
    return load_engine("pocketsphinx", "", "en")


@pytest.fixture(scope="module")
def whisper() -> Engine:
    return load_engine("whisper", tiny_en(), "en")


def hear(engine: Engine, sentences: tuple[str, ...]) -> tuple[list[str], list[list[str]], float]:
    """Each sentence through one recognizer (as a worker reuses it), in chunks: finals, partials, seconds."""
    recognizer = engine.recognizer("en")
    finals, partials, took = [], [], 0.0
    for sentence in sentences:
        pcm = Downsampler()(np.concatenate([silence(0.2), said(sentence), silence(0.2)]))
        started = time.perf_counter()
        seen = [p for i in range(0, len(pcm), CHUNK) if (p := recognizer.accept(pcm[i : i + CHUNK])) is not None]
        finals.append(recognizer.finish())
        took += time.perf_counter() - started
        partials.append(seen)
    return finals, partials, took


def score(finals: list[str]) -> tuple[int, int]:
    right = sum(words_right(sentence, heard) for sentence, heard in zip(SENTENCES, finals, strict=True))
    return right, sum(len(words(sentence)) for sentence in SENTENCES)


def test_pocketsphinx_gets_the_gist_with_words_while_the_speaker_talks(sphinx: Engine) -> None:
    assert (sphinx.name, sphinx.languages, sphinx.partials) == ("pocketsphinx", ("en",), True)
    finals, partials, _ = hear(sphinx, SENTENCES)
    right, total = score(finals)
    print(f"pocketsphinx: {right}/{total} words right: {finals}")
    assert right * 2 >= total, finals
    # Words appear before the sentence ends, and the last of them lead to the final words.
    assert all(seen for seen in partials), partials
    assert any(
        words_right(final, seen[-1]) >= len(words(final)) // 2 for final, seen in zip(finals, partials, strict=True)
    )


def test_pocketsphinx_is_english_only() -> None:
    with pytest.raises(CaptionsUnavailable, match="'de'"):
        load_engine("pocketsphinx", "", "de")


def test_whisper_tiny_en_gets_nine_words_in_ten(whisper: Engine) -> None:
    assert (whisper.name, whisper.languages, whisper.partials) == ("whisper", ("en",), False)
    finals, partials, took = hear(whisper, SENTENCES)
    right, total = score(finals)
    audio_s = sum(len(said(s)) / 48_000 + 0.4 for s in SENTENCES)
    print(f"whisper tiny.en: {right}/{total} words right, real-time factor {took / audio_s:.2f}: {finals}")
    assert right * 10 >= total * 9, finals
    assert partials == [[], [], []]  # one final per utterance, no partials


def test_whisper_invents_nothing_on_silence_or_noise(whisper: Engine) -> None:
    recognizer = whisper.recognizer("en")
    noise = np.random.default_rng(19).normal(0, 200, 3 * 16_000).astype(np.int16)  # about -44 dBFS
    for quiet in (np.zeros(2 * 16_000, dtype=np.int16), noise):
        recognizer.accept(quiet)
        assert recognizer.finish() == ""


def test_whisper_says_which_model_directory_is_missing(tmp_path: Path) -> None:
    with pytest.raises(CaptionsUnavailable, match="PODIUM_CAPTIONS_MODEL"):
        load_engine("whisper", "", "en")
    with pytest.raises(CaptionsUnavailable, match=r"no model\.bin") as raised:
        load_engine("whisper", str(tmp_path / "nowhere"), "en")
    assert str(tmp_path / "nowhere") in str(raised.value)


def test_a_broken_whisper_model_is_refused_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"not a model")
    with pytest.raises(CaptionsUnavailable, match="does not load"):
        load_engine("whisper", str(tmp_path), "en")


def test_an_english_whisper_model_cannot_caption_german() -> None:
    with pytest.raises(CaptionsUnavailable, match="'de'"):
        load_engine("whisper", tiny_en(), "de")


def test_without_faster_whisper_the_operator_is_told_to_install_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # as if the extra were not installed
    with pytest.raises(CaptionsUnavailable, match=r"scripts/uv sync --locked --extra whisper"):
        load_engine("whisper", tiny_en(), "en")


def test_an_unknown_engine_names_the_choices() -> None:
    with pytest.raises(CaptionsUnavailable, match="pocketsphinx, whisper"):
        load_engine("vosk2000", "", "en")
