"""Comments, questions and votes over HTTP. Writes need a signed-in account; reads are public."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from podium.domain.posts import Post, public_view
from podium.services import of
from podium.web.accounts_api import client_address, signed_in_user
from podium.web.http import bearer_token, json_response, read_model, space_of
from podium.web.schemas import audience as AU
from podium.web.schemas import convert

T = TypeVar("T")


def post_view(post: Post, model: type[T], **more: Any) -> T:
    """A post as its author's client sees it: what everyone sees (`public_view`) and its client id."""
    return convert({**public_view(post), "client_id": post.client_id, **more}, model)


async def create_post(request: Request) -> Response:
    user = await signed_in_user(request)
    body = await read_model(request, AU.NewPost, 4096)
    post, created = await of(request).posting.post(
        request.path_params["space_id"], user, body.kind, body.text, body.client_id, client_address(request)
    )
    return json_response(post_view(post, AU.Post), status=201 if created else 200)


async def questions(request: Request) -> Response:
    found = await of(request).posting.questions(request.path_params["space_id"])
    return json_response(AU.Questions(questions=[post_view(p, AU.Post) for p in found]), cache="public, max-age=1")


async def comments(request: Request) -> Response:
    found = await of(request).posting.comments(request.path_params["space_id"])
    return json_response(AU.Comments(comments=[post_view(p, AU.Post) for p in found]), cache="public, max-age=1")


async def vote(request: Request) -> Response:
    user = await signed_in_user(request)
    post, added = await of(request).posting.vote(request.path_params["space_id"], request.path_params["post_id"], user)
    return json_response(post_view(post, AU.VotedQuestion, voted=True, counted=added))


async def moderate_post(request: Request) -> Response:
    post = await of(request).posting.moderate_post(
        request.path_params["space_id"],
        bearer_token(request),
        request.path_params["post_id"],
        request.path_params["action"],
    )
    return json_response(post_view(post, AU.Post))


async def moderation(request: Request) -> Response:
    posting = of(request).posting
    space_id = request.path_params["space_id"]
    if request.method == "GET":
        moderation = await posting.moderation((await space_of(request)).id)
        return json_response(convert(moderation.public(), AU.Moderation), cache="public, max-age=1")
    # Only the fields sent: the rules check them all before changing any (`domain.posts.Moderation`).
    body = msgspec.to_builtins(await read_model(request, AU.ModerationChange, 4096))
    return json_response(
        convert((await posting.configure(space_id, bearer_token(request), body)).public(), AU.Moderation)
    )


async def block_user(request: Request) -> Response:
    blocked = request.method == "POST"
    state = await of(request).posting.block_user(
        request.path_params["space_id"], bearer_token(request), request.path_params["user_id"], blocked
    )
    return json_response(
        AU.Block(user=request.path_params["user_id"], blocked=request.path_params["user_id"] in state.blocked)
    )


async def all_posts(request: Request) -> Response:
    found = await of(request).posting.all_posts(request.path_params["space_id"], bearer_token(request))
    return json_response(AU.Posts(posts=[post_view(p, AU.ModeratedPost, user_id=p.user_id) for p in found]))
