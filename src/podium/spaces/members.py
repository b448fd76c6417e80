"""The people of a stage: invites, guests, hands, every stage action, the host's token and the
listener links it gives out. Each change is checked against the rules, stored before it is
acknowledged, enforced on the media at once, and told to the other nodes."""

from __future__ import annotations

from dataclasses import dataclass

from podium.domain.space import Space
from podium.domain.stage import Member, Role
from podium.domain.tokens import InviteGrant
from podium.errors import Forbidden, InvalidInput, NotFound
from podium.events import StageChanged
from podium.ids import MemberId, new_member_id
from podium.media.stage import SPEAKING_LEVEL
from podium.spaces.directory import SpaceDirectory
from podium.spaces.stages import StageManager


@dataclass(eq=False)
class StageMembers:
    directory: SpaceDirectory
    stages: StageManager

    async def _told(self, space: Space, action: str) -> None:
        await self.directory.bus.publish(StageChanged(space.id, self.directory.node_id, action))

    # -- the host's token and links -----------------------------------------------------------

    async def rotate_host_token(self, space_id: str, token: str) -> tuple[str, int]:
        """A new host token for the current one: the old one stops working at once, here and on
        every node (its generation is stored), and a WHIP session opened with it is closed."""
        space = await self.directory.get_space(space_id)
        async with self.directory.lock(space.id):
            # Checked under the lock: of two rotations with the same token, the second is refused.
            host = self.directory.rules(space).rotate_host(self.directory.authorize(space, token).id)
            await self.directory.save_rules(space.id)
        await self.stages.enforce(space.id)
        await self._told(space, "rotate")
        valid_from = self.directory.host_valid_from(space)
        return self.directory.host_token(space, host.generation), self.directory.signer.expires_at(valid_from)

    async def withdraw_links(self, space_id: str, token: str) -> int:
        """Every private listener link given out so far stops working, on every node; the links
        made from now on are signed with the new generation. Returns that generation."""
        space = await self.directory.get_space(space_id)
        actor = self.directory.authorize(space, token)
        async with self.directory.lock(space.id):
            generation = self.directory.rules(space).withdraw_links(actor.id)
            await self.directory.save_rules(space.id)
        await self._told(space, "withdraw_links")
        return generation

    # -- joining the stage --------------------------------------------------------------------

    async def invite(self, space_id: str, token: str, role: object) -> tuple[str, Role]:
        space = await self.directory.get_space(space_id)
        if role not in (Role.SPEAKER.value, Role.COHOST.value):
            raise InvalidInput('role must be "speaker" or "cohost"')
        member = self.directory.authorize(space, token)
        self.directory.rules(space).check_invite(member.id, Role(str(role)))
        _, invite_token = self.directory.signer.issue_invite(space.id, Role(str(role)))
        return invite_token, Role(str(role))

    async def redeem(self, space_id: str, token: str, name: object) -> tuple[Member, str]:
        """The invite link opened in a browser: a named member on stage, with a token of their own."""
        space = await self.directory.get_space(space_id)
        grant = self.directory.signer.verify_for(token, space.id)
        if not isinstance(grant, InviteGrant):
            raise InvalidInput("this is not an invite token")
        member = self.directory.rules(space).redeem(grant.invite_id, grant.role, grant.member_id, name)
        await self.directory.save_rules(space.id)
        return member, self.directory.signer.issue(space.id, member.id, member.generation, member.role)

    async def join(self, space_id: str, name: object) -> tuple[Member, str]:
        """A named guest in the audience, who may raise a hand."""
        space = await self.directory.get_space(space_id)
        member = self.directory.rules(space).join(new_member_id(), name)
        await self.directory.save_rules(space.id)
        return member, self.directory.signer.issue(space.id, member.id, member.generation, member.role)

    async def act(
        self, space_id: str, token: str, action: str, target: str | None = None, name: str | None = None
    ) -> Member:
        """Every stage action, checked against the current rules, then enforced on the media."""
        space = await self.directory.get_space(space_id)
        rules = self.directory.rules(space)
        actor = self.directory.authorize(space, token).id
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
            "rename": lambda: rules.rename(actor, name),
        }
        if action not in actions:
            raise NotFound(f"no such action: {action}")
        member = actions[action]()
        # Stored before it is acknowledged; enforced on the media at once.
        await self.directory.save_rules(space.id)
        await self.stages.enforce(space.id)
        await self._told(space, action)
        return member

    # -- views ----------------------------------------------------------------------------------

    def stage_view(self, space: Space) -> dict[str, object]:
        levels = self.stages.levels(space.id)
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
                for m in self.directory.rules(space).on_stage()
            ],
            "hands": len(self.directory.rules(space).hands()),
        }

    def speaking(self, space: Space) -> list[tuple[Member, bool]]:
        """Everyone on stage, and whether they are speaking now."""
        levels = self.stages.levels(space.id)
        return [
            (m, levels.get(m.id, 0.0) > SPEAKING_LEVEL and not m.muted) for m in self.directory.rules(space).on_stage()
        ]

    def hand_queue(self, space: Space, token: str) -> list[dict[str, str]]:
        member = self.directory.authorize(space, token)
        if member.role not in (Role.HOST, Role.COHOST):
            raise Forbidden("only the host and co-hosts see the hand queue")
        return [{"id": m.id, "name": m.name} for m in self.directory.rules(space).hands()]
