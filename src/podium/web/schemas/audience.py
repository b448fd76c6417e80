"""The audience's models: accounts, posts, moderation, reactions; the host's webhooks. Limits on
what people write are checked by the domain, with messages that say what to change; here they are
only described for the document (`rule`), so a body breaking one gets the domain's message."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

import msgspec

from podium.audience.timeline import REACTIONS
from podium.domain.accounts import MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS
from podium.domain.posts import MAX_CHARS, MAX_PIN_CHARS, MAX_SLOW_MODE_S, PostKind, PostState
from podium.domain.webhooks import MAX_URL_CHARS
from podium.web.schemas import Model, Shape, Time, Url


def rule(description: str | None = None, **schema: Any) -> msgspec.Meta:
    """A limit the domain checks (with its own message), shown in the document."""
    return msgspec.Meta(description=description, extra_json_schema=schema)


# -- accounts and sessions ---------------------------------------------------------------------
class Credentials(Model):
    username: Annotated[str, rule("3 to 32 characters: a-z, digits, '_', '.' or '-', starting with a letter or digit")]
    password: Annotated[str, rule(f"{MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")]


class Account(Shape):
    id: str
    username: str


class Session(Shape):
    token: Annotated[str, msgspec.Meta(description="for `Authorization: Bearer`; the browser gets cookies")]
    user: Account


class SignedOut(Shape):
    signed_out: bool


# -- posts ---------------------------------------------------------------------------------------
Kind = Literal["comment", "question"]
State = Literal["open", "answered", "hidden", "deleted"]
COMMENT_CHARS, QUESTION_CHARS = MAX_CHARS[PostKind.COMMENT], MAX_CHARS[PostKind.QUESTION]
assert set(get_args(Kind)) == set(PostKind) and set(get_args(State)) == set(PostState)


class NewPost(Model):
    kind: Annotated[str, rule(enum=[k.value for k in PostKind])]
    text: Annotated[str, rule(f"at most {COMMENT_CHARS} characters for a comment, {QUESTION_CHARS} for a question")]
    client_id: Annotated[
        str,
        rule(
            "the client's own id for this post (a fresh one per post): a retry with it is the same post",
            minLength=8,
            maxLength=64,
            pattern="^[A-Za-z0-9_-]+$",
        ),
    ]


class PublicPost(Shape):
    """What everyone may see of a post."""

    id: str
    kind: Kind
    text: str
    author: str
    created_at: Time
    state: State
    votes: int


class Post(PublicPost):
    """What the author's client sees: with the id it chose (a retry is recognised by it)."""

    client_id: str


class ModeratedPost(Post):
    user_id: str


class VotedQuestion(Post):
    voted: bool
    counted: Annotated[bool, msgspec.Meta(description="false: this account had already voted")]


class Questions(Shape):
    questions: list[Post]


class Comments(Shape):
    comments: list[Post]


class Posts(Shape):
    posts: list[ModeratedPost]


# -- moderation ----------------------------------------------------------------------------------
class PinChange(Model):
    text: Annotated[str, rule(f"at most {MAX_PIN_CHARS} characters")]
    url: Annotated[str, rule("an http(s) link, at most 500 characters", format="uri-reference")] | None = None


class ModerationChange(Model):
    """Only the fields sent change; `pinned: null` takes the pin down."""

    posting_open: bool | msgspec.UnsetType = msgspec.UNSET
    slow_mode_s: Annotated[int, rule(minimum=0, maximum=MAX_SLOW_MODE_S)] | msgspec.UnsetType = msgspec.UNSET
    pinned: PinChange | msgspec.UnsetType | None = msgspec.UNSET


class Pin(Shape):
    text: str
    url: Url | msgspec.UnsetType = msgspec.UNSET  # absent when the pin has no link


class Moderation(Shape):
    posting_open: bool
    slow_mode_s: int
    pinned: Pin | None


class Block(Shape):
    user: str
    blocked: bool


# -- reactions -----------------------------------------------------------------------------------
class Reaction(Model):
    emoji: Annotated[str, rule(enum=list(REACTIONS))]


class ReactionTaken(Shape):
    accepted: bool


# -- webhooks ------------------------------------------------------------------------------------
class NewWebhook(Model):
    url: Annotated[str, rule(format="uri", maxLength=MAX_URL_CHARS)]


class Webhook(Shape):
    id: str
    url: Url
    events: list[str]
    created_at: Time


class RegisteredWebhook(Webhook):
    secret: Annotated[str, msgspec.Meta(description="shown once, never again")]


class Delivery(Shape):
    event_id: str
    type: str
    webhook: str
    url: Url
    attempt: int
    status: int | None
    error: str | None
    delivered: bool
    duration_ms: float | None
    at: Time


class WebhookLog(Shape):
    webhooks: list[Webhook]
    deliveries: list[Delivery]
