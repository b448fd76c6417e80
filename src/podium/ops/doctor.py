"""`podium doctor`: what breaks deployments, checked on this machine, each with how to fix it.

Each check is a pure function from gathered facts to a `Result`; the probes that gather the facts
are thin and talk to this machine only: loopback HTTP, UDP between two local sockets, DNS look-ups,
and the database and Redis that Podium itself is configured to use. Anything else is reported as
"not checked from here", with the command that checks it from elsewhere.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import functools
import json
import os
import resource
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from podium.errors import InvalidInput
from podium.media.ice_servers import IceServer
from podium.ops.diagnosis import (
    MARKS,
    NOT_HERE,
    PROBE_SPACE,
    PROBE_TIMEOUT_S,
    ClockSync,
    HttpAnswer,
    Result,
    check_clock,
    check_codecs,
    check_cors,
    check_disk,
    check_hlsjs,
    check_host_candidates,
    check_ice_server_names,
    check_ice_servers,
    check_open_files,
    check_public_url,
    check_public_url_reaches,
    check_running,
    check_secret,
    check_service,
    check_udp_round_trip,
    check_writable,
    is_loopback,
    podium_node,
)
from podium.settings import Settings
from podium.web.urls import url_path

# -- Probes: thin, this machine only ------------------------------------------------------------


def resolve(host: str, timeout_s: float = PROBE_TIMEOUT_S) -> list[str] | str:
    """The addresses `host` resolves to, or the error (DNS only: nothing is sent to the host)."""
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(socket.getaddrinfo, host, None, type=socket.SOCK_STREAM)
        try:
            infos = future.result(timeout_s)
        except FutureTimeout:
            return f"no answer from DNS in {timeout_s:g} s"
        except OSError as error:
            return error.strerror or str(error)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_local_url(url: str) -> bool:
    """Whether every address the URL's host resolves to is loopback (traffic stays on this machine)."""
    host = urlsplit(url).hostname
    if not host:
        return False
    addresses = resolve(host)
    return isinstance(addresses, list) and bool(addresses) and all(is_loopback(a) for a in addresses)


def http_get(url: str) -> HttpAnswer:
    import httpx

    if not is_local_url(url):
        return HttpAnswer(url, error=NOT_HERE)
    try:
        response = httpx.get(url, timeout=PROBE_TIMEOUT_S, headers={"Origin": "https://embed.example"})
    except httpx.HTTPError as error:
        return HttpAnswer(url, error=str(error) or type(error).__name__)
    return HttpAnswer(url, response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content)


def udp_round_trip(address: str, timeout_s: float = 1.0) -> str:
    """The empty string if a datagram goes from one socket to another, both bound to `address`; else the error."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    payload = os.urandom(16)
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as receiver, socket.socket(family, socket.SOCK_DGRAM) as sender:
            receiver.bind((address, 0))
            sender.bind((address, 0))
            receiver.settimeout(timeout_s)
            sender.sendto(payload, receiver.getsockname())
            data = receiver.recv(64)
    except TimeoutError:
        return f"nothing arrived within {timeout_s:g} s"
    except OSError as error:
        return error.strerror or str(error)
    return "" if data == payload else "a different datagram arrived"


class _Timex(ctypes.Structure):
    # struct timex (Linux); the tail pads generously: the kernel writes no more than its own size.
    _fields_ = [
        ("modes", ctypes.c_uint),
        *[(name, ctypes.c_long) for name in ("offset", "freq", "maxerror", "esterror")],
        ("status", ctypes.c_int),
        ("rest", ctypes.c_long * 64),
    ]


TIME_ERROR = 5  # adjtimex: the clock is not synchronised
STA_UNSYNC = 0x0040


def clock_sync_facts() -> list[ClockSync]:
    facts: list[ClockSync] = []
    libc_name = ctypes.util.find_library("c")
    if sys.platform == "linux" and libc_name:
        timex = _Timex()  # modes = 0: read only
        state = ctypes.CDLL(libc_name, use_errno=True).adjtimex(ctypes.byref(timex))
        if state >= 0:
            synced = state != TIME_ERROR and not timex.status & STA_UNSYNC
            facts.append(ClockSync("adjtimex", synced, timex.maxerror / 1e6))
    for command, parse in (
        (["timedatectl", "show", "-p", "NTPSynchronized", "--value"], _parse_timedatectl),
        (["chronyc", "-n", "tracking"], _parse_chronyc),
    ):
        if shutil.which(command[0]) is None:
            continue
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            facts.append(parse(done.stdout))
    return facts


def _parse_timedatectl(text: str) -> ClockSync:
    value = text.strip().lower()
    return ClockSync("timedatectl", True if value == "yes" else False if value == "no" else None)


def _parse_chronyc(text: str) -> ClockSync:
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    leap = fields.get("Leap status ", fields.get("Leap status", "")).strip().lower()
    return ClockSync("chronyc", None if not leap else leap == "normal")


def postgres_offset(url: str) -> tuple[float | None, str]:
    """Seconds the PostgreSQL server's clock is ahead of this one, or the connection's error."""
    import psycopg

    try:
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3) as conn:
            before = time.time()
            row = conn.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()
            after = time.time()
    except psycopg.Error as error:
        return None, str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (float(row[0]) - (before + after) / 2 if row else None), ""


def redis_offset(url: str) -> tuple[float | None, str]:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=PROBE_TIMEOUT_S, socket_connect_timeout=PROBE_TIMEOUT_S)
    try:
        before = time.time()
        seconds, micros = client.time()
        after = time.time()
    except redis.RedisError as error:
        return None, str(error)
    finally:
        client.close()
    return seconds + micros / 1e6 - (before + after) / 2, ""


def writable_probe(folder: Path) -> tuple[str, bool]:
    """Write, fsync and remove a file in `folder` (or its nearest existing parent): (error, folder exists)."""
    path = existing(folder) / f".podium-doctor-{os.getpid()}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"podium doctor\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        path.unlink()
    except OSError as error:
        return error.strerror or str(error), folder.is_dir()
    return "", folder.is_dir()


def existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def media_folder(settings: Settings) -> Path | None:
    """Where media lands on a local disk; None for object storage (S3)."""
    if not settings.storage_url:
        return settings.data_dir / "media"
    parts = urlsplit(settings.storage_url)
    return Path(unquote(parts.path)) if parts.scheme == "file" else None


def codec_facts() -> tuple[list[str], str]:
    import av

    missing = []
    modes: tuple[tuple[str, Literal["r", "w"]], ...] = (("libopus", "r"), ("libopus", "w"), ("aac", "w"))
    for name, mode in modes:
        try:
            av.codec.Codec(name, mode)
        except ValueError:  # UnknownCodecError
            missing.append(f"{name} ({'decoder' if mode == 'r' else 'encoder'})")
    version = ".".join(str(n) for n in av.library_versions.get("libavcodec", ()))
    return missing, f"libavcodec {version}"


# -- The run ------------------------------------------------------------------------------------

Step = Callable[[], Iterable[Result]]


@dataclass
class Doctor:
    settings: Settings
    ice_servers_raw: str
    target: str
    min_free_bytes: int
    space: str = PROBE_SPACE
    servers: tuple[IceServer, ...] = ()

    def steps(self) -> list[tuple[str, Step]]:
        return [
            ("ICE servers", self.ice),
            ("host candidates and UDP", self.udp),
            ("public URL", self.public_url),
            ("the running server", self.http),
            ("PostgreSQL and Redis", self.services),
            ("the clock", self.clock),
            ("disk space", self.disk),
            ("the secret, codecs, hls.js, limits", self.misc),
            ("the captions engine", self.captions),
        ]

    def ice(self) -> Iterable[Result]:
        result, self.servers = check_ice_servers(
            self.ice_servers_raw, self.settings.public_url, bool(self.settings.turn_secret)
        )
        yield result
        if self.servers:
            yield check_ice_server_names({s.host: resolve(s.host) for s in self.servers})

    def udp(self) -> Iterable[Result]:
        from podium.media import ice

        addresses = ice.offered_addresses(self.settings.ice_loopback)
        yield check_host_candidates(self.settings.ice_loopback, addresses, self.servers)
        yield check_udp_round_trip({address: udp_round_trip(address) for address in addresses})

    def public_url(self) -> Iterable[Result]:
        url = self.settings.public_url
        host = urlsplit(url).hostname
        yield check_public_url(url, resolve(host) if host else [])

    def http(self) -> Iterable[Result]:
        if not is_local_url(self.target):
            yield Result(
                "Podium answers",
                "skip",
                f"{NOT_HERE}: {self.target} (nor its CORS headers)",
                "run `podium doctor --url http://127.0.0.1:PORT` on the node itself",
            )
            return
        get = functools.cache(http_get)  # the same address is asked once
        health = get(self.target + "/healthz")
        yield check_running(health)
        own_node = podium_node(get(self.settings.own_url + "/healthz"))
        public = self.settings.base_url
        if public:
            answer = get(public + "/healthz") if is_local_url(public) else None
            yield check_public_url_reaches(public, answer, own_node)
        if podium_node(health) is None:
            return
        api = http_get(self.target + url_path("getSpace", space_id=self.space))
        hls = http_get(self.target + url_path("hls.index", space_id=self.space))
        yield check_cors("API answer", api, ("Location", "Retry-After", "ETag"))
        yield check_cors("HLS playlist", hls, ())

    def services(self) -> Iterable[Result]:
        for label, url, (_, error) in self._service_facts:
            yield check_service(label, url, error)

    def clock(self) -> Iterable[Result]:
        offsets = {label: offset for label, _, (offset, _) in self._service_facts if offset is not None}
        yield check_clock(clock_sync_facts(), offsets)

    @functools.cached_property
    def _service_facts(self) -> list[tuple[str, str, tuple[float | None, str]]]:
        """Each configured PostgreSQL and Redis: (label, URL, (clock offset, error)), asked once."""
        found: list[tuple[str, str, tuple[float | None, str]]] = []
        if self.settings.database_url.startswith("postgresql"):
            found.append(("PostgreSQL", self.settings.database_url, postgres_offset(self.settings.database_url)))
        redis_urls = sorted({self.settings.bus_url, self.settings.limits_url} - {""})
        found.extend(("Redis", url, redis_offset(url)) for url in redis_urls if url.startswith("redis"))
        return found

    def disk(self) -> Iterable[Result]:
        folders = [("data folder", self.settings.data_dir)]
        media = media_folder(self.settings)
        if media is not None:
            folders.append(("media folder", media))
        filesystems: set[int] = set()
        for label, folder in folders:
            device = existing(folder).stat().st_dev
            if device not in filesystems:  # one line per filesystem: the media folder is often inside
                filesystems.add(device)
                yield check_disk(label, folder, shutil.disk_usage(existing(folder)).free, self.min_free_bytes)
            error, exists = writable_probe(folder)
            yield check_writable(label, folder, error, exists)
        if media is None:
            yield Result("Disk: media", "skip", "media lives in object storage (PODIUM_STORAGE_URL=s3://...)")

    def misc(self) -> Iterable[Result]:
        from podium.app import SECRET_NAME
        from podium.web.pages import find_hlsjs

        secret_path = self.settings.data_dir / SECRET_NAME
        mode = stat.S_IMODE(secret_path.stat().st_mode) if secret_path.exists() else None
        several = bool(self.settings.bus_url) or self.settings.database_url.startswith("postgresql")
        yield check_secret(len(self.settings.secret), mode, secret_path, several)
        yield check_codecs(*codec_facts())
        yield check_hlsjs(find_hlsjs(self.settings.hlsjs_dir))
        yield check_open_files(*resource.getrlimit(resource.RLIMIT_NOFILE))

    def captions(self) -> Iterable[Result]:
        yield check_captions(self.settings, *captions_facts(self.settings))


def captions_facts(settings: Settings) -> tuple[tuple[str, ...], str]:
    """Load the configured engine here, as a worker would: (its languages, "") or ((), why not)."""
    if settings.captions_engine == "off":
        return (), ""
    from podium.captions.engine import CaptionsUnavailable
    from podium.captions.engines import load_engine

    try:
        engine = load_engine(settings.captions_engine, settings.captions_model, settings.captions_language)
    except CaptionsUnavailable as error:
        return (), str(error)
    except Exception as error:  # an engine's own failure: the operator needs its words
        return (), f"{type(error).__name__}: {error}"
    return tuple(engine.languages), ""


def check_captions(settings: Settings, languages: Sequence[str], error: str) -> Result:
    result = partial(Result, "Captions engine")
    engine = settings.captions_engine
    if engine == "off":
        return result("skip", "captions are off (PODIUM_CAPTIONS_ENGINE=off)")
    if error:
        return result(
            "fail",
            f"{engine} does not load: {error}; Podium runs without captions",
            "correct PODIUM_CAPTIONS_ENGINE / PODIUM_CAPTIONS_MODEL / PODIUM_CAPTIONS_LANGUAGE (README, Captions), "
            "or set PODIUM_CAPTIONS_ENGINE=off",
        )
    if engine == "pocketsphinx":
        return result("ok", "pocketsphinx loads: English only, gist quality (PODIUM_CAPTIONS_ENGINE=whisper for more)")
    known = "English only" if tuple(languages) == ("en",) else f"{len(languages)} languages"
    return result("ok", f"{engine} loads from {settings.captions_model}: {known}")


def _target(args_url: str | None, settings: Settings) -> str:
    if args_url:
        return args_url.rstrip("/")
    if settings.public_url and is_local_url(settings.public_url):
        return settings.base_url
    return settings.own_url


def _line(result: Result) -> str:
    text = f"{MARKS[result.status]} {result.check}: {result.found}"
    return text + (f"\n    fix: {result.fix}" if result.fix and result.status != "ok" else "")


def run(args: argparse.Namespace) -> int:
    environ = dict(os.environ)
    # The doctor reports a wrong PODIUM_ICE_SERVERS as one of its checks, not as a refusal to start.
    ice_raw = environ.pop("PODIUM_ICE_SERVERS", "")
    interactive = sys.stdout.isatty() and not args.json
    try:
        settings = Settings.load(environ, host=args.host, port=args.port, data_dir=args.data_dir)
    except InvalidInput as error:
        refused = Result("Settings", "fail", error.message, "correct that variable; `podium serve` refuses it too")
        if not args.json:
            print(_line(refused))
        return _finish([refused], args.json)
    doctor = Doctor(
        settings, ice_raw, _target(args.url, settings), int(args.min_free_gib * 2**30), args.space or PROBE_SPACE
    )
    if not args.json:
        print(f"podium doctor: settings from PODIUM_* (data folder {settings.data_dir}), server {doctor.target}")
    results: list[Result] = []
    for title, step in doctor.steps():
        if interactive:
            print(f"  ... {title}", end="\r", flush=True)
        for result in step():
            results.append(result)
            if not args.json:
                print(("\x1b[K" if interactive else "") + _line(result), flush=True)
    if interactive:
        print("\x1b[K", end="")
    return _finish(results, args.json)


def _finish(results: Sequence[Result], as_json: bool) -> int:
    counts = {status: sum(1 for r in results if r.status == status) for status in MARKS}
    failed = counts["fail"] > 0
    if as_json:
        print(json.dumps({"ok": not failed, "counts": counts, "results": [asdict(r) for r in results]}, indent=2))
    else:
        summary = f"{counts['ok']} ok, {counts['warn']} warnings, {counts['fail']} failed, {counts['skip']} not checked"
        verdict = "fix what failed before going live" if failed else "nothing failed"
        print(f"\n{summary}: {verdict}.")
    return 1 if failed else 0
