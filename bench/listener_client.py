"""Simulated listeners, as asyncio tasks on one keep-alive `LeanClient` connection each (many per process).

Two kinds, each with the tally it reports:
- a **player at the live edge** (`play_live_edge`, `run_players`): what hls.js does with `lowLatencyMode` once it
  plays, blocking playlist reloads for the part the preload hint names and the new parts they list (bench/edge.py);
- a **listener joining in a crowd** (`join_and_listen`, `run_crowd`): what the listener page does, the space's
  state, the join call (in line with its ticket, the puzzle when asked), the playlists, `init.mp4`, the newest part
  (its first audio), then a few blocking reloads (bench/flash_crowd.py).

Both read playlists with the same few patterns; every loop is bounded in count and time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import re
import resource
import secrets
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import harness
from http_client import LeanClient

from podium.ops.rehearse import Plan, solve_puzzle

# The stream's layout (podium.media.packager.Layout: 24 AAC frames of 1024 samples at 48 kHz per part, 4 parts
# per segment); `check_layout` holds it against the packager.
PART_S = 0.512
PARTS_PER_SEGMENT = 4
REQUEST_TIMEOUT_S = 15.0  # nginx's proxy_read_timeout in the shipped config
MAX_BEHIND_S = 2.0  # a player further behind the live edge than this jumps to it (see `play_live_edge`)
MAX_JOIN_WAIT_S = 60.0  # a joining listener gives up after this long in line


# -- playlists, as a listener reads them ---------------------------------------------------------------

_PART_KEY = re.compile(rb'#EXT-X-PART:[^\n]*?URI="p(\d+)-(\d+)\.m4s"')
# The name of each part a playlist lists, and of each segment (a playlist may list segments only).
PART_URI = re.compile(rb'#EXT-X-PART:[^\n]*URI="(p\d+-\d+\.m4s)"')
_SEGMENT_URI = re.compile(rb"^(s\d+\.m4s)$", re.M)
_HINT = re.compile(rb'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p(\d+)-(\d+)\.m4s"')
_PART_DURATION = re.compile(rb"#EXT-X-PART:DURATION=([\d.]+)")
_PDT = b"#EXT-X-PROGRAM-DATE-TIME:"

Key = tuple[int, int]  # (media sequence number, part index) of a part


@dataclass(frozen=True)
class Listing:
    parts: tuple[Key, ...]  # every part the playlist lists, oldest first
    hint: Key | None  # the part the preload hint names (being made)
    edge_end: float | None  # wall-clock time at which the newest listed part's media ends (its PDT + durations)


_listings: dict[bytes, Listing] = {}


def read_playlist(body: bytes) -> Listing:
    """What a listener needs from a media playlist; parsed once per distinct body (10,000 listeners get the same)."""
    found = _listings.get(body)
    if found is None:
        parts = tuple((int(m), int(i)) for m, i in _PART_KEY.findall(body))
        hint = _HINT.search(body)
        edge_end = None
        at = body.rfind(_PDT)
        if at >= 0:
            line_end = body.find(b"\n", at)
            with contextlib.suppress(ValueError):
                start = harness.parse_time(body[at + len(_PDT) : line_end].decode())
                edge_end = start + sum(float(d) for d in _PART_DURATION.findall(body, line_end))
        found = Listing(parts, (int(hint.group(1)), int(hint.group(2))) if hint else None, edge_end)
        if len(_listings) > 512:
            _listings.clear()
        _listings[body] = found
    return found


def whole_parts(seconds: float) -> float:
    return max(1, round(seconds / PART_S)) * PART_S


def advance(key: Key, parts: int) -> Key:
    """The part `parts` after `key` (part indexes run 0..3 within a segment, as Podium names them)."""
    msn, index = divmod(key[0] * PARTS_PER_SEGMENT + key[1] + parts, PARTS_PER_SEGMENT)
    return msn, index


def part_path(hls: str, key: Key) -> str:
    return f"{hls}p{key[0]}-{key[1]}.m4s"


def reload_path(hls: str, key: Key) -> str:
    return f"{hls}live.m3u8?_HLS_msn={key[0]}&_HLS_part={key[1]}&_HLS_skip=YES"


# -- a player at the live edge ------------------------------------------------------------------------


class PlayerTally:
    """What one process's listeners did: answers per kind, status, cache status and second; in each window, how
    long requests took and how old the newest part was when a reload answered; per listener, requests and parts."""

    def __init__(self, listeners: int, windows: dict[str, tuple[float, float]]) -> None:
        self.windows = windows
        self.answers: Counter[tuple[str, str, str, int]] = Counter()
        self.took: Counter[tuple[str, str, int]] = Counter()  # (window, kind, 10 ms bucket)
        self.age: Counter[tuple[str, int]] = Counter()  # (window, 10 ms bucket)
        self.jumps: Counter[int] = Counter()  # per second: listeners that jumped to the live edge
        self.skipped: Counter[int] = Counter()  # per second: parts jumped over
        self.requests = [0] * listeners
        self.parts = [0] * listeners
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.lag_ms: list[float] = []
        self.started = 0
        self.failed = 0
        self.errors: list[str] = []

    def window_of(self, now: float) -> str | None:
        for name, (start, end) in self.windows.items():
            if start <= now < end:
                return name
        return None

    def answered(self, kind: str, status: str, cache: str, started: float, now: float) -> None:
        self.answers[(kind, status, cache, int(now))] += 1
        window = self.window_of(now)
        if window is not None:
            self.took[(window, kind, min(int((now - started) * 100), 2000))] += 1

    def error(self, kind: str, exc: BaseException, now: float) -> None:
        self.answers[(kind, type(exc).__name__, "-", int(now))] += 1
        if len(self.errors) < 5:
            self.errors.append(f"{kind}: {type(exc).__name__}: {exc}")

    def snapshot(self, name: str) -> None:
        self.snapshots[name] = {"at": time.time(), "requests": list(self.requests), "parts": list(self.parts)}

    def to_json(self) -> dict[str, Any]:
        return {
            "answers": [[*k, n] for k, n in self.answers.items()],
            "took": [[*k, n] for k, n in self.took.items()],
            "age": [[*k, n] for k, n in self.age.items()],
            "jumps": list(self.jumps.items()),
            "skipped": list(self.skipped.items()),
            "snapshots": self.snapshots,
            "lag_ms": [round(x, 1) for x in self.lag_ms],
            "started": self.started,
            "failed": self.failed,
            "errors": self.errors,
        }


async def fetch(client: LeanClient, tally: PlayerTally, kind: str, path: str) -> tuple[int, bytes]:
    """GET; (status, body), or (0, b"") when the connection failed or timed out (counted, never raised)."""
    started = time.time()
    try:
        status, headers, body = await client.request("GET", path)
    except (OSError, TimeoutError, ConnectionError) as exc:
        tally.error(kind, exc, time.time())
        return 0, b""
    tally.answered(kind, str(status), headers.get(b"x-cache-status", b"-").decode(), started, time.time())
    return status, body


async def play_live_edge(cfg: dict[str, Any], tally: PlayerTally, n: int, start_at: float, stop_at: float) -> None:
    """One listener, as hls.js plays LL-HLS: the playlist, init and newest part; then a blocking reload for the
    part the preload hint names and the new part(s) it lists, again and again, on one keep-alive connection.

    A listener more than MAX_BEHIND_S behind the live edge (the newest part its reload listed ended that long ago,
    by the playlist's PROGRAM-DATE-TIME: this machine could not run it in time) fetches only that newest part and
    asks next for the part being made now, as a player that fell behind seeks to the live edge, instead of walking
    through every part it missed: its requests stay on the objects the rest of the audience asks for, never on
    reloads old enough to have left nginx's cache (`max-age=12`), which real players at the edge never ask for."""
    await asyncio.sleep(max(0.0, start_at - time.time()))
    if time.time() >= stop_at:
        return
    tally.started += 1
    hls = cfg["hls"]
    client = LeanClient(cfg["host"], cfg["port"], timeout_s=REQUEST_TIMEOUT_S)
    try:
        listing = None
        for _ in range(30):  # joining: retried every second, as a player retries
            status, body = await fetch(client, tally, "playlist", hls + "live.m3u8")
            tally.requests[n] += 1
            if status == 200 and read_playlist(body).parts and read_playlist(body).hint:
                listing = read_playlist(body)
                break
            if time.time() >= stop_at:
                break
            await asyncio.sleep(1.0)
        if listing is None or listing.hint is None:
            tally.failed += 1
            return
        await fetch(client, tally, "init", hls + "init.mp4")
        last = listing.parts[-1]
        status, _ = await fetch(client, tally, "part", part_path(hls, last))
        tally.requests[n] += 2
        tally.parts[n] += status == 200
        key = listing.hint
        # Bounded: each round is a blocking reload (about a part long at the edge) or a 1 s pause after a failure.
        for _ in range(int((stop_at - time.time()) / 0.01) + 100):
            if time.time() >= stop_at:
                break
            status, body = await fetch(client, tally, "blocking reload", reload_path(hls, key))
            tally.requests[n] += 1
            listing = read_playlist(body) if status == 200 else Listing((), None, None)
            if listing.hint is None:  # a failed fetch, a hold that ran out (503), or asked too far ahead (400)
                await asyncio.sleep(1.0)  # Podium's Retry-After
                status, body = await fetch(client, tally, "playlist", hls + "live.m3u8")
                tally.requests[n] += 1
                listing = read_playlist(body) if status == 200 else listing
                key = listing.hint or key
                last = max(last, listing.parts[-1]) if listing.parts else last
                continue
            now = time.time()
            new = [p for p in listing.parts if p > last]
            key = listing.hint
            if listing.edge_end is not None:
                behind = now - listing.edge_end
                window = tally.window_of(now)
                if window is not None:
                    tally.age[(window, min(int(behind * 100), 6000))] += 1
                if behind > MAX_BEHIND_S:
                    jump = int(behind / PART_S)
                    tally.jumps[int(now)] += 1
                    tally.skipped[int(now)] += max(0, len(new) - 1) + jump
                    new = new[-1:]
                    key = advance(listing.hint, jump)
            for part in new:
                status, _ = await fetch(client, tally, "part", part_path(hls, part))
                tally.requests[n] += 1
                tally.parts[n] += status == 200
                last = part
            if key != listing.hint:  # jumped: the parts before the one asked for are skipped too
                last = max(last, advance(key, -1))
    finally:
        client.close()


async def snapshots_at(tally: PlayerTally, marks: dict[str, float]) -> None:
    for name, when in sorted(marks.items(), key=lambda item: item[1]):
        await asyncio.sleep(max(0.0, when - time.time()))
        tally.snapshot(name)


async def _show_players(
    tally: PlayerTally, say: Callable[[str], None], label: str, total: int, until: float, every_s: float = 5.0
) -> None:
    for _ in range(int((until - time.time()) / every_s) + 2):
        await asyncio.sleep(every_s)
        if time.time() >= until:
            return
        second = int(time.time()) - 1
        rate = sum(n for (_, _, _, s), n in tally.answers.items() if s == second)
        say(
            f"{label}: {tally.started:,}/{total:,} listening, {rate:,} requests in the last second, "
            f"{sum(tally.jumps.values()):,} jumps to the live edge so far"
        )


async def run_players(cfg: dict[str, Any], label: str, say: Callable[[str], None]) -> PlayerTally:
    """`cfg["count"]` listeners, their starts spread evenly over `ramp_s` from `ramp_start`, until `stop_at`."""
    count = cfg["count"]
    windows = {name: (w[0], w[1]) for name, w in cfg["windows"].items()}
    tally = PlayerTally(count, windows)
    marks = {f"{name} {edge}": w[i] for name, w in windows.items() for i, edge in enumerate(("start", "end"))}
    rng = random.Random(cfg["seed"])
    starts = [cfg["ramp_start"] + cfg["ramp_s"] * (i + rng.random()) / count for i in range(count)]
    tasks = [asyncio.create_task(play_live_edge(cfg, tally, i, at, cfg["stop_at"])) for i, at in enumerate(starts)]
    side = [
        asyncio.create_task(watch_lag(tally.lag_ms, cfg["stop_at"])),
        asyncio.create_task(snapshots_at(tally, marks)),
        asyncio.create_task(_show_players(tally, say, label, count, cfg["stop_at"])),
    ]
    _, pending = await asyncio.wait(tasks, timeout=max(1.0, cfg["stop_at"] - time.time() + REQUEST_TIMEOUT_S + 5))
    for task in [*pending, *side]:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    return tally


# -- a listener joining in a crowd ---------------------------------------------------------------


@dataclass
class CrowdTally:
    """What one worker's listeners saw: per-second answer counts, one record per listener, and the
    arrival times of parts for the listeners that follow the stream through the start."""

    counts: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    records: list[dict[str, Any]] = field(default_factory=list)
    arrivals: dict[int, dict[str, float]] = field(default_factory=dict)
    lag_ms: list[float] = field(default_factory=list)
    started: int = 0
    heard: int = 0
    failed: int = 0
    waiting: int = 0

    def count(self, kind: str, status: int | str, cache: bytes | None) -> None:
        key = f"{kind}|{status}|{(cache or b'-').decode()}"
        self.counts[key][int(time.time())] += 1


class Failed(Exception):
    """A listener gave up: what it was doing and what it got."""


async def _get(
    client: LeanClient, tally: CrowdTally, kind: str, path: str, tries: int = 3, seen: dict[str, str] | None = None
) -> bytes:
    """GET that must answer 200; a failed try is retried after 0.5 s, as players retry a fetch. `seen` gets the
    answer's X-Cache-Status."""
    last = ""
    for attempt in range(tries):
        try:
            status, headers, body = await client.request("GET", path)
        except (OSError, TimeoutError, ConnectionError) as exc:
            tally.count(kind, type(exc).__name__, None)
            last = type(exc).__name__
        else:
            tally.count(kind, status, headers.get(b"x-cache-status"))
            if seen is not None:
                seen["cache"] = headers.get(b"x-cache-status", b"-").decode()
            if status == 200:
                return body
            last = str(status)
        if attempt + 1 < tries:
            await asyncio.sleep(0.5)
    raise Failed(f"{kind}: {last}")


async def _join(client: LeanClient, tally: CrowdTally, cfg: dict[str, Any], n: int, record: dict[str, Any]) -> None:
    """The join call as the page makes it (admission.js): in line until let in, the puzzle when asked."""
    path = f"/api/spaces/{cfg['space_id']}/join"
    client_id = f"crowd-{n:06d}-{secrets.token_hex(4)}"
    body: dict[str, Any] = {"client_id": client_id}
    deadline = time.time() + MAX_JOIN_WAIT_S
    for _ in range(200):
        if time.time() >= deadline:
            break
        try:
            status, headers, content = await client.request("POST", path, json.dumps(body).encode())
        except (OSError, TimeoutError, ConnectionError) as exc:
            tally.count("join", type(exc).__name__, None)
            record["join_errors"] = record.get("join_errors", 0) + 1
            await asyncio.sleep(2.0)  # what the page does when the connection drops
            continue
        tally.count("join", status, headers.get(b"x-cache-status"))
        record["joins"] = record.get("joins", 0) + 1
        retry = float(headers.get(b"retry-after", b"1") or 1)
        if status == 200:
            return
        data = json.loads(content) if content.startswith(b"{") else {}
        if status == 202 and "challenge" in data:
            record["puzzles"] = record.get("puzzles", 0) + 1
            counter = solve_puzzle(data["challenge"], int(data["difficulty_bits"]))
            body = {"client_id": client_id, "challenge": data["challenge"], "counter": counter}
            continue
        if status == 202:
            record["waited"] = True
            record["position"] = max(record.get("position", 0), int(data.get("position", 0)))
            body = {"client_id": client_id, "ticket": data["ticket"]}
            if "solved" in data:
                body["solved"] = data["solved"]
            tally.waiting += 1
            # When the place is due, to the millisecond, as the page does (Retry-After is whole seconds).
            due_ms = data.get("retry_after_ms")
            if isinstance(due_ms, int):
                retry = due_ms / 1000
            try:
                await asyncio.sleep(retry + random.uniform(0, 0.3))
            finally:
                tally.waiting -= 1
            continue
        if status in (429, 503):
            record["shed"] = record.get("shed", 0) + 1
            await asyncio.sleep(retry + random.uniform(0, 0.5))
            continue
        raise Failed(f"join: {status}")
    raise Failed("join: still in line after 60 s")


async def join_and_listen(cfg: dict[str, Any], tally: CrowdTally, n: int, due: float, follows: bool) -> None:
    """One listener: join, first audio, then follow the stream (two parts, or through the start)."""
    await asyncio.sleep(max(0.0, due - time.time()))
    began = time.time()
    tally.started += 1
    record: dict[str, Any] = {"n": n, "due": due, "began": began, "follows": follows}
    tally.records.append(record)
    client = LeanClient(harness.HOST, cfg["port"], listener_address(n), REQUEST_TIMEOUT_S)
    hls = f"/hls/{cfg['space_id']}"
    try:
        await _get(client, tally, "state", f"/api/spaces/{cfg['space_id']}")
        record["state"] = time.time()
        await _join(client, tally, cfg, n, record)
        record["admitted"] = time.time()
        await _get(client, tally, "multivariant", f"{hls}/index.m3u8")
        seen: dict[str, str] = {}
        playlist = await _get(client, tally, "playlist", f"{hls}/live.m3u8", seen=seen)
        await _get(client, tally, "init", f"{hls}/init.mp4")
        for attempt in range(3):  # a part the playlist names but the origin no longer has: reload, as players do
            parts = PART_URI.findall(playlist) or _SEGMENT_URI.findall(playlist)
            if not parts:
                raise Failed("playlist: no part or segment listed")
            first = parts[-1].decode()
            try:
                await _get(client, tally, "first part", f"{hls}/{first}", tries=1 if attempt < 2 else 3)
                break
            except Failed:
                record.setdefault("missed", []).append([first, seen.get("cache", "-")])
                if attempt == 2:
                    raise
                await asyncio.sleep(0.5)
                playlist = await _get(client, tally, "playlist", f"{hls}/live.m3u8", seen=seen)
        record["heard"] = time.time()
        record["first"] = first
        tally.heard += 1
        arrivals = tally.arrivals.setdefault(n, {}) if follows else None
        if arrivals is not None:
            arrivals[first] = record["heard"]
        fetched = {first}
        until = cfg["follow_until"] if follows else math.inf
        rounds = 10_000 if follows else cfg["follow_rounds"]
        for _ in range(min(rounds, 400)):
            if time.time() >= until:
                break
            hint = _HINT.search(playlist)
            if hint is None:
                await asyncio.sleep(PART_S)
                playlist = await _get(client, tally, "reload", f"{hls}/live.m3u8")
                continue
            query = f"_HLS_msn={int(hint.group(1))}&_HLS_part={int(hint.group(2))}&_HLS_skip=YES"
            playlist = await _get(client, tally, "reload", f"{hls}/live.m3u8?{query}")
            new = [p.decode() for p in PART_URI.findall(playlist)[-2:] if p.decode() not in fetched]
            for name in new:
                await _get(client, tally, "part", f"{hls}/{name}")
                fetched.add(name)
                if arrivals is not None:
                    arrivals[name] = time.time()
            if not new:  # a static playlist (the peer) does not block: wait a part, as a player would
                await asyncio.sleep(PART_S)
        record["outcome"] = "ok"
    except Failed as exc:
        record["outcome"] = str(exc)
        if "heard" not in record:
            tally.failed += 1
    except (OSError, TimeoutError, ConnectionError) as exc:
        record["outcome"] = f"connection: {type(exc).__name__}"
        if "heard" not in record:
            tally.failed += 1
    finally:
        client.close()


async def _show_progress(tally: CrowdTally, number: int, total: int, until: float) -> None:
    for _ in range(int((until - time.time()) / 2) + 2):
        await asyncio.sleep(2.0)
        print(
            f"[flash-crowd] worker {number}: {tally.started:,}/{total:,} started, {tally.heard:,} heard audio, "
            f"{tally.waiting:,} in line, {tally.failed:,} failed",
            file=sys.stderr,
            flush=True,
        )
        if tally.heard + tally.failed >= total or time.time() >= until:
            return


def crowd_times(listeners: int, ramp_s: float) -> tuple[list[float], float]:
    """When each listener's join is due (s from the first), along `podium rehearse`'s flash-crowd curve with all
    due within `ramp_s`; and the curve's peak rate (joins/s)."""
    plan = Plan("", "", listeners, peak_joins_per_s=4 * listeners / (3 * ramp_s))
    return plan.join_times(), plan.peak_joins_per_s


def crowd_share(
    listeners: int, ramp_s: float, start: float, workers: int, number: int, follow_every: int
) -> list[tuple[int, float, bool]]:
    """Worker `number`'s listeners: (n, when its join is due, whether it follows through the start)."""
    times, _ = crowd_times(listeners, ramp_s)
    return [(n, start + t, n % follow_every == 0) for n, t in enumerate(times) if n % workers == number]


async def run_crowd(cfg: dict[str, Any]) -> dict[str, Any]:
    """One worker process's share of the crowd, until all are done or `cfg["deadline"]`; what they saw, as JSON."""
    tally = CrowdTally()
    plan = crowd_share(cfg["listeners"], cfg["ramp"], cfg["start"], cfg["workers"], cfg["number"], cfg["follow_every"])
    tasks = [asyncio.create_task(join_and_listen(cfg, tally, n, due, follows)) for n, due, follows in plan]
    side = [
        asyncio.create_task(watch_lag(tally.lag_ms, cfg["deadline"])),
        asyncio.create_task(_show_progress(tally, cfg["number"], len(plan), cfg["deadline"])),
    ]
    _, pending = await asyncio.wait(tasks, timeout=max(1.0, cfg["deadline"] - time.time()))
    for task in pending:
        task.cancel()
    for task in (*pending, *side):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    for record in tally.records:
        record.setdefault("outcome", "cut at the run's deadline")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "counts": {k: {str(s): c for s, c in v.items()} for k, v in tally.counts.items()},
        "records": tally.records,
        "arrivals": {str(n): a for n, a in tally.arrivals.items()},
        "lag_ms": [round(x, 1) for x in tally.lag_ms],
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


async def watch_lag(lag_ms: list[float], until: float, period_s: float = 0.05) -> None:
    """How late the event loop wakes up (ms, into `lag_ms`): a loop that is always late makes every listener late."""
    loop = asyncio.get_running_loop()
    for _ in range(int((until - time.time()) / period_s) + 2):
        if time.time() >= until:
            return
        before = loop.time()
        await asyncio.sleep(period_s)
        lag_ms.append((loop.time() - before - period_s) * 1000)


def listener_address(n: int) -> str:
    """Listener `n`'s own source address, as a crowd comes from many (127.1.x.y)."""
    return f"127.1.{n // 250}.{n % 250 + 1}"


def check_layout() -> None:
    """The constants here against Podium's own packager and stage."""
    from podium.media.packager import Layout

    layout = Layout()
    if abs(layout.part_s - PART_S) > 1e-9 or layout.parts_per_segment != PARTS_PER_SEGMENT:
        raise SystemExit(f"the packager's layout changed ({layout}): update PART_S and PARTS_PER_SEGMENT")
