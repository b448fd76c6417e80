"""Posting comments and questions, and voting: limited per user and per address, stored before
the acknowledgement, idempotent by the client's id."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from podium.admission.limits import (
    POST_PER_ADDRESS,
    POST_PER_USER,
    REACTION_PER_ADDRESS,
    VOTE_PER_USER,
    RateLimits,
    with_limit,
)
from podium.audience.timeline import check_reaction
from podium.backends.interfaces import PostStore
from podium.domain.posts import (
    Moderation,
    Post,
    PostKind,
    PostState,
    check_client_id,
    clean_post_text,
    parse_kind,
    public_view,
    ranked,
)
from podium.domain.space import Space, SpaceState
from podium.domain.stage import Role
from podium.errors import Conflict, Forbidden, InvalidInput, NotFound
from podium.events import CommentPosted, ModerationChanged, PinChanged, PostRemoved, QuestionsChanged, Reacted
from podium.ids import PostId, SpaceId, UserId, new_post_id
from podium.spaces.directory import SpaceDirectory

# How many questions and comments one answer lists at most.
LIST_LIMIT = 100
PUBLIC_STATES = frozenset({PostState.OPEN, PostState.ANSWERED})
MODERATION_STATES = {
    "hide": PostState.HIDDEN,
    "show": PostState.OPEN,
    "delete": PostState.DELETED,
    "answer": PostState.ANSWERED,
}


@dataclass(eq=False)
class Posting:
    store: PostStore
    directory: SpaceDirectory
    limits: RateLimits

    def __post_init__(self) -> None:
        settings = self.directory.settings
        self._per_user = with_limit(POST_PER_USER, settings.post_limit_per_user)
        self._per_address = with_limit(POST_PER_ADDRESS, settings.post_limit_per_address)
        self._bus, self._node, self._clock = self.directory.bus, self.directory.node_id, self.directory.clock
        self._moderation: dict[SpaceId, Moderation] = {}
        # When each user last posted in each space, for slow mode (this node's view).
        self._last_post: dict[tuple[SpaceId, UserId], datetime] = {}

    async def post(
        self, space_id: str, user: tuple[UserId, str], kind: str, text: str, client_id: str, address: str
    ) -> tuple[Post, bool]:
        """The post and whether it is new (False: a retry of one already stored)."""
        space = await self.directory.get_space(space_id)
        if space.state is SpaceState.ENDED:
            raise Conflict("posting is closed: this space has ended")
        parsed_kind = parse_kind(kind)
        clean = clean_post_text(text, parsed_kind)
        client = check_client_id(client_id)
        user_id, username = user
        now = self._clock.now()
        (await self.moderation(space.id)).check_post(user_id, self._last_post.get((space.id, user_id)), now)
        await self.limits.hit(self._per_user, user_id)
        await self.limits.hit(self._per_address, address)
        post = Post(new_post_id(), space.id, user_id, username, parsed_kind, clean, client, now)
        stored, created = await self.store.add_post(post)
        if created:
            self._last_post[(space.id, user_id)] = now
            if stored.kind is PostKind.COMMENT:
                await self._bus.publish(CommentPosted(space.id, self._node, public_view(stored)))
            else:
                await self._bus.publish(QuestionsChanged(space.id, self._node))
        return stored, created

    async def react(self, space_id: str, emoji: object, address: str) -> None:
        space = await self.directory.get_space(space_id)
        if space.state is SpaceState.ENDED:
            raise Conflict("this space has ended")
        chosen = check_reaction(emoji)
        await self.limits.hit(REACTION_PER_ADDRESS, address)
        await self._bus.publish(Reacted(space.id, self._node, chosen))

    async def questions(self, space_id: str) -> list[Post]:
        space = await self.directory.get_space(space_id)
        found = await self.store.posts(space.id, PostKind.QUESTION, 10 * LIST_LIMIT, newest_first=False)
        return ranked([p for p in found if p.state in PUBLIC_STATES])[:LIST_LIMIT]

    async def comments(self, space_id: str) -> list[Post]:
        space = await self.directory.get_space(space_id)
        found = await self.store.posts(space.id, PostKind.COMMENT, LIST_LIMIT, newest_first=True)
        return [p for p in found if p.state in PUBLIC_STATES]

    async def vote(self, space_id: str, post_id: str, user: tuple[UserId, str]) -> tuple[Post, bool]:
        space = await self.directory.get_space(space_id)
        post = await self.store.post(PostId(post_id[:40]))
        if post is None or post.space_id != space.id or post.state not in PUBLIC_STATES:
            raise NotFound("no such question in this space")
        if post.kind is not PostKind.QUESTION:
            raise Conflict("only questions take votes")
        await self.limits.hit(VOTE_PER_USER, user[0])
        added = await self.store.vote(post.id, user[0])
        updated = await self.store.post(post.id)
        assert updated is not None
        if added:
            await self._bus.publish(QuestionsChanged(space.id, self._node))
        return updated, added

    # -- moderation (host and co-hosts, by their stage tokens) -------------------------------
    async def moderation(self, space_id: SpaceId) -> Moderation:
        if space_id not in self._moderation:
            stored = await self.store.load_moderation(space_id)
            self._moderation[space_id] = Moderation.from_dict(stored) if stored else Moderation()
        return self._moderation[space_id]

    async def _moderator(self, space_id: str, token: str) -> Space:
        space = await self.directory.get_space(space_id)
        member = self.directory.authorize(space, token)
        if member.role not in (Role.HOST, Role.COHOST):
            raise Forbidden("only the host and co-hosts moderate")
        return space

    async def moderate_post(self, space_id: str, token: str, post_id: str, action: str) -> Post:
        space = await self._moderator(space_id, token)
        post = await self.store.post(PostId(post_id[:40]))
        if post is None or post.space_id != space.id:
            raise NotFound("no such post in this space")
        if action not in MODERATION_STATES:
            raise InvalidInput(f"unknown action {action[:20]!r}; one of: {', '.join(MODERATION_STATES)}")
        if action == "answer" and post.kind is not PostKind.QUESTION:
            raise Conflict("only questions are answered")
        await self.store.set_post_state(post.id, MODERATION_STATES[action])
        updated = await self.store.post(post.id)
        assert updated is not None
        if updated.state in PUBLIC_STATES:
            await self._bus.publish(QuestionsChanged(space.id, self._node))
        else:
            await self._bus.publish(PostRemoved(space.id, self._node, post.id))
        return updated

    async def configure(self, space_id: str, token: str, body: dict[str, Any]) -> Moderation:
        return await self._change_moderation(space_id, token, lambda trial: trial.configure(body))

    async def block_user(self, space_id: str, token: str, user_id: str, blocked: bool) -> Moderation:
        change = set.add if blocked else set.discard
        return await self._change_moderation(space_id, token, lambda trial: change(trial.blocked, user_id[:40]))

    async def _change_moderation(self, space_id: str, token: str, change: Callable[[Moderation], None]) -> Moderation:
        """A moderator's change, made on a copy (the rules stay as they were if it raises), stored, then told."""
        space = await self._moderator(space_id, token)
        moderation = await self.moderation(space.id)
        trial = Moderation.from_dict(moderation.to_dict())
        change(trial)
        await self.store.save_moderation(space.id, trial.to_dict())
        self._moderation[space.id] = trial
        event = PinChanged if trial.pinned != moderation.pinned else ModerationChanged
        await self._bus.publish(event(space.id, self._node))
        return trial

    def forget_moderation(self, space_id: SpaceId) -> None:
        """Another node changed the rules: read them again from the database when next needed."""
        self._moderation.pop(space_id, None)

    async def all_posts(self, space_id: str, token: str) -> list[Post]:
        """Every post, hidden ones included, newest first: what moderators review."""
        space = await self._moderator(space_id, token)
        found = []
        for kind in PostKind:
            found += await self.store.posts(space.id, kind, 10 * LIST_LIMIT, newest_first=True)
        return sorted(found, key=lambda p: p.created_at, reverse=True)
