"""Settings: defaults, then `PODIUM_*` environment variables, then command-line flags."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import limits

from podium.addresses import TrustedProxies
from podium.errors import InvalidInput
from podium.media.ice_servers import IceServer, parse_ice_servers

ICE_LOOPBACK_MODES = ("0", "1", "only")
LOG_FORMATS = ("text", "json")
# "off" and the engines of podium.captions.engines (checked there too, with the reason an engine cannot run).
CAPTIONS_ENGINES = ("pocketsphinx", "whisper", "off")
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}")
Limit = str  # a rate in the `limits` notation ("10/minute", "100/hour"), checked at load


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("podium-data")
    # The URL people reach this instance at, e.g. https://podium.example.org; empty means
    # "root-relative URLs", which work behind any proxy that keeps the path.
    public_url: str = ""
    # "0": ICE offers the machine's interface addresses, as aiortc does. "1": also loopback,
    # so speakers on the same machine can connect. "only": loopback alone, both ways (tests, CI).
    ice_loopback: str = "0"
    # STUN/TURN servers for speakers behind NAT: comma-separated stun:host:port, turn:user:password@host:port
    # and turns:… entries, or a JSON array of {urls, username, credential}. See podium.media.ice_servers.
    ice_servers: str = field(default="", repr=False)
    # TURN's shared secret (coturn's static-auth-secret): each person on stage gets credentials of their
    # own for `turn_credential_lifetime_s` (a relay whose credentials expire is dropped). Empty: the entries' own.
    turn_secret: str = field(default="", repr=False)
    turn_credential_lifetime_s: int = 12 * 3600
    # Listeners beat every `heartbeat_interval_s`; one who misses `heartbeat_missed_limit`
    # beats in a row is no longer counted.
    heartbeat_interval_s: float = 5.0
    heartbeat_missed_limit: int = 3
    # Past this many listeners only a sample beats (each counted 1/p): origin writes stay flat.
    presence_sample_target: int = 2000
    # Only admitted listeners count (a heartbeat carries the join's pass). From one network address
    # at most this many listeners are counted at once (at scale, of the sampled ones: each counts
    # 1/p), and at most this many heartbeats are taken, in the `limits` notation.
    presence_listeners_per_address: int = 50
    heartbeat_limit_per_address: Limit = "1200/minute"
    # Upper bounds on what a request may send.
    max_json_bytes: int = 16 * 1024
    max_offer_bytes: int = 64 * 1024
    # ICE candidates taken from one WHIP offer (a browser sends a dozen at most); the stage sends
    # checks to each, so a stranger's long list is cut here. See podium.media.sdp.is_speaker_address.
    max_remote_candidates: int = 32
    max_title_chars: int = 200
    # The stage: co-hosts besides the host, and everyone on stage (host included).
    max_cohosts: int = 2
    max_speakers: int = 13
    # Named guests (to raise a hand): at most this many per space in the audience, and guest joins per address.
    max_guests: int = 200
    guest_limit_per_address: Limit = "10/minute"
    # Posting limits.
    post_limit_per_user: Limit = "10/minute"
    post_limit_per_address: Limit = "120/minute"
    signup_limit_per_address: Limit = "10/hour"
    # Sign-in: attempts for a name from an address; wrong passwords for a name from everywhere past which
    # it is under attack; then the attempts each address may make (never none: nobody locks an owner out).
    login_limit_per_address_and_name: Limit = "10/10minutes"
    login_failures_per_name: Limit = "20/hour"
    login_limit_under_attack: Limit = "1/minute"
    # How long host and member tokens last: from their issue, or from the space's start if later
    # (so about this long after a space ends). The host rotates the host token for a fresh one.
    member_token_ttl_s: int = 7 * 24 * 3600
    # Comments shown per timeline interval (about a second), chosen fairly; all are stored.
    comments_per_interval: int = 20
    # The pre-show opens the stream this long before a scheduled start, with hold audio.
    preshow_lead_s: float = 900.0
    # Spaces created per address and per account (DESIGN, bet 7); `spaces_need_account`: only with one.
    space_limit_per_address: Limit = "20/hour"
    space_limit_per_account: Limit = "20/hour"
    spaces_need_account: bool = False
    # The node's budget of stages (pre-shows and live spaces) running at once, on the one event loop
    # that also serves the audience. A full stage of 13 speakers costs 18.8 % of a core (bench/RESULTS.md,
    # Stage); stages may take three quarters of the loop: 75 % / 18.8 % = 4. Past it a pre-show waits for
    # a slot and a speaker who would start a stage gets 503 with Retry-After; an idle pre-show gives its
    # slot to a speaker. Raise it on faster cores, after `python bench/stage.py` there.
    max_stages: int = 4
    # A pre-show with no speaker and no listener closes after this long (from the start time at the
    # earliest) and stays closed, restarts too; the host can still go live by connecting.
    preshow_idle_close_s: float = 600.0
    # Parts and segments a stage may hold for the disk (a part every 0.5 s, a segment every 2 s). Past
    # it parts are dropped first, then segments (counted, logged): the 20 ms tick never waits for a disk.
    stage_write_queue: int = 256
    # How long `POST /end` waits for the stage's last writes; the rest finishes in the background.
    end_wait_s: float = 5.0
    # The longest hold audio a host may upload (it is kept decoded, 48 kHz mono: 5.76 MB a minute).
    hold_audio_max_s: float = 600.0
    # Admission: new listeners per second per space (and how many may come at once) before the
    # rest wait in line; joins per address; the surge (x the rate) that turns the puzzle on.
    join_rate_per_s: float = 200.0
    join_burst: int = 200
    join_limit_per_address: Limit = "120/minute"
    under_attack_surge: float = 5.0
    # Capacity: requests being worked on, and event-loop lag, at which the node counts as full.
    max_in_flight: int = 256
    max_lag_ms: float = 250.0
    # Requests one address (an IPv6 /64) may have in the works at once, listeners' reads aside; past
    # it, 429. A quarter of max_in_flight's default: one address's requests alone stay below the
    # pressure at which anything is shed (half).
    max_in_flight_per_address: int = 64
    # Connections the kernel holds before Podium accepts them (capped by net.core.somaxconn): a cache
    # tier's bursts filled uvicorn's 2,048, and each dropped SYN comes back only a second later.
    listen_backlog: int = 4096
    # Against slow and oversized requests: the whole request head must arrive within this time,
    # and the whole body within body_timeout_s after it (408 past either); no body may be larger
    # than max_body_bytes (413), no head larger than max_head_bytes (431), and no line of it (the
    # request line, one header) longer than max_header_line_bytes (414, 431).
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    max_body_bytes: int = 16 * 1024 * 1024
    max_head_bytes: int = 16 * 1024
    max_header_line_bytes: int = 8 * 1024
    # Where durable data lives: empty for SQLite in the data folder, or a PostgreSQL URL
    # (postgresql://user@host:5432/db) shared by every node.
    database_url: str = ""
    # The instance secret every token is signed with. Empty: generated into the data folder on
    # first start (one node). Several nodes must share one: give each the same (32+ characters).
    secret: str = field(default="", repr=False)
    # This node's name among several (listener counts are reported under it); random by default.
    node_id: str = ""
    # This node's own address, as the other nodes and speakers reach it (http://10.0.0.5:8000).
    # Between nodes: listeners' requests for a stage that runs elsewhere are fetched from it, and
    # speakers who reach another node are sent to it. Empty: http://HOST:PORT.
    node_url: str = ""
    # Where media (segments, recordings, timeline objects) lives: empty for the data folder,
    # file:///path for a folder every node shares, or s3://bucket/prefix?endpoint=... (S3-compatible).
    storage_url: str = ""
    # The bus between the parts of Podium: empty for in-process, or redis://host:port between nodes.
    bus_url: str = ""
    # Where rate-limit counters live: "memory://" (one node) or "redis://host:port" (shared).
    limits_url: str = "memory://"
    # How long a blocking playlist reload or a preload-hinted part may be held open.
    hls_hold_s: float = 6.0
    # Where hls.js was installed by `npm install` (node_modules/hls.js/dist); found by default.
    hlsjs_dir: Path | None = None
    log_level: str = "info"
    # "text": lines for people; "json": one JSON object per line, for a log collector.
    log_format: str = "text"
    # The proxies (the cache tier) whose X-Forwarded-For is believed: comma-separated addresses
    # or networks. A listener's address behind them counts for the per-address limits: the
    # rightmost address in X-Forwarded-For that is not one of them (see podium.web.forwarded).
    # "*" believes whoever connects, for one hop: only where nothing but the proxy reaches the node.
    forwarded_allow_ips: str = "127.0.0.1,::1"
    # Webhooks may go to loopback and private addresses (refused by default: a host must not reach
    # what sits behind this node, such as Redis or a cloud's metadata service).
    webhooks_allow_private: bool = False
    # The token Prometheus sends to read /metrics (Authorization: Bearer …). Empty: /metrics is
    # open to whoever reaches the node (the shipped nginx refuses it at the edge); private spaces
    # are labelled by a keyed hash either way, never by their id.
    metrics_token: str = field(default="", repr=False)

    # Live captions (README, Captions): the speech engine ("pocketsphinx": English, nothing to download;
    # "whisper": many languages, a CTranslate2 model directory in `captions_model`; "off": none), the
    # language a space gets unless its host picks another, the worker processes that run the engine,
    # how many speakers the node captions at once (past it a new utterance is skipped and the host
    # sees "paused") and how far behind (seconds of audio not yet recognized) a worker may fall before
    # it gets no new utterance.
    captions_engine: str = "pocketsphinx"
    captions_model: str = ""
    captions_language: str = "en"
    captions_workers: int = 1
    captions_max_speakers: int = 2
    captions_max_lag_s: float = 8.0

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get("PODIUM_" + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = replace(cls(), **values)
        settings.check()
        return settings

    def check(self) -> None:
        if self.ice_loopback not in ICE_LOOPBACK_MODES:
            raise InvalidInput(
                f"PODIUM_ICE_LOOPBACK must be one of {', '.join(ICE_LOOPBACK_MODES)}, not {self.ice_loopback!r}"
            )
        self.ice_server_list()  # raises InvalidInput naming the entry that is wrong
        if not 60 <= self.turn_credential_lifetime_s <= 7 * 86400:
            raise InvalidInput("PODIUM_TURN_CREDENTIAL_LIFETIME_S must be between 60 s and 7 days (604800)")
        if self.log_format not in LOG_FORMATS:
            raise InvalidInput(f"PODIUM_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {self.log_format!r}")
        if not 0 < self.port < 65536:
            raise InvalidInput(f"port must be between 1 and 65535, not {self.port}")
        for name in (f.name for f in fields(self) if f.type == "Limit"):
            try:
                limits.parse(getattr(self, name))
            except ValueError:
                raise InvalidInput(f"PODIUM_{name.upper()} must read like '10/minute'") from None
        if self.join_rate_per_s <= 0 or self.join_burst < 1 or self.under_attack_surge <= 0:
            raise InvalidInput("the join rate, burst and surge factor must be positive")
        if self.max_in_flight < 1 or self.max_lag_ms <= 0 or self.header_timeout_s <= 0 or self.max_body_bytes < 1024:
            raise InvalidInput("capacity, header timeout and body limit must be positive (body limit at least 1024)")
        if not 1 <= self.max_remote_candidates <= 1000:
            raise InvalidInput("PODIUM_MAX_REMOTE_CANDIDATES must be between 1 and 1000")
        if self.body_timeout_s <= 0 or self.max_in_flight_per_address < 1:
            raise InvalidInput("PODIUM_BODY_TIMEOUT_S and PODIUM_MAX_IN_FLIGHT_PER_ADDRESS must be positive")
        if not 1024 <= self.max_header_line_bytes <= self.max_head_bytes:
            raise InvalidInput(
                "PODIUM_MAX_HEADER_LINE_BYTES must be at least 1024 and at most PODIUM_MAX_HEAD_BYTES "
                f"({self.max_head_bytes}), not {self.max_header_line_bytes}"
            )
        TrustedProxies.parse(self.forwarded_allow_ips)  # raises InvalidInput naming the entry that is wrong
        if not 1 <= self.listen_backlog <= 1_000_000:
            raise InvalidInput("PODIUM_LISTEN_BACKLOG must be between 1 and 1,000,000 connections")
        if self.database_url and not self.database_url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
            raise InvalidInput("PODIUM_DATABASE_URL must be a postgresql://… or sqlite:///… URL (or empty)")
        if self.secret and len(self.secret) < 32:
            raise InvalidInput("PODIUM_SECRET must be at least 32 characters (e.g. `openssl rand -base64 48`)")
        if self.bus_url and not self.bus_url.startswith(("redis://", "rediss://")):
            raise InvalidInput("PODIUM_BUS_URL must be redis://host:port (or empty for one process)")
        if not self.limits_url.startswith(("memory://", "redis://", "rediss://")):
            raise InvalidInput("PODIUM_LIMITS_URL must be memory:// or redis://host:port")
        if self.node_url and not self.node_url.startswith(("http://", "https://")):
            raise InvalidInput("PODIUM_NODE_URL must be this node's own http(s):// address, as other nodes reach it")
        if not 3600 <= self.member_token_ttl_s <= 366 * 24 * 3600:
            raise InvalidInput("PODIUM_MEMBER_TOKEN_TTL_S must be from 3600 (an hour) to 31622400 (a year)")
        if self.metrics_token and (len(self.metrics_token) < 16 or any(c.isspace() for c in self.metrics_token)):
            raise InvalidInput("PODIUM_METRICS_TOKEN must be at least 16 characters, without spaces")
        if self.heartbeat_interval_s <= 0 or self.heartbeat_missed_limit < 1:
            raise InvalidInput("heartbeat interval and missed-beat limit must be positive")
        if self.presence_listeners_per_address < 1:
            raise InvalidInput("PODIUM_PRESENCE_LISTENERS_PER_ADDRESS must be at least 1")
        if self.max_guests < 1:
            raise InvalidInput("PODIUM_MAX_GUESTS must be at least 1")
        if self.max_stages < 1 or self.stage_write_queue < 8:
            raise InvalidInput("PODIUM_MAX_STAGES must be at least 1 and PODIUM_STAGE_WRITE_QUEUE at least 8")
        if self.preshow_idle_close_s <= 0 or self.end_wait_s < 0:
            raise InvalidInput("PODIUM_PRESHOW_IDLE_CLOSE_S must be positive and PODIUM_END_WAIT_S not negative")
        if not 1 <= self.hold_audio_max_s <= 3600:
            raise InvalidInput("PODIUM_HOLD_AUDIO_MAX_S must be between 1 and 3600 seconds")
        self._check_captions()

    def _check_captions(self) -> None:
        if self.captions_engine not in CAPTIONS_ENGINES:
            raise InvalidInput(
                f"PODIUM_CAPTIONS_ENGINE must be one of {', '.join(CAPTIONS_ENGINES)}, not {self.captions_engine!r}"
            )
        if not LANGUAGE_CODE.fullmatch(self.captions_language):
            raise InvalidInput(
                f"PODIUM_CAPTIONS_LANGUAGE must be a language code such as en or de, not {self.captions_language!r}"
            )
        if not 1 <= self.captions_workers <= 64:
            raise InvalidInput("PODIUM_CAPTIONS_WORKERS must be between 1 and 64 processes")
        if not 1 <= self.captions_max_speakers <= 1000:
            raise InvalidInput("PODIUM_CAPTIONS_MAX_SPEAKERS must be between 1 and 1000")
        if not 1.0 <= self.captions_max_lag_s <= 600.0:
            raise InvalidInput("PODIUM_CAPTIONS_MAX_LAG_S must be between 1 and 600 seconds")

    def ice_server_list(self) -> tuple[IceServer, ...]:
        return parse_ice_servers(self.ice_servers, shared_secret=bool(self.turn_secret))

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/")

    @property
    def own_url(self) -> str:
        """This node's address for the other nodes: PODIUM_NODE_URL, or the address it listens on."""
        if self.node_url:
            return self.node_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"


def _parse(name: str, kind: Any, raw: str) -> Any:
    kind = str(kind)
    if kind == "bool":
        if raw.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if raw.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise InvalidInput(f"PODIUM_{name.upper()}={raw!r} must be 1 or 0 (true or false)")
    try:
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
        if "Path" in kind:
            return Path(raw)
    except ValueError:
        raise InvalidInput(f"PODIUM_{name.upper()}={raw!r} is not a valid {kind}") from None
    return raw
