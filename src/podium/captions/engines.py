"""The speech engines behind `engine.Engine`, chosen by name (PODIUM_CAPTIONS_ENGINE), imported lazily.

- "pocketsphinx": CMU PocketSphinx 5 with the en-US model in its wheel. Nothing to download,
  English only, gist quality; streaming (partial words while the speaker talks).
- "whisper": faster-whisper (CTranslate2) with a model directory the operator names
  (PODIUM_CAPTIONS_MODEL); one final text per utterance, many languages for a multilingual model.
  Never contacts a model hub: HF_HUB_OFFLINE is set and only a local directory is accepted.

`load_engine` either returns an engine whose model is in memory or raises `CaptionsUnavailable`
with a sentence an operator can act on. Engines run in the worker processes (`workers.py`), never
on the stage's event loop; each uses one CPU thread.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from podium.captions.engine import SAMPLE_RATE, CaptionsUnavailable, Engine, Pcm, Recognizer

if TYPE_CHECKING:
    from faster_whisper import WhisperModel  # type: ignore[import-untyped]

ENGINES = ("pocketsphinx", "whisper")

# Whisper invents words on near-silence ("Thank you."): a result it itself thinks is no speech
# (with low confidence), or very unlikely, or repeating itself, is dropped. Whisper's own thresholds.
NO_SPEECH_PROB = 0.6
LOW_LOGPROB = -1.0
VERY_LOW_LOGPROB = -1.6
MAX_COMPRESSION_RATIO = 2.4
# Beam search: on tiny.en and espeak-ng speech a beam of 5 got the same words as greedy decoding on
# most sentences and fixed a word on some, for about the same time per utterance (tests/captions).
WHISPER_BEAM = 5
# Whisper decodes again, hotter, when a result looks wrong (repetitive, unlikely): up to five more
# times by default. One retry at most keeps an utterance's cost bounded (noise would cost six passes).
WHISPER_TEMPERATURES = (0.0, 0.4)


def load_engine(name: str, model: str, language: str) -> Engine:
    """The engine `name`, its model loaded, able to recognize `language` (ISO 639-1)."""
    if name == "pocketsphinx":
        engine: Engine = PocketsphinxEngine()
    elif name == "whisper":
        engine = WhisperEngine(model)
    else:
        raise CaptionsUnavailable(f"no captions engine called {name!r}: choose one of {', '.join(ENGINES)}")
    if language not in engine.languages:
        raise CaptionsUnavailable(
            f"the {engine.name} engine cannot caption {language!r}"
            + (f": it knows {', '.join(engine.languages)}" if len(engine.languages) < 10 else "")
        )
    return engine


# -- pocketsphinx ------------------------------------------------------------------------------


class PocketsphinxEngine:
    """PocketSphinx 5 with its bundled en-US acoustic model, dictionary and language model."""

    name = "pocketsphinx"
    partials = True
    languages: tuple[str, ...] = ("en",)

    def __init__(self) -> None:
        try:
            import pocketsphinx  # type: ignore[import-untyped]
        except ImportError as error:
            raise CaptionsUnavailable(f"pocketsphinx is not installed ({error}): scripts/uv sync --locked") from None
        self._module = pocketsphinx
        self._spare: list[Any] = []
        try:
            self._spare.append(self._decoder())  # loads the model now: a broken install fails at start
        except (RuntimeError, ValueError, OSError) as error:
            raise CaptionsUnavailable(f"pocketsphinx's en-US model does not load: {error}") from None

    def _decoder(self) -> Any:
        return self._module.Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")

    def recognizer(self, language: str) -> Recognizer:
        if language != "en":
            raise CaptionsUnavailable(f"pocketsphinx captions English only, not {language!r}")
        return PocketsphinxRecognizer(self._spare.pop() if self._spare else self._decoder())


class PocketsphinxRecognizer:
    """A decoder of its own (PocketSphinx decoders keep per-utterance state); partials from `hyp()`."""

    def __init__(self, decoder: Any) -> None:
        self._decoder = decoder
        self._open = False
        self._words = ""

    def accept(self, pcm: Pcm) -> str | None:
        if not self._open:
            self._decoder.start_utt()
            self._open = True
            self._words = ""
        self._decoder.process_raw(pcm.astype(np.int16, copy=False).tobytes(), False, False)
        hypothesis = self._decoder.hyp()
        words = _clean_sphinx(hypothesis.hypstr if hypothesis is not None else "")
        if words == self._words:
            return None
        self._words = words
        return words

    def finish(self) -> str:
        if not self._open:
            return ""
        self._decoder.end_utt()
        self._open = False
        hypothesis = self._decoder.hyp()
        return _clean_sphinx(hypothesis.hypstr if hypothesis is not None else "")


def _clean_sphinx(text: str) -> str:
    # Fillers and noise words come as <sil>, [noise], ++garbage++; alternates as word(2).
    words = (word.split("(")[0] for word in text.split())
    return " ".join(w for w in words if w and not w.startswith(("<", "[", "+")))


# -- faster-whisper ----------------------------------------------------------------------------


class WhisperEngine:
    """A CTranslate2 Whisper model from a local directory, on the CPU, int8, one thread."""

    name = "whisper"
    partials = False

    def __init__(self, model_dir: str) -> None:
        if not model_dir:
            raise CaptionsUnavailable(
                "the whisper engine needs a model directory: set PODIUM_CAPTIONS_MODEL to a CTranslate2 "
                "Whisper model (a folder with model.bin), see the README, Captions"
            )
        folder = Path(model_dir)
        if not (folder / "model.bin").is_file():
            raise CaptionsUnavailable(
                f"PODIUM_CAPTIONS_MODEL={model_dir} is not a CTranslate2 Whisper model directory "
                "(no model.bin in it); see the README, Captions, for how to put one on this machine"
            )
        os.environ["HF_HUB_OFFLINE"] = "1"  # before faster_whisper imports huggingface_hub
        try:
            from faster_whisper import WhisperModel
            from faster_whisper.tokenizer import _LANGUAGE_CODES  # type: ignore[import-untyped]
        except ImportError:
            raise CaptionsUnavailable(
                "faster-whisper is not installed: install the whisper extra: scripts/uv sync --locked --extra whisper"
            ) from None
        try:
            self._model: WhisperModel = WhisperModel(
                str(folder), device="cpu", compute_type="int8", cpu_threads=1, num_workers=1, local_files_only=True
            )
        except (RuntimeError, ValueError, OSError) as error:
            raise CaptionsUnavailable(f"the Whisper model in {model_dir} does not load: {error}") from None
        multilingual = bool(self._model.model.is_multilingual)
        self.languages: tuple[str, ...] = tuple(sorted(_LANGUAGE_CODES)) if multilingual else ("en",)

    def recognizer(self, language: str) -> Recognizer:
        if language not in self.languages:
            raise CaptionsUnavailable(f"this Whisper model cannot caption {language!r}")
        return WhisperRecognizer(self._model, language)


class WhisperRecognizer:
    """Collects an utterance and transcribes it at the end: Whisper works on whole stretches of speech."""

    def __init__(self, model: WhisperModel, language: str) -> None:
        self._model = model
        self._language = language
        self._chunks: list[Pcm] = []

    def accept(self, pcm: Pcm) -> str | None:
        self._chunks.append(pcm)
        return None

    def finish(self) -> str:
        chunks, self._chunks = self._chunks, []
        if not chunks:
            return ""
        audio = np.concatenate(chunks).astype(np.float32) / 32768.0
        segments, _ = self._model.transcribe(
            audio,
            language=self._language,
            beam_size=WHISPER_BEAM,
            temperature=list(WHISPER_TEMPERATURES),
            condition_on_previous_text=False,
            vad_filter=False,  # the cutter already keeps only speech
            without_timestamps=True,
        )
        return " ".join(_kept(segments)).strip()


def _kept(segments: Iterable[Any]) -> Iterable[str]:
    for segment in segments:
        silent = segment.no_speech_prob > NO_SPEECH_PROB and segment.avg_logprob < LOW_LOGPROB
        if silent or segment.avg_logprob < VERY_LOW_LOGPROB or segment.compression_ratio > MAX_COMPRESSION_RATIO:
            continue
        yield segment.text.strip()
