"""The one table of routes: every row complete, and what is derived from it (the door's classes,
the stage owner's paths, the router, URLs) agreeing with it."""

from __future__ import annotations

import pytest
from starlette.routing import Mount, Route

from podium.admission.classes import Credential, RequestClass
from podium.web.routes import TABLE, Owner, router_routes
from podium.web.urls import url_path

C = RequestClass
M, P = Credential.MEMBER, Credential.PASS
SPACE = "abcdefghijkl"


def test_every_row_has_a_name_a_class_an_owner_and_a_handler() -> None:
    for row in TABLE.endpoints:
        assert row.name and isinstance(row.klass, RequestClass) and isinstance(row.owner, Owner), row
        assert (row.handler is None) != (row.app is None), f"{row.name}: a handler or a mounted app, not both"
        assert row.summary, row.name
    seen = {(row.method, row.path) for row in TABLE.endpoints}
    assert len(seen) == len(TABLE.endpoints), "two rows share a method and a path"


def test_every_documented_row_has_a_model_for_each_answer() -> None:
    for row in TABLE.documented():
        assert row.answers, f"{row.name}: no answers"
        for status, answer in row.answers.items():
            assert answer.model is not None or answer.media is not None or status in (204,) or not answer.headers, (
                f"{row.name} {status}: an answer with neither a model nor a media type"
            )
        if row.body is not None:
            assert row.body.model is not None or row.body.media is not None, f"{row.name}: a body without a model"


@pytest.mark.parametrize(
    ("method", "path", "kind", "credential", "without"),
    [
        ("POST", f"/whip/{SPACE}", C.STAGE, M, C.OTHER),
        ("OPTIONS", f"/whip/{SPACE}", C.STAGE, None, C.OTHER),  # a preflight carries no token
        ("POST", f"/api/spaces/{SPACE}/members/m1/mute", C.STAGE, M, C.OTHER),
        ("POST", f"/api/spaces/{SPACE}/end", C.STAGE, M, C.OTHER),
        # The host's controls and reads are the stage's, also at the flash crowd of the start.
        ("POST", f"/api/spaces/{SPACE}/go-live", C.STAGE, M, C.OTHER),
        ("PUT", f"/api/spaces/{SPACE}/hold-audio", C.STAGE, M, C.OTHER),
        ("GET", f"/api/spaces/{SPACE}/posts", C.STAGE, M, C.OTHER),
        ("POST", f"/api/spaces/{SPACE}/posts/p1/hide", C.STAGE, M, C.OTHER),
        ("POST", f"/api/spaces/{SPACE}/moderation", C.STAGE, M, C.OTHER),
        ("GET", f"/api/spaces/{SPACE}/moderation", C.STAGE, M, C.LISTENING),
        ("GET", f"/api/spaces/{SPACE}/board", C.STAGE, M, C.OTHER),
        ("GET", f"/api/spaces/{SPACE}/stage", C.STAGE, M, C.OTHER),
        # An admitted listener's beat is listening; a beat without its pass is a join.
        ("POST", f"/api/spaces/{SPACE}/heartbeat", C.LISTENING, P, C.JOIN),
        ("GET", f"/hls/{SPACE}/live.m3u8", C.LISTENING, None, C.OTHER),
        ("HEAD", f"/hls/{SPACE}/live.m3u8", C.LISTENING, None, C.OTHER),
        ("GET", f"/hls/{SPACE}/k/abc/live.m3u8", C.LISTENING, None, C.OTHER),
        ("GET", f"/timeline/{SPACE}/index.json", C.LISTENING, None, C.OTHER),
        ("GET", f"/api/spaces/{SPACE}", C.LISTENING, None, C.OTHER),
        ("GET", f"/api/spaces/{SPACE}/questions", C.LISTENING, None, C.OTHER),
        ("GET", "/api/spaces", C.JOIN, None, C.OTHER),
        ("GET", "/api/sessions/me", C.JOIN, None, C.OTHER),
        ("POST", f"/api/spaces/{SPACE}/join", C.JOIN, None, C.OTHER),
        ("GET", f"/s/{SPACE}", C.JOIN, None, C.OTHER),
        ("GET", "/static/listen.js", C.JOIN, None, C.OTHER),
        ("GET", "/static/vendor/hls.js", C.JOIN, None, C.OTHER),
        ("GET", f"/host/{SPACE}", C.JOIN, None, C.OTHER),  # a page; its calls carry the token
        ("POST", f"/api/spaces/{SPACE}/posts", C.POST, None, C.OTHER),
        ("POST", f"/api/spaces/{SPACE}/questions/p1/vote", C.POST, None, C.OTHER),
        ("POST", f"/api/spaces/{SPACE}/reactions", C.REACTION, None, C.OTHER),
        ("GET", "/feed.xml", C.OTHER, None, C.OTHER),
        ("GET", f"/api/spaces/{SPACE}/recording", C.OTHER, None, C.OTHER),  # hashes the recording
        ("POST", "/api/sessions", C.OTHER, None, C.OTHER),
        ("GET", "/no/such/thing", C.OTHER, None, C.OTHER),
        ("DELETE", f"/api/spaces/{SPACE}/join", C.OTHER, None, C.OTHER),  # no such method: a stranger's
        ("GET", "/metrics", C.STAGE, None, C.OTHER),  # a busy node is not a dead one
    ],
)
def test_the_door_classes_each_request_as_its_row_says(
    method: str, path: str, kind: RequestClass, credential: Credential | None, without: RequestClass
) -> None:
    door, _ = TABLE.door(method, path)
    assert (door.klass, door.credential, door.without) == (kind, credential, without)


def test_the_door_names_the_space_a_path_acts_on() -> None:
    assert TABLE.door("DELETE", f"/whip/{SPACE}/session-1")[1] == SPACE
    assert TABLE.door("POST", f"/api/spaces/{SPACE}/end")[1] == SPACE
    assert TABLE.door("GET", "/api/spaces/")[1] is None
    assert TABLE.door("GET", "/healthz")[1] is None


def test_the_stage_owner_answers_the_stage_and_the_live_stream_only() -> None:
    owned = [
        ("POST", f"/whip/{SPACE}"),
        ("DELETE", f"/whip/{SPACE}/s1"),
        ("GET", f"/hls/{SPACE}/live.m3u8"),
        ("GET", f"/hls/{SPACE}/k/key/seg1.m4s"),
        ("GET", f"/timeline/{SPACE}/index.json"),
        ("POST", f"/api/spaces/{SPACE}/go-live"),
        ("PUT", f"/api/spaces/{SPACE}/hold-audio"),
        ("POST", f"/api/spaces/{SPACE}/end"),
        ("GET", f"/api/spaces/{SPACE}/board"),
        ("POST", f"/api/spaces/{SPACE}/members/m1/mute"),
    ]
    for method, path in owned:
        assert TABLE.stage_owned(method, path) == SPACE, (method, path)
    anywhere = [
        ("POST", f"/api/spaces/{SPACE}/join"),
        ("POST", f"/api/spaces/{SPACE}/heartbeat"),
        ("POST", f"/api/spaces/{SPACE}/posts"),
        ("GET", f"/api/spaces/{SPACE}"),
        ("GET", f"/s/{SPACE}"),
        ("GET", "/feed.xml"),
        ("GET", "/nothing/here"),
    ]
    for method, path in anywhere:
        assert TABLE.stage_owned(method, path) is None, (method, path)


def test_the_router_is_the_table() -> None:
    routes = router_routes(TABLE)
    assert len(routes) == len(TABLE.endpoints)
    for route, row in zip(routes, TABLE.endpoints, strict=True):
        assert isinstance(route, Mount if row.app is not None else Route)
        assert route.name == row.name and route.path == (row.path.rstrip("/") if row.app else row.path)
        if isinstance(route, Route):
            assert row.method in (route.methods or set())


def test_urls_are_built_from_the_table() -> None:
    assert url_path("page.listen", space_id=SPACE) == f"/s/{SPACE}"
    assert url_path("hls.index", space_id=SPACE) == f"/hls/{SPACE}/index.m3u8"
    assert url_path("clipFile", space_id=SPACE, clip_id="c1") == f"/media/{SPACE}/clips/c1.m4a"
    with pytest.raises(KeyError):
        url_path("page.listen")  # a parameter left out is a mistake, not a broken link
