"""The services of a running node, built in one place (`app.build`) and handed to whoever needs
them: to a handler, through its request (`of(request)`); to everything else, in its constructor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request

if TYPE_CHECKING:
    from podium.accounts import Accounts
    from podium.admission.joins import Joins
    from podium.admission.limits import RateLimits
    from podium.admission.load import Governor
    from podium.audience.feed import Feed
    from podium.audience.posts import Posting
    from podium.backends.interfaces import Bus, MediaStore, Placement, SharedCounts
    from podium.backends.sql import SqlSpaceStore
    from podium.captions.service import Captioning
    from podium.clock import Clock
    from podium.domain.tokens import TokenSigner
    from podium.recording import Recordings
    from podium.settings import Settings
    from podium.spaces.directory import SpaceDirectory
    from podium.spaces.listeners import Listeners
    from podium.spaces.members import StageMembers
    from podium.spaces.ownership import Follower, Ownership
    from podium.spaces.schedule import Schedule
    from podium.spaces.stages import StageManager
    from podium.webhooks import Webhooks


@dataclass(frozen=True)
class Services:
    settings: Settings
    clock: Clock
    signer: TokenSigner
    bus: Bus
    space_store: SqlSpaceStore
    media: MediaStore
    shared_counts: SharedCounts
    placement: Placement
    directory: SpaceDirectory
    members: StageMembers
    stages: StageManager
    schedule: Schedule
    listeners: Listeners
    ownership: Ownership
    follower: Follower
    accounts: Accounts
    posting: Posting
    feed: Feed
    recordings: Recordings
    governor: Governor
    joins: Joins
    webhooks: Webhooks
    limits: RateLimits
    captioning: Captioning


def of(request: Request) -> Services:
    """The node's services, for a handler (a handler uses only those it needs)."""
    found: Services = request.app.state.services
    return found
