"""Wiring: the one place that picks concrete backends and builds the ASGI application."""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import fields
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from podium.accounts import Accounts
from podium.addresses import TrustedProxies
from podium.admission.gate import Gate, sample_lag
from podium.admission.joins import Joins
from podium.admission.limits import RateLimits, storage_for
from podium.admission.load import Capacity, Governor
from podium.admission.tickets import TicketSigner
from podium.audience.feed import Feed
from podium.audience.posts import Posting
from podium.backends.counts import MemoryCounts, RedisCounts
from podium.backends.interfaces import Bus, Placement, SharedCounts
from podium.backends.memory_bus import MemoryBus
from podium.backends.placement import TIMELINE_PREFIX, MemoryPlacement, RedisPlacement
from podium.backends.redis_bus import RedisBus
from podium.backends.sql import SqlSpaceStore
from podium.backends.storage import media_store_for
from podium.captions.service import Captioning, CaptionWorkersLike
from podium.clock import Clock, SystemClock
from podium.delivery import hls
from podium.delivery.fast import HlsFastPath
from podium.delivery.links import LinkSigner, link_key, nginx_include
from podium.delivery.relay import OwnerRouter
from podium.domain.tokens import TokenSigner
from podium.errors import PodiumError
from podium.media import ice
from podium.recording import Recordings, load_or_create_signing_key
from podium.services import Services
from podium.settings import Settings
from podium.spaces.directory import SpaceDirectory
from podium.spaces.listeners import COUNTS_SHARE_S, Listeners
from podium.spaces.members import StageMembers
from podium.spaces.ownership import Follower, Ownership
from podium.spaces.schedule import Schedule
from podium.spaces.stages import StageManager
from podium.web.forwarded import ForwardedFor
from podium.web.http import error_response
from podium.web.openapi import document
from podium.web.routes import TABLE, router_routes
from podium.webhooks import Webhooks

log = logging.getLogger(__name__)

SECRET_NAME = "secret"
# The key of signed listener links, as an nginx include (deploy/nginx/podium.conf includes it).
LINK_KEY_NGINX = "link-key.nginx.conf"


def write_private(path: Path, text: str) -> None:
    """A file only this user may read (mode 0600), written whole or not at all."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)
    os.replace(temporary, path)


def load_or_create_secret(data_dir: Path) -> str:
    """The instance secret signs every token. Generated on first start, kept (mode 0600) after."""
    path = data_dir / SECRET_NAME
    if path.exists():
        secret = path.read_text(encoding="ascii").strip()
        if len(secret) >= 32:
            return secret
        raise PodiumError(f"{path} holds no usable secret; remove it to have a new one generated")
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secret + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return secret


def database_url(settings: Settings) -> str:
    """SQLite in the data folder unless PostgreSQL is named (through the psycopg driver)."""
    url = settings.database_url or f"sqlite:///{(settings.data_dir / 'podium.db').resolve()}"
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def build(settings: Settings, clock: Clock | None = None) -> Services:
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    ice.configure(
        settings.ice_loopback, settings.ice_server_list(), settings.turn_secret, settings.turn_credential_lifetime_s
    )
    clock = clock or SystemClock()
    database = SqlSpaceStore(database_url(settings))
    secret = settings.secret or load_or_create_secret(data_dir)
    signer = TokenSigner(secret, member_ttl_s=settings.member_token_ttl_s)
    bus: Bus = RedisBus(settings.bus_url) if settings.bus_url else MemoryBus()
    media = media_store_for(settings.storage_url, data_dir)
    links = LinkSigner(link_key(secret))
    write_private(data_dir / LINK_KEY_NGINX, nginx_include(links.key))
    # Between nodes (a Redis bus): listener counts summed, stage and timeline leases, all in the
    # same Redis. On one node the same seams are in memory, and this node holds every lease.
    between_nodes = bool(settings.bus_url)
    shared: SharedCounts
    placement: Placement
    timeline_leases: Placement
    if settings.bus_url:
        shared = RedisCounts(settings.bus_url, ttl_s=3 * COUNTS_SHARE_S, clock=clock)
        placement = RedisPlacement(settings.bus_url)
        timeline_leases = RedisPlacement(settings.bus_url, TIMELINE_PREFIX)
    else:
        shared, placement, timeline_leases = (
            MemoryCounts(ttl_s=3 * COUNTS_SHARE_S, clock=clock),
            MemoryPlacement(clock),
            MemoryPlacement(clock),
        )
    node_id = settings.node_id or secrets.token_hex(4)
    directory = SpaceDirectory(settings, database, bus, signer, links, clock, node_id)
    ownership = Ownership(placement, node_id, settings.own_url, clock)
    listeners = Listeners(directory, shared, presence_secret=secret, between_nodes=between_nodes)
    stages = StageManager(directory, listeners, ownership, media, resume_on_start=not between_nodes)
    members = StageMembers(directory, stages)
    schedule = Schedule(directory, stages)
    follower = Follower(directory, stages, ownership)
    limits = RateLimits(storage_for(settings.limits_url))
    posting = Posting(database, directory, limits)
    # Between nodes, one node at a time makes a space's timeline (the stage's, while it runs).
    feed = Feed(
        directory,
        members,
        stages,
        listeners,
        ownership,
        media,
        posting,
        leases=timeline_leases,
        max_comments=settings.comments_per_interval,
    )
    accounts = Accounts(database, signer, limits, clock, settings)
    recordings = Recordings(directory, media, load_or_create_signing_key(data_dir, settings.secret), limits)
    # The download is made when a space ends, before the end is answered.
    stages.end_hooks.append(recordings.finish)
    governor = Governor(Capacity(settings.max_in_flight, settings.max_lag_ms), clock)
    joins = Joins(TicketSigner(secret), governor, limits, clock, settings)
    webhooks = Webhooks(directory, database, allow_private=settings.webhooks_allow_private)
    captioning = Captioning(directory, media, bus, getattr(settings, "captions_language", "en"))
    captioning.use(*caption_workers(settings, captioning))
    stages.frame_tap = captioning.frames
    # The workers flush the ended space's last words (after the download: it never waits for them).
    stages.end_hooks.append(captioning.space_ended)
    return Services(
        settings,
        clock,
        signer,
        bus,
        database,
        media,
        shared,
        placement,
        directory,
        members,
        stages,
        schedule,
        listeners,
        ownership,
        follower,
        accounts,
        posting,
        feed,
        recordings,
        governor,
        joins,
        webhooks,
        limits,
        captioning,
    )


def caption_workers(settings: Settings, captioning: Captioning) -> tuple[CaptionWorkersLike | None, str | None]:
    """The node's caption workers (not started yet), or None and why there are none."""
    engine = str(getattr(settings, "captions_engine", "off"))
    if engine == "off":
        return None, "captions are switched off (PODIUM_CAPTIONS_ENGINE=off)"
    try:
        # By name: the workers (and their engines' imports) load only on a node that captions.
        module = importlib.import_module("podium.captions.workers")
    except ImportError as error:
        return None, f"the caption workers cannot be loaded ({error})"
    workers: CaptionWorkersLike = module.CaptionWorkers(
        module.CaptionConfig.from_settings(settings), captioning.on_caption
    )
    return workers, None


async def _podium_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, PodiumError)
    return error_response(error)


async def _http_error(request: Request, error: Exception) -> Response:
    """Starlette's own refusals (no such route, wrong method) in the same JSON shape as ours."""
    assert isinstance(error, HTTPException)
    messages = {404: "no such page or API endpoint", 405: f"{request.method} is not allowed here"}
    return JSONResponse(
        {"error": messages.get(error.status_code, str(error.detail))},
        status_code=error.status_code,
        headers=dict(error.headers or {}),
    )


NOT_GZIPPED = (*DEFAULT_EXCLUDED_CONTENT_TYPES, hls.PLAYLIST_TYPE, hls.MEDIA_TYPE)


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> Starlette:
    settings = settings or Settings.load()
    parts = build(settings, clock)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The stages first: every unfinished space in memory, interrupted ends finished.
        # The caption workers first: a resumed stage feeds them from its first frame.
        await parts.captioning.start()
        for part in (parts.stages, parts.listeners, parts.schedule, parts.follower, parts.feed, parts.webhooks):
            await part.start()
        lag = asyncio.create_task(sample_lag(parts.governor), name="lag-sampler")
        try:
            yield
        finally:
            lag.cancel()
            # The listeners' peaks once the ends are stored; the connections last.
            for service in (parts.feed, parts.webhooks, parts.recordings, parts.schedule, parts.follower, parts.stages):
                await service.stop()
            await parts.captioning.stop()
            await parts.listeners.stop()
            for closing in (parts.space_store, parts.bus, parts.shared_counts, parts.placement, parts.joins):
                await closing.close()
            await parts.limits.close()

    app = Starlette(
        routes=router_routes(TABLE),
        # Pages and JSON go out compressed where the browser takes it; static files are compressed
        # once ahead (web.compressed) and audio never (it would not shrink). Playlists neither: they
        # are the listeners' hot path, answered by the fast path before this app in any case.
        middleware=[Middleware(GZipMiddleware, minimum_size=1024, compresslevel=6, exclude_content_types=NOT_GZIPPED)],
        exception_handlers={PodiumError: _podium_error, HTTPException: _http_error},
        lifespan=lifespan,
    )
    # Each service by its name (tests and operators reach them there), and all of them together.
    app.state.services = parts
    for field in fields(parts):
        setattr(app.state, field.name, getattr(parts, field.name))
    # The document follows the settings (limits that are settings are read from them).
    app.state.openapi = document(TABLE.documented(), settings)
    return app


def create_asgi(settings: Settings | None = None, clock: Clock | None = None) -> ASGIApp:
    """The application as served: the listener hot path in front of the full router."""
    return served(create_app(settings, clock))


def served(app: Starlette) -> ASGIApp:
    """An application with what stands in front of it when served: the client's address, the door,
    the relay between nodes, the listener hot path."""
    settings = app.state.settings
    directory: SpaceDirectory = app.state.directory
    stages: StageManager = app.state.stages
    inner: ASGIApp = HlsFastPath(app, stages, directory, TABLE.name_of)
    if settings.bus_url:
        # Between nodes: what belongs to a stage on another node is answered by that node.
        inner = OwnerRouter(
            inner, directory, stages, app.state.ownership, TABLE.stage_owned, timeout_s=settings.hls_hold_s + 5
        )
    # Outermost first: the client's own address behind the cache tier, the door (body cap, requests
    # per address, shedding by class), then the listener hot path.
    gate = Gate(
        inner,
        app.state.governor,
        settings.max_body_bytes,
        TABLE.door,
        app.state.signer,
        app.state.joins.signer,
        settings.max_in_flight_per_address,
    )
    return ForwardedFor(gate, TrustedProxies.parse(settings.forwarded_allow_ips))
