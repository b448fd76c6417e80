"""The body of a captions worker process: load the engine once, then recognize what the parent sends.

Runs in a process started with the "spawn" method, so this module imports only what the engine
needs (numpy and the engine), never the web stack. The parent talks to it with plain tuples:

parent -> worker (a bounded multiprocessing.Queue):
    ("begin", utterance, space, speaker, name, language, start_s)
    ("audio", utterance, pcm48k_bytes)     downsampled here to the engine's 16 kHz
    ("end", utterance, end_s)
    ("stop",)
worker -> parent (a one-way Pipe, this worker the only writer):
    ("ready", pid, engine_name, partials, languages)  or  ("failed", reason)   once, first
    ("caption", space, speaker, name, utterance, start_s, end_s, text, final)
    ("done", audio_s, utterance | None)   audio seconds recognized since the last "done" (the
        parent's lag count), with the utterance that was finished, if one was

A recognizer serves one utterance at a time; idle ones are kept per language and reused (a
PocketSphinx decoder takes half a second to make). An utterance the worker has not seen begin
(its "begin" was dropped, or it began on a worker that died) is ignored.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.queues import Queue
from typing import Any

import numpy as np

from podium.captions.engine import SAMPLE_RATE, CaptionsUnavailable, Engine, Recognizer
from podium.captions.utterances import Downsampler

# A streaming engine reports its progress in steps of about this much audio (fewer messages).
DONE_STEP_S = 0.5
NICENESS = 10  # below the stage: the audio never waits for captions


@dataclass
class _Open:
    space: str
    speaker: str
    name: str
    language: str
    start_s: float
    recognizer: Recognizer
    downsample: Downsampler
    audio_s: float = 0.0


def run(engine_name: str, model: str, language: str, inbox: Queue[tuple[Any, ...]], outbox: Connection) -> None:
    """The process's target. Ends on ("stop",), or when the parent goes away."""
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    # Ctrl-C at a terminal reaches the whole process group: the parent stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # One CPU thread per worker, whatever a library would pick by itself.
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "CT2_INTER_THREADS"):
        os.environ[variable] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"
    from podium.captions.engines import load_engine

    try:
        engine = load_engine(engine_name, model, language)
    except CaptionsUnavailable as error:
        outbox.send(("failed", str(error)))
        return
    except Exception as error:  # an engine's own failure at load: the reason goes to the operator
        outbox.send(("failed", f"the {engine_name} engine failed to load: {type(error).__name__}: {error}"))
        return
    outbox.send(("ready", os.getpid(), engine.name, engine.partials, tuple(engine.languages)))
    with contextlib.suppress(BrokenPipeError, EOFError, KeyboardInterrupt):  # the parent is gone
        _serve(engine, inbox, outbox)


def _serve(engine: Engine, inbox: Queue[tuple[Any, ...]], outbox: Connection) -> None:
    idle: dict[str, list[Recognizer]] = {}
    open_: dict[str, _Open] = {}
    by_speaker: dict[tuple[str, str], str] = {}
    undone_s = 0.0
    parent = os.getppid()
    while True:
        try:
            message = inbox.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:
                return  # orphaned: the parent died without saying stop
            continue
        kind = message[0]
        if kind == "stop":
            return
        if kind == "begin":
            _, utterance, space, speaker, name, language, start_s = message
            earlier = by_speaker.get((space, speaker))
            if earlier is not None:  # its "end" was lost: finish it now, a speaker talks one utterance at a time
                finished_s = _finish(open_.pop(earlier), earlier, None, idle, outbox)
                undone_s += 0.0 if engine.partials else finished_s
                outbox.send(("done", undone_s, earlier))
                undone_s = 0.0
            pool = idle.setdefault(language, [])
            try:
                recognizer = pool.pop() if pool else engine.recognizer(language)
            except CaptionsUnavailable:
                continue
            open_[utterance] = _Open(space, speaker, name, language, start_s, recognizer, Downsampler())
            by_speaker[(space, speaker)] = utterance
        elif kind == "audio":
            _, utterance, data = message
            current = open_.get(utterance)
            if current is None:
                continue
            pcm = current.downsample(np.frombuffer(data, dtype=np.int16))
            current.audio_s += len(pcm) / SAMPLE_RATE
            words = current.recognizer.accept(pcm)
            if engine.partials:
                undone_s += len(pcm) / SAMPLE_RATE
            if words is not None:
                outbox.send(_caption(current, utterance, current.start_s + current.audio_s, words, final=False))
        elif kind == "end":
            _, utterance, end_s = message
            current = open_.pop(utterance, None)
            if current is None:
                continue
            by_speaker.pop((current.space, current.speaker), None)
            done_s = _finish(current, utterance, end_s, idle, outbox)
            undone_s += 0.0 if engine.partials else done_s
            outbox.send(("done", undone_s, utterance))
            undone_s = 0.0
            continue
        if undone_s >= DONE_STEP_S:
            outbox.send(("done", undone_s, None))
            undone_s = 0.0


def _finish(
    current: _Open, utterance: str, end_s: float | None, idle: dict[str, list[Recognizer]], outbox: Connection
) -> float:
    """The utterance's final caption (if it has words); its recognizer goes back to the pool.
    Returns its audio seconds."""
    text = current.recognizer.finish()
    idle.setdefault(current.language, []).append(current.recognizer)
    if text:
        end = end_s if end_s is not None else current.start_s + current.audio_s
        outbox.send(_caption(current, utterance, end, text, final=True))
    return current.audio_s


def _caption(current: _Open, utterance: str, end_s: float, text: str, *, final: bool) -> tuple[Any, ...]:
    return ("caption", current.space, current.speaker, current.name, utterance, current.start_s, end_s, text, final)
