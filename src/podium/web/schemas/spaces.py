"""Spaces: creating one, its public state, listeners' heartbeats, the speaker's ICE servers."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from podium.web.schemas import Model, Shape, Time, Url, setting

State = Literal["scheduled", "live", "ended"]
SpaceIdText = Annotated[str, msgspec.Meta(pattern="^[a-z0-9]{12}$")]


class NewSpace(Model):
    title: Annotated[str, setting("maxLength", "max_title_chars")]
    starts_at: Annotated[
        str | None, msgspec.Meta(description="ISO 8601, in the future (leave it out to start now)")
    ] = None
    record: bool = True
    private: bool = False


class RecordingSwitch(Model):
    record: bool


class Beat(Model):
    listener_id: Annotated[str, msgspec.Meta(description="the client_id the join was made with")]
    # The pass the join returned; also accepted as `Authorization: Bearer <pass>`.
    pass_: Annotated[str | None, msgspec.Meta(description="the pass the join returned")] = msgspec.field(
        default=None, name="pass"
    )
    leaving: bool = False


class Listeners(Shape):
    now: int
    peak: int
    unique: int
    # Listeners whose id falls below it beat; the others stay silent (DESIGN, bet 1).
    sample_rate: float


class SpaceUrls(Shape, omit_defaults=True):
    page: Annotated[Url, msgspec.Meta(description="the listener page")]
    host: Annotated[Url, msgspec.Meta(description="the host's console")]
    whip: Annotated[Url, msgspec.Meta(description="where the host and speakers publish (WHIP)")]
    hls: Annotated[Url, msgspec.Meta(description="the stream (LL-HLS)")]
    # Once a recorded space has ended: the live playlist, closed, is the replay; the download its remux.
    replay: Url | None = None
    replay_page: Url | None = None
    download: Url | None = None


class SpaceCaptions(Shape):
    enabled: Annotated[bool, msgspec.Meta(description="live captions on (false when the node has no engine)")]
    language: Annotated[str, msgspec.Meta(description="ISO 639-1")]


class Space(Shape):
    id: SpaceIdText
    title: str
    state: State
    created_at: Time
    starts_at: Time | None
    started_at: Time | None
    ended_at: Time | None
    record: bool
    private: bool
    preshow: bool
    listeners: Listeners
    speakers: int
    heartbeat_interval_s: float
    urls: SpaceUrls
    captions: SpaceCaptions


class CreatedSpace(Space):
    host_token: Annotated[str, msgspec.Meta(description="shown once: keep it")]


class Listing(Shape):
    live: list[Space]
    upcoming: list[Space]


class BeatTaken(Shape):
    state: State
    listeners: Listeners
    interval_s: float
    # False past the address's share, or outside the sample: the beat was taken, not counted.
    counted: bool


class HostToken(Shape):
    host_token: str
    expires: Annotated[int, msgspec.Meta(description="Unix seconds")]


class IceServer(Shape, omit_defaults=True):
    urls: list[str]
    username: str | None = None
    credential: str | None = None


class IceServers(Shape):
    ice_servers: list[IceServer]


class HoldAudio(Shape):
    hold_audio_s: float
