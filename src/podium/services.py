"""What a handler may ask the application for: each service by its own name, typed (`app.py`
puts them on `app.state`). A handler takes only the services it uses."""

from __future__ import annotations

from starlette.requests import Request

from podium.backends.interfaces import MediaStore, SpaceStore
from podium.clock import Clock
from podium.domain.tokens import TokenSigner
from podium.settings import Settings
from podium.spaces.directory import SpaceDirectory
from podium.spaces.listeners import Listeners
from podium.spaces.members import StageMembers
from podium.spaces.stages import StageManager


def settings(request: Request) -> Settings:
    found: Settings = request.app.state.settings
    return found


def directory(request: Request) -> SpaceDirectory:
    found: SpaceDirectory = request.app.state.directory
    return found


def members(request: Request) -> StageMembers:
    found: StageMembers = request.app.state.members
    return found


def stages(request: Request) -> StageManager:
    found: StageManager = request.app.state.stages
    return found


def listeners(request: Request) -> Listeners:
    found: Listeners = request.app.state.listeners
    return found


def media(request: Request) -> MediaStore:
    found: MediaStore = request.app.state.media
    return found


def space_store(request: Request) -> SpaceStore:
    found: SpaceStore = request.app.state.space_store
    return found


def clock(request: Request) -> Clock:
    found: Clock = request.app.state.clock
    return found


def signer(request: Request) -> TokenSigner:
    found: TokenSigner = request.app.state.signer
    return found
