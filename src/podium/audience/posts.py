"""Posting comments and questions, and voting: limited per user and per address, stored before
the acknowledgement, idempotent by the client's id."""

from __future__ import annotations

from podium.admission.limits import POST_PER_ADDRESS, POST_PER_USER, VOTE_PER_USER, RateLimits
from podium.backends.interfaces import PostStore
from podium.clock import Clock
from podium.domain.posts import Post, PostKind, PostState, check_client_id, clean_post_text, parse_kind, ranked
from podium.domain.space import SpaceState
from podium.errors import Conflict, NotFound
from podium.ids import PostId, UserId, new_post_id
from podium.service import Podium

# How many questions and comments one answer lists at most.
LIST_LIMIT = 100
PUBLIC_STATES = frozenset({PostState.OPEN, PostState.ANSWERED})


class Posting:
    def __init__(self, store: PostStore, podium: Podium, limits: RateLimits, clock: Clock) -> None:
        self._store = store
        self._podium = podium
        self._limits = limits
        self._clock = clock

    async def post(
        self, space_id: str, user: tuple[UserId, str], kind: object, text: object, client_id: object, address: str
    ) -> tuple[Post, bool]:
        """The post and whether it is new (False: a retry of one already stored)."""
        space = await self._podium.get_space(space_id)
        if space.state is SpaceState.ENDED:
            raise Conflict("posting is closed: this space has ended")
        parsed_kind = parse_kind(kind)
        clean = clean_post_text(text, parsed_kind)
        client = check_client_id(client_id)
        user_id, username = user
        self._limits.hit(POST_PER_USER, user_id)
        self._limits.hit(POST_PER_ADDRESS, address)
        post = Post(new_post_id(), space.id, user_id, username, parsed_kind, clean, client, self._clock.now())
        return await self._store.add_post(post)

    async def questions(self, space_id: str) -> list[Post]:
        space = await self._podium.get_space(space_id)
        found = await self._store.posts(space.id, PostKind.QUESTION, 10 * LIST_LIMIT, newest_first=False)
        return ranked([p for p in found if p.state in PUBLIC_STATES])[:LIST_LIMIT]

    async def comments(self, space_id: str) -> list[Post]:
        space = await self._podium.get_space(space_id)
        found = await self._store.posts(space.id, PostKind.COMMENT, LIST_LIMIT, newest_first=True)
        return [p for p in found if p.state in PUBLIC_STATES]

    async def vote(self, space_id: str, post_id: str, user: tuple[UserId, str]) -> tuple[Post, bool]:
        space = await self._podium.get_space(space_id)
        post = await self._store.post(PostId(post_id[:40]))
        if post is None or post.space_id != space.id or post.state not in PUBLIC_STATES:
            raise NotFound("no such question in this space")
        if post.kind is not PostKind.QUESTION:
            raise Conflict("only questions take votes")
        self._limits.hit(VOTE_PER_USER, user[0])
        added = await self._store.vote(post.id, user[0])
        updated = await self._store.post(post.id)
        assert updated is not None
        return updated, added
