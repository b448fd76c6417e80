"""Issue 17: a bounded flood of what a stranger can do without an account, while a live space plays.

`podium serve` runs with its defaults (every limit pinned to its default here, whatever the harness
lifts for the other benchmarks); a real space goes live (the host publishes a tone over WHIP) and
listeners follow it over LL-HLS. Then, for `--seconds` (60; `--quick` 10), each anonymous action runs
from its own asyncio tasks, from source addresses of its own in 127.0.0.0/8, at a fixed rate (`FLOOD`):
space creation (start in the past, within the pre-show lead, none), guest joins, heartbeats with
forged listener ids and passes, hold-audio uploads (a tiny WAV at 1 Hz, long ones), slow request bodies
and oversized request heads (raw sockets). Every answer is counted by action and status, whatever it is.

Measured: the live stage's skipped frames (`/metrics`, and the log's "fell N frames behind"), the
node's RSS (VmRSS each second) and the growth of its data dir, event-loop lag, the listeners' parts
and new listeners' time to first audio during the flood, the host's controls (board, stage, mute and
unmute, then `/end`), the stages running at the end. Every process and socket is closed at the end.

Usage: python bench/hostile.py [--quick] [--seconds S] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import itertools
import json
import os
import re
import secrets
import struct
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
import httpx

from podium.settings import Settings
from podium.testing.whip_client import Publisher, SampleTrack, publish, tone

REQUEST_TIMEOUT_S = 10.0
SETTLE_S = 5.0  # after the flood, before the "after" figures
PART_S = 0.512
GOAL_FIRST_AUDIO_S = 3.0  # a new listener's first part, as bench/flash_crowd.py's p99 goal
GOAL_CONTROL_S = 2.0  # a host's control answered within this
GOAL_END_S = 10.0
OTHER_MB = 64  # the RSS allowance for everything the settings do not bound by name (connections, caches)
DB_MB = 16  # the disk allowance for the database's growth (spaces, guests)
PCM_BYTES_PER_S = 48_000 * 2  # hold audio as the stage keeps it: 48 kHz mono int16

# Settings that describe a deployment, not a limit: never pinned.
NOT_PINNED = {
    "host", "port", "data_dir", "public_url", "ice_loopback", "ice_servers", "database_url", "secret",
    "node_id", "node_url", "storage_url", "bus_url", "limits_url", "hlsjs_dir", "log_level", "log_format",
    "forwarded_allow_ips", "webhooks_allow_private",
}  # fmt: skip
# The settings worth naming in the report (those the running code has).
STATED = re.compile(r"limit|max_|budget|timeout|queue|guest|hold_audio|preshow|stages|in_flight|head|body")

_STARTED = time.monotonic()
_HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p(\d+)-(\d+)\.m4s"')
_PART = re.compile(r'#EXT-X-PART:[^\n]*URI="(p\d+-\d+\.m4s)"')
_METRIC = re.compile(r"^([a-z_]+)(\{[^}]*\})? ([-+0-9.eEinfNa]+)$", re.M)
_SKIP_LOG = re.compile(r"stage (\S+) fell (\d+) frames behind; skipping ahead")


def say(message: str) -> None:
    print(f"[hostile +{time.monotonic() - _STARTED:.0f} s] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Action:
    """One kind of anonymous action: from `addresses` source addresses, `rate` per second from each."""

    name: str
    prefix: str  # the addresses are prefix + 1, 2, ...
    addresses: int
    rate: float
    what: str

    def address(self, k: int) -> str:
        return f"{self.prefix}{k + 1}"


CREATE = Action(
    "create space", "127.0.2.", 3, 3.0,
    "`POST /api/spaces`, `starts_at` in turn 1970, an hour ago, none, +1 min, +5 min, +14 min (inside the lead)",
)  # fmt: skip
GUESTS = Action("guest join", "127.0.3.", 2, 10.0, "`POST /api/spaces/LIVE/guests {name}`")
BEATS = Action(
    "heartbeat", "127.0.4.", 3, 20.0,
    "`POST /api/spaces/LIVE/heartbeat`, in turn: a random id, no pass; an id of eight zeros and random hex, no "
    "pass; a random id with a forged pass; a random id with a real pass (the address joined once)",
)  # fmt: skip
HOLD = Action(
    "hold audio", "127.0.5.", 1, 0.5,
    "`PUT /api/spaces/OWN/hold-audio` on a space the address made (start +2 min), in turn: a 1,244-byte WAV at 1 Hz "
    "(20 min), a 28 KB WAV at 1 Hz (8 h), 9 min at 8 kHz (4.3 MB), 20 min at 8 kHz (9.6 MB)",
)  # fmt: skip
SLOW = Action(
    "slow body", "127.0.6.", 2, 8.0,
    "raw socket: a `POST` head with `Content-Length: 1000` (under every JSON cap), then one byte a second, to "
    "`…/moderation`, `…/guests` and `/api/spaces` in turn; at most 80 open per address",
)  # fmt: skip
HEADS = Action(
    "oversized head", "127.0.7.", 2, 0.5,
    "raw socket: `GET /api/spaces/LIVE` and 4 MiB of headers (8 KB lines, or one 4 MiB line, in turn), "
    "then held open; at most 8 open per address",
)  # fmt: skip
FLOOD = (CREATE, GUESTS, BEATS, HOLD, SLOW, HEADS)
LISTENER_PREFIX = "127.0.1."
WORKER_TAG = "HOSTILE-FLOOD-WORKER "
SLOW_OPEN_PER_ADDRESS = 80
HEAD_OPEN_PER_ADDRESS = 8
HEAD_BYTES = 4 * 1024 * 1024
SLOW_LENGTH = 1000
ONE_LINE_CHUNK = b"a" * 65_536
LINES_CHUNK = b"".join(b"X-Pad-%d: " % i + b"a" * 8000 + b"\r\n" for i in range(8))


def pinned_defaults() -> dict[str, str]:
    """Every limit the running code has, at its default (the harness lifts some for other benchmarks)."""
    env: dict[str, str] = {}
    for f in dataclasses.fields(Settings):
        if f.name in NOT_PINNED:
            continue
        default = f.default
        if isinstance(default, bool):
            env["PODIUM_" + f.name.upper()] = "1" if default else "0"
        elif isinstance(default, int | float | str) and default != "":
            env["PODIUM_" + f.name.upper()] = str(default)
    return env


def stated_settings() -> dict[str, Any]:
    defaults = Settings()
    return {
        f.name: getattr(defaults, f.name)
        for f in dataclasses.fields(Settings)
        if STATED.search(f.name) and f.name not in NOT_PINNED
    }


# -- what was sent and what came back --------------------------------------------------------------


@dataclass
class Tally:
    statuses: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    notes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    # What the server said, the first time it answered an action with a status of 400 or more.
    examples: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))

    def count(self, action: str, status: int | str, latency_s: float | None = None) -> None:
        self.statuses[action][str(status)] += 1
        if latency_s is not None:
            self.latencies[action].append(latency_s)


def failure(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return "timeout"
    return type(exc).__name__


async def sleep_until(t: float) -> None:
    await asyncio.sleep(max(0.0, t - time.monotonic()))


async def paced(
    action: str, rate: float, until: float, cap: int, tally: Tally, one: Callable[[int], Coroutine[Any, Any, None]]
) -> None:
    """`one(k)` at `rate` per second until `until`, each as a task of its own (a slow answer does not slow
    the rate), at most `cap` at once (beyond it a send is counted as not sent); then waits for the rest."""
    tasks: set[asyncio.Task[None]] = set()
    start = time.monotonic()
    try:
        for k in range(int((until - start) * rate) + 1):
            await sleep_until(start + k / rate)
            if time.monotonic() >= until:
                break
            if len(tasks) >= cap:
                tally.count(action, "not sent (client's cap)")
                continue
            task = asyncio.create_task(one(k))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT_S + 1)
    finally:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def client_from(address: str) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=address, limits=httpx.Limits(max_connections=64))
    return httpx.AsyncClient(transport=transport, timeout=REQUEST_TIMEOUT_S)


async def timed(tally: Tally, action: str, request: Awaitable[httpx.Response]) -> httpx.Response | None:
    began = time.monotonic()
    try:
        response = await request
    except httpx.HTTPError as exc:
        tally.count(action, failure(exc), time.monotonic() - began)
        return None
    tally.count(action, response.status_code, time.monotonic() - began)
    if response.status_code >= 400:
        tally.examples[action].setdefault(str(response.status_code), " ".join(response.text.split())[:160])
    return response


def iso(t: datetime.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


async def flood_create(base: str, until: float, tally: Tally, created: list[str]) -> None:
    async def one_from(client: httpx.AsyncClient, k: int) -> None:
        now = datetime.datetime.now(datetime.UTC)
        starts: list[tuple[str, str | None]] = [
            ("start in the past", "1970-01-01T00:00:00Z"),
            ("start in the past", iso(now - datetime.timedelta(hours=1))),
            ("no start", None),
            ("start within the lead", iso(now + datetime.timedelta(minutes=1))),
            ("start within the lead", iso(now + datetime.timedelta(minutes=5))),
            ("start within the lead", iso(now + datetime.timedelta(minutes=14))),
        ]
        kind, starts_at = starts[k % len(starts)]
        body: dict[str, Any] = {"title": f"stranger {k}"}
        if starts_at is not None:
            body["starts_at"] = starts_at
        response = await timed(tally, f"create space ({kind})", client.post(base + "/api/spaces", json=body))
        if response is not None and response.status_code == 201:
            created.append(response.json()["id"])

    await per_address(CREATE, until, tally, one_from, cap=32)


async def per_address(
    action: Action,
    until: float,
    tally: Tally,
    one_from: Callable[[httpx.AsyncClient, int], Coroutine[Any, Any, None]],
    cap: int,
) -> None:
    async def run(k: int) -> None:
        async with client_from(action.address(k)) as client:
            await paced(action.name, action.rate, until, cap, tally, lambda n: one_from(client, n))

    await asyncio.gather(*(run(k) for k in range(action.addresses)))


async def flood_guests(base: str, space_id: str, until: float, tally: Tally) -> None:
    async def one_from(client: httpx.AsyncClient, k: int) -> None:
        url = f"{base}/api/spaces/{space_id}/guests"
        await timed(tally, GUESTS.name, client.post(url, json={"name": f"guest {k}"}))

    await per_address(GUESTS, until, tally, one_from, cap=32)


async def flood_beats(base: str, space_id: str, until: float, tally: Tally) -> None:
    url = f"{base}/api/spaces/{space_id}/heartbeat"

    async def run(k: int) -> None:
        async with client_from(BEATS.address(k)) as client:
            # A stranger who joined once: a real pass, bound to its own client id.
            client_id = "stranger-" + secrets.token_hex(8)
            joined = await timed(
                tally,
                "heartbeat: setup join",
                client.post(f"{base}/api/spaces/{space_id}/join", json={"client_id": client_id}),
            )
            real_pass = (joined.json().get("pass") if joined is not None and joined.status_code == 200 else None) or ""

            async def one(n: int) -> None:
                variant = n % 4
                if variant == 0:
                    kind, body = "random id, no pass", {"listener_id": secrets.token_hex(12)}
                elif variant == 1:
                    kind, body = "zeros id, no pass", {"listener_id": "00000000" + secrets.token_hex(8)}
                elif variant == 2:
                    forged = secrets.token_urlsafe(24) + "." + secrets.token_urlsafe(32)
                    kind, body = "random id, forged pass", {"listener_id": secrets.token_hex(12), "pass": forged}
                else:
                    kind, body = "random id, real pass", {"listener_id": secrets.token_hex(12), "pass": real_pass}
                await timed(tally, f"heartbeat ({kind})", client.post(url, json=body))

            await paced(BEATS.name, BEATS.rate, until, 64, tally, one)

    await asyncio.gather(*(run(k) for k in range(BEATS.addresses)))


def wav(sample_rate: int, samples: int) -> bytes:
    """A mono 8-bit PCM WAV of a quiet ramp, any sample rate (the header says what it says)."""
    data = (bytes(range(128, 144)) * (samples // 16 + 1))[:samples]
    fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, sample_rate, 1, 8)
    return (
        b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"data" + struct.pack("<I", len(data)) + data
    )  # fmt: skip


HOLD_FILES = (
    ("1 Hz, 1,244 bytes (20 min)", 1, 1_200),
    ("1 Hz, 28 KB (8 h)", 1, 28_800),
    ("8 kHz, 9 min (4.3 MB)", 8_000, 8_000 * 540),
    ("8 kHz, 20 min (9.6 MB)", 8_000, 8_000 * 1200),
)


async def flood_hold(base: str, until: float, tally: Tally, created: list[str]) -> None:
    files = [(label, wav(rate, n)) for label, rate, n in HOLD_FILES]
    async with client_from(HOLD.address(0)) as client:
        starts_at = iso(datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=2))
        made = await timed(
            tally,
            "hold audio: setup space",
            client.post(base + "/api/spaces", json={"title": "hold", "starts_at": starts_at}),
        )
        if made is None or made.status_code != 201:
            tally.notes[HOLD.name].append("its space could not be made: no upload sent")
            return
        space = made.json()
        created.append(space["id"])
        url = f"{base}/api/spaces/{space['id']}/hold-audio"
        headers = {"Authorization": f"Bearer {space['host_token']}", "Content-Type": "audio/wav"}

        async def one(n: int) -> None:
            label, data = files[n % len(files)]
            await timed(tally, f"hold audio ({label})", client.put(url, content=data, headers=headers))

        await paced(HOLD.name, HOLD.rate, until, 4, tally, one)


async def read_status(reader: asyncio.StreamReader) -> str:
    """The status of what the server sends back, or how the connection ended without one."""
    try:
        data = await reader.read(4096)
    except (ConnectionError, OSError) as exc:
        return type(exc).__name__
    if not data:
        return "closed, no answer"
    match = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return match.group(1).decode() if match else "answer not HTTP"


async def open_from(
    host: str, port: int, address: str, name: str, tally: Tally
) -> tuple[asyncio.StreamWriter, asyncio.Task[str]] | None:
    """A raw connection from `address`, and a task that reads the status line of its answer; None
    (and the failure counted under `name`) when the node does not take the connection."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, local_addr=(address, 0)), REQUEST_TIMEOUT_S
        )
    except (OSError, TimeoutError) as exc:
        tally.count(name, failure(exc))
        return None
    return writer, asyncio.create_task(read_status(reader))


async def flood_slow(host: str, port: int, space_id: str, until: float, tally: Tally) -> None:
    paths = (f"/api/spaces/{space_id}/moderation", f"/api/spaces/{space_id}/guests", "/api/spaces")
    labels = ("…/moderation", "…/guests", "/api/spaces")
    held: list[float] = []

    async def run(k: int) -> None:
        address = SLOW.address(k)

        async def one(n: int) -> None:
            began = time.monotonic()
            opened = await open_from(host, port, address, SLOW.name, tally)
            if opened is None:
                return
            writer, answer = opened
            try:
                head = (
                    f"POST {paths[n % len(paths)]} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {SLOW_LENGTH}\r\n\r\n"
                )
                writer.write(head.encode() + b"{")
                for _ in range(SLOW_LENGTH):
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            asyncio.shield(answer), timeout=max(0.0, min(1.0, until - time.monotonic()))
                        )
                    if answer.done() or time.monotonic() >= until:
                        break
                    writer.write(b" ")
                    await writer.drain()
                status = answer.result() if answer.done() else "still open at the end"
            except (ConnectionError, OSError) as exc:
                status = answer.result() if answer.done() else type(exc).__name__
            finally:
                answer.cancel()
                writer.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.wait_closed(), 1.0)
            held.append(time.monotonic() - began)
            tally.count(f"{SLOW.name} ({labels[n % len(labels)]})", status, time.monotonic() - began)

        await paced(SLOW.name, SLOW.rate, until, SLOW_OPEN_PER_ADDRESS, tally, one)

    await asyncio.gather(*(run(k) for k in range(SLOW.addresses)))


async def flood_heads(host: str, port: int, space_id: str, until: float, tally: Tally) -> None:
    accepted: list[int] = []

    async def run(k: int) -> None:
        address = HEADS.address(k)

        async def one(n: int) -> None:
            began = time.monotonic()
            opened = await open_from(host, port, address, HEADS.name, tally)
            if opened is None:
                return
            writer, answer = opened
            sent = 0
            try:
                writer.write(f"GET /api/spaces/{space_id} HTTP/1.1\r\nHost: {host}:{port}\r\n".encode())
                one_line = n % 2 == 1
                if one_line:
                    writer.write(b"X-Pad: ")
                chunk = ONE_LINE_CHUNK if one_line else LINES_CHUNK
                while sent < HEAD_BYTES and not answer.done() and time.monotonic() < until:
                    writer.write(chunk)
                    await writer.drain()
                    sent += len(chunk)
                # Held open, the head never finished, until the server answers or closes, or the flood ends.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(answer), timeout=max(0.0, until - time.monotonic()))
                status = answer.result() if answer.done() else "still open at the end"
            except (ConnectionError, OSError) as exc:
                status = answer.result() if answer.done() else type(exc).__name__
            finally:
                answer.cancel()
                writer.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.wait_closed(), 1.0)
            accepted.append(sent)
            tally.count(f"{HEADS.name} ({'one line' if n % 2 else '8 KB lines'})", status, time.monotonic() - began)

        await paced(HEADS.name, HEADS.rate, until, HEAD_OPEN_PER_ADDRESS, tally, one)

    await asyncio.gather(*(run(k) for k in range(HEADS.addresses)))
    if accepted:
        tally.notes[HEADS.name].append(
            f"bytes of head written before the server answered or closed: median "
            f"{harness.percentile([float(a) for a in accepted], 50):,.0f}, max {max(accepted):,} (of {HEAD_BYTES:,})"
        )


# -- the real audience and the host ------------------------------------------------------------------


@dataclass
class Listener:
    n: int
    began: float = 0.0
    joined: float | None = None
    first_audio: float | None = None
    parts: list[float] = field(default_factory=list)  # arrival times (monotonic)
    statuses: Counter[str] = field(default_factory=Counter)
    outcome: str = ""

    @property
    def first_audio_s(self) -> float | None:
        return None if self.first_audio is None else self.first_audio - self.began


async def listen(base: str, space_id: str, n: int, until: float, record: Listener, interval_s: float) -> None:
    """Join as the page does, then the newest part (first audio), then follow part by part with blocking
    reloads, beating with the pass every `interval_s`."""
    record.began = time.monotonic()
    hls = f"{base}/hls/{space_id}"
    client_id = f"listener-{n}-{secrets.token_hex(6)}"
    async with client_from(f"{LISTENER_PREFIX}{n + 1}") as client:

        async def get(kind: str, url: str, **params: str) -> httpx.Response | None:
            try:
                response = await client.get(url, params=params or None)
            except httpx.HTTPError as exc:
                record.statuses[f"{kind} {failure(exc)}"] += 1
                return None
            record.statuses[f"{kind} {response.status_code}"] += 1
            return response if response.status_code == 200 else None

        try:
            body: dict[str, Any] = {"client_id": client_id}
            pass_token: str | None = None
            for _ in range(30):
                answer = await client.post(f"{base}/api/spaces/{space_id}/join", json=body)
                record.statuses[f"join {answer.status_code}"] += 1
                data = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else {}
                if answer.status_code == 200:
                    pass_token = data.get("pass")
                    break
                if answer.status_code == 202 and "ticket" in data:
                    body = {"client_id": client_id, "ticket": data["ticket"]}
                await asyncio.sleep(float(answer.headers.get("retry-after", "1")))
            else:
                record.outcome = "never admitted"
                return
            record.joined = time.monotonic()
            playlist = await get("playlist", f"{hls}/live.m3u8")
            if playlist is None or await get("init", f"{hls}/init.mp4") is None:
                record.outcome = "no playlist"
                return
            names = _PART.findall(playlist.text)
            if not names or await get("part", f"{hls}/{names[-1]}") is None:
                record.outcome = "no part"
                return
            record.first_audio = time.monotonic()
            record.parts.append(record.first_audio)
            fetched = {names[-1]}
            text = playlist.text
            next_beat = time.monotonic()
            for _ in range(2_000):  # bounded: two requests a part for at most a few minutes
                if time.monotonic() >= until:
                    break
                if pass_token is not None and time.monotonic() >= next_beat:
                    next_beat += interval_s
                    try:
                        beat = await client.post(
                            f"{base}/api/spaces/{space_id}/heartbeat",
                            json={"listener_id": client_id, "pass": pass_token},
                        )
                        record.statuses[f"beat {beat.status_code}"] += 1
                    except httpx.HTTPError as exc:
                        record.statuses[f"beat {failure(exc)}"] += 1
                hint = _HINT.search(text)
                if hint is None:
                    break  # the playlist ended
                reload = await get("reload", f"{hls}/live.m3u8", _HLS_msn=hint.group(1), _HLS_part=hint.group(2))
                if reload is None:
                    await asyncio.sleep(PART_S)
                    continue
                text = reload.text
                for name in [p for p in _PART.findall(text)[-3:] if p not in fetched]:
                    if await get("part", f"{hls}/{name}") is not None:
                        record.parts.append(time.monotonic())
                    fetched.add(name)
            record.outcome = "ok"
        except httpx.HTTPError as exc:
            record.outcome = f"failed: {failure(exc)}"


@dataclass
class HostControls:
    tally: Tally = field(default_factory=Tally)
    end_s: float | None = None
    end_status: str = ""


async def host_controls(base: str, space: dict[str, Any], host_id: str, until: float, controls: HostControls) -> None:
    """The host's console during the flood: the board and the stage each second, mute and unmute every 4 s."""
    sid, headers = space["id"], {"Authorization": f"Bearer {space['host_token']}"}
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, headers=headers) as client:
        for k in range(10_000):
            if time.monotonic() >= until:
                return
            tick = time.monotonic()
            await timed(controls.tally, "board (GET …/board)", client.get(f"{base}/api/spaces/{sid}/board"))
            await timed(controls.tally, "stage (GET …/stage)", client.get(f"{base}/api/spaces/{sid}/stage"))
            if k % 4 == 2:
                # Muted for the round trip only: a few frames of silence on the live stream.
                await timed(controls.tally, "mute self", client.post(f"{base}/api/spaces/{sid}/members/{host_id}/mute"))
                await timed(
                    controls.tally, "unmute self", client.post(f"{base}/api/spaces/{sid}/members/{host_id}/unmute")
                )
            await sleep_until(tick + 1.0)


# -- the node ----------------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def disk_bytes(path: Path) -> int:
    """Bytes on disk under `path` (allocated blocks, as du counts them)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def disk_split(data_dir: Path, live_id: str) -> dict[str, int]:
    media = data_dir / "media"
    live = disk_bytes(media / live_id)
    all_media = disk_bytes(media)
    return {
        "live space's media": live,
        "other spaces' media": all_media - live,
        "the rest": disk_bytes(data_dir) - all_media,
    }


def metrics(text: str) -> dict[str, float]:
    """`name{labels}` → value, from the text format."""
    return {m.group(1) + (m.group(2) or ""): float(m.group(3)) for m in _METRIC.finditer(text)}


@dataclass
class Sample:
    t: float
    rss_mb: float
    lag_ms: float | None
    live_spaces: float | None
    in_flight: float | None
    skipped: float | None
    client_lag_ms: float


@dataclass
class Outcome:
    seconds: float
    settings: dict[str, Any]
    tally: Tally
    controls: HostControls
    samples: list[Sample]
    listeners: list[Listener]
    joiners: list[Listener]
    skipped_before: float | None
    skipped_after: float | None
    skip_log: dict[str, int]
    rss_before: float
    rss_after: float
    disk_before: dict[str, int]
    disk_after: dict[str, int]
    live_disk_rate: float  # bytes/s the live space's own media grew by during the flood
    stages_end: float | None
    created: int
    worker_lag_ms: float
    public_listeners: dict[str, Any]
    real_listeners: int
    shed_end: dict[str, float]
    log_noise: list[str]


async def scrape(client: httpx.AsyncClient, base: str) -> dict[str, float]:
    try:
        response = await client.get(base + "/metrics")
    except httpx.HTTPError:
        return {}
    return metrics(response.text) if response.status_code == 200 else {}


async def sampler(base: str, pid: int, space_id: str, until: float, samples: list[Sample]) -> None:
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as client:
        for _ in range(10_000):
            tick = time.monotonic()
            if tick >= until:
                return
            m = await scrape(client, base)
            lag = m.get("podium_event_loop_lag_seconds")
            samples.append(
                Sample(
                    t=tick,
                    rss_mb=rss_mb(pid),
                    lag_ms=None if lag is None else lag * 1000,
                    live_spaces=m.get("podium_live_spaces"),
                    in_flight=m.get("podium_requests_in_flight"),
                    skipped=skipped_of(m, space_id),
                    client_lag_ms=0.0,
                )
            )
            await sleep_until(tick + 1.0)
            samples[-1].client_lag_ms = max(0.0, (time.monotonic() - tick - 1.0) * 1000)


def skipped_of(m: dict[str, float], space_id: str) -> float | None:
    for name in (
        f'podium_stage_frames_skipped_total{{space="{space_id}"}}',
        f'podium_stage_frames_skipped{{space="{space_id}"}}',
    ):
        if name in m:
            return m[name]
    return None


def log_summary(log: str) -> list[str]:
    """The server's warnings and errors by kind (ids and numbers blanked), most frequent first."""
    kinds: Counter[str] = Counter()
    for line in log.splitlines():
        if line.startswith(("WARNING", "ERROR")):
            kinds[re.sub(r"\b[0-9a-z]{12}\b|\d+", "N", line.strip())[:140]] += 1
    tracebacks = log.count("Traceback (most recent call last)")
    return [f"{n}x `{kind}`" for kind, n in kinds.most_common(6)] + [f"{tracebacks} traceback(s)"]


def skip_lines(log: str, live_id: str) -> dict[str, int]:
    out = {"live space": 0, "other stages": 0, "lines": 0}
    for m in _SKIP_LOG.finditer(log):
        out["lines"] += 1
        out["live space" if m.group(1) == live_id else "other stages"] += int(m.group(2))
    return out


async def measure(args: argparse.Namespace) -> Outcome:
    settings = stated_settings()
    say(f"podium serve with its defaults; the flood runs {args.seconds:.0f} s")
    with harness.podium_server(env=pinned_defaults()) as server:
        pid = server.proc.pid
        port = int(server.base.rsplit(":", 1)[1])
        controls = HostControls()
        samples: list[Sample] = []
        publisher: Publisher | None = None
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as client:
            space = await harness.create_space(client, server.base, "the live space")
            sid = space["id"]
            try:
                publisher = await publish(
                    server.base + space["urls"]["whip"], space["host_token"], SampleTrack(tone(440.0))
                )
                me = await client.get(
                    f"{server.base}/api/spaces/{sid}/me", headers={"Authorization": f"Bearer {space['host_token']}"}
                )
                host_id = me.json()["id"]
                hls = server.base + space["urls"]["hls"]
                await harness.wait_for_segments(client, hls.replace("index.m3u8", "live.m3u8"), 2)
                say(f"space {sid} is live; 3 listeners join")
                start = time.monotonic()
                interval = float(Settings().heartbeat_interval_s)
                end_all = start + 2.0 + args.seconds + SETTLE_S
                listeners = [Listener(n) for n in range(3)]
                listening = [
                    asyncio.create_task(listen(server.base, sid, n, end_all, r, interval))
                    for n, r in enumerate(listeners)
                ]
                await asyncio.sleep(2.0)
                m = await scrape(client, server.base)
                skipped_before = skipped_of(m, sid)
                rss_before = rss_mb(pid)
                disk_before = disk_split(server.data_dir, sid)
                log_before = len(server.log_text())
                # The flood runs in a process of its own (its CPU is not the measuring loop's), from this instant.
                flood_wall = time.time() + 1.0
                flood_start = time.monotonic() + 1.0
                until = flood_start + args.seconds
                say("the flood starts")
                background = [
                    asyncio.create_task(sampler(server.base, pid, sid, until + SETTLE_S, samples)),
                    asyncio.create_task(host_controls(server.base, space, host_id, until, controls)),
                ]
                joiners = [Listener(10 + k) for k in range(3)]
                for k, record in enumerate(joiners):
                    due = flood_start + args.seconds * (k + 1) / 4

                    async def later(record: Listener = record, due: float = due) -> None:
                        await sleep_until(due)
                        await listen(server.base, sid, record.n, min(due + 4.0, until), record, interval)

                    background.append(asyncio.create_task(later()))
                worker = await run_flood_worker(
                    {"base": server.base, "port": port, "space_id": sid, "seconds": args.seconds, "start": flood_wall}
                )
                tally, created, worker_lag_ms = worker
                say(f"the flood is over; {SETTLE_S:.0f} s to settle")
                await asyncio.sleep(SETTLE_S)
                m = await scrape(client, server.base)
                skipped_after = skipped_of(m, sid)
                rss_after = rss_mb(pid)
                disk_after = disk_split(server.data_dir, sid)
                elapsed = time.monotonic() - flood_start
                live_rate = (disk_after["live space's media"] - disk_before["live space's media"]) / elapsed
                stages_end = m.get("podium_live_spaces")
                shed_end = {k: v for k, v in m.items() if k.startswith("podium_requests_shed") and v}
                state = await client.get(f"{server.base}/api/spaces/{sid}")
                public = state.json().get("listeners", {}) if state.status_code == 200 else {}
                await asyncio.gather(*background, *listening, return_exceptions=True)
                say("the host ends the space")
                began = time.monotonic()
                try:
                    ended = await client.post(
                        f"{server.base}/api/spaces/{sid}/end",
                        headers={"Authorization": f"Bearer {space['host_token']}"},
                        timeout=60.0,
                    )
                    controls.end_status = str(ended.status_code)
                except httpx.HTTPError as exc:
                    controls.end_status = failure(exc)
                controls.end_s = time.monotonic() - began
                log_text = server.log_text()[log_before:]
            finally:
                if publisher is not None:
                    await publisher.close()
        noise = log_summary(log_text)
        return Outcome(
            seconds=args.seconds,
            settings=settings,
            tally=tally,
            controls=controls,
            samples=samples,
            listeners=listeners,
            joiners=joiners,
            skipped_before=skipped_before,
            skipped_after=skipped_after,
            skip_log=skip_lines(log_text, sid),
            rss_before=rss_before,
            rss_after=rss_after,
            disk_before=disk_before,
            disk_after=disk_after,
            live_disk_rate=live_rate,
            stages_end=stages_end,
            created=created,
            worker_lag_ms=worker_lag_ms,
            public_listeners=public,
            real_listeners=len(listeners),
            shed_end=shed_end,
            log_noise=noise,
        )


async def show_progress(tally: Tally, until: float) -> None:
    while time.monotonic() < until:
        await asyncio.sleep(5.0)
        sent = sum(sum(c.values()) for c in tally.statuses.values())
        say(f"{sent} answers so far, {max(0.0, until - time.monotonic()):.0f} s to go")


async def watch_lag(until: float, lags: list[float]) -> None:
    """How late this process's loop wakes from 50 ms sleeps (the load generator's own health)."""
    while time.monotonic() < until:
        before = time.monotonic()
        await asyncio.sleep(0.05)
        lags.append((time.monotonic() - before - 0.05) * 1000)


async def flood(cfg: dict[str, Any]) -> dict[str, Any]:
    """The flood worker: every action from `cfg["start"]` (wall clock) for `cfg["seconds"]`."""
    base, port, sid = cfg["base"], int(cfg["port"]), cfg["space_id"]
    until = time.monotonic() + (cfg["start"] - time.time()) + cfg["seconds"]
    await asyncio.sleep(max(0.0, cfg["start"] - time.time()))
    tally, created, lags = Tally(), list[str](), list[float]()
    extras = [asyncio.create_task(show_progress(tally, until)), asyncio.create_task(watch_lag(until, lags))]
    try:
        await asyncio.gather(
            flood_create(base, until, tally, created),
            flood_guests(base, sid, until, tally),
            flood_beats(base, sid, until, tally),
            flood_hold(base, until, tally, created),
            flood_slow(harness.HOST, port, sid, until, tally),
            flood_heads(harness.HOST, port, sid, until, tally),
        )
    finally:
        for task in extras:
            task.cancel()
    return {
        "statuses": tally.statuses,
        "latencies": tally.latencies,
        "notes": tally.notes,
        "examples": tally.examples,
        "created": len(created),
        "lag_ms": max(lags, default=0.0),
    }


async def run_flood_worker(cfg: dict[str, Any]) -> tuple[Tally, int, float]:
    """`python bench/hostile.py --flood-worker CFG` in a process of its own; stopped by its pid whatever happens."""
    command = [sys.executable, str(Path(__file__).resolve()), "--flood-worker", json.dumps(cfg)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE)
    try:
        out, _ = await asyncio.to_thread(proc.communicate, None, cfg["seconds"] + 3 * REQUEST_TIMEOUT_S + 30)
    finally:
        harness.stop_process(proc, "flood worker", grace_s=5.0)
    if proc.returncode != 0:
        raise RuntimeError(f"the flood worker exited with {proc.returncode}")
    line = next(x for x in out.decode().splitlines() if x.startswith(WORKER_TAG))
    data = json.loads(line[len(WORKER_TAG) :])
    tally = Tally()
    for action, counts in data["statuses"].items():
        tally.statuses[action].update(counts)
    for action, values in data["latencies"].items():
        tally.latencies[action].extend(values)
    for action, notes in data["notes"].items():
        tally.notes[action].extend(notes)
    for action, examples in data["examples"].items():
        tally.examples[action].update(examples)
    return tally, int(data["created"]), float(data["lag_ms"])


# -- the report ----------------------------------------------------------------------------------------


def verdict(ok: bool | None) -> str:
    return "met" if ok else ("**not met**" if ok is False else "no figure")


def budgets(outcome: Outcome) -> tuple[float | None, float | None, str]:
    """The RSS (MB) and disk (bytes) the settings allow the flood, and how they were reckoned."""
    s = outcome.settings
    stages, hold_s = s.get("max_stages"), s.get("hold_audio_max_s")
    if stages is None or hold_s is None:
        return None, None, "the running code has no budget of stages or of hold audio to reckon one from"
    rss = stages * hold_s * PCM_BYTES_PER_S / 1e6 + OTHER_MB
    others = (stages - 1) * outcome.live_disk_rate * outcome.seconds
    disk = others + hold_s * PCM_BYTES_PER_S + 12 * 2**20 + DB_MB * 2**20
    how = (
        f"RSS: PODIUM_MAX_STAGES ({stages}) times PODIUM_HOLD_AUDIO_MAX_S ({hold_s:.0f} s) of hold audio kept as "
        f"48 kHz mono int16, plus {OTHER_MB} MB for the rest: {rss:.0f} MB. Disk: {stages - 1} other stages writing as "
        f"fast as the live one ({outcome.live_disk_rate / 1000:.1f} kB/s) for the flood's {outcome.seconds:.0f} s, "
        f"one hold file decoded and one uploaded (12 MiB), {DB_MB} MiB for the database: {disk / 2**20:.1f} MiB"
    )
    return rss, disk, how


def ms(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{harness.percentile(values, 50) * 1000:.0f} / {max(values) * 1000:.0f}"


def counted(counts: Counter[str]) -> str:
    return ", ".join(f"{k}: {n}" for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def goal_rows(o: Outcome) -> list[str]:
    """The figures against the issue's goals: (figure, result, goal and verdict) rows."""
    rows: list[tuple[str, str, str]] = []
    skipped = None if o.skipped_after is None or o.skipped_before is None else o.skipped_after - o.skipped_before
    log = o.skip_log
    rows.append(
        (
            "the live stage's frames skipped during the flood",
            f"{'no metric' if skipped is None else f'{skipped:.0f}'} (`/metrics`); in the log {log['live space']} on "
            f"the live stage, {log['other stages']} on strangers' stages ({log['lines']} lines)",
            f"0: {verdict(None if skipped is None else skipped == 0 and log['live space'] == 0)}",
        )
    )
    rss_budget, disk_budget, _ = budgets(o)
    rss_max = max([s.rss_mb for s in o.samples] + [o.rss_before, o.rss_after])
    rss_ok = None if rss_budget is None else rss_max - o.rss_before <= rss_budget
    rows.append(
        (
            "the node's RSS before / max / after",
            f"{o.rss_before:.0f} / {rss_max:.0f} / {o.rss_after:.0f} MB (max +{rss_max - o.rss_before:.0f} MB)",
            "no budget in the settings: **not met**"
            if rss_budget is None
            else f"growth ≤ {rss_budget:.0f} MB: {verdict(rss_ok)}",
        )
    )
    growth = sum(o.disk_after.values()) - sum(o.disk_before.values())
    split = ", ".join(f"{k} +{(o.disk_after[k] - o.disk_before[k]) / 2**20:.1f}" for k in o.disk_after)
    rows.append(
        (
            "the data dir's growth (flood and settling)",
            f"{growth / 2**20:.1f} MiB ({split})",
            "no budget in the settings: **not met**"
            if disk_budget is None
            else f"≤ {disk_budget / 2**20:.1f} MiB: {verdict(growth <= disk_budget)}",
        )
    )
    lags = [s.lag_ms for s in o.samples if s.lag_ms is not None]
    lag_text = f"median {harness.percentile(lags, 50):.0f} ms, max {max(lags):.0f} ms" if lags else "not exposed"
    rows.append(("the node's event-loop lag, each second (`/metrics`)", lag_text, "(informative)"))
    first = [j.first_audio_s for j in o.joiners]
    heard = [f for f in first if f is not None]
    rows.append(
        (
            "new listeners' first audio (join to first part) at 1/4, 1/2, 3/4 of the flood",
            ", ".join("never" if f is None else f"{f:.2f} s" for f in first),
            f"each ≤ {GOAL_FIRST_AUDIO_S:.0f} s: "
            f"{verdict(len(heard) == len(first) and max(heard, default=99) <= GOAL_FIRST_AUDIO_S)}",
        )
    )
    gaps = [max((b - a for a, b in itertools.pairwise(r.parts)), default=float("inf")) for r in o.listeners]
    rows.append(
        (
            "the 3 listeners: parts received (longest wait between two)",
            ", ".join(f"{len(r.parts)} ({g:.2f} s)" for r, g in zip(o.listeners, gaps, strict=True)),
            f"waits ≤ 2 s: {verdict(all(g <= 2.0 for g in gaps))}",
        )
    )
    statuses: Counter[str] = Counter()
    for c in o.controls.tally.statuses.values():
        statuses.update(c)
    latencies = [x for v in o.controls.tally.latencies.values() for x in v]
    controls_ok = bool(statuses) and all(k.startswith("2") for k in statuses)
    rows.append(
        (
            "the host's controls during the flood: answers; p50 / max ms",
            f"{counted(statuses)}; {ms(latencies)}",
            f"all 2xx within {GOAL_CONTROL_S:.0f} s: "
            f"{verdict(controls_ok and max(latencies, default=99) <= GOAL_CONTROL_S)}",
        )
    )
    end_s = o.controls.end_s if o.controls.end_s is not None else float("inf")
    rows.append(
        (
            "the host's `POST /end` after the flood",
            f"{o.controls.end_status} in {end_s:.2f} s",
            f"200 within {GOAL_END_S:.0f} s: {verdict(o.controls.end_status == '200' and end_s <= GOAL_END_S)}",
        )
    )
    budget = o.settings.get("max_stages")
    stages = "-" if o.stages_end is None else f"{o.stages_end:.0f}"
    rows.append(
        (
            "stages running after the flood (pre-shows included, `podium_live_spaces`)",
            f"{stages}; spaces the strangers made: {o.created}",
            "no PODIUM_MAX_STAGES: **not met**"
            if budget is None
            else f"≤ {budget}: {verdict(None if o.stages_end is None else o.stages_end <= budget)}",
        )
    )
    peak = o.public_listeners.get("peak")
    rows.append(
        (
            "the live space's listeners as shown to everyone (`now` / `peak`)",
            f"{o.public_listeners.get('now', '-')} / {peak if peak is not None else '-'} (real: {o.real_listeners}, "
            f"and {len(o.joiners)} short visits)",
            f"peak ≤ {o.real_listeners + len(o.joiners)}: "
            f"{verdict(isinstance(peak, int) and peak <= o.real_listeners + len(o.joiners))}",
        )
    )
    errors = sum(n for c in o.tally.statuses.values() for k, n in c.items() if k.startswith("5") and k != "503")
    rows.append(("answers 5xx other than 503 (shed) to the flood", str(errors), f"0: {verdict(errors == 0)}"))
    return [f"| {a} | {b} | {c} |" for a, b, c in rows]


def report(outcome: Outcome) -> str:
    o = outcome
    lines = ["## Hostile: a bounded flood of anonymous actions while a live space plays", "", *harness.header_lines()]
    pinned = ", ".join(f"`{k}` {v}" for k, v in o.settings.items())
    lines += [
        "- Server: `podium serve` on 127.0.0.1, every limit at its default, set explicitly (the harness lifts some "
        f"for the other benchmarks), with `PODIUM_ICE_LOOPBACK=only`, `PODIUM_LOG_LEVEL=warning`. The limits: {pinned}",
        "",
        "The live space: the host publishes a 440 Hz tone over WHIP (aiortc); 3 listeners (127.0.1.1-3) join as the "
        "page does, follow `live.m3u8` part by part with blocking reloads and beat with their pass; the host's console "
        "reads the board and the stage each second and mutes and unmutes itself every 4 s (a few frames of silence). "
        f"Then for {o.seconds:.0f} s, each action below from its own tasks and addresses at a fixed rate. Every answer "
        "is counted, whatever its status; requests time out after 10 s; raw sockets are held to the flood's end at the "
        "longest. Three more listeners (127.0.1.11-13) join at a quarter, half and three quarters of the flood. "
        "*Sent* is what the flood's process achieved (it falls short of the rate when the machine's CPUs are busy).",
        "",
        "| action | addresses | rate (per s) | sent (per s) | what |",
        "|---|---|---:|---:|---|",
    ]
    for a in FLOOD:
        total = a.rate * a.addresses
        sent = sum(
            sum(c.values()) for name, c in o.tally.statuses.items() if name.startswith(a.name) and ":" not in name
        )
        rates = f"{total:g} ({a.rate:g} each) | {sent / o.seconds:.1f}"
        lines.append(f"| {a.name} | {a.prefix}1-{a.addresses} | {rates} | {a.what} |")
    lines += ["", "| figure | result | goal |", "|---|---|---|", *goal_rows(o), "", f"Budgets: {budgets(o)[2]}.", ""]
    lines += [
        "What each action got (status: count; `still open at the end`: a raw socket the server had neither answered "
        "nor closed when the flood ended; time to the answer, p50 / max):",
        "",
        "| action | answers | p50 / max (ms) |",
        "|---|---|---:|",
    ]
    for action in sorted(o.tally.statuses):
        lines.append(f"| {action} | {counted(o.tally.statuses[action])} | {ms(o.tally.latencies.get(action, []))} |")
    lines += ["", "Notes:", ""]
    for action, notes in o.tally.notes.items():
        lines += [f"- {action}: {n}" for n in notes]
    for action in sorted(o.tally.examples):
        said = "; ".join(f"{status}: `{text}`" for status, text in sorted(o.tally.examples[action].items()))
        lines.append(f"- {action}, what the server said: {said}")
    for r in [*o.listeners, *o.joiners]:
        lines.append(f"- listener {r.n}: {r.outcome or 'unfinished'}; {counted(r.statuses)}")
    if o.shed_end:
        shed = ", ".join(f"`{k}` {v:.0f}" for k, v in o.shed_end.items())
        lines.append(f"- Shed by the node (`/metrics`, since its start): {shed}")
    client_lag = max((s.client_lag_ms for s in o.samples), default=0.0)
    lines.append(
        "- The flood runs in a Python process of its own (its loop woke up to "
        f"{o.worker_lag_ms:.0f} ms late); the listeners, the host and the WHIP speaker share another (up to "
        f"{client_lag:.0f} ms late on its 1 s samples), and both share the machine's CPUs with the server: a latency "
        "above is partly the clients'."
    )
    lines.append("- The server's log during the run (warnings and errors by kind): " + "; ".join(o.log_noise))
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a 10 s flood (CI smoke)")
    parser.add_argument("--seconds", type=float, help="how long the flood runs (default 60, quick 10)")
    parser.add_argument("--no-write", action="store_true", help="print the results, leave RESULTS.md alone")
    parser.add_argument("--flood-worker", metavar="CFG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flood_worker:
        result = asyncio.run(flood(json.loads(args.flood_worker)))
        print(WORKER_TAG + json.dumps(result), flush=True)
        return 0
    if args.seconds is None:
        args.seconds = 10.0 if args.quick else 60.0
    if not 1 <= args.seconds <= 600:
        parser.error("--seconds: from 1 to 600")
    outcome = asyncio.run(measure(args))
    text = report(outcome)
    print(text)
    if not args.no_write:
        harness.write_section("hostile", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
