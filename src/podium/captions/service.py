"""The node's captions service: each space's caption settings, the stage's frames to the workers,
the workers' captions to storage and the bus, and the transcript as stored.

Thin async glue around the workers (`captions.workers`, their own processes) and the sans-IO
transcript (`captions.transcript`). Invariants:
- the stage's tap (`frames`) costs dictionary lookups and the workers' own non-blocking `frame`;
  it never awaits, never raises into the stage;
- a final caption is appended to `captions.jsonl` (durable, in order of arrival) before it is told
  on the bus; a partial is only told;
- a caption for a space that is not live here (nor ended a moment ago, while the workers flush
  its last words) or whose captions are off is dropped;
- what waits to be stored is bounded (`MAX_WAITING`): a flood of captions costs captions (logged),
  never memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from podium.backends.interfaces import Bus, MediaStore
from podium.captions.engine import Caption, CaptionsUnavailable, Pcm
from podium.captions.transcript import CAPTIONS_NAME, Segment, line_of, parse_lines, segment_of
from podium.domain.space import Space, SpaceState
from podium.domain.stage import Role
from podium.errors import Conflict, Forbidden, InvalidInput
from podium.events import CaptionMade
from podium.ids import MemberId, SpaceId
from podium.spaces.directory import SpaceDirectory

log = logging.getLogger(__name__)

SETTINGS_NAME = "captions.json"
# A caption's words are cut here (an engine gone astray, a speaker who never pauses).
MAX_CAPTION_CHARS = 500
# Captions waiting to be stored and told; past it new ones are dropped (and counted).
MAX_WAITING = 1000
# After a space ends its workers flush: finals are taken this long (seconds) after the end.
FLUSH_S = 20.0
# A space's settings are read again from storage after this (another node may have changed them).
SETTINGS_FRESH_S = 5.0
# Ended spaces whose transcripts are kept in memory (for the stream's WebVTT segments), and spaces
# whose settings are (a listing shows many; each entry is a few dozen bytes).
TRANSCRIPTS_KEPT = 32
SETTINGS_KEPT = 10_000
DROP_LOG_INTERVAL_S = 10.0
LANGUAGE = re.compile("[a-z]{2,3}")


class CaptionWorkersLike(Protocol):
    """What the service needs of `captions.workers.CaptionWorkers` (see its docstrings)."""

    engine_name: str
    languages: tuple[str, ...]
    partials: bool

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def frame(self, space: str, speaker: str, name: str, language: str, at_s: float, samples: Pcm) -> None: ...

    def speaker_gone(self, space: str, speaker: str) -> None: ...

    def end_space(self, space: str) -> None: ...

    def status(self, space: str) -> Any: ...


@dataclass(frozen=True)
class CaptionSettings:
    enabled: bool
    language: str

    def view(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "language": self.language}


class Captioning:
    def __init__(self, directory: SpaceDirectory, media: MediaStore, bus: Bus, default_language: str = "en") -> None:
        self.directory = directory
        self.media = media
        self.bus = bus
        self.default_language = default_language
        self.workers: CaptionWorkersLike | None = None
        # Why the node has no captions (None while it has them).
        self.reason: str | None = "this node has no caption workers"
        # Each space's settings and when they were read (monotonic), the least recently read first.
        self._settings: OrderedDict[SpaceId, tuple[CaptionSettings, float]] = OrderedDict()
        self._loading: set[SpaceId] = set()
        # The speakers fed to the workers at the last tick of each space, by member id → name.
        self._fed: dict[SpaceId, dict[str, str]] = {}
        # Transcripts in memory: those of spaces live here (grown as finals come), and a few ended ones.
        self._transcripts: OrderedDict[SpaceId, dict[str, Segment]] = OrderedDict()
        self._queue: asyncio.Queue[Caption] = asyncio.Queue(MAX_WAITING)
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.dropped = 0
        self._drop_logged_at: float | None = None

    def use(self, workers: CaptionWorkersLike | None, reason: str | None = None) -> None:
        """The workers this node runs (None: no captions here, `reason` says why)."""
        self.workers = workers
        self.reason = None if workers is not None else (reason or "this node has no caption workers")

    # -- life ------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self.workers is not None:
            try:
                await self.workers.start()
            except CaptionsUnavailable as error:
                log.warning("captions are off on this node: %s", error)
                self.use(None, str(error))
        self._task = asyncio.create_task(self._store_loop(), name="captions-store")

    async def stop(self) -> None:
        if self._task is not None:
            # What is already waiting is stored first (bounded by MAX_WAITING short appends).
            await self.stored()
            self._task.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self.workers is not None:
            await self.workers.stop()

    @property
    def available(self) -> bool:
        return self.workers is not None

    @property
    def languages(self) -> tuple[str, ...]:
        return self.workers.languages if self.workers is not None else ()

    @property
    def engine(self) -> str:
        return self.workers.engine_name if self.workers is not None else "off"

    # -- settings --------------------------------------------------------------------------------
    def default(self) -> CaptionSettings:
        return CaptionSettings(self.available, self.default_language)

    def known(self, space_id: SpaceId) -> CaptionSettings:
        """From memory (the stage's tick and the space's view ask): the default until read."""
        found = self._settings.get(space_id)
        if found is None or self._stale(found[1]):
            self._load_soon(space_id)
        settings = found[0] if found is not None else self.default()
        return settings if self.available else CaptionSettings(False, settings.language)

    async def settings(self, space_id: SpaceId) -> CaptionSettings:
        found = self._settings.get(space_id)
        if found is None or self._stale(found[1]):
            await self._load(space_id)
        return self.known(space_id)

    def _stale(self, loaded_at: float) -> bool:
        return self.directory.clock.monotonic() - loaded_at > SETTINGS_FRESH_S

    def _load_soon(self, space_id: SpaceId) -> None:
        if space_id in self._loading:
            return
        self._loading.add(space_id)
        self._spawn(self._load_logged(space_id))

    async def _load_logged(self, space_id: SpaceId) -> None:
        try:
            await self._load(space_id)
        except Exception:
            # Read in the background for a tick or a view: the defaults (or the last read) stand.
            log.exception("space %s: its caption settings could not be read", space_id)

    async def _load(self, space_id: SpaceId) -> None:
        try:
            stored = await self.media.read(space_id, SETTINGS_NAME)
            settings = self.default()
            if stored is not None:
                try:
                    item = json.loads(stored)
                    settings = CaptionSettings(bool(item["enabled"]), str(item["language"]))
                except (json.JSONDecodeError, KeyError, TypeError):
                    log.warning("space %s: its %s does not read; the defaults apply", space_id, SETTINGS_NAME)
            self._keep(space_id, settings)
        finally:
            self._loading.discard(space_id)

    def _keep(self, space_id: SpaceId, settings: CaptionSettings) -> None:
        self._settings[space_id] = (settings, self.directory.clock.monotonic())
        self._settings.move_to_end(space_id)
        while len(self._settings) > SETTINGS_KEPT:
            self._settings.popitem(last=False)

    async def configure(self, space_id: str, token: str, enabled: bool, language: str) -> CaptionSettings:
        """The host's (or a co-host's) choice for a space: captions on or off, and their language."""
        space = await self.directory.get_space(space_id)
        if self.directory.authorize(space, token).role not in (Role.HOST, Role.COHOST):
            raise Forbidden("only the host or a co-host chooses the captions")
        language = language.strip().lower()
        if self.available and language not in self.languages:
            allowed = ", ".join(self.languages)
            raise InvalidInput(f"{self.engine} captions speak {allowed}; language must be one of them")
        if not LANGUAGE.fullmatch(language):
            raise InvalidInput("language must be an ISO 639-1 code such as en or de")
        if enabled and not self.available:
            raise Conflict(f"captions are not available on this node: {self.reason}")
        if space.state is SpaceState.ENDED:
            raise Conflict("this space has ended; its captions can no longer change")
        settings = CaptionSettings(enabled, language)
        await self.media.write(space.id, SETTINGS_NAME, json.dumps(settings.view()).encode())
        self._keep(space.id, settings)
        return settings

    async def status(self, space: Space) -> dict[str, Any]:
        """For the host: the settings, what the node can do, and how the captions keep up."""
        settings = await self.settings(space.id)
        return {
            **settings.view(),
            "languages": list(self.languages),
            "engine": self.engine,
            "available": self.available,
            "reason": self.reason,
            **self.notice(space.id),
        }

    def notice(self, space_id: SpaceId) -> dict[str, Any]:
        """For the host's board (and the status): `state` (live, behind, paused: the workers' word;
        off; unavailable) and a sentence saying it."""
        if self.workers is None:
            return {"state": "unavailable", "detail": f"captions are not available on this node: {self.reason}"}
        if not self.known(space_id).enabled:
            return {"state": "off", "detail": "captions are off for this space"}
        now = self.workers.status(space_id)
        state = str(getattr(now, "state", "live"))
        detail = str(getattr(now, "detail", "") or "") or "captions are made as people speak"
        return {"state": state, "detail": detail}

    # -- the stage's tap -------------------------------------------------------------------------
    def frames(self, space_id: SpaceId, frames: Mapping[str, Pcm], at_s: float) -> None:
        """One stage tick of a live space (never the pre-show): each unmuted speaker's 20 ms at
        48 kHz, by member id; `at_s` is the frame's start on the recording's axis."""
        workers = self.workers
        if workers is None:
            return
        settings = self.known(space_id)
        fed = self._fed.setdefault(space_id, {})
        if not settings.enabled:
            frames = {}
        for speaker in [s for s in fed if s not in frames]:
            # Left or muted: their utterance closes (its final still comes).
            del fed[speaker]
            workers.speaker_gone(space_id, speaker)
        if not frames:
            return
        rules = self.directory.known_rules(space_id)
        for speaker, samples in frames.items():
            member = rules.members.get(MemberId(speaker)) if rules is not None else None
            name = member.name if member is not None else speaker
            fed[speaker] = name
            workers.frame(space_id, speaker, name, settings.language, at_s, samples)

    async def space_ended(self, space: Space) -> None:
        """An end hook: the workers flush the space's last words (taken for FLUSH_S after the end)."""
        self._fed.pop(space.id, None)
        if self.workers is not None:
            self.workers.end_space(space.id)

    def flushing(self, space: Space) -> bool:
        """Ended less than FLUSH_S ago: the workers' last finals are still taken."""
        if space.state is not SpaceState.ENDED or space.ended_at is None:
            return False
        return (self.directory.clock.now() - space.ended_at).total_seconds() < FLUSH_S

    # -- captions in -----------------------------------------------------------------------------
    def on_caption(self, caption: Caption) -> None:
        """A caption from the workers, on the event loop: checked now, stored and told in order."""
        space_id = SpaceId(caption.space)
        space = self.directory.cached(space_id)
        if space is None or not (space.state is SpaceState.LIVE or self.flushing(space)):
            return
        if not self.known(space_id).enabled:
            return
        text = " ".join(caption.text.split())[:MAX_CAPTION_CHARS]
        if caption.final and not text:
            return  # nothing was said after all
        if text != caption.text:
            caption = Caption(**{**vars(caption), "text": text})
        try:
            self._queue.put_nowait(caption)
        except asyncio.QueueFull:
            self._dropped()

    async def stored(self) -> None:
        """Returns once every caption taken so far is stored and told (tests, shutdown)."""
        await self._queue.join()

    def _dropped(self) -> None:
        self.dropped += 1
        now = self.directory.clock.monotonic()
        if self._drop_logged_at is None or now - self._drop_logged_at >= DROP_LOG_INTERVAL_S:
            self._drop_logged_at = now
            log.warning("captions: %d waiting to be stored (the limit); %d dropped so far", MAX_WAITING, self.dropped)

    async def _store_loop(self) -> None:
        while True:
            caption = await self._queue.get()
            try:
                await self._take(caption)
            except Exception:
                # Never stop taking captions over one that failed: log it and keep the rest coming.
                log.exception("captions: could not store or tell %s", caption.utterance)
            finally:
                self._queue.task_done()

    async def _take(self, caption: Caption) -> None:
        space_id = SpaceId(caption.space)
        if caption.final:
            await self.media.append_line(space_id, CAPTIONS_NAME, line_of(caption))
            kept = self._transcripts.get(space_id)
            if kept is not None:
                kept[caption.utterance] = segment_of(caption)
        event = CaptionMade(
            space_id,
            self.directory.node_id,
            caption.speaker,
            caption.name,
            caption.utterance,
            round(caption.start_s, 3),
            round(caption.end_s, 3),
            caption.text,
            caption.final,
        )
        await self.bus.publish(event)

    # -- the transcript --------------------------------------------------------------------------
    async def transcript(self, space: Space) -> list[Segment]:
        """Every final caption of a space, ordered by start. From memory when memory is right: the
        space's captions are made here (its finals are added as they are stored), or it is complete;
        otherwise (another node's stage, the last words still coming) from storage."""
        kept = self._transcripts.get(space.id)
        trusted = space.id in self._fed or await self.complete(space)
        if kept is None or not trusted:
            kept = {s.utterance: s for s in parse_lines(await self.media.lines(space.id, CAPTIONS_NAME))}
            if trusted:
                self._transcripts[space.id] = kept
                self._forget_old()
        if space.id in self._transcripts:
            self._transcripts.move_to_end(space.id)
        return sorted(kept.values(), key=lambda s: (s.start_s, s.end_s, s.speaker_id, s.utterance))

    def _forget_old(self) -> None:
        # The least recently read go first; a live space's (grown as its finals come) stays.
        for space_id in list(self._transcripts):
            if len(self._transcripts) <= TRANSCRIPTS_KEPT:
                break
            if space_id not in self._fed:
                del self._transcripts[space_id]

    async def has_transcript(self, space_id: SpaceId) -> bool:
        kept = self._transcripts.get(space_id)
        if kept is not None:
            return bool(kept)
        path = self.media.local_path(space_id, CAPTIONS_NAME)
        if path is not None:
            return path.stat().st_size > 0
        return bool(await self.media.lines(space_id, CAPTIONS_NAME))

    async def complete(self, space: Space) -> bool:
        """True once the space has ended and its workers flushed its last words."""
        return space.state is SpaceState.ENDED and not self.flushing(space)

    async def language(self, space_id: SpaceId) -> str:
        return (await self.settings(space_id)).language

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
