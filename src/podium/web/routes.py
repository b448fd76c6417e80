"""The one table of routes: every path Podium answers, said once.

Each row names a path and method, its handler, its request and answer models, the request class
the door sheds it by (and the credential that keeps that class), the node that answers it, and a
name for building its URL. Everything else is derived from the table, never spelled again:

- the Starlette router (`router_routes`);
- `/openapi.json` (`podium.web.openapi` reads the rows and their models);
- the door's class of a request (`RouteTable.door`, used by `admission.gate`);
- which requests belong to the node that runs a space's stage (`RouteTable.stage_owned`, used by
  `delivery.relay`), and the listener hot path's matching (`RouteTable.name_of`, `delivery.fast`);
- URLs (`url_path`).

Invariant: a row's path is a Starlette path template; two rows never share a method and a path.
A test fails for a row without a class, an owner, a name, or (for the documented API) a model for
each answer.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, compile_path
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from podium import urls
from podium.admission.classes import Credential, Door, RequestClass
from podium.delivery import hls
from podium.ids import SpaceId
from podium.media.packager import INIT_NAME
from podium.web import (
    accounts_api,
    api,
    embed_api,
    health_api,
    join_api,
    openapi,
    pages,
    posts_api,
    replay_api,
    schedule_api,
    stage_api,
    timeline_api,
    webhooks_api,
)
from podium.web.schemas import audience as AU
from podium.web.schemas import recording as R
from podium.web.schemas import spaces as S
from podium.web.schemas import stage as ST

Handler = Callable[[Request], Awaitable[Response]]

STAGE = RequestClass.STAGE
LISTENING = RequestClass.LISTENING
JOIN = RequestClass.JOIN
POST = RequestClass.POST
REACTION = RequestClass.REACTION
OTHER = RequestClass.OTHER


class Owner(enum.Enum):
    """Which node answers: any node (from the shared database, bus and storage), or the one that
    runs the space's stage (a request that arrives elsewhere is passed on to it)."""

    ANY = "any"
    STAGE = "stage"


class Auth(enum.Enum):
    """What the API document says a caller shows (the handler checks it)."""

    NONE = "none"
    SPACE = "space"  # the host token or a member token of the space
    ACCOUNT = "account"  # a signed-in account (bearer token, or cookie with the CSRF header)
    OPTIONAL_ACCOUNT = "optional account"


@dataclass(frozen=True)
class Answer:
    """One answer a route gives: its status's meaning, and its body's model or media type."""

    description: str
    model: Any = None  # a msgspec type (Struct, list of Structs); None: no JSON body
    media: str | None = None  # a non-JSON body: its media type ("application/sdp", "audio/mp4")
    headers: tuple[str, ...] = ()  # documented headers: "Location", "ETag", "Link", "Retry-After"


@dataclass(frozen=True)
class Body:
    """A request body: a JSON model, or raw bytes of a media type."""

    model: Any = None
    media: str | None = None
    required: bool = True
    description: str = ""


@dataclass(frozen=True)
class Endpoint:
    name: str  # unique: the URL's name and the document's operationId
    method: str  # GET also answers HEAD where `head` says so
    path: str
    handler: Handler | None  # None for a mount (`app`)
    klass: RequestClass
    summary: str
    owner: Owner = Owner.ANY
    # The class holds only with this credential (checked by signature at the door); else `without`.
    credential: Credential | None = None
    without: RequestClass = OTHER
    tag: str | None = None  # the API document's tag; None: not part of the JSON API (pages, media)
    auth: Auth = Auth.NONE
    body: Body | None = None
    query: Any = None  # a msgspec Struct whose fields are the query parameters
    answers: Mapping[int, Answer] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    head: bool = False
    app: ASGIApp | None = None  # a mounted application (static files) instead of a handler

    @property
    def documented(self) -> bool:
        return self.tag is not None

    def door(self) -> Door:
        return Door(self.klass, self.credential, self.without)


class RouteTable:
    """The table, compiled for matching a method and path without the router (at the door)."""

    def __init__(self, endpoints: tuple[Endpoint, ...]) -> None:
        self.endpoints = endpoints
        names = [e.name for e in endpoints]
        duplicates = {n for n in names if names.count(n) > 1}
        assert not duplicates, f"route names used twice: {duplicates}"
        self.by_name = {e.name: e for e in endpoints}
        # Rows grouped by the path's first segment: a request is matched against a handful.
        self._groups: dict[str, list[tuple[re.Pattern[str], Endpoint]]] = {}
        for endpoint in endpoints:
            pattern = _pattern(endpoint)
            self._groups.setdefault(_first_segment(endpoint.path), []).append((pattern, endpoint))

    def match(self, method: str, path: str) -> tuple[Endpoint, dict[str, str]] | None:
        """The row a request is for, and its path parameters (None: no row, or no such method)."""
        method = "GET" if method == "HEAD" else method
        for pattern, endpoint in self._groups.get(_segment_of(path), ()):
            found = pattern.match(path)
            if found is not None and (endpoint.method == method or (method == "OPTIONS" == endpoint.method)):
                return endpoint, found.groupdict()
        return None

    def door(self, method: str, path: str) -> tuple[Door, SpaceId | None]:
        """How the door treats a request: its class and credential, and the space it names."""
        found = self.match(method, path)
        if found is None:
            return Door(OTHER), None
        endpoint, params = found
        space = params.get("space_id")
        return endpoint.door(), SpaceId(space) if space else None

    def stage_owned(self, method: str, path: str) -> SpaceId | None:
        """The space whose stage node answers this request, or None when any node does."""
        found = self.match(method, path)
        if found is None or found[0].owner is not Owner.STAGE:
            return None
        space = found[1].get("space_id")
        return SpaceId(space) if space else None

    def name_of(self, method: str, path: str) -> tuple[str, dict[str, str]] | None:
        found = self.match(method, path)
        return None if found is None else (found[0].name, found[1])

    def documented(self) -> Iterator[Endpoint]:
        return (e for e in self.endpoints if e.documented)


def _first_segment(template: str) -> str:
    segment = template.split("/")[1] if template.count("/") >= 1 else ""
    return "" if "{" in segment else segment


def _segment_of(path: str) -> str:
    return path.split("/", 2)[1] if path.startswith("/") else ""


def _pattern(endpoint: Endpoint) -> re.Pattern[str]:
    if endpoint.app is not None:
        return re.compile("^" + re.escape(endpoint.path.rstrip("/")) + "/(?P<path>.*)$")
    pattern, _, _ = compile_path(endpoint.path)
    return pattern


def router_routes(table: RouteTable) -> list[BaseRoute]:
    """The Starlette routes, in the table's order (a crowd's joins first)."""
    routes: list[BaseRoute] = []
    for endpoint in table.endpoints:
        if endpoint.app is not None:
            routes.append(Mount(endpoint.path, app=endpoint.app, name=endpoint.name))
            continue
        assert endpoint.handler is not None
        methods = [endpoint.method, "HEAD"] if endpoint.head else [endpoint.method]
        routes.append(Route(endpoint.path, endpoint.handler, methods=methods, name=endpoint.name))
    return routes


# -- the table ---------------------------------------------------------------------------------

SPACE_ROLE = Credential.MEMBER  # a member token of the space named in the path (the host's too)

E = Endpoint
TABLE = RouteTable(
    (
        # A crowd's joins first, so that each is not matched against fifty other routes before its own.
        E(
            "join",
            "POST",
            "/api/spaces/{space_id}/join",
            join_api.join,
            JOIN,
            "Join as a listener (the waiting room)",
            tag="admission",
            body=Body(ST.Join),
            answers={
                200: Answer("admitted: the pass and the stream's address", ST.Admitted),
                202: Answer(
                    "wait in line (come back with the ticket) or solve the puzzle first",
                    ST.Waiting,
                    headers=("Retry-After",),
                ),
            },
            errors=(400, 401, 403, 404, 409, 429),
        ),
        # -- probes: a busy node is not a dead one -------------------------------------------------
        E(
            "healthz",
            "GET",
            "/healthz",
            health_api.alive,
            STAGE,
            "The process answers",
            tag="operations",
            head=True,
            answers={200: Answer("alive", R.Alive)},
        ),
        E(
            "readyz",
            "GET",
            "/readyz",
            health_api.ready,
            STAGE,
            "The node can do its work now (its database and bus answer)",
            tag="operations",
            head=True,
            answers={200: Answer("ready", R.Ready), 503: Answer("not ready: send it no traffic for now", R.Ready)},
        ),
        E("metrics", "GET", "/metrics", health_api.metrics, STAGE, "Prometheus metrics", head=True),
        # -- spaces ----------------------------------------------------------------------------------
        E(
            "listSpaces",
            "GET",
            "/api/spaces",
            schedule_api.listing,
            JOIN,
            "What is on: live and upcoming public spaces",
            tag="spaces",
            answers={200: Answer("the listing", S.Listing)},
        ),
        E(
            "createSpace",
            "POST",
            "/api/spaces",
            api.create_space,
            OTHER,
            "Create a space (anyone, within limits per address and per account)",
            tag="spaces",
            auth=Auth.OPTIONAL_ACCOUNT,
            body=Body(S.NewSpace),
            answers={
                201: Answer("the new space, with the host's token (shown once)", S.CreatedSpace, headers=("Location",))
            },
            errors=(400, 401, 403, 429),
        ),
        E(
            "getSpace",
            "GET",
            "/api/spaces/{space_id}",
            api.get_space,
            LISTENING,
            "A space's public state",
            tag="spaces",
            answers={200: Answer("the space", S.Space)},
            errors=(404,),
        ),
        E(
            "setRecording",
            "PATCH",
            "/api/spaces/{space_id}",
            replay_api.set_recording,
            STAGE,
            "Switch recording off or on (host, before going live)",
            credential=SPACE_ROLE,
            tag="spaces",
            auth=Auth.SPACE,
            body=Body(S.RecordingSwitch),
            answers={200: Answer("the space", S.Space)},
            errors=(400, 401, 403, 404, 409),
        ),
        E(
            "endSpace",
            "POST",
            "/api/spaces/{space_id}/end",
            api.end_space,
            STAGE,
            "End the space (host); the replay is ready when this answers (unless the disk is behind)",
            owner=Owner.STAGE,
            credential=SPACE_ROLE,
            tag="spaces",
            auth=Auth.SPACE,
            answers={200: Answer("the ended space; the replay is ready when this answers", S.Space)},
            errors=(401, 403, 404, 409),
        ),
        E(
            "rotateHostToken",
            "POST",
            "/api/spaces/{space_id}/host-token",
            api.rotate_host_token,
            STAGE,
            "A new host token for the current one, which stops working at once (host); a WHIP session "
            "opened with the old one is closed",
            credential=SPACE_ROLE,
            tag="spaces",
            auth=Auth.SPACE,
            answers={201: Answer("the new host token; the old one stops working at once", S.HostToken)},
            errors=(401, 403, 404),
        ),
        E(
            "heartbeat",
            "POST",
            "/api/spaces/{space_id}/heartbeat",
            api.heartbeat,
            LISTENING,
            "An admitted listener's heartbeat",
            credential=Credential.PASS,
            without=JOIN,
            tag="spaces",
            body=Body(S.Beat),
            answers={200: Answer("the counts and the beat interval", S.BeatTaken)},
            errors=(400, 401, 403, 404, 409, 429),
        ),
        E(
            "calendar",
            "GET",
            "/api/spaces/{space_id}/calendar.ics",
            schedule_api.calendar,
            LISTENING,
            "A calendar entry (RFC 5545) with a reminder",
            tag="spaces",
            head=True,
            answers={200: Answer("a calendar entry (RFC 5545) with a reminder", media="text/calendar")},
            errors=(404, 409),
        ),
        E(
            "goLive",
            "POST",
            "/api/spaces/{space_id}/go-live",
            schedule_api.go_live,
            STAGE,
            "From the pre-show to the stage (host, microphone connected)",
            owner=Owner.STAGE,
            credential=SPACE_ROLE,
            tag="spaces",
            auth=Auth.SPACE,
            answers={200: Answer("the space", S.Space)},
            errors=(401, 403, 404, 409),
        ),
        E(
            "iceServers",
            "GET",
            "/api/spaces/{space_id}/ice-servers",
            api.ice_servers,
            STAGE,
            "The STUN/TURN servers for a speaker's browser (host or member token)",
            credential=SPACE_ROLE,
            tag="stage",
            auth=Auth.SPACE,
            answers={200: Answer("RTCIceServer objects", S.IceServers)},
            errors=(401, 403, 404),
        ),
        E(
            "setHoldAudio",
            "PUT",
            "/api/spaces/{space_id}/hold-audio",
            schedule_api.hold_audio,
            STAGE,
            "The host's own hold audio for the pre-show",
            owner=Owner.STAGE,
            credential=SPACE_ROLE,
            tag="spaces",
            auth=Auth.SPACE,
            body=Body(
                media="application/octet-stream", description="any audio FFmpeg reads, 1 s to 10 min, up to 12 MiB"
            ),
            answers={200: Answer("how long it plays", S.HoldAudio)},
            errors=(400, 401, 403, 404, 409),
        ),
        # -- admission -------------------------------------------------------------------------------
        E(
            "underAttack",
            "POST",
            "/api/spaces/{space_id}/under-attack",
            join_api.under_attack,
            STAGE,
            "Switch the joiners' puzzle (host or co-host)",
            credential=SPACE_ROLE,
            tag="admission",
            auth=Auth.SPACE,
            body=Body(ST.UnderAttack),
            answers={200: Answer("the mode", ST.Attack)},
            errors=(400, 401, 403, 404),
        ),
        E(
            "board",
            "GET",
            "/api/spaces/{space_id}/board",
            join_api.board,
            STAGE,
            "The go/no-go board (host or co-host)",
            owner=Owner.STAGE,
            credential=SPACE_ROLE,
            tag="admission",
            auth=Auth.SPACE,
            answers={200: Answer("listeners, joins, the puzzle, load, the stream, the last rehearsal", ST.Board)},
            errors=(401, 403, 404),
        ),
        E(
            "createListenerLink",
            "POST",
            "/api/spaces/{space_id}/listener-links",
            join_api.listener_link,
            STAGE,
            "A signed listener link for a private space (host or co-host)",
            credential=SPACE_ROLE,
            tag="admission",
            auth=Auth.SPACE,
            body=Body(ST.NewListenerLink, required=False),
            answers={201: Answer("the link", ST.ListenerLink)},
            errors=(400, 401, 403, 404),
        ),
        E(
            "withdrawListenerLinks",
            "DELETE",
            "/api/spaces/{space_id}/listener-links",
            join_api.withdraw_listener_links,
            STAGE,
            "Withdraw every listener link given out so far (host or co-host); new links work",
            credential=SPACE_ROLE,
            tag="admission",
            auth=Auth.SPACE,
            answers={200: Answer("the links' new generation", ST.Withdrawn)},
            errors=(401, 403, 404),
        ),
        E(
            "rehearse",
            "POST",
            "/api/spaces/{space_id}/rehearsals",
            join_api.rehearsal,
            STAGE,
            "Leave a `podium rehearse` report on the board (host or co-host)",
            credential=SPACE_ROLE,
            tag="admission",
            auth=Auth.SPACE,
            body=Body(ST.RehearsalReport),
            answers={201: Answer("what the board keeps of it", ST.Rehearsal)},
            errors=(400, 401, 403, 404),
        ),
        # -- the stage -------------------------------------------------------------------------------
        E(
            "createInvite",
            "POST",
            "/api/spaces/{space_id}/invites",
            stage_api.create_invite,
            STAGE,
            "Invite a speaker or co-host (host; co-host for speakers)",
            owner=Owner.STAGE,
            credential=SPACE_ROLE,
            tag="stage",
            auth=Auth.SPACE,
            body=Body(ST.NewInvite, required=False),
            answers={201: Answer("the invite (expires after 24 h, works once)", ST.Invite)},
            errors=(400, 401, 403, 404, 409),
        ),
        E(
            "redeemInvite",
            "POST",
            "/api/spaces/{space_id}/invites/redeem",
            stage_api.redeem_invite,
            STAGE,
            "Redeem an invite (Bearer: the invite token) for one's own member token",
            owner=Owner.STAGE,
            credential=SPACE_ROLE,
            tag="stage",
            auth=Auth.SPACE,
            body=Body(ST.Naming),
            answers={201: Answer("the member and their token", ST.Redeemed)},
            errors=(400, 401, 403, 404, 409),
        ),
        E(
            "joinAsGuest",
            "POST",
            "/api/spaces/{space_id}/guests",
            stage_api.join_as_guest,
            POST,
            "A named guest in the audience (a token to raise a hand with)",
            owner=Owner.STAGE,
            tag="stage",
            body=Body(ST.Naming),
            answers={201: Answer("the guest and their token", ST.MemberWithToken)},
            errors=(400, 404, 409, 429),
        ),
        E(
            "getStage",
            "GET",
            "/api/spaces/{space_id}/stage",
            stage_api.stage,
            STAGE,
            "Who is on stage, muted, speaking",
            owner=Owner.STAGE,
            credential=SPACE_ROLE,
            tag="stage",
            answers={200: Answer("the stage", ST.Stage)},
            errors=(404,),
        ),
        E(
            "listHands",
            "GET",
            "/api/spaces/{space_id}/hands",
            stage_api.hands,
            STAGE,
            "The hand queue (host, co-host)",
            owner=Owner.STAGE,
            credential=SPACE_ROLE,
            tag="stage",
            auth=Auth.SPACE,
            answers={200: Answer("raised hands, first first", ST.Hands)},
            errors=(401, 403, 404),
        ),
        E(
            "getMe",
            "GET",
            "/api/spaces/{space_id}/me",
            stage_api.me,
            STAGE,
            "The member a token speaks for",
            owner=Owner.STAGE,
            credential=SPACE_ROLE,
            tag="stage",
            auth=Auth.SPACE,
            answers={200: Answer("the member as the stage sees them now", ST.Member)},
            errors=(401, 403, 404),
        ),
        E(
            "raiseHand",
            "POST",
            "/api/spaces/{space_id}/hand",
            stage_api.raise_hand,
            STAGE,
            "Raise a hand (guest)",
            owner=Owner.STAGE,
            credential=SPACE_ROLE,
            tag="stage",
            auth=Auth.SPACE,
            answers={200: Answer("the member as the stage sees them now", ST.Member)},
            errors=(401, 403, 404, 409),
        ),
        E(
            "lowerHand",
            "DELETE",
            "/api/spaces/{space_id}/hand",
            stage_api.raise_hand,
            STAGE,
            "Lower a hand (guest)",
            owner=Owner.STAGE,
            credential=SPACE_ROLE,
            tag="stage",
            auth=Auth.SPACE,
            answers={200: Answer("the member as the stage sees them now", ST.Member)},
            errors=(401, 403, 404, 409),
        ),
        E(
            "leaveStage",
            "POST",
            "/api/spaces/{space_id}/leave",
            stage_api.leave,
            STAGE,
            "Leave the stage (speaker)",
            owner=Owner.STAGE,
            credential=SPACE_ROLE,
            tag="stage",
            auth=Auth.SPACE,
            answers={200: Answer("the member as the stage sees them now", ST.Member)},
            errors=(401, 403, 404, 409),
        ),
        E(
            "memberAction",
            "POST",
            "/api/spaces/{space_id}/members/{member_id}/{action}",
            stage_api.member_action,
            STAGE,
            "accept or decline a hand, send to the audience, mute, unmute (oneself), remove, block",
            owner=Owner.STAGE,
            credential=SPACE_ROLE,
            tag="stage",
            auth=Auth.SPACE,
            answers={200: Answer("the member as the stage sees them now", ST.Member)},
            errors=(400, 401, 403, 404, 409),
        ),
        # -- accounts and posts ----------------------------------------------------------------------
        E(
            "signUp",
            "POST",
            "/api/accounts",
            accounts_api.sign_up,
            OTHER,
            "Create an account (to post; listening needs none)",
            tag="audience",
            body=Body(AU.Credentials),
            answers={201: Answer("the account", AU.Account)},
            errors=(400, 409, 429),
        ),
        E(
            "signIn",
            "POST",
            "/api/sessions",
            accounts_api.sign_in,
            OTHER,
            "Sign in: a token for API clients, cookies for the browser",
            tag="audience",
            body=Body(AU.Credentials),
            answers={200: Answer("the session token and the user", AU.Session)},
            errors=(400, 401, 429),
        ),
        E(
            "signOut",
            "DELETE",
            "/api/sessions",
            accounts_api.sign_out,
            OTHER,
            "Sign out: the session (token or cookie) stops working on every node, and the cookies are cleared",
            tag="audience",
            answers={200: Answer("done", AU.SignedOut)},
        ),
        E(
            "whoAmI",
            "GET",
            "/api/sessions/me",
            accounts_api.whoami,
            JOIN,
            "The signed-in account",
            tag="audience",
            auth=Auth.ACCOUNT,
            answers={200: Answer("the account", AU.Account)},
            errors=(401, 403),
        ),
        E(
            "createPost",
            "POST",
            "/api/spaces/{space_id}/posts",
            posts_api.create_post,
            POST,
            "Post a comment or a question (account); a retry with the same client_id is the same post",
            tag="audience",
            auth=Auth.ACCOUNT,
            body=Body(AU.NewPost),
            answers={
                200: Answer("the post, already stored (a retry)", AU.Post),
                201: Answer("the new post", AU.Post),
            },
            errors=(400, 401, 403, 404, 409, 429),
        ),
        E(
            "listPosts",
            "GET",
            "/api/spaces/{space_id}/posts",
            posts_api.all_posts,
            STAGE,
            "Every post, for moderators (host, co-host)",
            credential=SPACE_ROLE,
            tag="audience",
            auth=Auth.SPACE,
            answers={200: Answer("the posts", AU.Posts)},
            errors=(401, 403, 404),
        ),
        E(
            "listQuestions",
            "GET",
            "/api/spaces/{space_id}/questions",
            posts_api.questions,
            LISTENING,
            "Ranked questions",
            tag="audience",
            answers={200: Answer("the questions", AU.Questions)},
            errors=(404,),
        ),
        E(
            "listComments",
            "GET",
            "/api/spaces/{space_id}/comments",
            posts_api.comments,
            LISTENING,
            "The latest comments",
            tag="audience",
            answers={200: Answer("the comments", AU.Comments)},
            errors=(404,),
        ),
        E(
            "vote",
            "POST",
            "/api/spaces/{space_id}/questions/{post_id}/vote",
            posts_api.vote,
            POST,
            "Vote for a question (account; one vote each)",
            tag="audience",
            auth=Auth.ACCOUNT,
            answers={200: Answer("the question", AU.VotedQuestion)},
            errors=(400, 401, 403, 404, 409, 429),
        ),
        E(
            "moderatePost",
            "POST",
            "/api/spaces/{space_id}/posts/{post_id}/{action}",
            posts_api.moderate_post,
            STAGE,
            "Hide, show, delete or answer a post (host, co-host)",
            credential=SPACE_ROLE,
            tag="audience",
            auth=Auth.SPACE,
            answers={200: Answer("the post", AU.Post)},
            errors=(400, 401, 403, 404, 409),
        ),
        E(
            "getModeration",
            "GET",
            "/api/spaces/{space_id}/moderation",
            posts_api.moderation,
            STAGE,
            "The pinned post, slow mode, posting open",
            credential=SPACE_ROLE,
            without=LISTENING,  # a listener's page reads them too: a cheap public read
            tag="audience",
            answers={200: Answer("the settings", AU.Moderation)},
            errors=(404,),
        ),
        E(
            "setModeration",
            "POST",
            "/api/spaces/{space_id}/moderation",
            posts_api.moderation,
            STAGE,
            "Pin, slow mode, close posting (host, co-host)",
            credential=SPACE_ROLE,
            tag="audience",
            auth=Auth.SPACE,
            body=Body(AU.ModerationChange),
            answers={200: Answer("the settings", AU.Moderation)},
            errors=(400, 401, 403, 404),
        ),
        E(
            "blockUser",
            "POST",
            "/api/spaces/{space_id}/blocked/{user_id}",
            posts_api.block_user,
            STAGE,
            "Block a user from posting (host, co-host)",
            credential=SPACE_ROLE,
            tag="audience",
            auth=Auth.SPACE,
            answers={200: Answer("the block", AU.Block)},
            errors=(400, 401, 403, 404),
        ),
        E(
            "unblockUser",
            "DELETE",
            "/api/spaces/{space_id}/blocked/{user_id}",
            posts_api.block_user,
            STAGE,
            "Let a user post again (host, co-host)",
            credential=SPACE_ROLE,
            tag="audience",
            auth=Auth.SPACE,
            answers={200: Answer("the block", AU.Block)},
            errors=(400, 401, 403, 404),
        ),
        E(
            "react",
            "POST",
            "/api/spaces/{space_id}/reactions",
            timeline_api.react,
            REACTION,
            "A reaction, coalesced into counts per second",
            tag="audience",
            body=Body(AU.Reaction),
            answers={202: Answer("accepted", AU.ReactionTaken)},
            errors=(400, 404, 409, 429),
        ),
        # -- recording, replay and clips -------------------------------------------------------------
        E(
            "replay",
            "GET",
            "/api/spaces/{space_id}/replay",
            replay_api.replay,
            LISTENING,
            "Who spoke when, and the shown posts, on the recording's time axis",
            tag="recording",
            answers={200: Answer("the replay's timeline", R.Replay)},
            errors=(404,),
        ),
        E(
            "recordingFingerprint",
            "GET",
            "/api/spaces/{space_id}/recording",
            replay_api.recording_fingerprint,
            OTHER,
            "The recording so far: its SHA-256, segment count and length",
            tag="recording",
            answers={200: Answer("the fingerprint", R.Fingerprint)},
            errors=(404, 409),
        ),
        E(
            "createClip",
            "POST",
            "/api/spaces/{space_id}/clips",
            replay_api.create_clip,
            OTHER,
            "Cut a signed clip of 10 to 120 s (public spaces, live or ended)",
            tag="recording",
            body=Body(R.NewClip),
            answers={201: Answer("the clip", R.Clip, headers=("Location",))},
            errors=(400, 403, 404, 409, 429),
        ),
        E(
            "getClip",
            "GET",
            "/api/spaces/{space_id}/clips/{clip_id}",
            replay_api.get_clip,
            OTHER,
            "A clip's facts",
            tag="recording",
            answers={200: Answer("the clip", R.Clip)},
            errors=(404,),
        ),
        E(
            "verifyFile",
            "POST",
            "/api/verify",
            replay_api.verify,
            OTHER,
            "Is this clip file an unaltered excerpt of this instance's recording?",
            tag="recording",
            body=Body(media="application/octet-stream", description="the clip file as it is (at most 4 MiB)"),
            answers={200: Answer("the verdict and each check", R.Verdict)},
            errors=(400, 429),
        ),
        # -- webhooks --------------------------------------------------------------------------------
        E(
            "registerWebhook",
            "POST",
            "/api/spaces/{space_id}/webhooks",
            webhooks_api.register,
            STAGE,
            "Have the space's events POSTed to a URL (host)",
            credential=SPACE_ROLE,
            tag="webhooks",
            auth=Auth.SPACE,
            body=Body(AU.NewWebhook),
            answers={201: Answer("the subscription and its secret", AU.RegisteredWebhook)},
            errors=(400, 401, 403, 404, 409),
        ),
        E(
            "listWebhooks",
            "GET",
            "/api/spaces/{space_id}/webhooks",
            webhooks_api.listing,
            STAGE,
            "The subscriptions and the delivery log (host)",
            credential=SPACE_ROLE,
            tag="webhooks",
            auth=Auth.SPACE,
            answers={200: Answer("subscriptions and deliveries", AU.WebhookLog)},
            errors=(401, 403, 404),
        ),
        E(
            "removeWebhook",
            "DELETE",
            "/api/spaces/{space_id}/webhooks/{hook_id}",
            webhooks_api.remove,
            STAGE,
            "Stop sending to a URL (host)",
            credential=SPACE_ROLE,
            tag="webhooks",
            auth=Auth.SPACE,
            answers={204: Answer("deleted")},
            errors=(401, 403, 404),
        ),
        # -- embedding -------------------------------------------------------------------------------
        E(
            "embedCode",
            "GET",
            "/api/spaces/{space_id}/embed-code",
            embed_api.embed_code,
            OTHER,
            "The consent-first snippet for an article (it loads nothing from this instance before the reader's "
            "click) and the plain player frame",
            tag="embedding",
            query=R.EmbedCodeQuery,
            answers={200: Answer("the snippet and the frame", R.EmbedCode)},
            errors=(400, 403, 404),
        ),
        E(
            "oembed",
            "GET",
            "/oembed",
            embed_api.oembed,
            OTHER,
            "oEmbed 1.0: a space's page or player URL as a rich player frame",
            tag="embedding",
            query=R.OembedQuery,
            answers={200: Answer("the oEmbed answer", R.Oembed)},
            errors=(400, 401, 404, 501),  # 501: format=xml, which oEmbed lets a provider not offer
        ),
        # -- WHIP (RFC 9725) -------------------------------------------------------------------------
        E(
            "whipPublish",
            "POST",
            "/whip/{space_id}",
            api.whip_publish,
            STAGE,
            "Publish a speaker's audio (SDP offer; Bearer host or member token)",
            owner=Owner.STAGE,
            credential=SPACE_ROLE,
            tag="stage",
            auth=Auth.SPACE,
            body=Body(media="application/sdp", description="an SDP offer with one Opus audio section"),
            answers={
                201: Answer("the SDP answer", media="application/sdp", headers=("Location", "ETag", "Link")),
            },
            errors=(400, 401, 403, 404, 409, 429),
        ),
        E("whipOptions", "OPTIONS", "/whip/{space_id}", api.whip_options, STAGE, "WHIP preflight", owner=Owner.STAGE),
        E(
            "whipDelete",
            "DELETE",
            "/whip/{space_id}/{session_id}",
            api.whip_delete,
            STAGE,
            "End a WHIP session",
            owner=Owner.STAGE,
            credential=SPACE_ROLE,
            tag="stage",
            auth=Auth.SPACE,
            answers={200: Answer("ended")},
            errors=(401, 403, 404),
        ),
        E(
            "whipPatch",
            "PATCH",
            "/whip/{space_id}/{session_id}",
            api.whip_patch,
            STAGE,
            "Trickle ICE (not offered)",
            owner=Owner.STAGE,
            credential=SPACE_ROLE,
        ),
        E(
            "whipSessionOptions",
            "OPTIONS",
            "/whip/{space_id}/{session_id}",
            api.whip_options,
            STAGE,
            "WHIP preflight",
            owner=Owner.STAGE,
        ),
        # -- the listener's stream: playlists and media, the timeline --------------------------------
        *(
            E(f"{prefix}{name}", "GET", path + tail, handler, LISTENING, summary, owner=Owner.STAGE, head=True)
            for prefix, path in (("signed.", urls.SIGNED_HLS), ("", urls.HLS))
            for name, tail, handler, summary in (
                ("hls.index", "index.m3u8", hls.multivariant, "The multivariant playlist"),
                ("hls.live", "live.m3u8", hls.media_playlist, "The live media playlist"),
                ("hls.init", INIT_NAME, hls.init_section, "The stream's init section"),
                ("hls.file", "{name}", hls.media_file, "A part or segment"),
            )
        ),
        E(
            "timeline.index",
            "GET",
            urls.TIMELINE + "index.json",
            timeline_api.timeline_index,
            LISTENING,
            "The timeline's index",
            owner=Owner.STAGE,
            head=True,
        ),
        E(
            "timeline.item",
            "GET",
            urls.TIMELINE + "{name}",
            timeline_api.timeline_item,
            LISTENING,
            "One interval of the timeline",
            owner=Owner.STAGE,
            head=True,
        ),
        # -- files of ended spaces, the feed, the clip key -------------------------------------------
        E("download", "GET", urls.DOWNLOAD, replay_api.download, OTHER, "The recording", head=True),
        E("clipFile", "GET", urls.CLIP_FILE, replay_api.clip_file, OTHER, "A clip", head=True),
        E("feed", "GET", "/feed.xml", replay_api.feed, OTHER, "The podcast feed", head=True),
        E(
            "clipKey",
            "GET",
            "/.well-known/podium-clip-key",
            replay_api.public_key,
            OTHER,
            "The key clips are signed with",
        ),
        E(
            "openapi",
            "GET",
            "/openapi.json",
            openapi.openapi_json,
            OTHER,
            "This document",
            tag="operations",
            answers={200: Answer("the OpenAPI document", R.Document)},
        ),
        # -- pages -----------------------------------------------------------------------------------
        E("page.home", "GET", "/", pages.home, JOIN, "The home page", head=True),
        E("page.listen", "GET", urls.LISTEN_PAGE, pages.listener_page, JOIN, "A space's page", head=True),
        E("page.host", "GET", urls.HOST_PAGE, pages.host_page, JOIN, "The host's console", head=True),
        E("page.speaker", "GET", urls.SPEAKER_PAGE, pages.speaker_page, JOIN, "A speaker's page", head=True),
        E("page.embed", "GET", urls.EMBED_PAGE, pages.embed_page, JOIN, "The embeddable player", head=True),
        E("page.clip", "GET", urls.CLIP_PAGE, replay_api.clip_page, OTHER, "A clip's page", head=True),
        E("page.verify", "GET", "/verify", replay_api.verify_page, OTHER, "The verify page", head=True),
        E("hlsjs", "GET", "/static/vendor/hls.min.js", pages.hlsjs_file, JOIN, "hls.js", head=True),
        E("static", "GET", "/static", None, JOIN, "The pages' assets", app=StaticFiles(directory=pages.STATIC)),
    )
)

__all__ = ["TABLE", "Answer", "Body", "Endpoint", "Owner", "RouteTable", "router_routes"]
