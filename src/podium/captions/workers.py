"""Captions worker processes and the glue that feeds them from the stage's loop.

`CaptionWorkers.frame` is called on the stage's event loop for every unmuted speaker's 20 ms frame;
it must never block and costs microseconds: the speaker's `UtteranceCutter` decides whether they
talk, and only utterances go, in ~160 ms chunks, onto a bounded queue with `put_nowait`. Worker
processes (spawned, niced, one CPU thread each) run the engine; a daemon thread reads their results
and hands them to the loop with `call_soon_threadsafe`.

Invariants:
- The audio never waits for captions: a full queue drops the utterance (counted, "behind").
- At most `max_speakers` utterances are captioned at once on the node; a speaker who begins one
  past the budget is skipped for that utterance and the host sees "paused" naming them.
- A worker's lag is the audio it was given and has not recognized yet (a batch engine's open
  utterances aside: it works on them at their end). Past `max_lag_s` it gets no new utterance.
- A worker that dies loses at most the utterances it had in flight; it is restarted after a delay
  that doubles with each death in a row (1 s up to a minute), so a crashing engine cannot spin.
- The host's notices ("paused", "behind") last while their cause does and `NOTICE_HOLD_S` after it,
  on the injected clock (frames stop when everyone mutes; a notice must still end).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import multiprocessing
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from podium.captions import worker_main
from podium.captions.engine import Caption, CaptionsUnavailable
from podium.captions.utterances import CHUNK_FRAMES, FRAME_S, INPUT_RATE, Audio, Begin, End, Event, UtteranceCutter
from podium.clock import Clock, SystemClock

if TYPE_CHECKING:
    from podium.settings import Settings

log = logging.getLogger(__name__)

State = Literal["live", "behind", "paused"]

LOAD_TIMEOUT_S = 120.0  # a big Whisper model on a slow disk
STOP_TIMEOUT_S = 3.0
WATCH_INTERVAL_S = 0.25
RESTART_FIRST_S = 1.0
RESTART_MAX_S = 60.0
STEADY_S = 60.0  # a worker that lived this long before dying starts the backoff over
NOTICE_HOLD_S = 5.0  # a "paused"/"behind" notice stays this long after its cause is over
# A worker's queue holds this many times `max_lag_s` of audio (in the cutter's chunks): the lag stops
# new utterances long before it fills; a full queue drops what would block.
QUEUE_LAGS = 4


@dataclass(frozen=True)
class CaptionConfig:
    engine: str = "pocketsphinx"  # "off" disables captions
    model: str = ""
    language: str = "en"
    workers: int = 1
    max_speakers: int = 2
    max_lag_s: float = 8.0

    @classmethod
    def from_settings(cls, settings: Settings) -> CaptionConfig:
        return cls(
            engine=settings.captions_engine,
            model=settings.captions_model,
            language=settings.captions_language,
            workers=settings.captions_workers,
            max_speakers=settings.captions_max_speakers,
            max_lag_s=settings.captions_max_lag_s,
        )


@dataclass(frozen=True)
class CaptionStatus:
    state: State
    detail: str  # a sentence for the host
    captioned: list[str] = field(default_factory=list)  # speakers whose words are being captioned now
    waiting: list[str] = field(default_factory=list)  # speakers skipped for the node's budget


@dataclass
class _Utterance:
    id: str
    space: str
    speaker: str
    name: str
    language: str
    start_s: float
    # sent: open on a worker (counts against the budget); ended: its end sent, its final to come;
    # waiting: skipped for the budget; dropped: skipped or lost (behind, or a worker died);
    # ignored: in a language the engine does not know (the service offers only the engine's).
    fate: Literal["sent", "ended", "waiting", "dropped", "ignored"] = "sent"
    worker: _Worker | None = None
    audio_s: float = 0.0


@dataclass
class _Speaker:
    cutter: UtteranceCutter
    name: str = ""
    language: str = "en"
    current: _Utterance | None = None


@dataclass
class _Space:
    waiting: dict[str, float] = field(default_factory=dict)  # speaker -> shown until (clock), inf while open
    behind_until_s: float = -1.0
    behind_why: str = ""


@dataclass
class _Worker:
    index: int
    process: BaseProcess | None = None
    inbox: Queue[tuple[Any, ...]] | None = None
    results: Connection | None = None
    generation: int = 0
    pid: int = 0
    ready: bool = False
    started_at: float = 0.0
    deaths_in_a_row: int = 0
    restart_at: float | None = None
    loaded: asyncio.Future[str] | None = None  # "" when ready, else the reason it failed
    sent_s: float = 0.0
    done_s: float = 0.0
    held_s: float = 0.0  # audio of open utterances on a batch engine (worked on at their end)
    open: dict[str, _Utterance] = field(default_factory=dict)  # begun, not yet finished by the worker
    owed: deque[tuple[Any, ...]] = field(default_factory=deque)  # "end"s that met a full queue

    @property
    def lag_s(self) -> float:
        return max(0.0, self.sent_s - self.done_s - self.held_s)


class CaptionWorkers:
    """The node's captions engine in worker processes, fed from the stage's loop."""

    def __init__(
        self,
        config: CaptionConfig,
        on_caption: Callable[[Caption], None],
        clock: Clock | None = None,
    ) -> None:
        if config.workers < 1 or config.max_speakers < 1 or config.max_lag_s <= 0:
            raise ValueError("workers and max_speakers must be at least 1, max_lag_s positive")
        self.config = config
        self.on_caption = on_caption
        self.clock = clock or SystemClock()  # notices' holds and restart delays; never the frames' pace
        self.engine_name = config.engine
        self.languages: tuple[str, ...] = ()
        self.partials = False
        self.dropped = 0  # utterances lost to a full queue, a lag past the limit or a dead worker
        self.skipped = 0  # utterances skipped for the speakers' budget
        self.restarts = 0
        self.queue_chunks = math.ceil(QUEUE_LAGS * config.max_lag_s / (CHUNK_FRAMES * FRAME_S)) + 8
        self._context = multiprocessing.get_context("spawn")
        self._workers = [_Worker(i) for i in range(config.workers)]
        self._speakers: dict[tuple[str, str], _Speaker] = {}
        self._spaces: dict[str, _Space] = {}
        self._captioning = 0  # utterances open and sent, node-wide: the budget's count
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watch: asyncio.Task[None] | None = None
        self._reader: threading.Thread | None = None
        self._reading = threading.Event()
        self._lock = threading.Lock()  # guards the reader's view of the workers' connections
        self._detached: list[Connection] = []  # results pipes of workers gone, for the reader to close

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def pids(self) -> list[int]:
        return [w.pid for w in self._workers if w.ready and w.process is not None and w.process.is_alive()]

    @property
    def lag_s(self) -> float:
        """The most audio (seconds) any worker has been given and not yet recognized."""
        return max((w.lag_s for w in self._workers), default=0.0)

    @property
    def restart_in_s(self) -> float | None:
        """Seconds until the next restart of a dead worker (None: none is waiting for one)."""
        due = [w.restart_at for w in self._workers if w.restart_at is not None]
        return max(0.0, min(due) - self.clock.monotonic()) if due else None

    async def start(self) -> None:
        """Spawn the workers and wait until each has loaded the engine; raises CaptionsUnavailable."""
        if self.config.engine == "off":
            raise CaptionsUnavailable("captions are off (PODIUM_CAPTIONS_ENGINE=off)")
        self._loop = asyncio.get_running_loop()
        self._reading.set()
        self._reader = threading.Thread(target=self._read, name="podium-captions-results", daemon=True)
        self._reader.start()
        try:
            for worker in self._workers:
                await self._spawn(worker)
            for worker in self._workers:
                assert worker.loaded is not None
                try:
                    reason = await asyncio.wait_for(asyncio.shield(worker.loaded), LOAD_TIMEOUT_S)
                except TimeoutError:
                    reason = f"the {self.config.engine} engine did not load within {LOAD_TIMEOUT_S:g} s"
                if reason:
                    raise CaptionsUnavailable(reason)
        except BaseException:
            await self.stop()
            raise
        self._watch = asyncio.create_task(self._watch_workers(), name="podium-captions-watch")

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        for worker in self._workers:
            if worker.inbox is not None and worker.process is not None and worker.process.is_alive():
                with contextlib.suppress(Exception):  # full (or broken): it is ended below
                    worker.inbox.put_nowait(("stop",))
        await asyncio.to_thread(self._end_processes)
        self._reading.clear()
        if self._reader is not None:
            await asyncio.to_thread(self._reader.join, 2.0)
            self._reader = None
        for worker in self._workers:
            self._close(worker)
        self._close_detached()

    def _close_detached(self) -> None:
        with self._lock:
            detached, self._detached = self._detached, []
        for connection in detached:
            connection.close()

    def _end_processes(self) -> None:
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for worker in self._workers:
            if worker.process is not None:
                worker.process.join(max(0.0, deadline - time.monotonic()))
                if worker.process.is_alive():
                    worker.process.kill()
                    worker.process.join(1.0)

    async def _spawn(self, worker: _Worker) -> None:
        assert self._loop is not None
        self._close(worker)
        inbox: Queue[tuple[Any, ...]] = self._context.Queue(self.queue_chunks)
        results, writer = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=worker_main.run,
            args=(self.config.engine, self.config.model, self.config.language, inbox, writer),
            name=f"podium-captions-{worker.index}",
            daemon=True,
        )
        worker.generation += 1
        worker.loaded = self._loop.create_future()
        worker.ready = False
        worker.restart_at = None
        await asyncio.to_thread(process.start)
        writer.close()  # the child holds the other end: its death reads as EOF here
        worker.started_at = self.clock.monotonic()
        with self._lock:
            worker.process, worker.inbox, worker.results = process, inbox, results

    def _close(self, worker: _Worker) -> None:
        with self._lock:
            inbox, results = worker.inbox, worker.results
            worker.inbox = worker.results = None
            if results is not None:
                # The reader may be waiting on it right now: it closes it between two waits.
                self._detached.append(results)
        if inbox is not None:
            inbox.cancel_join_thread()  # never wait at exit for data a dead worker will not read
            inbox.close()
        worker.ready = False
        for utterance in list(worker.open.values()):
            self._drop(utterance, "a captions worker restarts")
        worker.open.clear()
        worker.owed.clear()
        worker.sent_s = worker.done_s = worker.held_s = 0.0

    # -- the watch: dead workers come back, owed messages go out -------------------------------

    async def _watch_workers(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            try:
                await self._check_workers()
            except Exception:
                log.exception("captions: checking the workers failed")

    async def _check_workers(self) -> None:
        now = self.clock.monotonic()
        for worker in self._workers:
            process = worker.process
            if worker.restart_at is None and process is not None and not process.is_alive():
                self._died(worker, f"exit code {process.exitcode}")
            if worker.restart_at is not None and now >= worker.restart_at:
                self.restarts += 1
                log.warning("captions: restarting worker %d", worker.index)
                await self._spawn(worker)
            self._flush_owed(worker)

    def _died(self, worker: _Worker, why: str) -> None:
        if worker.restart_at is not None:
            return
        now = self.clock.monotonic()
        lived_s = now - worker.started_at
        worker.deaths_in_a_row = 1 if lived_s >= STEADY_S else worker.deaths_in_a_row + 1
        delay = min(RESTART_MAX_S, RESTART_FIRST_S * 2 ** (worker.deaths_in_a_row - 1))
        log.warning(
            "captions: worker %d (pid %d) died (%s) after %.0f s with %d utterances in flight; restart in %g s",
            worker.index,
            worker.pid,
            why,
            lived_s,
            len(worker.open),
            delay,
        )
        if worker.process is not None and worker.process.is_alive():
            worker.process.kill()
        self._close(worker)
        worker.restart_at = now + delay

    # -- results (reader thread -> loop) --------------------------------------------------------

    def _read(self) -> None:
        """The daemon thread: every worker's results, handed to the loop as they come."""
        while self._reading.is_set():
            self._close_detached()  # here, and only here while reading: never under a wait
            with self._lock:
                connections = {w.results: (w, w.generation) for w in self._workers if w.results is not None}
            if not connections:
                time.sleep(0.1)
                continue
            try:
                ready_ones = wait(list(connections), timeout=0.2)
            except (OSError, ValueError):  # a pipe went away between the snapshot and the wait
                continue
            for ready in ready_ones:
                assert isinstance(ready, Connection)
                worker, generation = connections[ready]
                try:
                    message = ready.recv()
                except (EOFError, OSError):
                    message = ("eof",)
                    with self._lock:
                        if worker.results is ready:  # detached: closed at the next turn
                            worker.results = None
                            self._detached.append(ready)
                loop = self._loop
                if loop is None or loop.is_closed():
                    return
                try:
                    loop.call_soon_threadsafe(self._on_message, worker, generation, message)
                except RuntimeError:  # the loop closed meanwhile
                    return

    def _on_message(self, worker: _Worker, generation: int, message: tuple[Any, ...]) -> None:
        if generation != worker.generation:
            return  # from an earlier incarnation
        kind = message[0]
        if kind == "caption":
            _, space, speaker, name, utterance, start_s, end_s, text, final = message
            try:
                self.on_caption(Caption(space, speaker, name, utterance, start_s, end_s, text, final))
            except Exception:
                log.exception("captions: on_caption failed")
        elif kind == "done":
            worker.done_s += message[1]
            if message[2] is not None:
                worker.open.pop(message[2], None)
        elif kind == "ready":
            _, worker.pid, self.engine_name, self.partials, languages = message
            self.languages = tuple(languages)
            worker.ready = True
            if worker.loaded is not None and not worker.loaded.done():
                worker.loaded.set_result("")
            if self.restarts:
                log.info("captions: worker %d is back (pid %d)", worker.index, worker.pid)
        elif kind == "failed":
            if worker.loaded is not None and not worker.loaded.done():
                worker.loaded.set_result(message[1])
            if self._watch is not None:  # a restart that failed to load: try again later
                log.warning("captions: worker %d failed to load: %s", worker.index, message[1])
                self._died(worker, "the engine failed to load")
        elif kind == "eof":
            if worker.loaded is not None and not worker.loaded.done():
                worker.loaded.set_result("a captions worker process ended while loading the engine (see the log)")
            if self._watch is not None:
                self._died(worker, "its results pipe closed")

    # -- frames (the stage's loop) -------------------------------------------------------------

    def frame(
        self, space: str, speaker: str, name: str, language: str, at_s: float, samples: npt.NDArray[np.int16]
    ) -> None:
        """A speaker's 20 ms at 48 kHz. Never blocks; microseconds."""
        room = self._spaces.get(space)
        if room is None:
            room = self._spaces[space] = _Space()
        key = (space, speaker)
        talker = self._speakers.get(key)
        if talker is None:
            talker = self._speakers[key] = _Speaker(UtteranceCutter(partial(utterance_id, speaker)))
        talker.name = name
        talker.language = language
        events = talker.cutter.frame(at_s, samples)
        if events:
            self._handle(space, speaker, talker, events)

    def speaker_gone(self, space: str, speaker: str) -> None:
        talker = self._speakers.pop((space, speaker), None)
        if talker is not None:
            self._handle(space, speaker, talker, talker.cutter.close())

    def end_space(self, space: str) -> None:
        for key in [key for key in self._speakers if key[0] == space]:
            self.speaker_gone(*key)
        self._spaces.pop(space, None)

    def _handle(self, space: str, speaker: str, talker: _Speaker, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, Begin):
                talker.current = self._begin(space, speaker, talker, event)
                continue
            utterance = talker.current
            if utterance is None or utterance.id != event.utterance:
                continue
            if isinstance(event, Audio):
                self._audio(utterance, event)
            elif isinstance(event, End):
                self._end(utterance, event)
                talker.current = None

    def _begin(self, space: str, speaker: str, talker: _Speaker, event: Begin) -> _Utterance:
        utterance = _Utterance(event.utterance, space, speaker, talker.name, talker.language, event.start_s)
        room = self._spaces[space]
        if self.languages and talker.language not in self.languages:
            utterance.fate = "ignored"
            return utterance
        if self._captioning >= self.config.max_speakers:
            utterance.fate = "waiting"
            self.skipped += 1
            room.waiting[speaker] = float("inf")
            return utterance
        worker = self._pick_worker()
        if worker is None:
            ready = any(w.ready for w in self._workers)
            self._drop(utterance, "this server cannot keep up" if ready else "a captions worker restarts")
            return utterance
        message = ("begin", utterance.id, space, speaker, talker.name, talker.language, event.start_s)
        if not self._put(worker, message):
            self._drop(utterance, "this server cannot keep up")
            return utterance
        utterance.worker = worker
        worker.open[utterance.id] = utterance
        self._captioning += 1
        room.waiting.pop(speaker, None)
        return utterance

    def _audio(self, utterance: _Utterance, event: Audio) -> None:
        worker = utterance.worker
        if utterance.fate != "sent" or worker is None:
            return
        if not self._put(worker, ("audio", utterance.id, event.samples.tobytes())):
            self._drop(utterance, "this server cannot keep up")
            self._owe_end(utterance)
            return
        seconds = len(event.samples) / INPUT_RATE
        utterance.audio_s += seconds
        worker.sent_s += seconds
        if not self.partials:
            worker.held_s += seconds

    def _end(self, utterance: _Utterance, event: End) -> None:
        room = self._spaces.get(utterance.space)
        if utterance.fate == "waiting":
            if room is not None:
                room.waiting[utterance.speaker] = self.clock.monotonic() + NOTICE_HOLD_S
            return
        if utterance.fate == "dropped" and room is not None:  # the notice holds from the end of what was lost
            room.behind_until_s = max(room.behind_until_s, self.clock.monotonic() + NOTICE_HOLD_S)
        if utterance.fate != "sent" or utterance.worker is None:
            return
        worker = utterance.worker
        self._release(utterance)
        utterance.fate = "ended"
        if not self._put(worker, ("end", utterance.id, event.end_s)):
            worker.owed.append(("end", utterance.id, event.end_s))

    def _release(self, utterance: _Utterance) -> None:
        """The utterance no longer counts against the budget; a batch engine now works on it."""
        worker = utterance.worker
        if worker is not None and not self.partials:
            worker.held_s = max(0.0, worker.held_s - utterance.audio_s)
        self._captioning = max(0, self._captioning - 1)

    def _drop(self, utterance: _Utterance, why: str) -> None:
        if utterance.fate == "dropped":
            return
        if utterance.fate == "sent" and utterance.worker is not None:
            self._release(utterance)
        utterance.fate = "dropped"
        self.dropped += 1
        room = self._spaces.get(utterance.space)
        if room is not None:
            room.behind_until_s = self.clock.monotonic() + NOTICE_HOLD_S
            room.behind_why = why

    def _owe_end(self, utterance: _Utterance) -> None:
        """The worker saw the utterance begin: it must see it end too, or its recognizer stays taken."""
        worker = utterance.worker
        if worker is not None:
            worker.owed.append(("end", utterance.id, utterance.start_s + utterance.audio_s))

    def _pick_worker(self) -> _Worker | None:
        best: _Worker | None = None
        for worker in self._workers:
            if not worker.ready or worker.inbox is None or worker.lag_s > self.config.max_lag_s:
                continue
            if best is None or (worker.lag_s, len(worker.open)) < (best.lag_s, len(best.open)):
                best = worker
        return best

    def _put(self, worker: _Worker, message: tuple[Any, ...]) -> bool:
        if worker.owed and not self._flush_owed(worker):
            return False
        inbox = worker.inbox
        if inbox is None:
            return False
        try:
            inbox.put_nowait(message)
        except Exception:  # queue.Full, or a queue closed under us (the worker restarts)
            return False
        return True

    def _flush_owed(self, worker: _Worker) -> bool:
        while worker.owed and worker.inbox is not None:
            try:
                worker.inbox.put_nowait(worker.owed[0])
            except Exception:
                return False
            worker.owed.popleft()
        return not worker.owed

    # -- what the host sees ----------------------------------------------------------------------

    def status(self, space: str) -> CaptionStatus:
        room = self._spaces.get(space)
        if room is None:
            return CaptionStatus("live", "Captions are on; nobody is talking.")
        captioned, names, behind = [], {}, False
        for (s, speaker), talker in self._speakers.items():
            if s != space:
                continue
            names[speaker] = talker.name or speaker
            fate = talker.current.fate if talker.current is not None else None
            if fate == "sent":
                captioned.append(speaker)
            behind = behind or fate == "dropped"
        now = self.clock.monotonic()
        waiting = [speaker for speaker, until in room.waiting.items() if until > now]
        for speaker in [speaker for speaker in room.waiting if speaker not in waiting]:
            del room.waiting[speaker]
        if waiting:
            who = _names([names.get(speaker, speaker) for speaker in waiting])
            n = self.config.max_speakers
            return CaptionStatus(
                "paused",
                f"Captions paused for {who}: this server can caption {n} speaker{'s' if n != 1 else ''} at once.",
                captioned,
                waiting,
            )
        if behind or room.behind_until_s > now:
            return CaptionStatus(
                "behind", f"Captions are behind: {room.behind_why}, so some words are not captioned.", captioned
            )
        return CaptionStatus("live", "Captions are live.", captioned)


def utterance_id(speaker: str, start_s: float) -> str:
    """Unique in the space, and the same after a restart of the node: a speaker's utterances start on
    distinct 20 ms ticks of the recording's time axis."""
    return f"{speaker}.{round(start_s * 50)}"


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
