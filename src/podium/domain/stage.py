"""Who may do what on a space's stage. Pure rules, no I/O; the service applies them on every action.

Invariants (checked by a Hypothesis state machine in tests/domain/test_stage_machine.py):
- only a current, unblocked member on stage (host, co-host, speaker) may publish, and only with a
  token of their current generation;
- only a current, unmuted one of them is mixed;
- only the host and current co-hosts moderate; only the host ends the space;
- taking a right away bumps the member's generation, so every token issued before stops working
  and a reconnect cannot bring the right back; rotating the host token bumps the host's;
- withdrawing the listener links bumps `link_generation`: links are signed with it, so every link
  given out before fails its signature check (delivery.links);
- at most `max_guests` guests wait in the audience (joined, and not yet dealt with by a moderator:
  a removal, a block or a turn on stage bumps the generation and frees the place), so what a
  stranger can add to the stored state is bounded.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from podium.errors import Conflict, Forbidden, InvalidInput, NotFound
from podium.ids import MemberId
from podium.text import clean_text


class Role(StrEnum):
    HOST = "host"
    COHOST = "cohost"
    SPEAKER = "speaker"
    LISTENER = "listener"


ON_STAGE = frozenset({Role.HOST, Role.COHOST, Role.SPEAKER})
MODERATORS = frozenset({Role.HOST, Role.COHOST})
HOST_ID = MemberId("host")
K = TypeVar("K", bound=Hashable)


@dataclass
class Member:
    id: MemberId
    name: str
    role: Role
    muted: bool = False
    blocked: bool = False
    hand_raised: bool = False
    # Bumped whenever a right is taken away: tokens carry the generation they were issued for.
    generation: int = 0

    @property
    def on_stage(self) -> bool:
        return self.role in ON_STAGE and not self.blocked


def clean_name(raw: object, max_chars: int = 60) -> str:
    return clean_text(raw, "name", max_chars)


@dataclass
class StageRules:
    host_name: str = "Host"
    max_cohosts: int = 2
    max_speakers: int = 13  # everyone on stage, host included
    max_guests: int = 200  # guests waiting in the audience (see waiting_guests)
    members: dict[MemberId, Member] = field(default_factory=dict)
    used_invites: set[str] = field(default_factory=set)
    ended: bool = False
    # The generation private listener links are signed with; moved on to withdraw them all.
    link_generation: int = 0

    def __post_init__(self) -> None:
        self.members.setdefault(HOST_ID, Member(HOST_ID, self.host_name, Role.HOST))

    # -- storage -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "members": [
                {
                    "id": m.id,
                    "name": m.name,
                    "role": m.role.value,
                    "muted": m.muted,
                    "blocked": m.blocked,
                    "hand_raised": m.hand_raised,
                    "generation": m.generation,
                }
                for m in self.members.values()
            ],
            "used_invites": sorted(self.used_invites),
            "ended": self.ended,
            "link_generation": self.link_generation,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], max_cohosts: int, max_speakers: int, max_guests: int = 200) -> StageRules:
        members = {
            MemberId(m["id"]): Member(
                MemberId(m["id"]),
                str(m["name"]),
                Role(m["role"]),
                bool(m["muted"]),
                bool(m["blocked"]),
                bool(m["hand_raised"]),
                int(m["generation"]),
            )
            for m in data.get("members", [])
        }
        return cls(
            max_cohosts=max_cohosts,
            max_speakers=max_speakers,
            max_guests=max_guests,
            members=members,
            used_invites=set(data.get("used_invites", [])),
            ended=bool(data.get("ended", False)),
            link_generation=int(data.get("link_generation", 0)),
        )

    # -- queries -----------------------------------------------------------------------------

    def member(self, member_id: MemberId) -> Member:
        member = self.members.get(member_id)
        if member is None:
            raise NotFound("no such member of this space")
        return member

    def on_stage(self) -> list[Member]:
        return [m for m in self.members.values() if m.on_stage]

    def hands(self) -> list[Member]:
        return [m for m in self.members.values() if m.hand_raised and not m.blocked]

    def waiting_guests(self) -> int:
        """Guests in the audience whom no moderator has dealt with yet: listeners still at their
        first generation (every removal, block or stage turn moves it on)."""
        return sum(1 for m in self.members.values() if m.role is Role.LISTENER and m.generation == 0)

    def may_publish(self, member_id: MemberId, generation: int) -> bool:
        member = self.members.get(member_id)
        return member is not None and not self.ended and member.on_stage and member.generation == generation

    def mixable(self, member_id: MemberId) -> bool:
        member = self.members.get(member_id)
        return member is not None and not self.ended and member.on_stage and not member.muted

    def check_token(self, member_id: MemberId, generation: int) -> Member:
        """The member a token speaks for, if the token is still of their current generation."""
        member = self.members.get(member_id)
        if member is None or member.generation != generation:
            raise Forbidden("this token was revoked")
        if member.blocked:
            raise Forbidden("you are blocked in this space")
        return member

    # -- joining -----------------------------------------------------------------------------

    def join(self, member_id: MemberId, name: object) -> Member:
        """A named guest enters the audience."""
        if self.ended:
            raise Conflict("this space has ended")
        if member_id in self.members:
            raise Conflict("this member has joined already")
        name = clean_name(name)
        if self.waiting_guests() >= self.max_guests:
            raise Conflict(
                f"the audience is full: {self.max_guests} guests are waiting already; "
                "you can still listen, and join as a guest a little later"
            )
        member = Member(member_id, name, Role.LISTENER)
        self.members[member_id] = member
        return member

    def check_invite(self, actor: MemberId, role: Role) -> None:
        moderator = self._moderator(actor)
        if role not in (Role.SPEAKER, Role.COHOST):
            raise InvalidInput("an invite is for the role speaker or cohost")
        if role is Role.COHOST and moderator.role is not Role.HOST:
            raise Forbidden("only the host invites co-hosts")

    def redeem(self, invite_id: str, role: Role, member_id: MemberId, name: object) -> Member:
        """An invite link used once: a new member, straight onto the stage."""
        if invite_id in self.used_invites or member_id in self.members:
            raise Forbidden("this invite link has been used already")
        if self.ended:
            raise Conflict("this space has ended")
        self._check_room(role)
        member = Member(member_id, clean_name(name), role)
        self.members[member_id] = member
        self.used_invites.add(invite_id)
        return member

    # -- the way up --------------------------------------------------------------------------

    def rename(self, member_id: MemberId, name: object) -> Member:
        """A member's own name, as the stage, the timeline and the replay show it from now on."""
        member = self._active(member_id)
        member.name = clean_name(name)
        return member

    def raise_hand(self, member_id: MemberId) -> Member:
        member = self._active(member_id)
        if member.role is not Role.LISTENER:
            raise Conflict("you are on stage already")
        member.hand_raised = True
        return member

    def lower_hand(self, member_id: MemberId) -> Member:
        member = self._active(member_id)
        member.hand_raised = False
        return member

    def accept_hand(self, actor: MemberId, member_id: MemberId) -> Member:
        self._moderator(actor)
        member = self._active(member_id)
        if not member.hand_raised:
            raise Conflict(f"{member.name} has not raised a hand")
        self._check_room(Role.SPEAKER)
        member.hand_raised = False
        member.role = Role.SPEAKER
        member.muted = False
        return member

    def decline_hand(self, actor: MemberId, member_id: MemberId) -> Member:
        self._moderator(actor)
        member = self.member(member_id)
        member.hand_raised = False
        return member

    def leave_stage(self, member_id: MemberId) -> Member:
        member = self._active(member_id)
        if member.role is Role.HOST:
            raise Conflict("the host stays on stage; end the space instead")
        if member.role is Role.LISTENER:
            raise Conflict("you are not on stage")
        return self._take_stage_away(member)

    # -- moderation --------------------------------------------------------------------------

    def move_to_audience(self, actor: MemberId, member_id: MemberId) -> Member:
        member = self._target(actor, member_id)
        if member.role is Role.LISTENER:
            raise Conflict(f"{member.name} is not on stage")
        return self._take_stage_away(member)

    def mute(self, actor: MemberId, member_id: MemberId) -> Member:
        """Anyone on stage mutes themselves; the host and co-hosts mute others."""
        member = self._active(member_id) if actor == member_id else self._target(actor, member_id)
        if not member.on_stage:
            raise Conflict(f"{member.name} is not on stage")
        member.muted = True
        return member

    def unmute(self, actor: MemberId, member_id: MemberId) -> Member:
        if actor != member_id:
            raise Forbidden("only the speaker can unmute themselves")
        member = self._active(member_id)
        if not member.on_stage:
            raise Conflict("you are not on stage")
        member.muted = False
        return member

    def remove(self, actor: MemberId, member_id: MemberId) -> Member:
        member = self._target(actor, member_id)
        member.hand_raised = False
        if member.role is not Role.LISTENER:
            return self._take_stage_away(member)
        member.generation += 1
        return member

    def block(self, actor: MemberId, member_id: MemberId) -> Member:
        member = self._target(actor, member_id)
        member.blocked = True
        member.hand_raised = False
        if member.role is not Role.LISTENER:
            member.role = Role.LISTENER
        member.generation += 1
        return member

    def rotate_host(self, actor: MemberId) -> Member:
        """The host's token is replaced: its generation moves on, so the old one stops working
        (and a WHIP session opened with it is closed by `enforce`). Allowed after the end too."""
        member = self.members.get(actor)
        if member is None or member.role is not Role.HOST:
            raise Forbidden("only the host rotates the host token")
        member.generation += 1
        return member

    def withdraw_links(self, actor: MemberId) -> int:
        """Every private listener link given out so far stops working; the new generation."""
        member = self.members.get(actor)
        if member is None or member.blocked or member.role not in MODERATORS:
            raise Forbidden("only the host and co-hosts can withdraw listener links")
        self.link_generation += 1
        return self.link_generation

    def end(self, actor: MemberId) -> None:
        member = self.members.get(actor)
        if member is None or member.role is not Role.HOST:
            raise Forbidden("only the host ends the space")
        self.ended = True

    # -- helpers -----------------------------------------------------------------------------

    def _active(self, member_id: MemberId) -> Member:
        member = self.member(member_id)
        if member.blocked:
            raise Forbidden("you are blocked in this space")
        if self.ended:
            raise Conflict("this space has ended")
        return member

    def _moderator(self, actor: MemberId) -> Member:
        member = self.members.get(actor)
        if member is None or member.blocked or member.role not in MODERATORS:
            raise Forbidden("only the host and co-hosts can do this")
        if self.ended:
            raise Conflict("this space has ended")
        return member

    def _target(self, actor: MemberId, member_id: MemberId) -> Member:
        moderator = self._moderator(actor)
        member = self.member(member_id)
        if member.role is Role.HOST:
            raise Forbidden("nobody can moderate the host")
        if member.role is Role.COHOST and moderator.role is not Role.HOST:
            raise Forbidden("only the host can moderate a co-host")
        return member

    def _take_stage_away(self, member: Member) -> Member:
        member.role = Role.LISTENER
        member.muted = False
        member.generation += 1
        return member

    def _check_room(self, role: Role) -> None:
        on_stage = self.on_stage()
        if len(on_stage) >= self.max_speakers:
            raise Conflict(f"the stage is full ({self.max_speakers} on stage)")
        if role is Role.COHOST and sum(m.role is Role.COHOST for m in on_stage) >= self.max_cohosts:
            raise Conflict(f"there are {self.max_cohosts} co-hosts already")


def enforce(rules: StageRules, sessions: Mapping[K, tuple[MemberId, int]]) -> tuple[set[K], set[K]]:
    """For the publishing sessions (key → the member and token generation they were opened with):
    which must be closed now (the right to publish is gone), and which stay open but silent (muted)."""
    close = {key for key, (member, generation) in sessions.items() if not rules.may_publish(member, generation)}
    silent = {key for key, (member, _) in sessions.items() if key not in close and not rules.mixable(member)}
    return close, silent
