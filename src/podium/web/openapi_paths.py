"""The paths of Podium's OpenAPI document, one function per part of the API."""

from __future__ import annotations

from typing import Any

from podium.web import i18n
from podium.web.openapi_shapes import (
    ACCOUNT,
    BOOLEAN,
    ICE_SERVER,
    INTEGER,
    NUMBER,
    PIN,
    SPACE_ID,
    SPACE_TOKEN,
    TIME,
    URL,
    answer,
    array,
    binary_body,
    json_body,
    nullable,
    obj,
    operation,
    path_param,
    query_param,
    ref,
    retry_after,
    string,
)


def space_routes() -> dict[str, Any]:
    space_id = [SPACE_ID]
    created = {
        201: {
            **answer("the new space, with the host's token (shown once)", ref("CreatedSpace")),
            "headers": {"Location": {"description": "the space's page", "schema": URL}},
        }
    }
    new_space = obj(
        {
            "title": string(maxLength=200),
            "starts_at": nullable(
                string(format="date-time", description="ISO 8601, in the future (leave it out to start now)")
            ),
            "record": BOOLEAN,
            "private": BOOLEAN,
        },
        required=["title"],
        additionalProperties=False,
    )
    listing = obj({"live": array(ref("Space")), "upcoming": array(ref("Space"))})
    beat = obj(
        {
            "state": string(enum=["scheduled", "live", "ended"]),
            "listeners": ref("Listeners"),
            "interval_s": NUMBER,
            "counted": BOOLEAN,
        }
    )
    return {
        "/api/spaces": {
            "get": operation(
                "listSpaces",
                "What is on: live and upcoming public spaces",
                "spaces",
                {200: answer("the listing", listing)},
            ),
            "post": operation(
                "createSpace",
                "Create a space (anyone, within limits per address and per account)",
                "spaces",
                created,
                (400, 401, 403, 429),
                body=json_body(new_space, required=True),
                # No credentials at all, or an account's (then the space is announced publicly).
                security=[{}, *ACCOUNT],
            ),
        },
        "/api/spaces/{space_id}": {
            "parameters": space_id,
            "get": operation(
                "getSpace", "A space's public state", "spaces", {200: answer("the space", ref("Space"))}, (404,)
            ),
            "patch": operation(
                "setRecording",
                "Switch recording off or on (host, before going live)",
                "spaces",
                {200: answer("the space", ref("Space"))},
                (400, 401, 403, 404, 409),
                body=json_body(obj({"record": BOOLEAN}, additionalProperties=False), required=True),
                security=SPACE_TOKEN,
                shed=False,
            ),
        },
        "/api/spaces/{space_id}/end": {
            "parameters": space_id,
            "post": operation(
                "endSpace",
                "End the space (host); the replay is ready when this answers (unless the disk is behind)",
                "spaces",
                {200: answer("the ended space", ref("Space"))},
                (401, 403, 404, 409),
                security=SPACE_TOKEN,
                shed=False,
            ),
        },
        "/api/spaces/{space_id}/host-token": {
            "parameters": space_id,
            "post": operation(
                "rotateHostToken",
                "A new host token for the current one, which stops working at once (host); a WHIP session "
                "opened with the old one is closed",
                "spaces",
                {
                    201: answer(
                        "the new host token and when it expires (Unix seconds)",
                        obj({"host_token": string(), "expires": INTEGER}),
                    )
                },
                (401, 403, 404),
                security=SPACE_TOKEN,
                shed=False,
            ),
        },
        "/api/spaces/{space_id}/heartbeat": {
            "parameters": space_id,
            "post": operation(
                "heartbeat",
                "A listener's heartbeat",
                "spaces",
                {200: answer("the counts and the beat interval", beat)},
                (400, 401, 403, 404, 409, 429),
                body=json_body(
                    obj(
                        {
                            "listener_id": string(
                                minLength=8, maxLength=64, description="the client_id the join was made with"
                            ),
                            "pass": string(description="the pass the join returned"),
                            "leaving": BOOLEAN,
                        },
                        required=["listener_id", "pass"],
                    )
                ),
            ),
        },
        "/api/spaces/{space_id}/calendar.ics": {
            "parameters": space_id,
            "get": operation(
                "calendar",
                "A calendar entry (RFC 5545) with a reminder",
                "spaces",
                {200: answer("the calendar file", string(), media="text/calendar")},
                (404, 409),
            ),
        },
        "/api/spaces/{space_id}/go-live": {
            "parameters": space_id,
            "post": operation(
                "goLive",
                "From the pre-show to the stage (host, microphone connected)",
                "spaces",
                {200: answer("the space", ref("Space"))},
                (401, 403, 404, 409),
                security=SPACE_TOKEN,
                shed=False,
            ),
        },
        "/api/spaces/{space_id}/ice-servers": {
            "parameters": space_id,
            "get": operation(
                "iceServers",
                "The STUN/TURN servers for a speaker's browser (host or member token)",
                "stage",
                {200: answer("RTCIceServer objects", obj({"ice_servers": array(ICE_SERVER)}))},
                (401, 403, 404),
                security=SPACE_TOKEN,
                shed=False,
            ),
        },
        "/api/spaces/{space_id}/hold-audio": {
            "parameters": space_id,
            "put": operation(
                "setHoldAudio",
                "The host's own hold audio for the pre-show",
                "spaces",
                {200: answer("how long it plays", obj({"hold_audio_s": NUMBER}))},
                (400, 401, 403, 404, 409),
                body=binary_body(
                    "application/octet-stream", "any audio file FFmpeg reads, 1 s to 10 min, up to 12 MiB"
                ),
                security=SPACE_TOKEN,
            ),
        },
    }


def admission_routes() -> dict[str, Any]:
    space_id = [SPACE_ID]
    host = (401, 403, 404)
    join_body = obj(
        {
            "client_id": string(minLength=8, maxLength=64, pattern="^[A-Za-z0-9_-]+$"),
            "ticket": string(),
            "pass": string(),
            "challenge": string(),
            "counter": INTEGER,
            "solved": string(),
            "key": string(description="a private space's listener link token"),
        },
        required=["client_id"],
    )
    admitted = obj(
        {
            "admitted": {"const": True},
            "pass": string(),
            "urls": ref("SpaceUrls"),
            "state": string(),
            "solved": string(),
            "sample_point": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "description": "heartbeat while this is below the announced sample rate",
            },
        },
        required=["admitted", "pass", "urls", "state", "sample_point"],
    )
    waiting = obj(
        {
            "admitted": {"const": False},
            "position": INTEGER,
            "ticket": string(),
            "retry_after_s": INTEGER,
            "retry_after_ms": {
                "type": "integer",
                "minimum": 0,
                "description": "when to come back, to the millisecond (Retry-After is whole seconds)",
            },
            "challenge": string(),
            "difficulty_bits": INTEGER,
            "solved": string(),
            "message": string(),
        },
        required=["admitted", "message"],
    )
    rehearsal = obj(
        {
            "verdict": string(enum=["GO", "NO-GO"]),
            "reasons": array(string()),
            "joins": obj({"success": NUMBER}),
            "plan": obj(
                {"listeners": INTEGER, "peak_joins_per_s": NUMBER, "flood_per_s": NUMBER},
                required=["listeners", "peak_joins_per_s"],
            ),
            "time_to_first_audio_s": {"type": "object"},
        },
        required=["verdict", "joins", "plan", "time_to_first_audio_s"],
    )
    return {
        "/api/spaces/{space_id}/join": {
            "parameters": space_id,
            "post": operation(
                "join",
                "Join as a listener (the waiting room)",
                "admission",
                {
                    200: answer("admitted: the pass and the stream's address", admitted),
                    202: {
                        **answer("wait in line (come back with the ticket) or solve the puzzle first", waiting),
                        "headers": retry_after(),
                    },
                },
                (400, 401, 403, 404, 409, 429),
                body=json_body(join_body, required=True),
            ),
        },
        "/api/spaces/{space_id}/under-attack": {
            "parameters": space_id,
            "post": operation(
                "setUnderAttack",
                "Switch the joiners' puzzle (host or co-host)",
                "admission",
                {200: answer("the mode", obj({"mode": string(enum=["auto", "on", "off"]), "active": BOOLEAN}))},
                (400, *host),
                body=json_body(obj({"mode": string(enum=["auto", "on", "off"])}), required=True),
                security=SPACE_TOKEN,
                shed=False,
            ),
        },
        "/api/spaces/{space_id}/board": {
            "parameters": space_id,
            "get": operation(
                "board",
                "The go/no-go board (host or co-host)",
                "admission",
                {200: answer("listeners, joins, the puzzle, load, the stream, the last rehearsal", {"type": "object"})},
                host,
                security=SPACE_TOKEN,
                shed=False,
            ),
        },
        "/api/spaces/{space_id}/listener-links": {
            "parameters": space_id,
            "post": operation(
                "createListenerLink",
                "A signed listener link for a private space (host or co-host)",
                "admission",
                {
                    201: answer(
                        "the link",
                        obj({"token": string(), "page": URL, "hls": URL, "not_before": INTEGER, "expires": INTEGER}),
                    )
                },
                (400, *host),
                body=json_body(
                    obj(
                        {"valid_for_s": {"type": "integer", "minimum": 60, "maximum": 2678400}, "not_before": INTEGER},
                        required=[],
                    )
                ),
                security=SPACE_TOKEN,
            ),
            "delete": operation(
                "withdrawListenerLinks",
                "Withdraw every listener link given out so far (host or co-host); new links work",
                "admission",
                {200: answer("the links' new generation", obj({"withdrawn": BOOLEAN, "link_generation": INTEGER}))},
                host,
                security=SPACE_TOKEN,
                shed=False,
            ),
        },
        "/api/spaces/{space_id}/rehearsals": {
            "parameters": space_id,
            "post": operation(
                "reportRehearsal",
                "Leave a `podium rehearse` report on the board (host or co-host)",
                "admission",
                {201: answer("what the board keeps of it", {"type": "object"})},
                (400, *host),
                body=json_body(rehearsal, required=True),
                security=SPACE_TOKEN,
            ),
        },
    }


def stage_routes() -> dict[str, Any]:
    space_id = [SPACE_ID]
    member = {200: answer("the member as the stage sees them now", ref("Member"))}
    stage = obj(
        {
            "speakers": array(
                obj(
                    {
                        "id": string(),
                        "name": string(),
                        "role": string(),
                        "muted": BOOLEAN,
                        "connected": BOOLEAN,
                        "level": NUMBER,
                        "speaking": BOOLEAN,
                    }
                )
            ),
            "hands": INTEGER,
        }
    )
    invite = obj(
        {
            "token": string(),
            "role": string(enum=["speaker", "cohost"]),
            "whip": URL,
            "invite_url": URL,
            "expires_in_s": INTEGER,
        }
    )
    named = json_body(obj({"name": string(maxLength=60)}, required=["name"]), required=True)
    acting = (401, 403, 404, 409)
    action = path_param(
        "action",
        "what to do to the member",
        string(enum=["accept", "decline", "audience", "mute", "unmute", "remove", "block"]),
    )
    return {
        "/api/spaces/{space_id}/invites": {
            "parameters": space_id,
            "post": operation(
                "createInvite",
                "Invite a speaker or co-host (host; co-host for speakers)",
                "stage",
                {201: answer("the invite (expires after 24 h, works once)", invite)},
                (400, *acting),
                body=json_body(obj({"role": string(enum=["speaker", "cohost"])}, required=[])),
                security=SPACE_TOKEN,
                shed=False,
            ),
        },
        "/api/spaces/{space_id}/invites/redeem": {
            "parameters": space_id,
            "post": operation(
                "redeemInvite",
                "Redeem an invite (Bearer: the invite token) for one's own member token",
                "stage",
                {
                    201: answer(
                        "the member and their token", obj({"member": ref("Member"), "token": string(), "whip": URL})
                    )
                },
                (400, *acting),
                body=named,
                security=SPACE_TOKEN,
                shed=False,
            ),
        },
        "/api/spaces/{space_id}/guests": {
            "parameters": space_id,
            "post": operation(
                "joinAsGuest",
                "A named guest in the audience (a token to raise a hand with)",
                "stage",
                {201: answer("the guest and their token", ref("MemberWithToken"))},
                (400, 404, 409, 429),
                body=named,
                shed=False,
            ),
        },
        "/api/spaces/{space_id}/stage": {
            "parameters": space_id,
            "get": operation(
                "getStage",
                "Who is on stage, muted, speaking",
                "stage",
                {200: answer("the stage", stage)},
                (404,),
                shed=False,
            ),
        },
        "/api/spaces/{space_id}/hands": {
            "parameters": space_id,
            "get": operation(
                "getHands",
                "The hand queue (host, co-host)",
                "stage",
                {
                    200: answer(
                        "raised hands, first first", obj({"hands": array(obj({"id": string(), "name": string()}))})
                    )
                },
                (401, 403, 404),
                security=SPACE_TOKEN,
                shed=False,
            ),
        },
        "/api/spaces/{space_id}/me": {
            "parameters": space_id,
            "get": operation(
                "getMe",
                "The member a token speaks for",
                "stage",
                member,
                (401, 403, 404),
                security=SPACE_TOKEN,
                shed=False,
            ),
        },
        "/api/spaces/{space_id}/hand": {
            "parameters": space_id,
            "post": operation(
                "raiseHand", "Raise a hand (guest)", "stage", member, acting, security=SPACE_TOKEN, shed=False
            ),
            "delete": operation(
                "lowerHand", "Lower a hand (guest)", "stage", member, acting, security=SPACE_TOKEN, shed=False
            ),
        },
        "/api/spaces/{space_id}/leave": {
            "parameters": space_id,
            "post": operation(
                "leaveStage", "Leave the stage (speaker)", "stage", member, acting, security=SPACE_TOKEN, shed=False
            ),
        },
        "/api/spaces/{space_id}/members/{member_id}/{action}": {
            "parameters": [SPACE_ID, path_param("member_id", "a member's id", string(maxLength=64)), action],
            "post": operation(
                "actOnMember",
                "accept or decline a hand, send to the audience, mute, unmute (oneself), remove, block",
                "stage",
                member,
                (400, *acting),
                security=SPACE_TOKEN,
                shed=False,
            ),
        },
    }


def audience_routes() -> dict[str, Any]:
    space_id = [SPACE_ID]
    credentials = json_body(obj({"username": string(), "password": string()}), required=True)
    user = obj({"id": string(), "username": string()})
    new_post = obj(
        {
            "kind": string(enum=["comment", "question"]),
            "text": string(),
            "client_id": string(minLength=8, maxLength=64, pattern="^[A-Za-z0-9_-]+$"),
        }
    )
    moderation = obj(
        {"pinned": PIN, "slow_mode_s": {"type": "integer", "minimum": 0}, "posting_open": BOOLEAN},
        required=[],
        additionalProperties=False,
    )
    post_id = path_param("post_id", "a post's id")
    moderator = (401, 403, 404)
    return {
        "/api/accounts": {
            "post": operation(
                "signUp",
                "Create an account (to post; listening needs none)",
                "audience",
                {201: answer("the account", user)},
                (400, 409, 429),
                body=credentials,
            ),
        },
        "/api/sessions": {
            "post": operation(
                "signIn",
                "Sign in: a token for API clients, cookies for the browser",
                "audience",
                {200: answer("the session token and the user", obj({"token": string(), "user": user}))},
                (400, 401, 429),
                body=credentials,
            ),
            "delete": operation(
                "signOut",
                "Sign out: the session (token or cookie) stops working on every node, and the cookies are cleared",
                "audience",
                {200: answer("done", obj({"signed_out": BOOLEAN}))},
            ),
        },
        "/api/sessions/me": {
            "get": operation(
                "whoAmI",
                "The signed-in account",
                "audience",
                {200: answer("the account", user)},
                (401, 403),
                security=ACCOUNT,
            ),
        },
        "/api/spaces/{space_id}/posts": {
            "parameters": space_id,
            "post": operation(
                "createPost",
                "Post a comment or a question (account); a retry with the same client_id is the same post",
                "audience",
                {
                    201: answer("the new post", ref("Post")),
                    200: answer("the post, already stored (a retry)", ref("Post")),
                },
                (400, 401, 403, 404, 409, 429),
                body=json_body(new_post, required=True),
                security=ACCOUNT,
            ),
            "get": operation(
                "listAllPosts",
                "Every post, for moderators (host, co-host)",
                "audience",
                {200: answer("the posts", obj({"posts": array({"allOf": [ref("Post"), obj({"user_id": string()})]})}))},
                moderator,
                security=SPACE_TOKEN,
            ),
        },
        "/api/spaces/{space_id}/questions": {
            "parameters": space_id,
            "get": operation(
                "listQuestions",
                "Ranked questions",
                "audience",
                {200: answer("the questions", obj({"questions": array(ref("Post"))}))},
                (404,),
            ),
        },
        "/api/spaces/{space_id}/comments": {
            "parameters": space_id,
            "get": operation(
                "listComments",
                "The latest comments",
                "audience",
                {200: answer("the comments", obj({"comments": array(ref("Post"))}))},
                (404,),
            ),
        },
        "/api/spaces/{space_id}/questions/{post_id}/vote": {
            "parameters": [SPACE_ID, post_id],
            "post": operation(
                "vote",
                "Vote for a question (account; one vote each)",
                "audience",
                {200: answer("the question", {"allOf": [ref("Post"), obj({"voted": BOOLEAN, "counted": BOOLEAN})]})},
                (400, 401, 403, 404, 409, 429),
                security=ACCOUNT,
            ),
        },
        "/api/spaces/{space_id}/posts/{post_id}/{action}": {
            "parameters": [
                SPACE_ID,
                post_id,
                path_param("action", "the moderation", string(enum=["hide", "show", "delete", "answer"])),
            ],
            "post": operation(
                "moderatePost",
                "Hide, show, delete or answer a post (host, co-host)",
                "audience",
                {200: answer("the post", ref("Post"))},
                (400, *moderator, 409),
                security=SPACE_TOKEN,
            ),
        },
        "/api/spaces/{space_id}/moderation": {
            "parameters": space_id,
            "get": operation(
                "getModeration",
                "The pinned post, slow mode, posting open",
                "audience",
                {200: answer("the settings", ref("Moderation"))},
                (404,),
            ),
            "post": operation(
                "setModeration",
                "Pin, slow mode, close posting (host, co-host)",
                "audience",
                {200: answer("the settings", ref("Moderation"))},
                (400, *moderator),
                body=json_body(moderation, required=True),
                security=SPACE_TOKEN,
            ),
        },
        "/api/spaces/{space_id}/blocked/{user_id}": {
            "parameters": [SPACE_ID, path_param("user_id", "an account's id")],
            "post": operation(
                "blockUser",
                "Block a user from posting (host, co-host)",
                "audience",
                {200: answer("the block", obj({"user": string(), "blocked": BOOLEAN}))},
                (400, *moderator),
                security=SPACE_TOKEN,
            ),
            "delete": operation(
                "unblockUser",
                "Let a user post again (host, co-host)",
                "audience",
                {200: answer("the block", obj({"user": string(), "blocked": BOOLEAN}))},
                (400, *moderator),
                security=SPACE_TOKEN,
            ),
        },
        "/api/spaces/{space_id}/reactions": {
            "parameters": space_id,
            "post": operation(
                "react",
                "A reaction, coalesced into counts per second",
                "audience",
                {202: answer("accepted", obj({"accepted": BOOLEAN}))},
                (400, 404, 409, 429),
                body=json_body(obj({"emoji": string(enum=["👏", "❤️", "😂", "😮", "🔥", "👍"])}), required=True),
            ),
        },
    }


def recording_routes() -> dict[str, Any]:
    space_id = [SPACE_ID]
    replay = obj(
        {
            "duration_s": NUMBER,
            "ended": BOOLEAN,
            "speakers": array(obj({"at_s": NUMBER, "member": nullable(string()), "name": string()})),
            "reactions": array(obj({"at_s": NUMBER, "counts": {"type": "object"}})),
            "first_program_date_time": nullable(string()),
            "posts": array({"allOf": [ref("PublicPost"), obj({"at_s": NUMBER})]}),
        }
    )
    fingerprint = obj({"sha256": string(), "segments": INTEGER, "duration_s": NUMBER, "complete": BOOLEAN})
    verdict = obj(
        {
            "valid": BOOLEAN,
            "checks": array(obj({"name": string(), "ok": BOOLEAN, "detail": string()})),
            "facts": {"type": "object"},
        }
    )
    clip_id = path_param("clip_id", "a clip's id", string(pattern="^c[0-9a-f]{12}$"))
    return {
        "/api/spaces/{space_id}/replay": {
            "parameters": space_id,
            "get": operation(
                "getReplay",
                "Who spoke when, and the shown posts, on the recording's time axis",
                "recording",
                {200: answer("the replay's timeline", replay)},
                (404,),
            ),
        },
        "/api/spaces/{space_id}/recording": {
            "parameters": space_id,
            "get": operation(
                "getRecording",
                "The recording so far: its SHA-256, segment count and length",
                "recording",
                {200: answer("the fingerprint", fingerprint)},
                (404, 409),
            ),
        },
        "/api/spaces/{space_id}/clips": {
            "parameters": space_id,
            "post": operation(
                "createClip",
                "Cut a signed clip of 10 to 120 s (public spaces, live or ended)",
                "recording",
                {
                    201: {
                        **answer("the clip", ref("Clip")),
                        "headers": {"Location": {"description": "the clip's page", "schema": URL}},
                    }
                },
                (400, 403, 404, 409, 429),
                body=json_body(
                    obj(
                        {
                            "start_s": {"type": "number", "minimum": 0},
                            "duration_s": {"type": "number", "minimum": 10, "maximum": 120},
                        },
                        additionalProperties=False,
                    ),
                    required=True,
                ),
            ),
        },
        "/api/spaces/{space_id}/clips/{clip_id}": {
            "parameters": [SPACE_ID, clip_id],
            "get": operation("getClip", "A clip's facts", "recording", {200: answer("the clip", ref("Clip"))}, (404,)),
        },
        "/api/verify": {
            "post": operation(
                "verifyClip",
                "Is this clip file an unaltered excerpt of this instance's recording?",
                "recording",
                {200: answer("the verdict and each check", verdict)},
                (400, 429),
                body=binary_body("application/octet-stream", "the clip file as it is (at most 4 MiB)"),
            ),
        },
    }


def webhook_routes() -> dict[str, Any]:
    space_id = [SPACE_ID]
    host = (401, 403, 404)
    delivery = obj(
        {
            "event_id": string(),
            "type": string(),
            "webhook": string(),
            "url": URL,
            "attempt": INTEGER,
            "status": nullable(INTEGER),
            "error": nullable(string()),
            "delivered": BOOLEAN,
            "duration_ms": nullable(NUMBER),
            "at": TIME,
        }
    )
    registered = {"allOf": [ref("Webhook"), obj({"secret": string(description="shown once, never again")})]}
    return {
        "/api/spaces/{space_id}/webhooks": {
            "parameters": space_id,
            "post": operation(
                "registerWebhook",
                "Have the space's events POSTed to a URL (host)",
                "webhooks",
                {201: answer("the subscription and its secret", registered)},
                (400, *host, 409),
                body=json_body(
                    obj({"url": string(format="uri", maxLength=2048)}, additionalProperties=False), required=True
                ),
                security=SPACE_TOKEN,
            ),
            "get": operation(
                "listWebhooks",
                "The subscriptions and the delivery log (host)",
                "webhooks",
                {
                    200: answer(
                        "subscriptions and deliveries",
                        obj({"webhooks": array(ref("Webhook")), "deliveries": array(delivery)}),
                    )
                },
                host,
                security=SPACE_TOKEN,
            ),
        },
        "/api/spaces/{space_id}/webhooks/{hook_id}": {
            "parameters": [SPACE_ID, path_param("hook_id", "a subscription's id")],
            "delete": operation(
                "deleteWebhook",
                "Stop sending to a URL (host)",
                "webhooks",
                {204: answer("deleted")},
                host,
                security=SPACE_TOKEN,
            ),
        },
    }


def stream_routes() -> dict[str, Any]:
    """WHIP (RFC 9725) ingest: SDP in, SDP out. Described for clients; fuzzing it says nothing."""
    sdp_answer = {
        **answer("the SDP answer", string(), media="application/sdp"),
        "headers": {
            "Location": {"description": "the session: DELETE it to stop", "schema": URL},
            "ETag": {"description": "the session's entity tag", "schema": string()},
        },
    }
    session = [SPACE_ID, path_param("session_id", "a WHIP session's id")]
    return {
        "/whip/{space_id}": {
            "parameters": [SPACE_ID],
            "post": operation(
                "whipPublish",
                "Publish a speaker's audio (SDP offer; Bearer host or member token)",
                "stage",
                {201: sdp_answer},
                (400, 401, 403, 404, 409, 429, 503),
                body=binary_body("application/sdp", "an SDP offer with one Opus audio section"),
                security=SPACE_TOKEN,
                shed=False,
            ),
        },
        "/whip/{space_id}/{session_id}": {
            "parameters": session,
            "delete": operation(
                "whipStop",
                "End a WHIP session",
                "stage",
                {200: answer("ended")},
                (401, 403, 404),
                security=SPACE_TOKEN,
                shed=False,
            ),
        },
    }


def embed_routes() -> dict[str, Any]:
    layout = query_param("layout", "the player's layout", string(enum=["compact", "full"]))
    code = obj({"html": string(), "iframe": string()}, required=["html", "iframe"])
    languages = string(enum=sorted(i18n.languages()))
    oembed = obj(
        {
            "type": {"const": "rich"},
            "version": {"const": "1.0"},
            "title": string(),
            "provider_name": string(),
            "provider_url": URL,
            "html": string(),
            "width": INTEGER,
            "height": INTEGER,
            "cache_age": INTEGER,
        },
        required=["type", "version", "html", "width", "height"],
    )
    pixels = {"type": "string", "pattern": "^[0-9]+$"}
    return {
        "/api/spaces/{space_id}/embed-code": {
            "parameters": [SPACE_ID],
            "get": operation(
                "embedCode",
                "The consent-first snippet for an article (it loads nothing from this instance before the "
                "reader's click) and the plain player frame",
                "embedding",
                {200: answer("the snippet and the frame", code)},
                (400, 403, 404),
                parameters=[
                    layout,
                    query_param("lang", "the snippet's language", languages),
                ],
            ),
        },
        "/oembed": {
            "get": operation(
                "oembed",
                "oEmbed 1.0: a space's page or player URL as a rich player frame",
                "embedding",
                {200: answer("the oEmbed answer", oembed)},
                (400, 401, 404, 501),
                parameters=[
                    query_param("url", "a space's page (/s/<id>) or player (/embed/<id>) on this instance", URL, True),
                    query_param("format", "json (xml is not offered: 501)", string(enum=["json", "xml"])),
                    query_param("maxwidth", "the widest frame the consumer takes, in pixels", pixels),
                    query_param("maxheight", "the tallest frame the consumer takes, in pixels", pixels),
                ],
            ),
        },
    }


def probe_routes() -> dict[str, Any]:
    checks = obj({"database": BOOLEAN, "bus": BOOLEAN})
    ready = obj(
        {"ready": BOOLEAN, "node": string(), "checks": checks, "error": string()}, required=["ready", "node", "checks"]
    )
    return {
        "/healthz": {
            "get": operation(
                "alive",
                "The process answers",
                "operations",
                {200: answer("alive", obj({"alive": BOOLEAN, "node": string()}))},
                shed=False,
            ),
        },
        "/readyz": {
            "get": operation(
                "ready",
                "The node can do its work now (its database and bus answer)",
                "operations",
                {200: answer("ready", ready), 503: answer("not ready: send it no traffic for now", ready)},
                shed=False,
            ),
        },
        "/openapi.json": {
            "get": operation(
                "openapi",
                "This document",
                "operations",
                {200: answer("the OpenAPI document", {"type": "object"})},
                shed=False,
            ),
        },
    }
