"""The one table of routes: every path Podium answers, said once. Each row names a path and method,
its handler, its models, the request class the door sheds it by (and the credential that keeps that
class), the node that answers it, and a name for its URL. The router, `/openapi.json`, the door's
classes (`admission.gate`), the stage node's requests (`delivery.relay`), the listener hot path
(`delivery.fast`) and URLs (`url_path`) are derived from it.

Invariant: a row's path is a Starlette path template; two rows never share a method and a path.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, compile_path
from starlette.types import ASGIApp

from podium import urls
from podium.admission.classes import Credential, Door, RequestClass
from podium.delivery import hls
from podium.ids import SpaceId
from podium.web import (
    accounts_api,
    api,
    captions_api,
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
from podium.web.compressed import CompressedStaticFiles
from podium.web.schemas import audience as AU
from podium.web.schemas import captions as CA
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


class RouteTable:
    """The table, compiled for matching a method and path without the router (at the door)."""

    def __init__(self, endpoints: tuple[Endpoint, ...]) -> None:
        self.endpoints = endpoints
        self.by_name = {e.name: e for e in endpoints}
        assert len(self.by_name) == len(endpoints), "a route name used twice"
        # Rows grouped by the path's first segment: a request is matched against a handful.
        self._groups: dict[str, list[tuple[re.Pattern[str], Endpoint]]] = {}
        for endpoint in endpoints:
            if endpoint.app is not None:  # a mount: every path below its own
                pattern = re.compile("^" + re.escape(endpoint.path.rstrip("/")) + "/(?P<path>.*)$")
            else:
                pattern = compile_path(endpoint.path)[0]
            first = endpoint.path.split("/")[1]
            self._groups.setdefault("" if "{" in first else first, []).append((pattern, endpoint))

    def match(self, method: str, path: str) -> tuple[Endpoint, dict[str, str]] | None:
        """The row a request is for, and its path parameters (None: no row, or no such method)."""
        method = "GET" if method == "HEAD" else method
        for pattern, endpoint in self._groups.get(path.split("/", 2)[1] if path.startswith("/") else "", ()):
            found = pattern.match(path)
            if found is not None and endpoint.method == method:
                return endpoint, found.groupdict()
        return None

    def door(self, method: str, path: str) -> tuple[Door, SpaceId | None]:
        """How the door treats a request: its class and credential, and the space it names."""
        found = self.match(method, path)
        if found is None:
            return Door(OTHER), None
        endpoint, params = found
        space = params.get("space_id")
        return Door(endpoint.klass, endpoint.credential, endpoint.without), SpaceId(space) if space else None

    def stage_owned(self, method: str, path: str) -> SpaceId | None:
        """The space whose stage node answers this request, or None when any node does."""
        found = self.match(method, path)
        space = found[1].get("space_id") if found is not None and found[0].owner is Owner.STAGE else None
        return SpaceId(space) if space else None

    def name_of(self, method: str, path: str) -> tuple[str, dict[str, str]] | None:
        found = self.match(method, path)
        return None if found is None else (found[0].name, found[1])

    def documented(self) -> Iterator[Endpoint]:
        return (e for e in self.endpoints if e.tag is not None)


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


# -- the table: `tagged` puts rows in the API document under a tag; rows without one (pages, the stream,
# files) are not in it.

SPACE = "/api/spaces/{space_id}"
STAGE_NODE = Owner.STAGE  # answered by the node that runs the space's stage
MEMBER, PASS = Credential.MEMBER, Credential.PASS
A = Answer


def row(
    name: str, method: str, path: str, handler: Handler | None, klass: RequestClass, summary: str, **more: Any
) -> Endpoint:
    """One row; `ok` and `created` are the 200 and 201 answers, `answers` any others."""
    answers = {200: more.pop("ok", None), 201: more.pop("created", None), **more.pop("answers", {})}
    answers = {status: answer for status, answer in answers.items() if answer is not None}
    return Endpoint(name, method, path, handler, klass, summary, answers=answers, **more)


def host(name: str, method: str, path: str, handler: Handler, summary: str, **more: Any) -> Endpoint:
    """A host's or member's control: STAGE with a member token, a stranger's request without. Its
    token may not verify (401) or not be enough (403), and its space may not be there (404)."""
    errors = tuple(sorted({401, 403, 404, *more.pop("errors", ())}))
    return row(name, method, path, handler, STAGE, summary, credential=MEMBER, auth=Auth.SPACE, errors=errors, **more)


def stream(name: str, path: str, handler: Handler, summary: str) -> Endpoint:
    """A file of a space's stream or timeline: a listener's, answered by the stage's node."""
    return row(name, "GET", path, handler, LISTENING, summary, owner=STAGE_NODE, head=True)


def tagged(tag: str, *rows: Endpoint) -> tuple[Endpoint, ...]:
    return tuple(replace(one, tag=tag) for one in rows)


MEMBER_NOW = A("the member as the stage sees them now", ST.Member)
HOLD_AUDIO = Body(media="application/octet-stream", description="any audio FFmpeg reads, 1 s to 10 min, up to 12 MiB")
CLIP_FILE = Body(media="application/octet-stream", description="the clip file as it is (at most 4 MiB)")
SDP_OFFER = Body(media="application/sdp", description="an SDP offer with one Opus audio section")

# fmt: off
TABLE = RouteTable(
    (
        # A crowd's joins first, so that each is not matched against fifty other routes before its own.
        *tagged("admission",
            row("join", "POST", SPACE + "/join", join_api.join, JOIN, "Join as a listener (the waiting room)",
                body=Body(ST.Join), answers={
                    200: A("admitted: the pass and the stream's address", ST.Admitted),
                    202: A("wait in line (come back with the ticket) or solve the puzzle first", ST.Waiting,
                           headers=("Retry-After",)),
                }, errors=(400, 401, 403, 404, 409, 429)),
        ),
        *tagged("operations",
            row("healthz", "GET", "/healthz", health_api.alive, STAGE, "The process answers", ok=A("alive", R.Alive),
                head=True),
            row("readyz", "GET", "/readyz", health_api.ready, STAGE,
                "The node can do its work now (its database and bus answer)",
                answers={200: A("ready", R.Ready), 503: A("not ready: send it no traffic for now", R.Ready)},
                head=True),
        ),
        row("metrics", "GET", "/metrics", health_api.metrics, STAGE, "Prometheus metrics", head=True),
        *tagged("spaces",
            row("listSpaces", "GET", "/api/spaces", schedule_api.listing, JOIN,
                "What is on: live and upcoming public spaces", ok=A("the listing", S.Listing)),
            row("createSpace", "POST", "/api/spaces", api.create_space, OTHER,
                "Create a space (anyone, within limits per address and per account)", auth=Auth.OPTIONAL_ACCOUNT,
                body=Body(S.NewSpace),
                created=A("the new space, with the host's token (shown once)", S.CreatedSpace, headers=("Location",)),
                errors=(400, 401, 403, 429)),
            row("getSpace", "GET", SPACE, api.get_space, LISTENING, "A space's public state",
                ok=A("the space", S.Space), errors=(404,)),
            host("setRecording", "PATCH", SPACE, replay_api.set_recording,
                "Switch recording off or on (host, before going live)", body=Body(S.RecordingSwitch),
                ok=A("the space", S.Space), errors=(400, 409)),
            host("endSpace", "POST", SPACE + "/end", api.end_space,
                "End the space (host); the replay is ready when this answers (unless the disk is behind)",
                owner=STAGE_NODE, ok=A("the ended space; the replay is ready when this answers", S.Space),
                errors=(409,)),
            host("rotateHostToken", "POST", SPACE + "/host-token", api.rotate_host_token,
                "A new host token for the current one, which stops working at once (host); a WHIP session opened with "
                "the old one is closed",
                created=A("the new host token; the old one stops working at once", S.HostToken)),
            row("heartbeat", "POST", SPACE + "/heartbeat", api.heartbeat, LISTENING, "An admitted listener's heartbeat",
                credential=PASS, without=JOIN, body=Body(S.Beat), ok=A("the counts and the beat interval", S.BeatTaken),
                errors=(400, 401, 403, 404, 409, 429)),
            row("shareQr", "GET", SPACE + "/qr.svg", pages.share_qr, LISTENING, "The listener link as a QR code",
                ok=A("an SVG image of the listener link", media="image/svg+xml"), errors=(404,), head=True),
            row("calendar", "GET", SPACE + "/calendar.ics", schedule_api.calendar, LISTENING,
                "A calendar entry (RFC 5545) with a reminder",
                ok=A("a calendar entry (RFC 5545) with a reminder", media="text/calendar"), errors=(404, 409),
                head=True),
            host("goLive", "POST", SPACE + "/go-live", schedule_api.go_live,
                "From the pre-show to the stage (host, microphone connected)", owner=STAGE_NODE,
                ok=A("the space", S.Space), errors=(409,)),
        ),
        *tagged("stage",
            host("iceServers", "GET", SPACE + "/ice-servers", api.ice_servers,
                "The STUN/TURN servers for a speaker's browser (host or member token)",
                ok=A("RTCIceServer objects", S.IceServers)),
        ),
        *tagged("spaces",
            host("setHoldAudio", "PUT", SPACE + "/hold-audio", schedule_api.hold_audio,
                "The host's own hold audio for the pre-show", owner=STAGE_NODE, body=HOLD_AUDIO,
                ok=A("how long it plays", S.HoldAudio), errors=(400, 409)),
            host("getCaptions", "GET", SPACE + "/captions", captions_api.captions,
                "Live captions: on or off, their language, how they keep up (host, co-host)", owner=STAGE_NODE,
                ok=A("the captions", CA.CaptionsStatus)),
            host("setCaptions", "PUT", SPACE + "/captions", captions_api.captions,
                "Switch live captions on or off and choose their language (host, co-host)", owner=STAGE_NODE,
                body=Body(CA.CaptionsChange), ok=A("the captions", CA.CaptionsStatus), errors=(400, 409)),
        ),
        *tagged("admission",
            host("underAttack", "POST", SPACE + "/under-attack", join_api.under_attack,
                "Switch the joiners' puzzle (host or co-host)", body=Body(ST.UnderAttack), ok=A("the mode", ST.Attack),
                errors=(400,)),
            host("board", "GET", SPACE + "/board", join_api.board, "The go/no-go board (host or co-host)",
                owner=STAGE_NODE, ok=A("listeners, joins, the puzzle, load, the stream, the last rehearsal", ST.Board)),
            host("createListenerLink", "POST", SPACE + "/listener-links", join_api.listener_link,
                "A signed listener link for a private space (host or co-host)",
                body=Body(ST.NewListenerLink, required=False), created=A("the link", ST.ListenerLink), errors=(400,)),
            host("withdrawListenerLinks", "DELETE", SPACE + "/listener-links", join_api.withdraw_listener_links,
                "Withdraw every listener link given out so far (host or co-host); new links work",
                ok=A("the links' new generation", ST.Withdrawn)),
            host("rehearse", "POST", SPACE + "/rehearsals", join_api.rehearsal,
                "Leave a `podium rehearse` report on the board (host or co-host)", body=Body(ST.RehearsalReport),
                created=A("what the board keeps of it", ST.Rehearsal), errors=(400,)),
        ),
        *tagged("stage",
            host("createInvite", "POST", SPACE + "/invites", stage_api.create_invite,
                "Invite a speaker or co-host (host; co-host for speakers)", owner=STAGE_NODE,
                body=Body(ST.NewInvite, required=False),
                created=A("the invite (expires after 24 h, works once)", ST.Invite), errors=(400, 409)),
            host("redeemInvite", "POST", SPACE + "/invites/redeem", stage_api.redeem_invite,
                "Redeem an invite (Bearer: the invite token) for one's own member token", owner=STAGE_NODE,
                body=Body(ST.Naming), created=A("the member and their token", ST.Redeemed), errors=(400, 409)),
            row("joinAsGuest", "POST", SPACE + "/guests", stage_api.join_as_guest, POST,
                "A named guest in the audience (a token to raise a hand with)", owner=STAGE_NODE, body=Body(ST.Naming),
                created=A("the guest and their token", ST.MemberWithToken), errors=(400, 404, 409, 429)),
            row("getStage", "GET", SPACE + "/stage", stage_api.stage, STAGE, "Who is on stage, muted, speaking",
                owner=STAGE_NODE, credential=MEMBER, ok=A("the stage", ST.Stage), errors=(404,)),
            host("listHands", "GET", SPACE + "/hands", stage_api.hands, "The hand queue (host, co-host)",
                owner=STAGE_NODE, ok=A("raised hands, first first", ST.Hands)),
            host("getMe", "GET", SPACE + "/me", stage_api.me, "The member a token speaks for", owner=STAGE_NODE,
                ok=MEMBER_NOW),
            host("renameMe", "PUT", SPACE + "/me/name", stage_api.rename, "One's own name on stage (any member)",
                owner=STAGE_NODE, body=Body(ST.Naming), ok=A("the member as the stage sees them now", ST.Member),
                errors=(400, 409)),
            host("raiseHand", "POST", SPACE + "/hand", stage_api.raise_hand, "Raise a hand (guest)", owner=STAGE_NODE,
                ok=MEMBER_NOW, errors=(409,)),
            host("lowerHand", "DELETE", SPACE + "/hand", stage_api.raise_hand, "Lower a hand (guest)", owner=STAGE_NODE,
                ok=MEMBER_NOW, errors=(409,)),
            host("leaveStage", "POST", SPACE + "/leave", stage_api.leave, "Leave the stage (speaker)", owner=STAGE_NODE,
                ok=MEMBER_NOW, errors=(409,)),
            host("memberAction", "POST", SPACE + "/members/{member_id}/{action}", stage_api.member_action,
                "accept or decline a hand, send to the audience, mute, unmute (oneself), remove, block",
                owner=STAGE_NODE, ok=MEMBER_NOW, errors=(400, 409)),
        ),
        *tagged("audience",
            row("signUp", "POST", "/api/accounts", accounts_api.sign_up, OTHER,
                "Create an account (to post; listening needs none)", body=Body(AU.Credentials),
                created=A("the account", AU.Account), errors=(400, 409, 429)),
            row("signIn", "POST", "/api/sessions", accounts_api.sign_in, OTHER,
                "Sign in: a token for API clients, cookies for the browser", body=Body(AU.Credentials),
                ok=A("the session token and the user", AU.Session), errors=(400, 401, 429)),
            row("signOut", "DELETE", "/api/sessions", accounts_api.sign_out, OTHER,
                "Sign out: the session (token or cookie) stops working on every node, and the cookies are cleared",
                ok=A("done", AU.SignedOut)),
            row("whoAmI", "GET", "/api/sessions/me", accounts_api.whoami, JOIN, "The signed-in account",
                auth=Auth.ACCOUNT, ok=A("the account", AU.Account), errors=(401, 403)),
            row("createPost", "POST", SPACE + "/posts", posts_api.create_post, POST,
                "Post a comment or a question (account); a retry with the same client_id is the same post",
                auth=Auth.ACCOUNT, body=Body(AU.NewPost),
                answers={200: A("the post, already stored (a retry)", AU.Post), 201: A("the new post", AU.Post)},
                errors=(400, 401, 403, 404, 409, 429)),
            host("listPosts", "GET", SPACE + "/posts", posts_api.all_posts,
                "Every post, for moderators (host, co-host)", ok=A("the posts", AU.Posts)),
            row("listQuestions", "GET", SPACE + "/questions", posts_api.questions, LISTENING, "Ranked questions",
                ok=A("the questions", AU.Questions), errors=(404,)),
            row("listComments", "GET", SPACE + "/comments", posts_api.comments, LISTENING, "The latest comments",
                ok=A("the comments", AU.Comments), errors=(404,)),
            row("vote", "POST", SPACE + "/questions/{post_id}/vote", posts_api.vote, POST,
                "Vote for a question (account; one vote each)", auth=Auth.ACCOUNT,
                ok=A("the question", AU.VotedQuestion), errors=(400, 401, 403, 404, 409, 429)),
            host("moderatePost", "POST", SPACE + "/posts/{post_id}/{action}", posts_api.moderate_post,
                "Hide, show, delete or answer a post (host, co-host)", ok=A("the post", AU.Post), errors=(400, 409)),
            row("getModeration", "GET", SPACE + "/moderation", posts_api.moderation, STAGE,
                "The pinned post, slow mode, posting open", credential=MEMBER, without=LISTENING,
                ok=A("the settings", AU.Moderation), errors=(404,)),
            host("setModeration", "POST", SPACE + "/moderation", posts_api.moderation,
                "Pin, slow mode, close posting (host, co-host)", body=Body(AU.ModerationChange),
                ok=A("the settings", AU.Moderation), errors=(400,)),
            host("blockUser", "POST", SPACE + "/blocked/{user_id}", posts_api.block_user,
                "Block a user from posting (host, co-host)", ok=A("the block", AU.Block), errors=(400,)),
            host("unblockUser", "DELETE", SPACE + "/blocked/{user_id}", posts_api.block_user,
                "Let a user post again (host, co-host)", ok=A("the block", AU.Block), errors=(400,)),
            row("react", "POST", SPACE + "/reactions", timeline_api.react, REACTION,
                "A reaction, coalesced into counts per second", body=Body(AU.Reaction),
                answers={202: A("accepted", AU.ReactionTaken)}, errors=(400, 404, 409, 429)),
        ),
        *tagged("recording",
            row("replay", "GET", SPACE + "/replay", replay_api.replay, LISTENING,
                "Who spoke when, and the shown posts, on the recording's time axis",
                ok=A("the replay's timeline", R.Replay), errors=(404,)),
            row("transcript", "GET", SPACE + "/transcript", captions_api.transcript, LISTENING,
                "The transcript: who said what, on the recording's time axis (a private space's: with its listener "
                "link's key)", query=CA.TranscriptQuery, ok=A("the transcript", CA.Transcript), errors=(403, 404)),
            row("transcriptVtt", "GET", SPACE + "/transcript.vtt", captions_api.transcript_vtt, LISTENING,
                "The transcript as WebVTT, each cue voiced by its speaker", query=CA.TranscriptQuery,
                ok=A("WebVTT", media="text/vtt"), errors=(403, 404), head=True),
            row("transcriptSrt", "GET", SPACE + "/transcript.srt", captions_api.transcript_srt, LISTENING,
                "The transcript as SubRip, each cue led by its speaker's name", query=CA.TranscriptQuery,
                ok=A("SubRip", media="application/x-subrip"), errors=(403, 404), head=True),
            row("recordingFingerprint", "GET", SPACE + "/recording", replay_api.recording_fingerprint, OTHER,
                "The recording so far: its SHA-256, segment count and length", ok=A("the fingerprint", R.Fingerprint),
                errors=(404, 409)),
            row("createClip", "POST", SPACE + "/clips", replay_api.create_clip, OTHER,
                "Cut a signed clip of 10 to 120 s (public spaces, live or ended)", body=Body(R.NewClip),
                created=A("the clip", R.Clip, headers=("Location",)), errors=(400, 403, 404, 409, 429)),
            row("getClip", "GET", SPACE + "/clips/{clip_id}", replay_api.get_clip, OTHER, "A clip's facts",
                ok=A("the clip", R.Clip), errors=(404,)),
            row("verifyFile", "POST", "/api/verify", replay_api.verify, OTHER,
                "Is this clip file an unaltered excerpt of this instance's recording?", body=CLIP_FILE,
                ok=A("the verdict and each check", R.Verdict), errors=(400, 429)),
        ),
        *tagged("webhooks",
            host("registerWebhook", "POST", SPACE + "/webhooks", webhooks_api.register,
                "Have the space's events POSTed to a URL (host)", body=Body(AU.NewWebhook),
                created=A("the subscription and its secret", AU.RegisteredWebhook), errors=(400, 409)),
            host("listWebhooks", "GET", SPACE + "/webhooks", webhooks_api.listing,
                "The subscriptions and the delivery log (host)", ok=A("subscriptions and deliveries", AU.WebhookLog)),
            host("removeWebhook", "DELETE", SPACE + "/webhooks/{hook_id}", webhooks_api.remove,
                "Stop sending to a URL (host)", answers={204: A("deleted")}),
        ),
        *tagged("embedding",
            row("embedCode", "GET", SPACE + "/embed-code", embed_api.embed_code, OTHER,
                "The consent-first snippet for an article (it loads nothing from this instance before the reader's "
                "click) and the plain player frame", query=R.EmbedCodeQuery,
                ok=A("the snippet and the frame", R.EmbedCode), errors=(400, 403, 404)),
            row("oembed", "GET", "/oembed", embed_api.oembed, OTHER,
                "oEmbed 1.0: a space's page or player URL as a rich player frame", query=R.OembedQuery,
                ok=A("the oEmbed answer", R.Oembed), errors=(400, 401, 404, 501)),
        ),
        *tagged("stage",
            host("whipPublish", "POST", urls.WHIP, api.whip_publish,
                "Publish a speaker's audio (SDP offer; Bearer host or member token)", owner=STAGE_NODE, body=SDP_OFFER,
                created=A("the SDP answer", media="application/sdp", headers=("Location", "ETag", "Link")),
                errors=(400, 409, 429)),
        ),
        row("whipOptions", "OPTIONS", urls.WHIP, api.whip_options, STAGE, "WHIP preflight", owner=STAGE_NODE),
        *tagged("stage",
            host("whipDelete", "DELETE", urls.WHIP_SESSION, api.whip_delete, "End a WHIP session", owner=STAGE_NODE,
                ok=A("ended")),
        ),
        row("whipPatch", "PATCH", urls.WHIP_SESSION, api.whip_patch, STAGE, "Trickle ICE (not offered)",
            owner=STAGE_NODE, credential=MEMBER),
        row("whipSessionOptions", "OPTIONS", urls.WHIP_SESSION, api.whip_options, STAGE, "WHIP preflight",
            owner=STAGE_NODE),
        stream("signed.hls.index", urls.SIGNED_HLS + "index.m3u8", hls.multivariant, "The multivariant playlist"),
        stream("signed.hls.live", urls.SIGNED_HLS + "live.m3u8", hls.media_playlist, "The live media playlist"),
        stream("signed.hls.captions", urls.SIGNED_HLS + "captions.m3u8", hls.captions_playlist,
               "The captions (WebVTT) playlist"),
        stream("signed.hls.init", urls.SIGNED_HLS + "init.mp4", hls.init_section, "The stream's init section"),
        stream("signed.hls.file", urls.SIGNED_HLS + "{name}", hls.media_file, "A part or segment"),
        stream("hls.index", urls.HLS + "index.m3u8", hls.multivariant, "The multivariant playlist"),
        stream("hls.live", urls.HLS + "live.m3u8", hls.media_playlist, "The live media playlist"),
        stream("hls.captions", urls.HLS + "captions.m3u8", hls.captions_playlist, "The captions (WebVTT) playlist"),
        stream("hls.init", urls.HLS + "init.mp4", hls.init_section, "The stream's init section"),
        stream("hls.file", urls.HLS + "{name}", hls.media_file, "A part or segment"),
        stream("timeline.index", urls.TIMELINE + "index.json", timeline_api.timeline_index, "The timeline's index"),
        stream("timeline.item", urls.TIMELINE + "{name}", timeline_api.timeline_item, "One interval of the timeline"),
        row("download", "GET", urls.DOWNLOAD, replay_api.download, OTHER, "The recording", head=True),
        row("clipFile", "GET", urls.CLIP_FILE, replay_api.clip_file, OTHER, "A clip", head=True),
        row("feed", "GET", "/feed.xml", replay_api.feed, OTHER, "The podcast feed", head=True),
        row("clipKey", "GET", urls.CLIP_KEY, replay_api.public_key, OTHER, "The key clips are signed with"),
        *tagged("operations",
            row("openapi", "GET", "/openapi.json", openapi.openapi_json, OTHER, "This document",
                ok=A("the OpenAPI document", dict[str, Any])),
        ),
        row("page.home", "GET", "/", pages.home, JOIN, "The home page", head=True),
        row("page.listen", "GET", urls.LISTEN_PAGE, pages.listener_page, JOIN, "A space's page", head=True),
        row("page.host", "GET", urls.HOST_PAGE, pages.host_page, JOIN, "The host's console", head=True),
        row("page.speaker", "GET", urls.SPEAKER_PAGE, pages.speaker_page, JOIN, "A speaker's page", head=True),
        row("page.embed", "GET", urls.EMBED_PAGE, pages.embed_page, JOIN, "The embeddable player", head=True),
        row("page.clip", "GET", urls.CLIP_PAGE, replay_api.clip_page, OTHER, "A clip's page", head=True),
        row("page.verify", "GET", urls.VERIFY_PAGE, replay_api.verify_page, OTHER, "The verify page", head=True),
        row("hlsjs", "GET", "/static/vendor/hls.js", pages.hlsjs_file, JOIN, "hls.js (its light build)", head=True),
        row("static", "GET", "/static", None, JOIN, "The pages' assets",
            app=CompressedStaticFiles(directory=pages.STATIC)),
    )
)
# fmt: on

__all__ = ["TABLE", "Answer", "Body", "Endpoint", "Owner", "RouteTable", "router_routes"]
