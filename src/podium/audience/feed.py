"""Runs the timelines: collects audience events from the bus, closes one interval per second for
every active space, stores each object durably and serves them (immutable) with a short index.

Between nodes, every node hears every event, but one node at a time makes a space's timeline: the
node running its stage, or, while no stage runs, whichever holds the space's timeline lease. The
others forget what they heard at each tick and read the objects from the shared storage."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from dataclasses import KW_ONLY, dataclass
from typing import Any

from podium import urls
from podium.audience.posts import Posting
from podium.audience.timeline import Timeline, index
from podium.backends.interfaces import MediaStore, Placement
from podium.domain.posts import public_view
from podium.domain.space import SpaceState
from podium.errors import NotFound
from podium.events import (
    AUDIENCE,
    CaptionMade,
    CommentPosted,
    ModerationChanged,
    PinChanged,
    PostRemoved,
    QuestionsChanged,
    Reacted,
)
from podium.ids import SpaceId
from podium.spaces import background
from podium.spaces.directory import SpaceDirectory
from podium.spaces.listeners import Listeners
from podium.spaces.members import StageMembers
from podium.spaces.ownership import Ownership
from podium.spaces.stages import StageManager

log = logging.getLogger(__name__)

QUESTIONS_SHOWN = 20
POINTER_NAME = "timeline.json"
REACTIONS_NAME = "reactions.jsonl"
CACHED_ITEMS = 120  # per space, in memory; older ones are read from storage
TIMELINE_LEASE_S = 3.0  # a node that stopped making a timeline gives it up after this
ELSEWHERE_POLL_S = 0.25  # how often a reader waits to look again for an object another node makes


def item_name(seq: int) -> str:
    return f"t{seq}.json"


def caption_view(event: CaptionMade) -> dict[str, Any]:
    """A caption as timeline objects carry it."""
    return {
        "id": event.utterance,
        "speaker": event.speaker,
        "name": event.name,
        "start_s": event.start_s,
        "end_s": event.end_s,
        "text": event.text,
        "final": event.final,
    }


@dataclass(eq=False)
class Feed:
    directory: SpaceDirectory
    members: StageMembers
    stages: StageManager
    listeners: Listeners
    ownership: Ownership
    media: MediaStore
    posting: Posting
    _: KW_ONLY
    # Which node makes which space's timeline (on one node, this one always).
    leases: Placement
    interval_s: float = 1.0
    max_comments: int = 20

    def __post_init__(self) -> None:
        self._timelines: dict[SpaceId, Timeline] = {}
        # Spaces that are not live but have news to close; live spaces always tick.
        self._ticking: set[SpaceId] = set()
        # Set at each tick of a space: readers asking for the next object wait on it.
        self._ticked: dict[SpaceId, asyncio.Event] = {}
        self._items: dict[SpaceId, OrderedDict[int, bytes]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        # The spaces whose timeline this node makes now.
        self._making: set[SpaceId] = set()

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen(), name="feed-listen"),
            asyncio.create_task(self._tick_forever(), name="feed-tick"),
        ]

    async def stop(self) -> None:
        await background.cancel(self._tasks)
        await self.leases.close()

    # -- reading ------------------------------------------------------------------------------
    async def index(self, space_id: str) -> dict[str, Any]:
        space = await self.directory.get_space(space_id)
        base = self.directory.settings.base_url + urls.fill(urls.TIMELINE, space_id=space.id).rstrip("/")
        return index(await self._latest(space.id), self.interval_s, space.state.value, base)

    async def _latest(self, space_id: SpaceId) -> int:
        """The newest object's number, without making the space active (readers only read)."""
        timeline = self._timelines.get(space_id)
        if timeline is not None:
            return timeline.seq
        pointer = await self.media.read(space_id, POINTER_NAME)
        return int(json.loads(pointer)["latest"]) if pointer is not None else -1

    async def item(self, space_id: str, seq: int, hold_s: float = 0.0) -> bytes:
        """Object `seq`. Asked for the next one (latest + 1) with `hold_s`, the answer waits until it
        is made, as a blocking playlist reload does: a crowd waiting for the next second makes one
        origin request through a cache with request collapsing, and sees it the moment it exists."""
        space = await self.directory.get_space(space_id)
        found = await self._find(space.id, seq)
        if found is None and hold_s > 0 and space.state is not SpaceState.ENDED:
            clock = self.directory.clock
            deadline = clock.monotonic() + hold_s
            # Held only for the very next object; woken by each tick, re-checked (a tick may be mid-write).
            while found is None and seq == await self._latest(space.id) + 1:
                remaining = deadline - clock.monotonic()
                if remaining <= 0:
                    break
                event = self._ticked.setdefault(space.id, asyncio.Event())
                if space.id not in self._making:
                    remaining = min(remaining, ELSEWHERE_POLL_S)  # made elsewhere: no tick wakes us
                with contextlib.suppress(TimeoutError):
                    await clock.wait_for(event.wait(), remaining)
                found = await self._find(space.id, seq)
            if found is None:
                found = await self._find(space.id, seq)
        if found is None:
            raise NotFound("no such timeline item (not made yet)")
        return found

    async def _find(self, space_id: SpaceId, seq: int) -> bytes | None:
        cached = self._items.get(space_id, OrderedDict()).get(seq)
        if cached is not None:
            return cached
        return await self.media.read(space_id, item_name(seq))

    # -- writing ------------------------------------------------------------------------------
    async def _listen(self) -> None:
        async for event in self.directory.bus.subscribe(AUDIENCE):
            try:
                timeline = await self._timeline(event.space)
                self._ticking.add(event.space)
                match event:
                    case CommentPosted(post=post):
                        timeline.comment(post)
                    case QuestionsChanged():
                        timeline.questions_changed()
                    case PostRemoved(post_id=post_id):
                        timeline.removed(post_id)
                        timeline.questions_changed()
                    case Reacted(emoji=emoji, count=count):
                        timeline.react(emoji, count)
                    case PinChanged():
                        timeline.pinned_changed()
                    case CaptionMade():
                        timeline.caption(caption_view(event))
                if isinstance(event, PinChanged | ModerationChanged) and event.node != self.ownership.node_id:
                    # Another node changed the rules: read them again when next needed.
                    self.posting.forget_moderation(event.space)
            except Exception:
                log.exception("could not take timeline event %r", event)

    async def _timeline(self, space_id: SpaceId) -> Timeline:
        timeline = self._timelines.get(space_id)
        if timeline is None:
            timeline = Timeline(interval_s=self.interval_s, max_comments=self.max_comments)
            await self._catch_up(space_id, timeline)  # a restart continues the numbering
            self._timelines[space_id] = timeline
        return timeline

    async def _tick_forever(self) -> None:
        clock = self.directory.clock
        next_at = clock.monotonic()
        while True:
            next_at += self.interval_s
            await clock.sleep(max(0.0, next_at - clock.monotonic()))
            for space_id in list(self._active()):
                try:
                    if await self._makes(space_id):
                        await self.tick(space_id)
                except Exception:
                    log.exception("timeline of %s could not tick", space_id)

    async def _makes(self, space_id: SpaceId) -> bool:
        """Whether this node makes `space_id`'s timeline now (always, on one node). A node that does
        not forgets what it heard: the maker heard it too."""
        node = self.ownership.node_id
        here = self.stages.stage(space_id) is not None
        stage_owner = None if here else await self.ownership.owner(space_id)
        if (here or stage_owner in (None, node)) and await self.leases.claim(space_id, node, TIMELINE_LEASE_S):
            if space_id not in self._making:
                await self._catch_up(space_id, await self._timeline(space_id))
                self._making.add(space_id)
            return True
        if space_id in self._making:
            self._making.discard(space_id)
            await self.leases.release(space_id, node)
        self._timelines.pop(space_id, None)
        self._ticking.discard(space_id)
        return False

    async def _catch_up(self, space_id: SpaceId, timeline: Timeline) -> None:
        """Go on from the last object stored (before a restart, or by another node)."""
        pointer = await self.media.read(space_id, POINTER_NAME)
        if pointer is not None:
            stored = json.loads(pointer)
            if int(stored["latest"]) > timeline.seq:
                timeline.seq = int(stored["latest"])
                timeline.restore_recent(stored.get("recent", []), stored.get("recent_captions", []))

    async def tick(self, space_id: SpaceId) -> dict[str, Any] | None:
        """Close one interval of `space_id`'s timeline; an ended space gets one last object, then stops."""
        space = await self.directory.get_space(space_id)
        timeline = await self._timeline(space.id)
        news = timeline.has_news
        questions = None
        if timeline.wants_questions:
            questions = [public_view(p) for p in await self.posting.questions(space.id)][:QUESTIONS_SHOWN]
        pinned = (await self.posting.moderation(space.id)).pinned if timeline.wants_pinned else None
        counts = self.listeners.counts(space.id)
        speakers = [
            {"id": m.id, "name": m.name, "speaking": speaking, "muted": m.muted}
            for m, speaking in self.members.speaking(space)
        ]
        item = timeline.tick(
            self.directory.clock.now(), {"now": counts.now, "peak": counts.peak}, speakers, questions, pinned
        )
        data = json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode()
        # Readable from memory first (the number is already taken), then made durable.
        cache = self._items.setdefault(space.id, OrderedDict())
        cache[item["seq"]] = data
        while len(cache) > CACHED_ITEMS:
            cache.popitem(last=False)
        event = self._ticked.pop(space.id, None)
        if event is not None:
            event.set()
        await self.media.write(space.id, item_name(item["seq"]), data)
        if item.get("reactions"):
            # A compact log of the reactions alone, for the replay to show them in step with the audio.
            line = json.dumps({"at": item["at"], "reactions": item["reactions"]}, ensure_ascii=False)
            await self.media.append_line(space.id, REACTIONS_NAME, line)
        pointer = {
            "latest": item["seq"],
            "recent": timeline.recent_comments,
            "recent_captions": timeline.recent_captions,
        }
        await self.media.write(space.id, POINTER_NAME, json.dumps(pointer, ensure_ascii=False).encode())
        if space.state is SpaceState.ENDED or (space.id not in self.stages.live_space_ids() and not news):
            # Ended: the last object is made. Not live and quiet: stop until the next post or reaction.
            self._ticking.discard(space.id)
        return item

    def _active(self) -> set[SpaceId]:
        # Live spaces tick; others only while they have news (a post, a reaction) to close.
        return set(self.stages.live_space_ids()) | self._ticking
