"""Which node runs which stage: one lease per stage (claimed when it starts, renewed while it
runs), where the other nodes are, and what they changed, followed on the bus.

On one node the placement is in memory and this node claims every lease; between nodes it is
shared (Redis), and a lease that runs out lets another node take the stage over."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from podium.backends.interfaces import Placement
from podium.clock import Clock
from podium.errors import Conflict
from podium.events import SPACES, STAGE, SpaceEnded, SpaceScheduled, SpaceStarted, StageChanged, Topic
from podium.ids import SpaceId
from podium.spaces import background
from podium.spaces.directory import SpaceDirectory

if TYPE_CHECKING:
    from podium.spaces.stages import StageManager

log = logging.getLogger(__name__)

STAGE_LEASE_S = 10.0  # a dead node's stages can move to another node after this
OWNER_MEMORY_S = 1.0  # how long a node remembers which other node runs a stage (and where it is)


@dataclass(eq=False)
class Ownership:
    """This node's side of the stage leases."""

    placement: Placement
    node_id: str
    node_url: str
    clock: Clock

    def __post_init__(self) -> None:
        # Stages running on other nodes: space → (that node's address or None, when looked up).
        self._elsewhere: dict[SpaceId, tuple[str | None, float]] = {}

    async def announce(self) -> None:
        """Say where this node is (again: the announcement runs out with the leases)."""
        await self.placement.announce(self.node_id, self.node_url, STAGE_LEASE_S)

    async def claim(self, space_id: SpaceId) -> None:
        """Claim the lease of a space's stage, or say which node has it (Conflict)."""
        if not await self.placement.claim(space_id, self.node_id, STAGE_LEASE_S):
            owner = await self.placement.owner(space_id)
            raise Conflict(f"this space's stage runs on another node ({owner}); speakers connect there")

    async def keep(self, space_id: SpaceId) -> bool:
        """Renew the lease of a stage that runs here; False when another node has taken it."""
        if await self.placement.renew(space_id, self.node_id, STAGE_LEASE_S):
            return True
        if await self.placement.claim(space_id, self.node_id, STAGE_LEASE_S):
            # The lease was gone, not taken (Redis came back empty): this node holds it again.
            log.warning("space %s: the stage's lease had vanished; claimed again", space_id)
            return True
        return False

    async def release(self, space_id: SpaceId) -> None:
        await self.placement.release(space_id, self.node_id)

    async def owner(self, space_id: SpaceId) -> str | None:
        return await self.placement.owner(space_id)

    async def ours_to_end(self, space_id: SpaceId) -> bool:
        """Whether this node finishes an interrupted end: when no other node holds the space's
        stage (that one is finishing it)."""
        owner = await self.placement.owner(space_id)
        return owner is None or owner == self.node_id

    async def stage_elsewhere(self, space_id: SpaceId) -> str | None:
        """The address of the node that runs this space's stage, if that is another node (and it
        has said where it is); None when the stage runs here or nowhere. The caller asks only for
        stages that do not run here. Remembered for a second: a crowd's requests make one lookup
        per space per second."""
        now = self.clock.monotonic()
        known = self._elsewhere.get(space_id)
        if known is not None and now - known[1] < OWNER_MEMORY_S:
            return known[0]
        owner = await self.placement.owner(space_id)
        address = None
        if owner is not None and owner != self.node_id:
            address = await self.placement.address(owner)
        self._elsewhere[space_id] = (address, now)
        return address

    def forget_elsewhere(self, space_id: SpaceId) -> None:
        """The owner did not answer, or the space changed: look it up again next time."""
        self._elsewhere.pop(space_id, None)


@dataclass(eq=False)
class Follower:
    """What another node changed (a space started or ended, a speaker removed) reaches this one
    through the bus; the space is read again from the store and the stage here made to match."""

    directory: SpaceDirectory
    stages: StageManager
    ownership: Ownership

    def __post_init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._follow(SPACES), name="follow-spaces"),
            asyncio.create_task(self._follow(STAGE), name="follow-stage"),
        ]

    async def stop(self) -> None:
        await background.cancel(self._tasks)

    async def _follow(self, topic: Topic) -> None:
        async for event in self.directory.bus.subscribe(topic):
            if event.node == self.directory.node_id:
                continue  # made here: already done
            match event:
                case SpaceScheduled() | SpaceStarted() | SpaceEnded() | StageChanged():
                    try:
                        await self.changed_elsewhere(event.space, stage_changed=isinstance(event, StageChanged))
                    except Exception:
                        log.exception("could not follow %r from another node", event)
                case _:
                    pass  # nothing here depends on it (a recording ready)

    async def changed_elsewhere(self, space_id: SpaceId, stage_changed: bool) -> None:
        """Another node changed a space: read it again (state, stage rules), and act on it here."""
        async with self.directory.lock(space_id):
            space = await self.directory.reload(space_id)
            if space is None:
                return
            self.ownership.forget_elsewhere(space_id)
            await self.stages.ended_elsewhere(space)
        if stage_changed:
            await self.stages.enforce(space_id)
