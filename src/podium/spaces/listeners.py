"""Who listens: admitted listeners' heartbeats, the counts of each space (this node's, and the
sum over every node through the shared counts), and the peaks, stored every few seconds."""

from __future__ import annotations

import asyncio
from dataclasses import KW_ONLY, dataclass

from podium.audience.presence import Counts, Presence, presence_key
from podium.audience.presence import sample_point as keyed_sample_point
from podium.backends.counts import Share
from podium.backends.interfaces import SharedCounts
from podium.domain import space as space_rules
from podium.domain.space import Space, SpaceState
from podium.ids import ListenerId, SpaceId
from podium.spaces import background
from podium.spaces.directory import SpaceDirectory

COUNTS_SHARE_S = 1.0  # how often a node reports its listeners and reads the sum over nodes
PEAK_FLUSH_INTERVAL_S = 5.0


@dataclass(eq=False)
class Listeners:
    directory: SpaceDirectory
    shared_counts: SharedCounts
    _: KW_ONLY
    # Listeners' sample points are keyed with this (the instance secret): no client picks its own.
    presence_secret: str
    # Between nodes another node may change a space at any time: peaks are written onto the
    # stored space, read again, never onto this node's copy.
    between_nodes: bool

    def __post_init__(self) -> None:
        self._presence: dict[SpaceId, Presence] = {}
        # The sum over every node's reports, and what this node reported last (see `counts`).
        self._shared_totals: dict[SpaceId, Share] = {}
        self._reported: dict[SpaceId, Share] = {}
        self._shared_peaks: dict[SpaceId, int] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        clock = self.directory.clock
        self._tasks = [
            background.start(clock, PEAK_FLUSH_INTERVAL_S, self.flush_peaks, "storing listener peaks", "peak-flush"),
            background.start(clock, COUNTS_SHARE_S, self.share_counts, "sharing listener counts", "counts"),
        ]

    async def stop(self) -> None:
        await background.cancel(self._tasks)
        await self.flush_peaks()

    async def heartbeat(self, space_id: SpaceId, listener: ListenerId, address: str, leaving: bool = False) -> Counts:
        """An admitted listener's beat (the web layer checked its pass: `listener` is whom the pass
        names), counted under the address it came from."""
        space = await self.directory.get_space(space_id)
        if space.state is SpaceState.ENDED:
            return self.counts(space.id)
        presence = self._presence_of(space)
        if leaving:
            presence.leave(listener)
        else:
            presence.beat(listener, address)
        return self.counts(space.id)

    def is_counted(self, space_id: SpaceId, listener: ListenerId) -> bool:
        presence = self._presence.get(space_id)
        return presence is not None and presence.counted(listener)

    def sample_point(self, space_id: SpaceId, listener: ListenerId) -> float:
        """Where a listener falls in the space's sample (the join tells the page, which beats when
        its point is below the announced rate)."""
        return keyed_sample_point(presence_key(self.presence_secret, space_id), listener)

    def counts(self, space_id: SpaceId) -> Counts:
        """The listener counts: the other nodes' last reports and this node's own, now."""
        local = self._local_counts(space_id)
        shared = self._shared_totals.get(space_id)
        if shared is None:
            return local
        mine = self._reported.get(space_id, Share(0, 0))
        # The sum less what this node reported is the others' (never below none: a report of
        # ours may have run out while the total was read).
        others = max(0, shared.now - mine.now)
        ended = (space := self.directory.cached(space_id)) is not None and space.state is SpaceState.ENDED
        now = 0 if ended else others + local.now
        peak = max(local.peak, now, self._shared_peaks.get(space_id, 0))
        self._shared_peaks[space_id] = peak
        return Counts(now, peak, max(shared.unique, local.unique), local.sample_rate)

    async def share_counts(self) -> None:
        """Report this node's listeners of each space and read the sum over all nodes (every second)."""
        live = [space.id for space in self.directory.known() if space.state is SpaceState.LIVE]
        for space_id in list(self._presence):
            local = self._local_counts(space_id)
            share = Share(local.now, local.unique)
            await self.shared_counts.report(space_id, self.directory.node_id, share)
            self._reported[space_id] = share
        # The sums: of spaces with listeners here, and of every live one (its page shows them,
        # even on a node where nobody listens).
        for space_id in {*self._presence, *live}:
            self._shared_totals[space_id] = await self.shared_counts.total(space_id)

    def _local_counts(self, space_id: SpaceId) -> Counts:
        presence = self._presence.get(space_id)
        cached = self.directory.cached(space_id)
        if presence is None:
            return Counts(0, cached.peak_listeners if cached else 0)
        if cached is not None and cached.state is SpaceState.ENDED:
            final = presence.counts()
            return Counts(0, final.peak, final.unique, final.sample_rate)
        return presence.counts()

    def _presence_of(self, space: Space) -> Presence:
        if space.id not in self._presence:
            self._presence[space.id] = Presence(
                self.directory.clock,
                self.directory.settings.heartbeat_interval_s,
                self.directory.settings.heartbeat_missed_limit,
                key=presence_key(self.presence_secret, space.id),
                peak=space.peak_listeners,
                target_sampled=self.directory.settings.presence_sample_target,
                max_per_address=self.directory.settings.presence_listeners_per_address,
            )
        return self._presence[space.id]

    async def flush_peaks(self) -> None:
        for space_id, presence in list(self._presence.items()):
            if self.directory.committing(space_id):
                continue  # stored as ended (with its peak) once its last writes are done
            async with self.directory.lock(space_id):
                space = self.directory.cached(space_id)
                if space is not None and self.between_nodes:
                    # Between nodes, another may have changed the space meanwhile: never write
                    # back a state older than the stored one, only a higher peak.
                    space = await self.directory.store.get(space_id)
                if space is None or self.directory.committing(space_id):
                    continue
                updated = space_rules.with_peak(space, presence.counts().peak)
                if updated is not space:
                    await self.directory.store.save(updated)
                    self.directory.put(updated)
