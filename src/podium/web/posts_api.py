"""Comments, questions and votes over HTTP. Writes need a signed-in account; reads are public."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from podium.audience.posts import Posting
from podium.domain.posts import Post
from podium.web.accounts_api import client_address, signed_in_user
from podium.web.http import json_response, read_json


def _posting(request: Request) -> Posting:
    posting: Posting = request.app.state.posting
    return posting


def post_view(post: Post) -> dict[str, Any]:
    return {
        "id": post.id,
        "kind": post.kind.value,
        "text": post.text,
        "author": post.username,
        "created_at": post.created_at.isoformat().replace("+00:00", "Z"),
        "state": post.state.value,
        "votes": post.votes,
        "client_id": post.client_id,
    }


async def create_post(request: Request) -> Response:
    user = signed_in_user(request)
    body = await read_json(request, 4096)
    post, created = await _posting(request).post(
        request.path_params["space_id"],
        user,
        body.get("kind"),
        body.get("text"),
        body.get("client_id"),
        client_address(request),
    )
    # 201 for a new post; 200 with the same post for a retry.
    return json_response(post_view(post), status=201 if created else 200)


async def questions(request: Request) -> Response:
    found = await _posting(request).questions(request.path_params["space_id"])
    return json_response({"questions": [post_view(p) for p in found]}, cache="public, max-age=1")


async def comments(request: Request) -> Response:
    found = await _posting(request).comments(request.path_params["space_id"])
    return json_response({"comments": [post_view(p) for p in found]}, cache="public, max-age=1")


async def vote(request: Request) -> Response:
    user = signed_in_user(request)
    post, added = await _posting(request).vote(request.path_params["space_id"], request.path_params["post_id"], user)
    return json_response({**post_view(post), "voted": True, "counted": added})


def post_routes() -> list[Route]:
    return [
        Route("/api/spaces/{space_id}/posts", create_post, methods=["POST"]),
        Route("/api/spaces/{space_id}/questions", questions, methods=["GET"]),
        Route("/api/spaces/{space_id}/comments", comments, methods=["GET"]),
        Route("/api/spaces/{space_id}/questions/{post_id}/vote", vote, methods=["POST"]),
    ]
