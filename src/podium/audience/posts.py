"""Posting comments and questions, and voting: limited per user and per address, stored before
the acknowledgement, idempotent by the client's id."""

from __future__ import annotations

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
from podium.backends.interfaces import Bus, PostStore
from podium.clock import Clock
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
from podium.settings import Settings
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


class Posting:
    def __init__(
        self,
        store: PostStore,
        directory: SpaceDirectory,
        limits: RateLimits,
        clock: Clock,
        bus: Bus,
        settings: Settings,
    ) -> None:
        self._per_user = with_limit(POST_PER_USER, settings.post_limit_per_user)
        self._per_address = with_limit(POST_PER_ADDRESS, settings.post_limit_per_address)
        self._store = store
        self._bus = bus
        self._directory = directory
        self._node = directory.node_id
        self._limits = limits
        self._clock = clock
        self._moderation: dict[SpaceId, Moderation] = {}
        # When each user last posted in each space, for slow mode (this node's view).
        self._last_post: dict[tuple[SpaceId, UserId], datetime] = {}

    async def post(
        self, space_id: str, user: tuple[UserId, str], kind: object, text: object, client_id: object, address: str
    ) -> tuple[Post, bool]:
        """The post and whether it is new (False: a retry of one already stored)."""
        space = await self._directory.get_space(space_id)
        if space.state is SpaceState.ENDED:
            raise Conflict("posting is closed: this space has ended")
        parsed_kind = parse_kind(kind)
        clean = clean_post_text(text, parsed_kind)
        client = check_client_id(client_id)
        user_id, username = user
        now = self._clock.now()
        (await self.moderation(space.id)).check_post(user_id, self._last_post.get((space.id, user_id)), now)
        await self._limits.hit(self._per_user, user_id)
        await self._limits.hit(self._per_address, address)
        post = Post(new_post_id(), space.id, user_id, username, parsed_kind, clean, client, now)
        stored, created = await self._store.add_post(post)
        if created:
            self._last_post[(space.id, user_id)] = now
            if stored.kind is PostKind.COMMENT:
                await self._bus.publish(CommentPosted(space.id, self._node, public_view(stored)))
            else:
                await self._bus.publish(QuestionsChanged(space.id, self._node))
        return stored, created

    async def react(self, space_id: str, emoji: object, address: str) -> None:
        space = await self._directory.get_space(space_id)
        if space.state is SpaceState.ENDED:
            raise Conflict("this space has ended")
        chosen = check_reaction(emoji)
        await self._limits.hit(REACTION_PER_ADDRESS, address)
        await self._bus.publish(Reacted(space.id, self._node, chosen))

    async def questions(self, space_id: str) -> list[Post]:
        space = await self._directory.get_space(space_id)
        found = await self._store.posts(space.id, PostKind.QUESTION, 10 * LIST_LIMIT, newest_first=False)
        return ranked([p for p in found if p.state in PUBLIC_STATES])[:LIST_LIMIT]

    async def comments(self, space_id: str) -> list[Post]:
        space = await self._directory.get_space(space_id)
        found = await self._store.posts(space.id, PostKind.COMMENT, LIST_LIMIT, newest_first=True)
        return [p for p in found if p.state in PUBLIC_STATES]

    async def vote(self, space_id: str, post_id: str, user: tuple[UserId, str]) -> tuple[Post, bool]:
        space = await self._directory.get_space(space_id)
        post = await self._store.post(PostId(post_id[:40]))
        if post is None or post.space_id != space.id or post.state not in PUBLIC_STATES:
            raise NotFound("no such question in this space")
        if post.kind is not PostKind.QUESTION:
            raise Conflict("only questions take votes")
        await self._limits.hit(VOTE_PER_USER, user[0])
        added = await self._store.vote(post.id, user[0])
        updated = await self._store.post(post.id)
        assert updated is not None
        if added:
            await self._bus.publish(QuestionsChanged(space.id, self._node))
        return updated, added

    # -- moderation (host and co-hosts, by their stage tokens) -------------------------------

    async def public_moderation(self, space_id: str) -> dict[str, Any]:
        space = await self._directory.get_space(space_id)
        return (await self.moderation(space.id)).public()

    async def moderation(self, space_id: SpaceId) -> Moderation:
        found = self._moderation.get(space_id)
        if found is None:
            stored = await self._store.load_moderation(space_id)
            found = self._moderation[space_id] = Moderation.from_dict(stored) if stored else Moderation()
        return found

    async def _moderator(self, space_id: str, token: str) -> Space:
        space = await self._directory.get_space(space_id)
        member = self._directory.authorize(space, token)
        if member.role not in (Role.HOST, Role.COHOST):
            raise Forbidden("only the host and co-hosts moderate")
        return space

    async def moderate_post(self, space_id: str, token: str, post_id: str, action: str) -> Post:
        space = await self._moderator(space_id, token)
        post = await self._store.post(PostId(post_id[:40]))
        if post is None or post.space_id != space.id:
            raise NotFound("no such post in this space")
        states = {
            "hide": PostState.HIDDEN,
            "show": PostState.OPEN,
            "delete": PostState.DELETED,
            "answer": PostState.ANSWERED,
        }
        if action not in states:
            raise InvalidInput(f"unknown action {action[:20]!r}; one of: {', '.join(states)}")
        if action == "answer" and post.kind is not PostKind.QUESTION:
            raise Conflict("only questions are answered")
        await self._store.set_post_state(post.id, states[action])
        updated = await self._store.post(post.id)
        assert updated is not None
        if updated.state in PUBLIC_STATES:
            await self._bus.publish(QuestionsChanged(space.id, self._node))
        else:
            await self._bus.publish(PostRemoved(space.id, self._node, post.id))
        return updated

    async def configure(self, space_id: str, token: str, body: dict[str, Any]) -> Moderation:
        space = await self._moderator(space_id, token)
        moderation = await self.moderation(space.id)
        trial = Moderation.from_dict(moderation.to_dict())
        trial.configure(body)
        await self._store.save_moderation(space.id, trial.to_dict())
        self._moderation[space.id] = trial
        if trial.pinned != moderation.pinned:
            await self._bus.publish(PinChanged(space.id, self._node))
        else:
            await self._bus.publish(ModerationChanged(space.id, self._node))
        return trial

    async def block_user(self, space_id: str, token: str, user_id: str, blocked: bool) -> Moderation:
        space = await self._moderator(space_id, token)
        trial = Moderation.from_dict((await self.moderation(space.id)).to_dict())
        if blocked:
            trial.blocked.add(user_id[:40])
        else:
            trial.blocked.discard(user_id[:40])
        await self._store.save_moderation(space.id, trial.to_dict())
        self._moderation[space.id] = trial
        await self._bus.publish(ModerationChanged(space.id, self._node))
        return trial

    def forget_moderation(self, space_id: SpaceId) -> None:
        """Another node changed the rules: read them again from the database when next needed."""
        self._moderation.pop(space_id, None)

    async def all_posts(self, space_id: str, token: str) -> list[Post]:
        """Every post, hidden ones included, newest first: what moderators review."""
        space = await self._moderator(space_id, token)
        found = []
        for kind in PostKind:
            found += await self._store.posts(space.id, kind, 10 * LIST_LIMIT, newest_first=True)
        return sorted(found, key=lambda p: p.created_at, reverse=True)
