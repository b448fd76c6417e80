"""A Hypothesis state machine over everything that happens on a stage, with a real mixer attached.

Whatever the order of joins, invites, hands, promotions, demotions, mutes, removals, blocks and
reconnects: nobody who is not a current, unmuted speaker is ever heard in the mix, and no
moderation action succeeds for someone who is not the host or a current co-host.
"""

from __future__ import annotations

import contextlib

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from podium.domain.stage import HOST_ID, MODERATORS, Role, StageRules, enforce
from podium.errors import PodiumError
from podium.ids import MemberId
from podium.media.mixer import FRAME_SAMPLES, Mixer

MEMBERS = [HOST_ID] + [MemberId(f"m{i}") for i in range(5)]
# Each member speaks at its own power of two, so the program's value names who is in the mix.
LOUDNESS = {member: 1 << i for i, member in enumerate(MEMBERS)}
member_ids = st.sampled_from(MEMBERS)


class StageMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.rules = StageRules(max_cohosts=2, max_speakers=5)
        self.mixer = Mixer(prime_ms=0)
        # Tokens ever handed out: (member, generation). Sessions: key → (member, generation).
        self.tokens: list[tuple[MemberId, int]] = [(HOST_ID, 0)]
        self.sessions: dict[int, tuple[MemberId, int]] = {}
        self.next_session = 0
        self.invites = 0
        # Tokens issued before their member lost a right: they must never publish again.
        self.revoked: set[tuple[MemberId, int]] = set()

    # -- helpers -----------------------------------------------------------------------------

    def _moderation(self, actor: MemberId, action: str, *args: MemberId) -> None:
        actor_role = self.rules.members[actor].role if actor in self.rules.members else None
        actor_blocked = actor in self.rules.members and self.rules.members[actor].blocked
        try:
            getattr(self.rules, action)(actor, *args)
        except PodiumError:
            return
        assert actor_role in MODERATORS and not actor_blocked, f"{action} succeeded for a {actor_role}"
        if action in ("move_to_audience", "remove", "block"):
            self._revoke(args[0])
        self._enforce()

    def _revoke(self, member: MemberId) -> None:
        self.revoked |= {token for token in self.tokens if token[0] == member}

    def _enforce(self) -> None:
        """What the service does after every change: close lost sessions, silence muted ones."""
        close, silent = enforce(self.rules, self.sessions)
        for key in close:
            del self.sessions[key]
            self.mixer.remove_input(key)
        for key in self.sessions:
            self.mixer.set_muted(key, key in silent)

    # -- rules -------------------------------------------------------------------------------

    @rule(member=member_ids)
    def join(self, member: MemberId) -> None:
        try:
            self.rules.join(member, f"Guest {member}")
            self.tokens.append((member, self.rules.members[member].generation))
        except PodiumError:
            pass

    @rule(actor=member_ids, member=member_ids, role=st.sampled_from([Role.SPEAKER, Role.COHOST]), reuse=st.booleans())
    def invite(self, actor: MemberId, member: MemberId, role: Role, reuse: bool) -> None:
        try:
            self.rules.check_invite(actor, role)
        except PodiumError:
            return
        assert self.rules.members[actor].role in MODERATORS
        invite_id = "invite-0" if reuse else f"invite-{self.invites}"
        self.invites += 1
        if member in self.rules.members:
            return  # links are for new people; existing members come up by the hand queue
        used_before = invite_id in self.rules.used_invites
        try:
            self.rules.redeem(invite_id, role, member, "Invited")
        except PodiumError:
            return
        assert not used_before, "an invite link worked twice"
        self.tokens.append((member, 0))

    @rule(member=member_ids)
    def raise_hand(self, member: MemberId) -> None:
        with contextlib.suppress(PodiumError):
            self.rules.raise_hand(member)

    @rule(actor=member_ids, member=member_ids)
    def accept(self, actor: MemberId, member: MemberId) -> None:
        self._moderation(actor, "accept_hand", member)
        if member in self.rules.members:
            self.tokens.append((member, self.rules.members[member].generation))

    @rule(actor=member_ids, member=member_ids)
    def decline(self, actor: MemberId, member: MemberId) -> None:
        self._moderation(actor, "decline_hand", member)

    @rule(actor=member_ids, member=member_ids)
    def demote(self, actor: MemberId, member: MemberId) -> None:
        self._moderation(actor, "move_to_audience", member)

    @rule(actor=member_ids, member=member_ids)
    def mute(self, actor: MemberId, member: MemberId) -> None:
        if actor == member:
            try:
                self.rules.mute(actor, member)
            except PodiumError:
                return
            self._enforce()
        else:
            self._moderation(actor, "mute", member)

    @rule(actor=member_ids, member=member_ids)
    def unmute(self, actor: MemberId, member: MemberId) -> None:
        try:
            self.rules.unmute(actor, member)
        except PodiumError:
            return
        assert actor == member, "someone unmuted another speaker"
        self._enforce()

    @rule(actor=member_ids, member=member_ids)
    def remove(self, actor: MemberId, member: MemberId) -> None:
        self._moderation(actor, "remove", member)

    @rule(actor=member_ids, member=member_ids)
    def block(self, actor: MemberId, member: MemberId) -> None:
        self._moderation(actor, "block", member)

    @rule(member=member_ids)
    def leave(self, member: MemberId) -> None:
        try:
            self.rules.leave_stage(member)
        except PodiumError:
            return
        self._revoke(member)
        self._enforce()

    @precondition(lambda self: bool(self.tokens))
    @rule(data=st.data())
    def publish_or_reconnect(self, data: st.DataObject) -> None:
        """Any token ever issued tries to publish, as a reconnect would."""
        member, generation = data.draw(st.sampled_from(self.tokens))
        if not self.rules.may_publish(member, generation):
            return
        assert (member, generation) not in self.revoked, "a revoked token published again"
        current = self.rules.members[member]
        assert current.generation == generation and current.on_stage
        # A reconnect replaces the member's earlier session, as the service does.
        for old in [k for k, (m, _) in self.sessions.items() if m == member]:
            del self.sessions[old]
            self.mixer.remove_input(old)
        key = self.next_session
        self.next_session += 1
        self.sessions[key] = (member, generation)
        self.mixer.add_input(key)
        self._enforce()

    @rule(member=member_ids)
    def demote_then_bring_back(self, member: MemberId) -> None:
        """Off the stage and up again by the hand queue: the old tokens must stay dead."""
        self._moderation(HOST_ID, "move_to_audience", member)
        self.raise_hand(member)
        self.accept(HOST_ID, member)

    @rule(actor=member_ids)
    def end(self, actor: MemberId) -> None:
        try:
            self.rules.end(actor)
        except PodiumError:
            return
        assert actor == HOST_ID, "someone other than the host ended the space"
        self._enforce()

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def only_current_unmuted_speakers_are_heard(self) -> None:
        for key, (member, _) in self.sessions.items():
            self.mixer.push(key, np.full(FRAME_SAMPLES, LOUDNESS[member], dtype=np.int16))
        program = self.mixer.mix().program
        heard_value = int(program[0])
        assert (program == heard_value).all()
        heard = {m for m in MEMBERS if heard_value & LOUDNESS[m]}
        for member in heard:
            state = self.rules.members[member]
            assert state.role in (Role.HOST, Role.COHOST, Role.SPEAKER), f"{member} heard as {state.role}"
            assert not state.muted and not state.blocked and not self.rules.ended, f"{member} heard while not allowed"

    @invariant()
    def limits_hold(self) -> None:
        on_stage = self.rules.on_stage()
        assert len(on_stage) <= self.rules.max_speakers
        assert sum(m.role is Role.COHOST for m in on_stage) <= self.rules.max_cohosts
        assert self.rules.members[HOST_ID].role is Role.HOST


StageMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_stage_machine = StageMachine.TestCase
