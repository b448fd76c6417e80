"""Start on time: the pre-show of a scheduled space opens before its start (hold audio, countdown),
switches to the stage at the start if the host is connected, and closes if nobody comes."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from podium.domain import space as space_rules
from podium.domain.space import Space, SpaceState
from podium.errors import AtCapacity, Conflict
from podium.ids import SpaceId
from podium.spaces import background
from podium.spaces.directory import SpaceDirectory
from podium.spaces.stages import HOLD_NAME, StageManager

log = logging.getLogger(__name__)

SCHEDULE_TICK_S = 0.25  # how often the schedule is looked at: the start is on the quarter second


@dataclass(eq=False)
class Schedule:
    directory: SpaceDirectory
    stages: StageManager

    def __post_init__(self) -> None:
        # Pre-shows that wait for a slot (logged once), and since when each running one is idle.
        self._preshow_waiting: set[SpaceId] = set()
        self._idle_since: dict[SpaceId, datetime] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [
            background.start(self.directory.clock, SCHEDULE_TICK_S, self.run, "running the schedule", "schedule")
        ]

    async def stop(self) -> None:
        await background.cancel(self._tasks)

    async def run(self) -> None:
        """Open the pre-show of spaces about to start, soonest start first, as far as the budget of
        stages allows (the others wait for a slot); at the start time, switch to the stage if the
        host is connected (start on the second), else keep the pre-show on; close a pre-show that
        nobody has come to for `preshow_idle_close_s` past its start."""
        now = self.directory.clock.now()
        lead = timedelta(seconds=self.directory.settings.preshow_lead_s)
        idle_close = timedelta(seconds=self.directory.settings.preshow_idle_close_s)
        scheduled = [
            space
            for space in self.directory.known()
            if space.state is SpaceState.SCHEDULED and space.starts_at is not None and not space.preshow_closed
        ]
        scheduled.sort(key=lambda space: space.starts_at or now)
        # Idleness is counted while a pre-show runs: a stage taken off the air starts afresh.
        running = {space.id for space in scheduled if self.stages.in_preshow(space.id)}
        for space_id in [key for key in self._idle_since if key not in running]:
            del self._idle_since[space_id]
        for space in scheduled:
            assert space.starts_at is not None
            stage = self.stages.stage(space.id)
            if stage is None and now >= space.starts_at - lead:
                waited = space.id in self._preshow_waiting and now - space.starts_at >= idle_close
                if waited and not self.stages.heard(space):
                    # It waited for a slot past its start and the idle time: nobody is there to hear it.
                    await self._close_preshow(space, "it waited for a slot past its start and nobody came")
                    continue
                await self._open_preshow(space)
            elif stage is not None and stage.preshow:
                if self.stages.host_connected(space.id) and now >= space.starts_at:
                    async with self.directory.lock(space.id):
                        stage.go_live()
                        await self.stages.went_live(space)
                elif self.stages.heard(space):
                    self._idle_since.pop(space.id, None)
                else:
                    since = self._idle_since.setdefault(space.id, now)
                    if now - max(since, space.starts_at) >= idle_close:
                        await self._close_preshow(space, f"nobody connected or listened for {idle_close}")

    async def _open_preshow(self, space: Space) -> None:
        async with self.directory.lock(space.id):
            if self.stages.stage(space.id) is not None:
                return
            try:
                await self.stages.start_stage(space, preshow=True)
            except Conflict:
                return  # another node opened it
            except AtCapacity:
                if space.id not in self._preshow_waiting:
                    self._preshow_waiting.add(space.id)
                    log.warning(
                        "space %s: pre-show waits: the node runs its budget of %d stages",
                        space.id,
                        self.directory.settings.max_stages,
                    )
                return
            self._preshow_waiting.discard(space.id)
            log.info("space %s: pre-show open", space.id)

    async def _close_preshow(self, space: Space, why: str) -> None:
        """Close a pre-show for good: stored first (a restart does not open it again), then off the air."""
        async with self.directory.lock(space.id):
            current = self.directory.cached(space.id) or space
            stage = self.stages.stage(space.id)
            if current.state is not SpaceState.SCHEDULED or (stage is not None and not stage.preshow):
                return
            closed = space_rules.close_preshow(current)
            await self.directory.store.save(closed)
            self.directory.put(closed)
            self._preshow_waiting.discard(space.id)
            self._idle_since.pop(space.id, None)
            if stage is not None:
                self.stages.take_off_air(space.id)
            await self.stages.media.remove(space.id, HOLD_NAME)
        log.info("space %s: pre-show closed: %s", space.id, why)
