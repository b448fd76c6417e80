"""The running instance: spaces, their stages, their listeners. Rules come from `domain`,
storage from `backends`, media from `media`; this module only puts them in order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from podium.audience.presence import Counts, Presence, presence_key
from podium.audience.presence import sample_point as keyed_sample_point
from podium.backends.counts import Share
from podium.backends.interfaces import Bus, MediaStore, Placement, SharedCounts, SpaceStore
from podium.clock import Clock
from podium.delivery.links import LinkSigner, Window
from podium.domain import space as space_rules
from podium.domain.space import Space, SpaceState
from podium.domain.stage import HOST_ID, Member, Role, StageRules, enforce
from podium.domain.tokens import InviteGrant, TokenSigner
from podium.errors import AtCapacity, Conflict, Forbidden, InvalidInput, NotFound
from podium.ids import (
    ListenerId,
    MemberId,
    SessionId,
    SpaceId,
    UserId,
    is_space_id,
    new_member_id,
    new_space_id,
)
from podium.media import hold, ingest, sdp
from podium.media.ingest import IngestSession
from podium.media.mixer import FRAME_SAMPLES, SAMPLE_RATE
from podium.media.packager import Packager, program_records
from podium.media.reception import ReceptionHealth, poor_connection
from podium.media.stage import SPEAKING_LEVEL, Stage
from podium.settings import Settings

log = logging.getLogger(__name__)

STAGE_LEASE_S = 10.0  # a dead node's stages can move to another node after this
OWNER_MEMORY_S = 1.0  # how long a node remembers which other node runs a stage (and where it is)
COUNTS_SHARE_S = 1.0  # how often a node reports its listeners and reads the sum over nodes
SCHEDULE_TICK_S = 0.25  # how often the schedule is looked at: the start is on the quarter second
HOLD_NAME = "hold.pcm"  # the host's hold audio, decoded: 48 kHz mono s16
# When the node is at its budget of stages: how long a speaker is asked to wait before trying again.
STAGE_BUDGET_RETRY_S = 30
# Hold audio files decoded at once (each up to PODIUM_HOLD_AUDIO_MAX_S of 48 kHz audio in memory).
HOLD_DECODES_AT_ONCE = 2

PEAK_FLUSH_INTERVAL_S = 5.0


@dataclass(frozen=True)
class Created:
    space: Space
    host_token: str


class Podium:
    def __init__(
        self,
        settings: Settings,
        spaces: SpaceStore,
        bus: Bus,
        media: MediaStore,
        signer: TokenSigner,
        clock: Clock,
        links: LinkSigner,
        shared_counts: SharedCounts | None = None,
        node_id: str = "node",
        placement: Placement | None = None,
        node_url: str = "",
        *,
        presence_secret: str,
    ) -> None:
        self.settings = settings
        self.spaces = spaces
        self.bus = bus
        self.media = media
        self.signer = signer
        self.links = links
        self.clock = clock
        self._cache: dict[SpaceId, Space] = {}
        self._stages: dict[SpaceId, Stage] = {}
        self._ended_playlists: dict[SpaceId, Packager] = {}
        self._presence: dict[SpaceId, Presence] = {}
        self._sessions: dict[SessionId, IngestSession] = {}
        self._locks: dict[SpaceId, asyncio.Lock] = {}
        self._rules: dict[SpaceId, StageRules] = {}
        # Stage states are stored one at a time per space, the newest first-come (see _save_rules).
        self._rules_changed: dict[SpaceId, int] = {}
        self._rules_saved: dict[SpaceId, int] = {}
        self._save_locks: dict[SpaceId, asyncio.Lock] = {}
        # Listeners' sample points are keyed with this (the instance secret): no client picks its own.
        self._presence_secret = presence_secret
        self._peak_task: asyncio.Task[None] | None = None
        self._preshow_task: asyncio.Task[None] | None = None
        self._counts_task: asyncio.Task[None] | None = None
        # Between nodes (None on one node): listener counts summed over every node's report.
        self.shared_counts = shared_counts
        self.node_id = node_id
        self._shared_totals: dict[SpaceId, Share] = {}
        self._shared_peaks: dict[SpaceId, int] = {}
        # Between nodes: which node mixes which space (a lease per stage, renewed while it runs).
        self.placement = placement
        self.node_url = node_url
        self._lease_task: asyncio.Task[None] | None = None
        # Stages running on other nodes: space → (that node's address or None, when looked up).
        self._elsewhere: dict[SpaceId, tuple[str | None, float]] = {}
        self._follow_tasks: list[asyncio.Task[None]] = []
        # The budget of stages (settings.max_stages): stages being started hold a slot too.
        self._starting: set[SpaceId] = set()
        # Pre-shows that wait for a slot (logged once), and since when each running one is idle.
        self._preshow_waiting: set[SpaceId] = set()
        self._idle_since: dict[SpaceId, datetime] = {}
        # Stages taken off the air whose last writes are still going to the disk.
        self._closing: dict[SpaceId, asyncio.Task[None]] = {}
        # Ends whose last writes (and then the commit, the download, the webhooks) go on in the background.
        self._ending: dict[SpaceId, asyncio.Task[None]] = {}
        self._hold_decodes = asyncio.Semaphore(HOLD_DECODES_AT_ONCE)
        # Awaited when a space ends, before the end is answered (the recording's download is made
        # here, so that it is there when the host sees "ended"). A failing hook is logged, not fatal.
        self.end_hooks: list[Callable[[Space], Awaitable[None]]] = []

    # -- life of the instance ---------------------------------------------------------------

    async def start(self) -> None:
        """Resume the stages of spaces that were live when the process stopped; keep every space
        that has not ended in memory, so that joins never need the database."""
        for space in await self.spaces.unfinished():
            try:
                await self._remember(space)
            except (ValueError, KeyError, TypeError):
                # One unreadable stage state must not keep the node from starting: the space is
                # kept, its stage rules start afresh, and the log says so.
                log.exception("space %s: its stored stage state cannot be read; starting it afresh", space.id)
                self._cache[space.id] = space
            rules = self._rules.get(space.id)
            if rules is not None and rules.ended and await self._ours_to_end(space.id):
                await self._finish_interrupted_end(space)
                continue
            # Between nodes a stage is resumed where the host reconnects (it claims the lease then).
            if space.state is SpaceState.LIVE and self.placement is None:
                try:
                    await self._start_stage(space)
                except AtCapacity:
                    log.error("space %s: live, but not resumed: the node is at its budget of stages", space.id)
                    continue
                log.info("resumed live space %s", space.id)
        self._peak_task = asyncio.create_task(
            self._repeat(PEAK_FLUSH_INTERVAL_S, self._flush_peaks, "storing listener peaks"), name="peak-flush"
        )
        self._preshow_task = asyncio.create_task(
            self._repeat(SCHEDULE_TICK_S, self._run_schedule, "running the schedule"), name="schedule"
        )
        self._counts_task = asyncio.create_task(
            self._repeat(COUNTS_SHARE_S, self.share_counts, "sharing listener counts"), name="counts"
        )
        self._lease_task = asyncio.create_task(
            self._repeat(STAGE_LEASE_S / 3, self.renew_stage_leases, "renewing stage leases"), name="leases"
        )
        if self.placement is not None:
            await self.placement.announce(self.node_id, self.node_url, STAGE_LEASE_S)
            # Between nodes, what another node changed (a space started or ended, a speaker
            # removed) reaches this one through the bus, and is read again from the database.
            self._follow_tasks = [
                asyncio.create_task(self._follow("spaces"), name="follow-spaces"),
                asyncio.create_task(self._follow("stage"), name="follow-stage"),
            ]

    async def stop(self) -> None:
        for task in (self._peak_task, self._preshow_task, self._counts_task, self._lease_task, *self._follow_tasks):
            if task is not None:
                task.cancel()
        for session in list(self._sessions.values()):
            await session.close()
        for space_id, stage in list(self._stages.items()):
            await stage.stop()
            await self._release_stage(space_id)
        # Stages going off the air and ends finishing: their writes reach the disk before the
        # process goes (each bounded by its write queue); a failure was logged by the task itself.
        await asyncio.gather(*self._closing.values(), *self._ending.values(), return_exceptions=True)
        await self._flush_peaks()

    # -- spaces -----------------------------------------------------------------------------

    async def create_space(
        self,
        title: object,
        starts_at: object,
        record: object = True,
        private: object = False,
        created_by: UserId | None = None,
        admit: Callable[[], Awaitable[None]] | None = None,
    ) -> Created:
        """A new space. `admit` is called once the request is found valid, before anything is
        stored: the limits on who creates how many (it raises to refuse)."""
        now = self.clock.now()
        clean = space_rules.clean_title(title, self.settings.max_title_chars)
        when = space_rules.parse_starts_at(starts_at, now)
        wanted_record, wanted_private = space_rules.parse_record(record), space_rules.parse_private(private)
        if admit is not None:
            await admit()
        space = space_rules.new_space(new_space_id(), clean, when, now, wanted_record, wanted_private, created_by)
        await self.spaces.add(space)
        self._cache[space.id] = space
        await self.bus.publish("spaces", {"type": "space.scheduled", "space": space.id, "node": self.node_id})
        return Created(space, self._host_token(space, 0))

    def _host_token(self, space: Space, generation: int) -> str:
        return self.signer.issue(space.id, HOST_ID, generation, Role.HOST, valid_from=self._host_valid_from(space))

    @staticmethod
    def _host_valid_from(space: Space) -> float | None:
        # Good for the token lifetime past the start (a space scheduled weeks ahead keeps its host).
        return space.starts_at.timestamp() if space.starts_at is not None else None

    async def rotate_host_token(self, space_id: str, token: str) -> tuple[str, int]:
        """A new host token for the current one: the old one stops working at once, here and on
        every node (its generation is stored), and a WHIP session opened with it is closed."""
        space = await self.get_space(space_id)
        async with self._lock(space.id):
            # Checked under the lock: of two rotations with the same token, the second is refused.
            host = self.rules(space).rotate_host(self.authorize(space, token).id)
            await self._save_rules(space.id)
        await self._enforce(space.id)
        await self.bus.publish(
            "stage", {"type": "stage.changed", "space": space.id, "action": "rotate", "node": self.node_id}
        )
        return self._host_token(space, host.generation), self.signer.expires_at(self._host_valid_from(space))

    async def withdraw_links(self, space_id: str, token: str) -> int:
        """Every private listener link given out so far stops working, on every node; the links
        made from now on are signed with the new generation. Returns that generation."""
        space = await self.get_space(space_id)
        actor = self.authorize(space, token)
        async with self._lock(space.id):
            generation = self.rules(space).withdraw_links(actor.id)
            await self._save_rules(space.id)
        await self.bus.publish(
            "stage", {"type": "stage.changed", "space": space.id, "action": "withdraw_links", "node": self.node_id}
        )
        return generation

    def link_generation(self, space: Space) -> int:
        """From memory (the listener hot path asks): the generation listener links are signed with."""
        return self.rules(space).link_generation

    def check_link(self, space: Space, key: str) -> Window:
        """A private space's listener link: its signature, its window and its generation (not withdrawn)."""
        return self.links.check(key, space.id, self.clock.time(), self.link_generation(space))

    async def get_space(self, space_id: str) -> Space:
        if not is_space_id(space_id):
            raise NotFound("no such space")
        cached = self._cache.get(SpaceId(space_id))
        if cached is not None:
            return cached
        space = await self.spaces.get(SpaceId(space_id))
        if space is None:
            raise NotFound("no such space")
        await self._remember(space)
        return space

    async def _remember(self, space: Space) -> None:
        """Keep a stored space in memory, with its stage rules as they were stored (who was invited,
        removed, blocked: a restart gives back no right that was taken or used)."""
        stored = await self.spaces.load_stage(space.id)
        if stored is not None and space.id not in self._rules:
            rules = StageRules.from_dict(
                stored, self.settings.max_cohosts, self.settings.max_speakers, self.settings.max_guests
            )
            # The space's state is what counts: an ended space's rules are ended, whatever was stored.
            rules.ended = rules.ended or space.state is SpaceState.ENDED
            self._rules[space.id] = rules
        self._cache[space.id] = space

    def open_space(self, space_id: SpaceId) -> Space:
        """A scheduled or live space, from memory only (a flood of joins never reaches the database)."""
        space = self._cache.get(space_id)
        if space is None or space.state is SpaceState.ENDED:
            raise NotFound("there is no live or upcoming space here (it may have ended: see its page for the replay)")
        return space

    async def set_recording(self, space_id: str, token: str, record: object) -> Space:
        """The host (only) switches recording on or off, before going live."""
        space = await self.get_space(space_id)
        member = self.authorize(space, token)
        if member.role is not Role.HOST:
            raise Forbidden("only the host decides whether the space is recorded")
        wanted = space_rules.parse_record(record)
        async with self._lock(space.id):
            space = await self.get_space(space_id)
            changed = space_rules.set_recording(space, wanted)
            if changed != space:
                await self.spaces.save(changed)
                self._cache[space.id] = changed
        return changed

    async def end_space(self, space_id: str, token: str) -> Space:
        """End a space, in an order that a crash anywhere leaves consistent:

        1. the ended stage rules are stored: the intent (nobody publishes any more);
        2. the stage finishes and its last writes reach the disk, waited for `end_wait_s` at most
           (a disk that is behind never holds up the answer: the rest goes on in the background);
        3. the space is stored as ended: the commit point; then the hold audio goes, the bus is
           told, the end hooks (the download, the webhooks) run.

        A node that stops between 1 and 3 finds, when it starts, a space whose rules are ended but
        which is not: it finishes ending it (`_finish_interrupted_end`). A repeated /end, on any
        node, finishes it too. From 2 on this node answers the space as ended."""
        space = await self.get_space(space_id)
        self.rules(space).end(self.authorize(space, token).id)
        await self._save_rules(space.id)
        async with self._lock(space.id):
            space = await self.get_space(space_id)
            if space.state is SpaceState.ENDED:
                return space
            for session in [s for s in self._sessions.values() if s.space_id == space.id]:
                await self._drop_session(session)
            # The stage stays in place until the space is ended in memory: listeners reloading the
            # playlist meanwhile get the stage's (closing) playlist, never a "not running" error.
            stage = self._stages.get(space.id)
            written = True
            if stage is not None:
                written = await stage.finish(self.settings.end_wait_s)
                records = stage.packager.segments
                # The replay is the show: a pre-show's hold audio is left out of it.
                program = program_records(records)
                replay = stage.packager if len(program) == len(records) else Packager.from_records(program)
                self._ended_playlists[space.id] = replay
            ended = space_rules.end(space_rules.with_peak(space, self.counts(space.id).peak), self.clock.now())
            # Ended here from now on (listeners get the finished playlist from memory), and the
            # stage's slot in the budget is free; stored as ended once its writes are done.
            self._cache[space.id] = ended
            self._stages.pop(space.id, None)
            self._idle_since.pop(space.id, None)
            if written:
                await self._complete_end(ended, stage)
            else:
                log.warning(
                    "space %s: ended; %d writes still wait for the disk and finish in the background",
                    space.id,
                    stage.writes_waiting if stage is not None else 0,
                )
                self._ending[space.id] = asyncio.create_task(self._complete_end(ended, stage), name=f"end-{space.id}")
        return ended

    async def _complete_end(self, ended: Space, stage: Stage | None) -> None:
        """Steps 2 and 3 of `end_space`: after the stage's last writes, the commit and what follows it."""
        try:
            if stage is not None:
                await stage.written()
            await self.spaces.save(ended)
            self._cache[ended.id] = ended
            await self._release_stage(ended.id)
            await self.media.remove(ended.id, HOLD_NAME)
            # Told before the hooks run: what they announce (the replay is ready) comes after it.
            await self.bus.publish("spaces", {"type": "space.ended", "space": ended.id, "node": self.node_id})
            for hook in self.end_hooks:
                try:
                    await hook(ended)
                except Exception:
                    log.exception("space %s: an end hook failed", ended.id)
        except Exception:
            # The boundary of a background end: the stored rules say "ended", so the next start
            # (or a repeated /end) finishes it.
            log.exception("space %s: could not finish ending; the next start or /end will", ended.id)
        finally:
            self._ending.pop(ended.id, None)

    async def _ours_to_end(self, space_id: SpaceId) -> bool:
        """Whether this node finishes an interrupted end: on one node always; between nodes, when
        no other node holds the space's stage (that one is finishing it)."""
        if self.placement is None:
            return True
        owner = await self.placement.owner(space_id)
        return owner is None or owner == self.node_id

    async def _finish_interrupted_end(self, space: Space) -> None:
        """A space whose end was cut off by a crash or a stop (its rules ended, the space not):
        the parts of the segment that was being made become a segment, the space is stored as
        ended at the end of its recording, and the rest of the end runs in the background."""
        await self.media.recover(space.id)
        records = await self.media.records(space.id)
        last = records[-1] if records else None
        ended_at = last.program_date_time + timedelta(seconds=last.duration_s) if last else self.clock.now()
        ended = space_rules.end(space, max(ended_at, space.started_at or space.created_at))
        # Committed before the node serves anything; what follows the commit (the download, the
        # webhooks) runs in the background and stores it again, which changes nothing.
        await self.spaces.save(ended)
        self._cache[space.id] = ended
        log.warning("space %s: its end was interrupted (the node stopped); ended now", space.id)
        self._ending[space.id] = asyncio.create_task(self._complete_end(ended, None), name=f"end-{space.id}")

    # -- speakers ---------------------------------------------------------------------------

    async def publish(self, space_id: str, token: str, offer: bytes) -> tuple[IngestSession, str]:
        """A WHIP offer from someone on stage: the host's first one makes the space live."""
        space = await self.get_space(space_id)
        if space.state is SpaceState.ENDED:
            raise Conflict("this space has ended; nobody can publish to it any more")
        rules = self.rules(space)
        grant = self.signer.verify_for(token, space.id)
        redeeming = isinstance(grant, InviteGrant) and grant.member_id not in rules.members
        if not redeeming:
            # Rights before content: a revoked or listener token is refused whatever it sends.
            member = self.authorize(space, token)
            if not rules.may_publish(member.id, member.generation):
                raise Forbidden("only speakers on stage can publish audio")
        in_preshow = space.id in self._stages and self._stages[space.id].preshow
        if space.state is SpaceState.SCHEDULED and grant.role is not Role.HOST and not in_preshow:
            raise Conflict("the host goes live first")
        # Check the offer before anything changes: a bad one leaves the space (and an invite) as they were.
        parsed = sdp.parse_offer(offer, self.settings.max_offer_bytes)
        if isinstance(grant, InviteGrant) and redeeming:
            # A studio encoder (OBS) uses the invite token itself: its first publish redeems it.
            rules.redeem(grant.invite_id, grant.role, grant.member_id, "Studio guest")
            await self._save_rules(space.id)
        member = self.authorize(space, token)
        async with self._lock(space.id):
            space = await self.get_space(space_id)
            stage = self._stages.get(space.id)
            new_stage = stage is None
            if stage is None:
                stage = await self._start_stage(space)
            try:
                session, answer = await ingest.open_session(
                    space.id,
                    member.id,
                    member.generation,
                    parsed,
                    stage,
                    loopback_only=self.settings.ice_loopback == "only",
                    allow_loopback=self.settings.ice_loopback != "0",
                    max_candidates=self.settings.max_remote_candidates,
                    on_closed=self._forget_session,
                )
            except BaseException:
                if new_stage:
                    self._stages.pop(space.id, None)
                    await stage.stop()
                    await self._release_stage(space.id)
                raise
            # A reconnect replaces the member's earlier session.
            for earlier in [s for s in self._sessions.values() if s.space_id == space.id and s.member_id == member.id]:
                await self._drop_session(earlier)
            self._sessions[session.id] = session
            # In the pre-show, connecting is not going live: the host goes live with the switch
            # (or at the start time, if connected). Without a pre-show, the host's mic is the start.
            if not stage.preshow:
                await self._went_live(space)
        await self._enforce(space.id)
        return session, answer

    async def _went_live(self, space: Space) -> None:
        live = space_rules.go_live(space, self.clock.now())
        if live is not space:
            await self.spaces.save(live)
            self._cache[space.id] = live
            await self.bus.publish("spaces", {"type": "space.started", "space": space.id, "node": self.node_id})

    async def go_live(self, space_id: str, token: str) -> Space:
        """The host's switch from the pre-show to the stage, now."""
        space = await self.get_space(space_id)
        member = self.authorize(space, token)
        if member.role is not Role.HOST:
            raise Forbidden("only the host goes live")
        if space.state is not SpaceState.SCHEDULED:
            raise Conflict(f"this space is {space.state.value}; only a scheduled space goes live")
        if not any(s.space_id == space.id and s.member_id == HOST_ID for s in self._sessions.values()):
            raise Conflict("connect your microphone first: the pre-show goes on until you go live")
        async with self._lock(space.id):
            stage = self._stages.get(space.id)
            if stage is not None:
                stage.go_live()
            await self._went_live(await self.get_space(space_id))
        return await self.get_space(space_id)

    def is_private(self, space_id: SpaceId) -> bool:
        """From memory (the listener hot path asks): unknown spaces count as not private."""
        space = self._cache.get(space_id)
        return space is not None and space.private

    def in_preshow(self, space_id: SpaceId) -> bool:
        stage = self._stages.get(space_id)
        return stage is not None and stage.preshow

    async def set_hold_audio(self, space_id: str, token: str, data: bytes) -> float:
        """The host's own hold audio for the pre-show; returns its length in seconds."""
        space = await self.get_space(space_id)
        if self.authorize(space, token).role is not Role.HOST:
            raise Forbidden("only the host chooses the hold audio")
        if space.state is not SpaceState.SCHEDULED:
            raise Conflict("hold audio is for the pre-show, before the space goes live")
        if space.preshow_closed:
            raise Conflict("the pre-show was closed (nobody came); connect your microphone to go live")
        # Decoded a few at a time: each holds up to PODIUM_HOLD_AUDIO_MAX_S of audio while it runs.
        async with self._hold_decodes:
            samples = await asyncio.to_thread(hold.decode_hold_file, data, self.settings.hold_audio_max_s)
            await self.media.write(space.id, HOLD_NAME, samples.tobytes())
            seconds = len(samples) / SAMPLE_RATE
            del samples
        stage = self._stages.get(space.id)
        if stage is not None and stage.preshow:
            stage.hold = await self._hold_audio(space.id)  # a pre-show already on plays it next frame
        return seconds

    async def _hold_audio(self, space_id: SpaceId) -> hold.HoldAudio:
        """The space's hold audio, or the tone bed. From the local disk it is mapped, not read: the
        kernel's page cache holds it (shared, and given back under memory pressure), not the heap."""
        samples: np.ndarray | None = None
        path = self.media.local_path(space_id, HOLD_NAME)
        if path is not None:
            size = path.stat().st_size
            if size >= 2 * FRAME_SAMPLES and size % 2 == 0:
                samples = np.memmap(path, dtype=np.int16, mode="r")
        else:
            stored = await self.media.read(space_id, HOLD_NAME)
            if stored and len(stored) >= 2 * FRAME_SAMPLES and len(stored) % 2 == 0:
                samples = np.frombuffer(stored, dtype=np.int16)
        return hold.HoldAudio(samples if samples is not None else hold.tone_bed())

    async def _run_schedule(self) -> None:
        """Open the pre-show of spaces about to start, soonest start first, as far as the budget of
        stages allows (the others wait for a slot); at the start time, switch to the stage if the
        host is connected (start on the second), else keep the pre-show on; close a pre-show that
        nobody has come to for `preshow_idle_close_s` past its start."""
        now = self.clock.now()
        lead = timedelta(seconds=self.settings.preshow_lead_s)
        idle_close = timedelta(seconds=self.settings.preshow_idle_close_s)
        scheduled = [
            space
            for space in self._cache.values()
            if space.state is SpaceState.SCHEDULED and space.starts_at is not None and not space.preshow_closed
        ]
        scheduled.sort(key=lambda space: space.starts_at or now)
        for space in scheduled:
            assert space.starts_at is not None
            stage = self._stages.get(space.id)
            if stage is None and now >= space.starts_at - lead:
                if space.id in self._preshow_waiting and now - space.starts_at >= idle_close and not self._heard(space):
                    # It waited for a slot past its start and the idle time: nobody is there to hear it.
                    await self._close_preshow(space, "it waited for a slot past its start and nobody came")
                    continue
                async with self._lock(space.id):
                    if space.id not in self._stages:
                        try:
                            await self._start_stage(space, preshow=True)
                        except Conflict:
                            continue  # another node opened it
                        except AtCapacity:
                            if space.id not in self._preshow_waiting:
                                self._preshow_waiting.add(space.id)
                                log.warning(
                                    "space %s: pre-show waits: the node runs its budget of %d stages",
                                    space.id,
                                    self.settings.max_stages,
                                )
                            continue
                        self._preshow_waiting.discard(space.id)
                        log.info("space %s: pre-show open", space.id)
            elif stage is not None and stage.preshow:
                host_in = any(s.space_id == space.id and s.member_id == HOST_ID for s in self._sessions.values())
                if host_in and now >= space.starts_at:
                    async with self._lock(space.id):
                        stage.go_live()
                        await self._went_live(space)
                elif self._heard(space):
                    self._idle_since.pop(space.id, None)
                else:
                    since = self._idle_since.setdefault(space.id, now)
                    if now - max(since, space.starts_at) >= idle_close:
                        await self._close_preshow(space, f"nobody connected or listened for {idle_close}")

    def _heard(self, space: Space) -> bool:
        """Whether anyone is at a space: a speaker connected, or a listener counted."""
        return self.speakers_connected(space.id) > 0 or self.counts(space.id).now > 0

    async def _close_preshow(self, space: Space, why: str) -> None:
        """Close a pre-show for good: stored first (a restart does not open it again), then off the air."""
        async with self._lock(space.id):
            current = self._cache.get(space.id, space)
            stage = self._stages.get(space.id)
            if current.state is not SpaceState.SCHEDULED or (stage is not None and not stage.preshow):
                return
            closed = space_rules.close_preshow(current)
            await self.spaces.save(closed)
            self._cache[space.id] = closed
            self._preshow_waiting.discard(space.id)
            if stage is not None:
                self._take_off_air(space.id)
            await self.media.remove(space.id, HOLD_NAME)
        log.info("space %s: pre-show closed: %s", space.id, why)

    def _take_off_air(self, space_id: SpaceId) -> None:
        """Stop a stage without ending its space: its slot is free at once; its last writes go on
        in the background (a later stage of the same space waits for them)."""
        stage = self._stages.pop(space_id, None)
        self._idle_since.pop(space_id, None)
        if stage is None:
            return

        async def stop() -> None:
            try:
                await stage.stop()
                await self._release_stage(space_id)
            except Exception:
                log.exception("space %s: stopping its stage failed", space_id)
            finally:
                self._closing.pop(space_id, None)

        self._closing[space_id] = asyncio.create_task(stop(), name=f"stage-off-{space_id}")

    async def _take_slot(self, space_id: SpaceId, for_speaker: bool) -> None:
        """A slot in the node's budget of stages for `space_id`'s, or AtCapacity. A speaker (who
        brings real audio) may take the slot of an idle pre-show: no speaker and no listener,
        the one that starts last; a pre-show never takes anyone's slot, it waits."""
        if len(self._stages) + len(self._starting) < self.settings.max_stages:
            self._starting.add(space_id)
            return
        if for_speaker:
            idle = [
                self._cache[key]
                for key, stage in self._stages.items()
                if stage.preshow
                and key in self._cache
                and not self._lock(key).locked()
                and not self._heard(self._cache[key])
            ]
            if idle:
                latest = max(idle, key=lambda space: space.starts_at or space.created_at)
                log.info("space %s: its idle pre-show gives its slot to a speaker of space %s", latest.id, space_id)
                self._take_off_air(latest.id)
                self._starting.add(space_id)
                return
        raise AtCapacity(
            f"this node runs as many stages as it can keep in real time ({self.settings.max_stages});"
            " try again when one ends",
            STAGE_BUDGET_RETRY_S,
        )

    async def unpublish(self, session_id: str, token: str) -> None:
        session = self._sessions.get(SessionId(session_id))
        if session is None:
            raise NotFound("no such WHIP session (it may have ended already)")
        space = await self.get_space(session.space_id)
        member = self.authorize(space, token)
        if member.id != session.member_id and member.role not in (Role.HOST, Role.COHOST):
            raise Forbidden("this token may not end this WHIP session")
        await self._drop_session(session)

    # -- the stage --------------------------------------------------------------------------

    def rules(self, space: Space) -> StageRules:
        rules = self._rules.get(space.id)
        if rules is None:
            rules = StageRules(
                max_cohosts=self.settings.max_cohosts,
                max_speakers=self.settings.max_speakers,
                max_guests=self.settings.max_guests,
            )
            if space.state is SpaceState.ENDED:
                rules.ended = True
            self._rules[space.id] = rules
        return rules

    def authorize(self, space: Space, token: str) -> Member:
        """The member a token speaks for, checked against the stage as it is now (never only the token)."""
        grant = self.signer.verify_for(token, space.id)
        rules = self.rules(space)
        if isinstance(grant, InviteGrant):
            if grant.member_id not in rules.members:
                raise Forbidden("this invite has not been redeemed; open the invite link first")
            return rules.check_token(grant.member_id, 0)
        return rules.check_token(grant.member_id, grant.generation)

    async def invite(self, space_id: str, token: str, role: object) -> tuple[str, Role]:
        space = await self.get_space(space_id)
        if role not in (Role.SPEAKER.value, Role.COHOST.value):
            raise InvalidInput('role must be "speaker" or "cohost"')
        member = self.authorize(space, token)
        self.rules(space).check_invite(member.id, Role(str(role)))
        _, invite_token = self.signer.issue_invite(space.id, Role(str(role)))
        return invite_token, Role(str(role))

    async def redeem(self, space_id: str, token: str, name: object) -> tuple[Member, str]:
        """The invite link opened in a browser: a named member on stage, with a token of their own."""
        space = await self.get_space(space_id)
        grant = self.signer.verify_for(token, space.id)
        if not isinstance(grant, InviteGrant):
            raise InvalidInput("this is not an invite token")
        member = self.rules(space).redeem(grant.invite_id, grant.role, grant.member_id, name)
        await self._save_rules(space.id)
        return member, self.signer.issue(space.id, member.id, member.generation, member.role)

    async def join(self, space_id: str, name: object) -> tuple[Member, str]:
        """A named guest in the audience, who may raise a hand."""
        space = await self.get_space(space_id)
        member = self.rules(space).join(new_member_id(), name)
        await self._save_rules(space.id)
        return member, self.signer.issue(space.id, member.id, member.generation, member.role)

    async def act(self, space_id: str, token: str, action: str, target: str | None = None) -> Member:
        """Every stage action, checked against the current rules, then enforced on the media."""
        space = await self.get_space(space_id)
        rules = self.rules(space)
        actor = self.authorize(space, token).id
        subject = MemberId(target) if target is not None else actor
        actions = {
            "raise_hand": lambda: rules.raise_hand(actor),
            "lower_hand": lambda: rules.lower_hand(actor),
            "leave": lambda: rules.leave_stage(actor),
            "accept": lambda: rules.accept_hand(actor, subject),
            "decline": lambda: rules.decline_hand(actor, subject),
            "audience": lambda: rules.move_to_audience(actor, subject),
            "mute": lambda: rules.mute(actor, subject),
            "unmute": lambda: rules.unmute(actor, subject),
            "remove": lambda: rules.remove(actor, subject),
            "block": lambda: rules.block(actor, subject),
        }
        if action not in actions:
            raise NotFound(f"no such action: {action}")
        member = actions[action]()
        # Stored before it is acknowledged; enforced on the media at once.
        await self._save_rules(space.id)
        await self._enforce(space.id)
        await self.bus.publish(
            "stage", {"type": "stage.changed", "space": space.id, "action": action, "node": self.node_id}
        )
        return member

    def stage_view(self, space: Space) -> dict[str, object]:
        rules = self.rules(space)
        stage = self._stages.get(space.id)
        levels: dict[MemberId, float] = {}
        if stage is not None:
            for session in self._sessions.values():
                if session.space_id == space.id:
                    levels[session.member_id] = stage.levels.get(session.id, 0.0)
        return {
            "speakers": [
                {
                    "id": m.id,
                    "name": m.name,
                    "role": m.role.value,
                    "muted": m.muted,
                    "connected": m.id in levels,
                    "level": round(levels.get(m.id, 0.0), 3),
                    "speaking": levels.get(m.id, 0.0) > SPEAKING_LEVEL and not m.muted,
                }
                for m in rules.on_stage()
            ],
            "hands": len(rules.hands()),
        }

    def hand_queue(self, space: Space, token: str) -> list[dict[str, str]]:
        member = self.authorize(space, token)
        if member.role not in (Role.HOST, Role.COHOST):
            raise Forbidden("only the host and co-hosts see the hand queue")
        return [{"id": m.id, "name": m.name} for m in self.rules(space).hands()]

    async def _save_rules(self, space_id: SpaceId) -> None:
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
            await self.spaces.save_stage(space_id, self._rules[space_id].to_dict())
            self._rules_saved[space_id] = max(self._rules_saved.get(space_id, 0), newest)

    async def _enforce(self, space_id: SpaceId) -> None:
        """Make the media match the rules: lost rights close sessions, mutes silence them, at once."""
        rules = self._rules.get(space_id)
        stage = self._stages.get(space_id)
        if rules is None:
            return
        sessions = {s.id: s for s in self._sessions.values() if s.space_id == space_id}
        close, silent = enforce(rules, {key: (s.member_id, s.generation) for key, s in sessions.items()})
        for key in close:
            await self._drop_session(sessions[key])
        if stage is not None:
            for key in sessions:
                if key not in close:
                    stage.set_muted(key, key in silent)

    def speakers_connected(self, space_id: SpaceId) -> int:
        return sum(1 for s in self._sessions.values() if s.space_id == space_id)

    async def _drop_session(self, session: IngestSession) -> None:
        self._sessions.pop(session.id, None)
        await session.close()

    def _forget_session(self, session: IngestSession) -> None:
        self._sessions.pop(session.id, None)

    # -- media ------------------------------------------------------------------------------

    def live_space_ids(self) -> list[SpaceId]:
        return list(self._stages)

    def speaking(self, space: Space) -> list[tuple[Member, bool]]:
        """Everyone on stage, and whether they are speaking now."""
        view = self.stage_view(space)
        flags = {s["id"]: bool(s["speaking"]) for s in view["speakers"]}  # type: ignore[attr-defined]
        return [(m, flags.get(m.id, False)) for m in self.rules(space).on_stage()]

    def stream_health(self, space_id: SpaceId) -> dict[str, object]:
        """For the host's board: is the program being made, on time?"""
        stage = self._stages.get(space_id)
        if stage is None:
            return {"running": False}
        age = None if stage.last_made_at is None else round(self.clock.monotonic() - stage.last_made_at, 3)
        return {
            "running": True,
            "parts_made": stage.parts_made,
            "last_part_age_s": age,
            "frames_skipped": stage.frames_skipped,
            # What waits for the disk, and what a disk that fell behind cost (PODIUM_STAGE_WRITE_QUEUE).
            "writes_waiting": stage.writes_waiting,
            "writes_dropped": stage.writes_dropped,
            "input_gap_ms": stage.input_gaps(),
            "speakers": self.speakers_connected(space_id),
            "connections": [
                {
                    "member": member_id,
                    "name": name,
                    "loss_percent": round(health.loss_fraction * 100, 1),
                    "recovered_ms": health.recovered_ms,
                    "concealed_ms": health.concealed_ms,
                    "jitter_buffer_ms": health.delay_ms,
                    "poor": poor_connection(health),
                }
                for member_id, name, health in self.speaker_connections(space_id)
            ],
        }

    def speaker_connections(self, space_id: SpaceId) -> list[tuple[MemberId, str, ReceptionHealth]]:
        """How each connected speaker's audio arrives (those whose packets the stage receives itself)."""
        stage = self._stages.get(space_id)
        rules = self._rules.get(space_id)
        if stage is None:
            return []
        found = []
        for session in self._sessions.values():
            health = stage.reception_health(session.id) if session.space_id == space_id else None
            if health is None:
                continue
            member = rules.members.get(session.member_id) if rules is not None else None
            name = member.name if member is not None else str(session.member_id)
            found.append((session.member_id, name, health))
        return found

    def stage(self, space_id: SpaceId) -> Stage | None:
        return self._stages.get(space_id)

    async def ended_packager(self, space: Space) -> Packager:
        """The finished playlist of an ended space, built once from the stored records."""
        packager = self._ended_playlists.get(space.id)
        if packager is None:
            packager = Packager.from_records(program_records(await self.media.records(space.id)))
            self._ended_playlists[space.id] = packager
        return packager

    async def _claim_stage(self, space_id: SpaceId) -> None:
        """Between nodes, one mixes a space: claim its lease, or say which node has it."""
        if self.placement is None:
            return
        if not await self.placement.claim(space_id, self.node_id, STAGE_LEASE_S):
            owner = await self.placement.owner(space_id)
            raise Conflict(f"this space's stage runs on another node ({owner}); speakers connect there")

    async def _release_stage(self, space_id: SpaceId) -> None:
        if self.placement is not None:
            await self.placement.release(space_id, self.node_id)

    async def stage_elsewhere(self, space_id: SpaceId) -> str | None:
        """The address of the node that runs this space's stage, if that is another node (and it
        has said where it is); None when the stage runs here, nowhere, or on one node alone.
        Remembered for a second: a crowd's requests make one lookup per space per second."""
        if self.placement is None or space_id in self._stages:
            return None
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
        """The owner did not answer: look it up again next time (the stage may have moved)."""
        self._elsewhere.pop(space_id, None)

    async def _follow(self, topic: str) -> None:
        async for event in self.bus.subscribe(topic):
            if event.get("node") == self.node_id or not is_space_id(str(event.get("space", ""))):
                continue
            try:
                await self._changed_elsewhere(SpaceId(str(event["space"])), str(event.get("type", "")))
            except Exception:
                log.exception("could not follow %r from another node", event)

    async def _changed_elsewhere(self, space_id: SpaceId, kind: str) -> None:
        """Another node changed a space: read it again (state, stage rules), and act on it here."""
        async with self._lock(space_id):
            space = await self.spaces.get(space_id)
            if space is None:
                return
            stored = await self.spaces.load_stage(space_id)
            if stored is not None:
                self._rules[space_id] = StageRules.from_dict(
                    stored, self.settings.max_cohosts, self.settings.max_speakers, self.settings.max_guests
                )
            self._cache[space_id] = space
            self._elsewhere.pop(space_id, None)
            stage = self._stages.get(space_id)
            if stage is not None and space.state is SpaceState.ENDED:
                # Ended through a node that could not reach this one: finish the stage here too.
                for session in [s for s in self._sessions.values() if s.space_id == space_id]:
                    await self._drop_session(session)
                await stage.finish()
                self._ended_playlists[space_id] = Packager.from_records(program_records(stage.packager.segments))
                self._stages.pop(space_id, None)
                await self._release_stage(space_id)
        if kind == "stage.changed" and space_id in self._stages:
            await self._enforce(space_id)

    async def renew_stage_leases(self) -> None:
        """Keep this node's stages; one whose lease was lost (this node was cut off past its TTL and
        another took over) stops here, so that two nodes never mix the same space for long."""
        if self.placement is None:
            return
        await self.placement.announce(self.node_id, self.node_url, STAGE_LEASE_S)
        for space_id, stage in list(self._stages.items()):
            if await self.placement.renew(space_id, self.node_id, STAGE_LEASE_S):
                continue
            if await self.placement.claim(space_id, self.node_id, STAGE_LEASE_S):
                # The lease was gone, not taken (Redis came back empty): this node holds it again.
                log.warning("space %s: the stage's lease had vanished; claimed again", space_id)
                continue
            log.error("space %s: this node lost the stage's lease; stopping its stage here", space_id)
            for session in [s for s in self._sessions.values() if s.space_id == space_id]:
                await self._drop_session(session)
            self._stages.pop(space_id, None)
            await stage.stop()

    async def _start_stage(self, space: Space, preshow: bool = False) -> Stage:
        await self._take_slot(space.id, for_speaker=not preshow)
        try:
            return await self._open_stage(space, preshow)
        finally:
            self._starting.discard(space.id)

    async def _open_stage(self, space: Space, preshow: bool) -> Stage:
        earlier = self._closing.get(space.id)
        if earlier is not None:
            await earlier  # the space's earlier stage is still writing: one writer at a time
        await self._claim_stage(space.id)
        recovered = await self.media.recover(space.id)
        if recovered is not None:
            log.warning(
                "space %s: segment %d was cut short by a crash; its %.3f s kept",
                space.id,
                recovered.msn,
                recovered.duration_s,
            )
        history = await self.media.records(space.id)
        hold_audio = await self._hold_audio(space.id) if preshow else None
        stage = Stage(
            space.id,
            self.media,
            self.clock.now(),
            history,
            hold_audio,
            write_queue=self.settings.stage_write_queue,
            clock=self.clock,
        )
        await stage.start()
        self._stages[space.id] = stage
        return stage

    # -- listeners --------------------------------------------------------------------------

    async def heartbeat(self, space_id: SpaceId, listener: ListenerId, address: str, leaving: bool = False) -> Counts:
        """An admitted listener's beat (the web layer checked its pass: `listener` is whom the pass
        names), counted under the address it came from."""
        space = await self.get_space(space_id)
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
        return keyed_sample_point(presence_key(self._presence_secret, space_id), listener)

    def counts(self, space_id: SpaceId) -> Counts:
        """The listener counts: this node's, or, with shared counts, the sum over every node's."""
        local = self._local_counts(space_id)
        shared = self._shared_totals.get(space_id)
        if shared is None:
            return local
        ended = (space := self._cache.get(space_id)) is not None and space.state is SpaceState.ENDED
        now = 0 if ended else shared.now
        peak = max(local.peak, now, self._shared_peaks.get(space_id, 0))
        self._shared_peaks[space_id] = peak
        return Counts(now, peak, max(shared.unique, local.unique), local.sample_rate)

    async def share_counts(self) -> None:
        """Report this node's listeners of each space and read the sum over all nodes (every second)."""
        if self.shared_counts is None:
            return
        live = [space.id for space in self._cache.values() if space.state is SpaceState.LIVE]
        for space_id in list(self._presence):
            local = self._local_counts(space_id)
            await self.shared_counts.report(space_id, self.node_id, Share(local.now, local.unique))
        # The sums: of spaces with listeners here, and of every live one (its page shows them,
        # even on a node where nobody listens).
        for space_id in {*self._presence, *live}:
            self._shared_totals[space_id] = await self.shared_counts.total(space_id)

    def _local_counts(self, space_id: SpaceId) -> Counts:
        presence = self._presence.get(space_id)
        if presence is None:
            cached = self._cache.get(space_id)
            return Counts(0, cached.peak_listeners if cached else 0)
        if self._cache.get(space_id, None) and self._cache[space_id].state is SpaceState.ENDED:
            final = presence.counts()
            return Counts(0, final.peak, final.unique, final.sample_rate)
        return presence.counts()

    def _presence_of(self, space: Space) -> Presence:
        presence = self._presence.get(space.id)
        if presence is None:
            presence = Presence(
                self.clock,
                self.settings.heartbeat_interval_s,
                self.settings.heartbeat_missed_limit,
                key=presence_key(self._presence_secret, space.id),
                peak=space.peak_listeners,
                target_sampled=self.settings.presence_sample_target,
                max_per_address=self.settings.presence_listeners_per_address,
            )
            self._presence[space.id] = presence
        return presence

    async def _repeat(self, interval_s: float, work: Callable[[], Awaitable[None]], what: str) -> None:
        """`work` every `interval_s` of the clock, for ever: the boundary of a background task (a
        failed round is logged and the next one goes on)."""
        while True:
            await self.clock.sleep(interval_s)
            try:
                await work()
            except Exception:
                log.exception("%s failed; will try again", what)

    async def _flush_peaks(self) -> None:
        for space_id, presence in list(self._presence.items()):
            if space_id in self._ending:
                continue  # stored as ended (with its peak) once its last writes are done
            async with self._lock(space_id):
                space = self._cache.get(space_id)
                if space is not None and self.placement is not None:
                    # Between nodes, another may have changed the space meanwhile: never write
                    # back a state older than the stored one, only a higher peak.
                    space = await self.spaces.get(space_id)
                if space is None:
                    continue
                updated = space_rules.with_peak(space, presence.counts().peak)
                if updated is not space:
                    await self.spaces.save(updated)
                    self._cache[space_id] = updated

    def _lock(self, space_id: SpaceId) -> asyncio.Lock:
        return self._locks.setdefault(space_id, asyncio.Lock())
