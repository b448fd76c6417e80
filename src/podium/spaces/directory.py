"""The spaces this node knows: kept in memory (a flood of joins never reaches the database) in
front of the store, each with its stage rules as they were stored, and who a token is in a space.

Invariants: a space not ended is always in memory once the node has started (`load_unfinished`);
a space ended in memory whose end is not stored yet (`committing`) is written by its end alone."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from podium.backends.interfaces import Bus, SpaceStore
from podium.clock import Clock
from podium.delivery.links import LinkSigner, Window
from podium.domain import space as space_rules
from podium.domain.space import Space, SpaceState
from podium.domain.stage import HOST_ID, Member, Role, StageRules
from podium.domain.tokens import Grant, InviteGrant, TokenSigner
from podium.errors import Forbidden, NotFound
from podium.events import SpaceScheduled
from podium.ids import SpaceId, UserId, is_space_id, new_space_id
from podium.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Created:
    space: Space
    host_token: str


@dataclass(eq=False)
class SpaceDirectory:
    settings: Settings
    store: SpaceStore
    bus: Bus
    signer: TokenSigner
    links: LinkSigner
    clock: Clock
    node_id: str

    def __post_init__(self) -> None:
        self._cache: dict[SpaceId, Space] = {}
        self._rules: dict[SpaceId, StageRules] = {}
        self._locks: dict[SpaceId, asyncio.Lock] = {}
        # Stage states are stored one at a time per space, the newest first-come (see save_rules).
        self._rules_changed: dict[SpaceId, int] = {}
        self._rules_saved: dict[SpaceId, int] = {}
        self._save_locks: dict[SpaceId, asyncio.Lock] = {}
        # Ended in memory, the end not stored yet: nothing else writes these spaces meanwhile.
        self._committing: set[SpaceId] = set()

    async def load_unfinished(self) -> list[Space]:
        """Keep every space that has not ended in memory (at the start, so that joins never need
        the database), and return them."""
        spaces = await self.store.unfinished()
        for space in spaces:
            try:
                await self._remember(space)
            except (ValueError, KeyError, TypeError):
                # One unreadable stage state must not keep the node from starting: the space is
                # kept, its stage rules start afresh, and the log says so.
                log.exception("space %s: its stored stage state cannot be read; starting it afresh", space.id)
                self._cache[space.id] = space
        return spaces

    # -- spaces -----------------------------------------------------------------------------
    async def create_space(
        self,
        title: str,
        starts_at: str | None,
        record: bool = True,
        private: bool = False,
        created_by: UserId | None = None,
        admit: Callable[[], Awaitable[None]] | None = None,
    ) -> Created:
        """A new space. `admit` is called once the request is found valid, before anything is
        stored: the limits on who creates how many (it raises to refuse)."""
        now = self.clock.now()
        clean = space_rules.clean_title(title, self.settings.max_title_chars)
        when = space_rules.parse_starts_at(starts_at, now)
        if admit is not None:
            await admit()
        space = space_rules.new_space(new_space_id(), clean, when, now, record, private, created_by)
        await self.store.add(space)
        self._cache[space.id] = space
        await self.bus.publish(SpaceScheduled(space.id, self.node_id))
        return Created(space, self.host_token(space, 0))

    async def get_space(self, space_id: str) -> Space:
        if not is_space_id(space_id):
            raise NotFound("no such space")
        cached = self._cache.get(SpaceId(space_id))
        if cached is not None:
            return cached
        space = await self.store.get(SpaceId(space_id))
        if space is None:
            raise NotFound("no such space")
        await self._remember(space)
        return space

    async def _remember(self, space: Space) -> None:
        """Keep a stored space in memory, with its stage rules as they were stored (who was invited,
        removed, blocked: a restart gives back no right that was taken or used)."""
        stored = await self.store.load_stage(space.id)
        if stored is not None and space.id not in self._rules:
            rules = self._rules_from(stored)
            # The space's state is what counts: an ended space's rules are ended, whatever was stored.
            rules.ended = rules.ended or space.state is SpaceState.ENDED
            self._rules[space.id] = rules
        self._cache[space.id] = space

    def _rules_from(self, stored: dict[str, object]) -> StageRules:
        settings = self.settings
        return StageRules.from_dict(stored, settings.max_cohosts, settings.max_speakers, settings.max_guests)

    async def reload(self, space_id: SpaceId) -> Space | None:
        """Read a space and its stage rules again from the store (another node changed them)."""
        space = await self.store.get(space_id)
        if space is None:
            return None
        stored = await self.store.load_stage(space_id)
        if stored is not None:
            self._rules[space_id] = self._rules_from(stored)
        self._cache[space_id] = space
        return space

    def open_space(self, space_id: SpaceId) -> Space:
        """A scheduled or live space, from memory only (a flood of joins never reaches the database)."""
        space = self._cache.get(space_id)
        if space is None or space.state is SpaceState.ENDED:
            raise NotFound("there is no live or upcoming space here (it may have ended: see its page for the replay)")
        return space

    def cached(self, space_id: SpaceId) -> Space | None:
        """From memory only: the space as this node has it, if it has it."""
        return self._cache.get(space_id)

    def known(self) -> list[Space]:
        """Every space in memory (those not ended, and those asked for since the start)."""
        return list(self._cache.values())

    def put(self, space: Space) -> None:
        """The space as it is now (stored by the caller, or about to be: see `committing`)."""
        self._cache[space.id] = space

    def end_in_memory(self, ended: Space) -> None:
        """An ended space answered as ended from now on, though its end is not stored yet."""
        self._committing.add(ended.id)
        self._cache[ended.id] = ended

    async def commit_end(self, ended: Space) -> None:
        """The commit point of an end: the ended space stored."""
        await self.store.save(ended)
        self._cache[ended.id] = ended
        self._committing.discard(ended.id)

    def committing(self, space_id: SpaceId) -> bool:
        return space_id in self._committing

    def is_private(self, space_id: SpaceId) -> bool:
        """From memory (the listener hot path asks): unknown spaces count as not private."""
        space = self._cache.get(space_id)
        return space is not None and space.private

    async def set_recording(self, space_id: str, token: str, record: bool) -> Space:
        """The host (only) switches recording on or off, before going live."""
        space = await self.get_space(space_id)
        member = self.authorize(space, token)
        if member.role is not Role.HOST:
            raise Forbidden("only the host decides whether the space is recorded")
        async with self.lock(space.id):
            space = await self.get_space(space_id)
            changed = space_rules.set_recording(space, record)
            if changed != space:
                await self.store.save(changed)
                self._cache[space.id] = changed
        return changed

    def lock(self, space_id: SpaceId) -> asyncio.Lock:
        """The one lock of a space, for changes that read it and then write it."""
        return self._locks.setdefault(space_id, asyncio.Lock())

    # -- host tokens and listener links ------------------------------------------------------
    def host_token(self, space: Space, generation: int) -> str:
        return self.signer.issue(space.id, HOST_ID, generation, Role.HOST, valid_from=self.host_valid_from(space))

    @staticmethod
    def host_valid_from(space: Space) -> float | None:
        # Good for the token lifetime past the start (a space scheduled weeks ahead keeps its host).
        return space.starts_at.timestamp() if space.starts_at is not None else None

    def link_generation(self, space: Space) -> int:
        """From memory (the listener hot path asks): the generation listener links are signed with."""
        return self.rules(space).link_generation

    def check_link(self, space: Space, key: str) -> Window:
        """A private space's listener link: its signature, its window and its generation (not withdrawn)."""
        return self.links.check(key, space.id, self.clock.time(), self.link_generation(space))

    # -- who a token is -------------------------------------------------------------------------
    def rules(self, space: Space) -> StageRules:
        """The space's stage rules (who is on stage, invited, removed), in memory."""
        if space.id not in self._rules:
            self._rules[space.id] = StageRules(
                max_cohosts=self.settings.max_cohosts,
                max_speakers=self.settings.max_speakers,
                max_guests=self.settings.max_guests,
                ended=space.state is SpaceState.ENDED,
            )
        return self._rules[space.id]

    def known_rules(self, space_id: SpaceId) -> StageRules | None:
        return self._rules.get(space_id)

    def authorize(self, space: Space, token: str) -> Member:
        """The member a token speaks for, checked against the stage as it is now (never only the token)."""
        return self.member_for(space, self.signer.verify_for(token, space.id))

    def member_for(self, space: Space, grant: Grant | InviteGrant) -> Member:
        """As `authorize`, for a token whose signature is already checked."""
        if grant.space_id != space.id:
            raise Forbidden("this token belongs to another space")
        rules = self.rules(space)
        if isinstance(grant, InviteGrant):
            if grant.member_id not in rules.members:
                raise Forbidden("this invite has not been redeemed; open the invite link first")
            return rules.check_token(grant.member_id, 0)
        return rules.check_token(grant.member_id, grant.generation)

    async def save_rules(self, space_id: SpaceId) -> None:
        """Store the stage rules as they are now; returns once a state with this change is committed.

        One write at a time per space, each of the newest state: two writes in flight could commit
        out of order (the older last). A change that a later write already carried is not written
        again, so a burst of changes makes a few writes, not one each. The state is bounded
        (`max_guests`), and it is encoded and written off the event loop."""
        self._rules_changed[space_id] = changed = self._rules_changed.get(space_id, 0) + 1
        async with self._save_locks.setdefault(space_id, asyncio.Lock()):
            if self._rules_saved.get(space_id, 0) >= changed:
                return
            newest = self._rules_changed[space_id]
            await self.store.save_stage(space_id, self._rules[space_id].to_dict())
            self._rules_saved[space_id] = max(self._rules_saved.get(space_id, 0), newest)
