"""The stages this node runs: the budget of them, their start (pre-show or live) and end, the
speakers' WHIP sessions on them, and what the media says (levels, health).

Invariants: a space has at most one stage here, and one writer of its media at a time (a stage
taken off the air finishes its writes before the next one of the same space starts); a stage
runs only under this node's lease of it; the media always matches the stage rules (`enforce`)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass
from datetime import timedelta

import numpy as np

from podium.backends.interfaces import MediaStore
from podium.domain import space as space_rules
from podium.domain.space import Space, SpaceState
from podium.domain.stage import HOST_ID, Role, enforce
from podium.domain.tokens import Grant, InviteGrant
from podium.errors import AtCapacity, Conflict, Forbidden, NotFound
from podium.events import SpaceEnded, SpaceStarted
from podium.ids import MemberId, SessionId, SpaceId
from podium.media import hold, ingest, sdp
from podium.media.ingest import IngestSession
from podium.media.mixer import FRAME_SAMPLES, SAMPLE_RATE, Samples
from podium.media.packager import Packager, program_records
from podium.media.reception import ReceptionHealth, poor_connection
from podium.media.stage import Stage
from podium.spaces import background
from podium.spaces.directory import SpaceDirectory
from podium.spaces.listeners import Listeners
from podium.spaces.ownership import STAGE_LEASE_S, Ownership

log = logging.getLogger(__name__)

HOLD_NAME = "hold.pcm"  # the host's hold audio, decoded: 48 kHz mono s16
# When the node is at its budget of stages: how long a speaker is asked to wait before trying again.
STAGE_BUDGET_RETRY_S = 30
# Hold audio files decoded at once (each up to PODIUM_HOLD_AUDIO_MAX_S of 48 kHz audio in memory).
HOLD_DECODES_AT_ONCE = 2


@dataclass(eq=False)
class StageManager:
    directory: SpaceDirectory
    listeners: Listeners
    ownership: Ownership
    media: MediaStore
    _: KW_ONLY
    # On one node a live space's stage resumes when the node starts; between nodes it resumes
    # where the host reconnects (that node claims the lease then).
    resume_on_start: bool

    def __post_init__(self) -> None:
        self._stages: dict[SpaceId, Stage] = {}
        self._ended_playlists: dict[SpaceId, Packager] = {}
        self._sessions: dict[SessionId, IngestSession] = {}
        # The budget of stages (settings.max_stages): stages being started hold a slot too.
        self._starting: set[SpaceId] = set()
        # Stages taken off the air whose last writes are still going to the disk.
        self._closing: dict[SpaceId, asyncio.Task[None]] = {}
        # Ends whose last writes (and then the commit, the download, the webhooks) go on in the background.
        self._ending: dict[SpaceId, asyncio.Task[None]] = {}
        self._hold_decodes = asyncio.Semaphore(HOLD_DECODES_AT_ONCE)
        self._tasks: list[asyncio.Task[None]] = []
        # Awaited when a space ends, before the end is answered (the recording's download is made
        # here, so that it is there when the host sees "ended"). A failing hook is logged, not fatal.
        self.end_hooks: list[Callable[[Space], Awaitable[None]]] = []
        # Called by each stage once per frame on the air with its unmuted speakers' frames (the
        # captions' tap, `Captioning.frames`); None: no tap.
        self.frame_tap: Callable[[SpaceId, dict[str, Samples], float], None] | None = None

    # -- life of the node ----------------------------------------------------------------------
    async def start(self) -> None:
        """Finish the ends a stop interrupted; resume the stages of spaces that were live."""
        for space in await self.directory.load_unfinished():
            space = self.directory.cached(space.id) or space
            rules = self.directory.known_rules(space.id)
            if rules is not None and rules.ended and await self.ownership.ours_to_end(space.id):
                await self._finish_interrupted_end(space)
                continue
            if space.state is SpaceState.LIVE and self.resume_on_start:
                try:
                    await self.start_stage(space)
                except AtCapacity:
                    log.error("space %s: live, but not resumed: the node is at its budget of stages", space.id)
                    continue
                log.info("resumed live space %s", space.id)
        await self.ownership.announce()
        clock = self.directory.clock
        self._tasks = [
            background.start(clock, STAGE_LEASE_S / 3, self.renew_stage_leases, "renewing stage leases", "leases")
        ]

    async def stop(self) -> None:
        await background.cancel(self._tasks)
        for session in list(self._sessions.values()):
            await session.close()
        for space_id, stage in list(self._stages.items()):
            await stage.stop()
            await self.ownership.release(space_id)
        # Stages going off the air and ends finishing: their writes reach the disk before the
        # process goes (each bounded by its write queue); a failure was logged by the task itself.
        await asyncio.gather(*self._closing.values(), *self._ending.values(), return_exceptions=True)

    async def renew_stage_leases(self) -> None:
        """Keep this node's stages; one whose lease was lost (this node was cut off past its TTL and
        another took over) stops here, so that two nodes never mix the same space for long."""
        await self.ownership.announce()
        for space_id, stage in list(self._stages.items()):
            if await self.ownership.keep(space_id):
                continue
            log.error("space %s: this node lost the stage's lease; stopping its stage here", space_id)
            await self._drop_sessions(space_id)
            self._stages.pop(space_id, None)
            await stage.stop()

    async def ended_elsewhere(self, space: Space) -> None:
        """Ended through a node that could not reach this one: finish the stage here too.
        (Called under the space's lock.)"""
        stage = self._stages.get(space.id)
        if stage is None or space.state is not SpaceState.ENDED:
            return
        await self._drop_sessions(space.id)
        await stage.finish()
        self._ended_playlists[space.id] = Packager.from_records(program_records(stage.packager.segments))
        self._stages.pop(space.id, None)
        await self.ownership.release(space.id)

    # -- speakers ---------------------------------------------------------------------------
    async def publish(self, space_id: str, grant: Grant | InviteGrant, offer: bytes) -> tuple[IngestSession, str]:
        """A WHIP offer from someone on stage (`grant`: their token, its signature checked once, by
        the caller): the host's first one makes the space live."""
        space = await self.directory.get_space(space_id)
        if space.state is SpaceState.ENDED:
            raise Conflict("this space has ended; nobody can publish to it any more")
        if grant.space_id != space.id:
            raise Forbidden("this token belongs to another space")
        rules = self.directory.rules(space)
        redeeming = isinstance(grant, InviteGrant) and grant.member_id not in rules.members
        member = None if redeeming else self.directory.member_for(space, grant)
        # Rights before content: a revoked or listener token is refused whatever it sends.
        if member is not None and not rules.may_publish(member.id, member.generation):
            raise Forbidden("only speakers on stage can publish audio")
        if space.state is SpaceState.SCHEDULED and grant.role is not Role.HOST and not self.in_preshow(space.id):
            raise Conflict("the host goes live first")
        # Check the offer before anything changes: a bad one leaves the space (and an invite) as they were.
        parsed = sdp.parse_offer(offer, self.directory.settings.max_offer_bytes)
        if member is None:
            assert isinstance(grant, InviteGrant)
            # A studio encoder (OBS) uses the invite token itself: its first publish redeems it.
            rules.redeem(grant.invite_id, grant.role, grant.member_id, "Studio guest")
            await self.directory.save_rules(space.id)
            member = self.directory.member_for(space, grant)
        async with self.directory.lock(space.id):
            space = await self.directory.get_space(space_id)
            stage = self._stages.get(space.id)
            new_stage = stage is None
            if stage is None:
                stage = await self.start_stage(space)
            try:
                session, answer = await ingest.open_session(
                    space.id,
                    member.id,
                    member.generation,
                    parsed,
                    stage,
                    loopback_only=self.directory.settings.ice_loopback == "only",
                    allow_loopback=self.directory.settings.ice_loopback != "0",
                    max_candidates=self.directory.settings.max_remote_candidates,
                    on_closed=self._forget_session,
                )
            except BaseException:
                if new_stage:
                    self._stages.pop(space.id, None)
                    await stage.stop()
                    await self.ownership.release(space.id)
                raise
            # A reconnect replaces the member's earlier session.
            for earlier in [s for s in self._sessions.values() if s.space_id == space.id and s.member_id == member.id]:
                await self._drop_session(earlier)
            self._sessions[session.id] = session
            # In the pre-show, connecting is not going live: the host goes live with the switch
            # (or at the start time, if connected). Without a pre-show, the host's mic is the start.
            if not stage.preshow:
                await self.went_live(space)
        await self.enforce(space.id)
        return session, answer

    async def unpublish(self, session_id: str, token: str) -> None:
        session = self._sessions.get(SessionId(session_id))
        if session is None:
            raise NotFound("no such WHIP session (it may have ended already)")
        space = await self.directory.get_space(session.space_id)
        member = self.directory.authorize(space, token)
        if member.id != session.member_id and member.role not in (Role.HOST, Role.COHOST):
            raise Forbidden("this token may not end this WHIP session")
        await self._drop_session(session)

    async def went_live(self, space: Space) -> None:
        live = space_rules.go_live(space, self.directory.clock.now())
        if live is not space:
            await self.directory.store.save(live)
            self.directory.put(live)
            await self.directory.bus.publish(SpaceStarted(space.id, self.directory.node_id))

    async def go_live(self, space_id: str, token: str) -> Space:
        """The host's switch from the pre-show to the stage, now."""
        space = await self.directory.get_space(space_id)
        member = self.directory.authorize(space, token)
        if member.role is not Role.HOST:
            raise Forbidden("only the host goes live")
        if space.state is not SpaceState.SCHEDULED:
            raise Conflict(f"this space is {space.state.value}; only a scheduled space goes live")
        if not self.host_connected(space.id):
            raise Conflict("connect your microphone first: the pre-show goes on until you go live")
        async with self.directory.lock(space.id):
            stage = self._stages.get(space.id)
            if stage is not None:
                stage.go_live()
            await self.went_live(await self.directory.get_space(space_id))
        return await self.directory.get_space(space_id)

    def host_connected(self, space_id: SpaceId) -> bool:
        return any(s.space_id == space_id and s.member_id == HOST_ID for s in self._sessions.values())

    def speakers_connected(self, space_id: SpaceId) -> int:
        return sum(1 for s in self._sessions.values() if s.space_id == space_id)

    def heard(self, space: Space) -> bool:
        """Whether anyone is at a space: a speaker connected, or a listener counted."""
        return self.speakers_connected(space.id) > 0 or self.listeners.counts(space.id).now > 0

    async def enforce(self, space_id: SpaceId) -> None:
        """Make the media match the rules: lost rights close sessions, mutes silence them, at once."""
        rules = self.directory.known_rules(space_id)
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

    async def _drop_session(self, session: IngestSession) -> None:
        self._sessions.pop(session.id, None)
        await session.close()

    async def _drop_sessions(self, space_id: SpaceId) -> None:
        for session in [s for s in self._sessions.values() if s.space_id == space_id]:
            await self._drop_session(session)

    def _forget_session(self, session: IngestSession) -> None:
        self._sessions.pop(session.id, None)

    # -- the pre-show's hold audio --------------------------------------------------------------
    def in_preshow(self, space_id: SpaceId) -> bool:
        stage = self._stages.get(space_id)
        return stage is not None and stage.preshow

    async def set_hold_audio(self, space_id: str, token: str, data: bytes) -> float:
        """The host's own hold audio for the pre-show; returns its length in seconds."""
        space = await self.directory.get_space(space_id)
        if self.directory.authorize(space, token).role is not Role.HOST:
            raise Forbidden("only the host chooses the hold audio")
        if space.state is not SpaceState.SCHEDULED:
            raise Conflict("hold audio is for the pre-show, before the space goes live")
        if space.preshow_closed:
            raise Conflict("the pre-show was closed (nobody came); connect your microphone to go live")
        # Decoded a few at a time: each holds up to PODIUM_HOLD_AUDIO_MAX_S of audio while it runs.
        async with self._hold_decodes:
            samples = await asyncio.to_thread(hold.decode_hold_file, data, self.directory.settings.hold_audio_max_s)
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
        path = self.media.local_path(space_id, HOLD_NAME)
        stored = b"" if path is not None else (await self.media.read(space_id, HOLD_NAME) or b"")
        size = path.stat().st_size if path is not None else len(stored)
        if size < 2 * FRAME_SAMPLES or size % 2:
            return hold.HoldAudio(hold.tone_bed())
        samples = np.memmap(path, dtype=np.int16, mode="r") if path is not None else np.frombuffer(stored, np.int16)
        return hold.HoldAudio(samples)

    # -- starting and stopping stages -----------------------------------------------------------
    async def start_stage(self, space: Space, preshow: bool = False) -> Stage:
        """A stage for `space` in the node's budget (or AtCapacity), under this node's lease."""
        await self._take_slot(space.id, for_speaker=not preshow)
        try:
            earlier = self._closing.get(space.id)
            if earlier is not None:
                await earlier  # the space's earlier stage is still writing: one writer at a time
            await self.ownership.claim(space.id)
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
                self.directory.clock.now(),
                history,
                hold_audio,
                write_queue=self.directory.settings.stage_write_queue,
                clock=self.directory.clock,
                tap=None if self.frame_tap is None else functools.partial(self.frame_tap, space.id),
            )
            await stage.start()
            self._stages[space.id] = stage
            return stage
        finally:
            self._starting.discard(space.id)

    def take_off_air(self, space_id: SpaceId) -> None:
        """Stop a stage without ending its space: its slot is free at once; its last writes go on
        in the background (a later stage of the same space waits for them)."""
        stage = self._stages.pop(space_id, None)
        if stage is None:
            return

        async def stop() -> None:
            try:
                await stage.stop()
                await self.ownership.release(space_id)
            except Exception:
                log.exception("space %s: stopping its stage failed", space_id)
            finally:
                self._closing.pop(space_id, None)

        self._closing[space_id] = asyncio.create_task(stop(), name=f"stage-off-{space_id}")

    async def _take_slot(self, space_id: SpaceId, for_speaker: bool) -> None:
        """A slot in the node's budget of stages for `space_id`'s, or AtCapacity. A speaker (who
        brings real audio) may take the slot of an idle pre-show: no speaker and no listener,
        the one that starts last; a pre-show never takes anyone's slot, it waits."""
        if len(self._stages) + len(self._starting) < self.directory.settings.max_stages:
            self._starting.add(space_id)
            return
        if for_speaker:
            idle = [
                space
                for key, stage in self._stages.items()
                if stage.preshow
                and (space := self.directory.cached(key)) is not None
                and not self.directory.lock(key).locked()
                and not self.heard(space)
            ]
            if idle:
                latest = max(idle, key=lambda space: space.starts_at or space.created_at)
                log.info("space %s: its idle pre-show gives its slot to a speaker of space %s", latest.id, space_id)
                self.take_off_air(latest.id)
                self._starting.add(space_id)
                return
        raise AtCapacity(
            f"this node runs as many stages as it can keep in real time ({self.directory.settings.max_stages});"
            " try again when one ends",
            STAGE_BUDGET_RETRY_S,
        )

    # -- the end ----------------------------------------------------------------------------
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
        space = await self.directory.get_space(space_id)
        self.directory.rules(space).end(self.directory.authorize(space, token).id)
        await self.directory.save_rules(space.id)
        async with self.directory.lock(space.id):
            space = await self.directory.get_space(space_id)
            if space.state is SpaceState.ENDED:
                return space
            await self._drop_sessions(space.id)
            # The stage stays in place until the space is ended in memory: listeners reloading the
            # playlist meanwhile get the stage's (closing) playlist, never a "not running" error.
            stage = self._stages.get(space.id)
            written = True
            if stage is not None:
                written = await stage.finish(self.directory.settings.end_wait_s)
                records = stage.packager.segments
                # The replay is the show: a pre-show's hold audio is left out of it.
                program = program_records(records)
                replay = stage.packager if len(program) == len(records) else Packager.from_records(program)
                self._ended_playlists[space.id] = replay
            peak = self.listeners.counts(space.id).peak
            ended = space_rules.end(space_rules.with_peak(space, peak), self.directory.clock.now())
            # Ended here from now on (listeners get the finished playlist from memory), and the
            # stage's slot in the budget is free; stored as ended once its writes are done.
            self.directory.end_in_memory(ended)
            self._stages.pop(space.id, None)
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
            await self.directory.commit_end(ended)
            await self.ownership.release(ended.id)
            await self.media.remove(ended.id, HOLD_NAME)
            # Told before the hooks run: what they announce (the replay is ready) comes after it.
            await self.directory.bus.publish(SpaceEnded(ended.id, self.directory.node_id))
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

    async def _finish_interrupted_end(self, space: Space) -> None:
        """A space whose end was cut off by a crash or a stop (its rules ended, the space not):
        the parts of the segment that was being made become a segment, the space is stored as
        ended at the end of its recording, and the rest of the end runs in the background."""
        await self.media.recover(space.id)
        records = await self.media.records(space.id)
        last = records[-1] if records else None
        ended_at = last.program_date_time + timedelta(seconds=last.duration_s) if last else self.directory.clock.now()
        ended = space_rules.end(space, max(ended_at, space.started_at or space.created_at))
        # Committed before the node serves anything; what follows the commit (the download, the
        # webhooks) runs in the background and stores it again, which changes nothing.
        await self.directory.commit_end(ended)
        log.warning("space %s: its end was interrupted (the node stopped); ended now", space.id)
        self._ending[space.id] = asyncio.create_task(self._complete_end(ended, None), name=f"end-{space.id}")

    # -- what the media says ----------------------------------------------------------------
    def live_space_ids(self) -> list[SpaceId]:
        return list(self._stages)

    def stage(self, space_id: SpaceId) -> Stage | None:
        return self._stages.get(space_id)

    def levels(self, space_id: SpaceId) -> dict[MemberId, float]:
        """The level of each connected speaker's audio (none when no stage runs here)."""
        stage = self._stages.get(space_id)
        if stage is None:
            return {}
        return {s.member_id: stage.levels.get(s.id, 0.0) for s in self._sessions.values() if s.space_id == space_id}

    async def ended_packager(self, space: Space) -> Packager:
        """The finished playlist of an ended space, built once from the stored records."""
        if space.id not in self._ended_playlists:
            self._ended_playlists[space.id] = Packager.from_records(program_records(await self.media.records(space.id)))
        return self._ended_playlists[space.id]

    def stream_health(self, space_id: SpaceId) -> dict[str, object]:
        """For the host's board: is the program being made, on time?"""
        stage = self._stages.get(space_id)
        if stage is None:
            return {"running": False}
        age = None if stage.last_made_at is None else round(self.directory.clock.monotonic() - stage.last_made_at, 3)
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
        rules = self.directory.known_rules(space_id)
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
