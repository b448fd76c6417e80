"""The timeline behind the shipped cache tier: origin load at 100 and at 10,000 readers, post → visible.

`podium serve` sits behind nginx running `deploy/nginx/podium.conf` (upstream, listen address and
cache path rewritten, as in tests/test_nginx.py). Readers follow a space's timeline as the listener
page does (`follow()` in audience.js): fetch `index.json` once, start at its `keyframe`, then ask for
each next object directly (`GET /timeline/ID/SEQ.json`). Podium holds the request for the next one
(latest + 1) until it is made, so after a 200 a reader asks for the following one at once; after a 404
(not made in time, or too far ahead) it re-reads the index, sleeps `interval_s` and goes on from where
it is, or from the index's keyframe if it is past latest + 1. A writer posts a comment with a unique
text about every 0.5 s through nginx. First 100 readers run alone (phase A), then 9,900 more join in
worker processes, for 10,000 in all (phase B). Phase C, the reference: a few readers follow Podium
directly, no cache in between, while the writer goes on.

Measured, per phase: the requests nginx sent to Podium for the timeline (nginx's own log of requests
that had an upstream, background updates included), the readers' achieved request rate, their errors,
and what nginx answered from its cache (the `X-Cache-Status` each reader got); and, for a sample of
readers, when each post first appeared in an item they fetched, minus when its POST was acknowledged.

Readers are asyncio tasks, each with its own keep-alive connection (a held request occupies its
connection until the object exists, so readers cannot share a few), through a small HTTP/1.1 client on
uvloop and httptools (both installed with Podium): 10,000 readers must fit on the same 2 CPUs as nginx
and Podium (in a quick check here httpx used about 1.5 ms of CPU per request, this client about 20 µs).

Usage: python bench/timeline.py [--quick] [--readers N] [--window-a S] [--window-b S] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
import httpx
import uvloop
from http_client import ConnectionPool
from nginx_tier import NGINX, AccessLog, Nginx, nginx_version, start_cache_tier

GOAL_RATIO = 1.2
GOAL_P95_S = 2.0
POST_PERIOD_S = 0.5
POST_JITTER = 0.3  # gaps uniform in 0.35..0.65 s
WORKER_TAG = "TIMELINE-WORKER "
# Posting and sign-up limits lifted: the writer posts 120 comments a minute from one account.
SERVER_ENV = {
    "PODIUM_POST_LIMIT_PER_USER": "100000/minute",
    "PODIUM_POST_LIMIT_PER_ADDRESS": "1000000/minute",
    "PODIUM_SIGNUP_LIMIT_PER_ADDRESS": "1000/minute",
}
REQUEST_TIMEOUT_S = 10.0  # Podium holds the next object up to 2.5 intervals; nginx's cache lock waits up to 10 s
CACHED = ("HIT", "STALE", "UPDATING")  # X-Cache-Status values answered without a request to Podium
# "|"-separated: with retries, $upstream_status, $upstream_response_time and $upstream_addr list one value
# per attempt, separated by ", ".
# Only requests that went to Podium are logged: $upstream_addr is empty for cache hits.
ORIGIN_LOG = AccessLog(
    "origin.log",
    "origin",
    "$msec|$upstream_cache_status|$upstream_status|$upstream_response_time|$upstream_addr|$request_uri",
    "if=$upstream_addr",
)
FD_MARGIN = 256  # file descriptors a process needs besides its readers' connections


# -- answers and their times ---------------------------------------------------------------------


def _bucket(value_ms: float) -> int:
    """Log buckets, about 5% wide: enough for percentiles, and histograms merge across processes."""
    return math.floor(math.log10(max(value_ms, 0.01)) * 50)


def _bucket_ms(bucket: int) -> float:
    return float(10 ** ((bucket + 1) / 50))  # the bucket's upper edge


def histogram_percentile(hist: Counter[int], p: float) -> float | None:
    total = sum(hist.values())
    if not total:
        return None
    rank = max(1, math.ceil(total * p / 100))
    seen = 0
    for bucket in sorted(hist):
        seen += hist[bucket]
        if seen >= rank:
            return _bucket_ms(bucket)
    return _bucket_ms(max(hist))


@dataclass
class Stats:
    """What one process's readers saw: per-second counts of answers per category and of the readers' other
    events (`events`: index re-reads after a 404, jumps back to a keyframe...), latency histograms per window
    and request kind ("A index", "A item")."""

    windows: dict[str, tuple[float, float]]
    per_second: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    events: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    latency: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    lag: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    error_examples: list[str] = field(default_factory=list)

    def window_of(self, now: float) -> str | None:
        for name, (start, end) in self.windows.items():
            if start <= now < end:
                return name
        return None

    def record(self, kind: str, outcome: str, started: float, now: float) -> None:
        self.per_second[f"{kind} {outcome}"][int(now)] += 1
        window = self.window_of(now)
        if window is not None:
            self.latency[f"{window} {kind}"][_bucket((now - started) * 1000)] += 1

    def event(self, name: str, now: float) -> None:
        self.events[name][int(now)] += 1

    def error(self, kind: str, exc: BaseException, now: float) -> None:
        self.per_second[f"{kind} error"][int(now)] += 1
        if len(self.error_examples) < 5:
            self.error_examples.append(f"{kind}: {type(exc).__name__}: {exc}")

    def to_json(self) -> dict[str, Any]:
        return {
            "per_second": {k: {str(s): n for s, n in v.items()} for k, v in self.per_second.items()},
            "events": {k: {str(s): n for s, n in v.items()} for k, v in self.events.items()},
            "latency": {k: {str(b): n for b, n in v.items()} for k, v in self.latency.items()},
            "lag": {k: {str(b): n for b, n in v.items()} for k, v in self.lag.items()},
            "error_examples": self.error_examples,
        }

    def merge_json(self, data: dict[str, Any]) -> None:
        for attr in ("per_second", "events"):
            for key, bins in data[attr].items():
                getattr(self, attr)[key].update({int(s): n for s, n in bins.items()})
        for attr in ("latency", "lag"):
            for key, hist in data[attr].items():
                getattr(self, attr)[key].update({int(b): n for b, n in hist.items()})
        self.error_examples += data["error_examples"][: max(0, 5 - len(self.error_examples))]


async def fetch(pool: ConnectionPool, stats: Stats, path: bytes, kind: str) -> tuple[int, bytes]:
    """GET `path` through `pool`; returns (status, body); counts the answer (and its X-Cache-Status) in `stats`."""
    started = time.time()
    try:
        status, headers, body = await pool.get(path)
    except (OSError, TimeoutError) as exc:
        stats.error(kind, exc, time.time())
        raise
    cache = headers.get(b"x-cache-status", b"")
    outcome = (cache.decode() or "no-cache-status") if status == 200 else f"status {status}"
    stats.record(kind, outcome, started, time.time())
    return status, body


# -- readers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Index:
    latest: int
    keyframe: int
    item_url: str
    state: str
    interval_s: float


_index_by_body: dict[bytes, Index] = {}


def parse_index(body: bytes) -> Index:
    """An index answer (parsed once per distinct body); ValueError or KeyError if it is not one."""
    found = _index_by_body.get(body)
    if found is None:
        data = json.loads(body)
        latest = int(data["latest"])
        found = Index(
            latest=latest,
            keyframe=int(data.get("keyframe", max(0, latest))),
            item_url=str(data["item_url"]),
            state=str(data.get("state", "")),
            interval_s=float(data.get("interval_s") or 1.0),
        )
        if len(_index_by_body) > 256:
            _index_by_body.clear()
        _index_by_body[body] = found
    return found


async def follow(
    host: str,
    port: int,
    stats: Stats,
    space_id: str,
    start_at: float,
    stop_at: float,
    interval_s: float,
    on_item: Callable[[bytes, float], None] | None = None,
) -> None:
    """One reader, step by step as `follow()` in audience.js, on its own keep-alive connection.

    The index once, to start at its keyframe; then each next object in turn: a 200 is applied and the
    next one asked for at once (Podium holds the request for latest + 1 until the object is made); any
    other answer re-reads the index (the end of a space stops the reader; being past latest + 1 sends it
    back to the keyframe) and sleeps the index's `interval_s`. A failed fetch sleeps 2 s. As on the page,
    a failed first index ends the reader (counted as an event)."""
    await asyncio.sleep(max(0.0, start_at - time.time()))
    pool = ConnectionPool(host, port, 1, REQUEST_TIMEOUT_S)  # a page's fetches, one after the other: one connection
    index_path = f"/timeline/{space_id}/index.json".encode()
    try:
        try:
            status, body = await fetch(pool, stats, index_path, "index")
            index = parse_index(body)  # the page reads it as JSON whatever the status
        except (OSError, TimeoutError, ValueError, KeyError):
            stats.event("first index failed: reader stopped", time.time())
            return
        next_seq = index.keyframe
        # Bounded: a 200 needs an object made (about one per interval, plus the keyframe's backlog at the
        # start), anything else sleeps at least one interval.
        for _ in range(int(3 * max(0.0, stop_at - time.time()) / interval_s) + 60):
            if time.time() >= stop_at:
                return
            try:
                path = index.item_url.replace("{seq}", str(next_seq)).encode()
                status, body = await fetch(pool, stats, path, "item")
                if status == 200:
                    if on_item is not None:
                        on_item(body, time.time())
                    next_seq += 1
                    continue
                status, body = await fetch(pool, stats, index_path, "index")
                # The page assigns whatever JSON came back; a body that is not an index would break its
                # loop for good (`index.item_url` undefined), here it keeps the last good one.
                index = parse_index(body)
                if index.state == "ended" and next_seq > index.latest:
                    stats.event("space ended: reader stopped", time.time())
                    return
                if next_seq > index.latest + 1:
                    stats.event("past latest + 1: back to the keyframe", time.time())
                    next_seq = index.keyframe
                await asyncio.sleep(index.interval_s)
            except (OSError, TimeoutError, ValueError, KeyError):
                await asyncio.sleep(2.0)  # what the page does after a failed fetch
    finally:
        pool.close()


async def watch_lag(stats: Stats, stop_at: float, period_s: float = 0.05) -> None:
    """How late the event loop wakes up: a loop that is always late makes every timestamp late."""
    loop = asyncio.get_running_loop()
    for _ in range(int((stop_at - time.time()) / period_s) + 2):
        if time.time() >= stop_at:
            return
        before = loop.time()
        await asyncio.sleep(period_s)
        late_ms = (loop.time() - before - period_s) * 1000
        window = stats.window_of(time.time())
        if window is not None:
            stats.lag[window][_bucket(late_ms)] += 1


# -- worker processes: the bulk of the readers --------------------------------------------------


def worker_main(config_json: str) -> int:
    config = json.loads(config_json)
    stats = Stats({name: (w[0], w[1]) for name, w in config["windows"].items()})
    watcher = Watcher()
    harness.raise_fd_limit()

    async def run() -> None:
        rng = random.Random(config["seed"])
        start, ramp = config["ramp_start"], config["ramp_s"]
        readers = []
        for i in range(config["readers"]):
            on_item = watcher.on_item(f"w{config['number']}-{i}") if i < config["sample"] else None
            start_at = start + rng.random() * ramp
            readers.append(
                asyncio.create_task(
                    follow(
                        harness.HOST,
                        config["port"],
                        stats,
                        config["space_id"],
                        start_at,
                        config["stop_at"],
                        config["interval_s"],
                        on_item,
                    )
                )
            )
        lag = asyncio.create_task(watch_lag(stats, config["windows"]["B"][1]))
        late_s = time.time() - start
        await asyncio.wait_for(asyncio.gather(*readers, lag), timeout=config["stop_at"] - time.time() + 30)
        result = {**stats.to_json(), "watch": watcher.to_json(), "late_s": late_s}
        print(WORKER_TAG + json.dumps(result), flush=True)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run())
    return 0


# -- the cache tier ------------------------------------------------------------------------------


def _origin_lines(log: Path, space_id: str, start: float, end: float) -> Iterator[tuple[float, str, list[str]]]:
    """(when, kind, fields) of each request nginx sent to Podium that ended in [start, end); kind is `index`,
    `item` or `other` (posts, sign-in...). nginx logs a request when it is done (`$msec`): a held item
    request is counted in the window where the object was made."""
    prefix = f"/timeline/{space_id}/"
    for line in log.read_text(errors="replace").splitlines():
        fields = line.split("|")
        if len(fields) != 6:
            continue
        try:
            at = float(fields[0])
        except ValueError:
            continue
        if not start <= at < end:
            continue
        uri = fields[5]
        kind = "other" if not uri.startswith(prefix) else ("index" if uri.endswith("/index.json") else "item")
        yield at, kind, fields


def origin_requests(log: Path, space_id: str, start: float, end: float) -> tuple[Counter[str], list[float]]:
    """Requests nginx sent to Podium in [start, end): per kind (`index`, `item`, `other`), per kind and cache
    status (`index EXPIRED`) or Podium's status (`item 200`), and `objects`, the distinct items asked for; and
    how long each item request took at Podium (mostly the hold until the object was made)."""
    counts: Counter[str] = Counter()
    item_s: list[float] = []
    objects: set[str] = set()
    for _, kind, fields in _origin_lines(log, space_id, start, end):
        # A retried request lists one address per attempt: "a:1, b:2".
        attempts = fields[4].count(",") + 1
        counts[kind] += attempts
        if kind == "index":
            counts["index " + fields[1]] += attempts
        elif kind == "item":
            objects.add(fields[5])
            for status, took in zip(fields[2].split(", "), fields[3].split(", "), strict=False):
                counts["item " + status.strip()] += 1
                with contextlib.suppress(ValueError):
                    item_s.append(float(took))
    counts["objects"] = len(objects)
    return counts, item_s


# -- the writer and what the sampled readers saw ---------------------------------------------------


@dataclass
class Post:
    number: int
    text: str
    sent: float
    ack: float | None = None
    status: int | None = None


POST_PREFIX = "timeline bench "


class Watcher:
    """The sampled readers' `on_item`: when each of them first got an item holding each bench comment.

    Runs in the main process and in every worker; joined with the writer's acknowledgements at the end."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, float]] = defaultdict(dict)  # text -> reader -> when
        self.tick_at: dict[str, float] = {}  # text -> `at` of the first item holding it (Podium's clock)
        self.bad_items = 0

    def on_item(self, reader: str) -> Callable[[bytes, float], None]:
        def got(body: bytes, now: float) -> None:
            try:
                item = json.loads(body)
                texts = [c["text"] for c in item["comments"]]
            except (ValueError, KeyError, TypeError):
                self.bad_items += 1
                return
            for text in texts:
                if not text.startswith(POST_PREFIX) or reader in self.seen[text]:
                    continue
                self.seen[text][reader] = now
                if text not in self.tick_at:
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        self.tick_at[text] = harness.parse_time(item["at"])

        return got

    def to_json(self) -> dict[str, Any]:
        return {"seen": self.seen, "tick_at": self.tick_at, "bad_items": self.bad_items}

    def merge_json(self, data: dict[str, Any]) -> None:
        for text, readers in data["seen"].items():
            self.seen[text].update(readers)
        for text, at in data["tick_at"].items():
            self.tick_at.setdefault(text, at)
        self.bad_items += data["bad_items"]


async def sign_in(client: httpx.AsyncClient, base: str) -> str:
    credentials = {"username": f"writer{secrets.token_hex(4)}", "password": secrets.token_urlsafe(16)}
    created = await client.post(base + "/api/accounts", json=credentials)
    if created.status_code != 201:
        raise RuntimeError(f"POST /api/accounts answered {created.status_code}: {created.text}")
    session = await client.post(base + "/api/sessions", json=credentials)
    if session.status_code != 200:
        raise RuntimeError(f"POST /api/sessions answered {session.status_code}: {session.text}")
    return str(session.json()["token"])


async def write(
    client: httpx.AsyncClient, base: str, space_id: str, token: str, posts: list[Post], stop_at: float
) -> list[str]:
    """A comment about every POST_PERIOD_S until `stop_at`; returns what went wrong."""
    problems: list[str] = []
    run = secrets.token_hex(3)
    # Jittered gaps: with exactly 0.5 s, every post would land at one of two phases of the 1 s tick.
    rng = random.Random(7)
    due = time.time()
    for number in range(int((stop_at - due) / (POST_PERIOD_S * (1 - POST_JITTER))) + 1):
        await asyncio.sleep(max(0.0, due - time.time()))
        due += POST_PERIOD_S * rng.uniform(1 - POST_JITTER, 1 + POST_JITTER)
        if time.time() >= stop_at:
            break
        text = f"{POST_PREFIX}{run} comment {number}"
        post = Post(number, text, sent=time.time())
        posts.append(post)
        body = {"kind": "comment", "text": text, "client_id": f"tl-{run}-{number:06d}"}
        try:
            response = await client.post(
                f"{base}/api/spaces/{space_id}/posts", json=body, headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError as exc:
            problems.append(f"post {number}: {type(exc).__name__}: {exc}")
            continue
        post.ack, post.status = time.time(), response.status_code
        if response.status_code != 201:
            problems.append(f"post {number}: {response.status_code} {response.text[:120]}")
    return problems


# -- the run ------------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    readers: int
    start: float
    end: float
    origin: Counter[str] = field(default_factory=Counter)
    origin_item_s: list[float] = field(default_factory=list)  # time each item request took at Podium
    cpu: dict[str, float] = field(default_factory=dict)  # share of one CPU over the window

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Outcome:
    phases: list[Phase]
    stats: Stats  # all readers, all processes
    main_stats: Stats  # the sampled readers alone
    posts: list[Post]
    watcher: Watcher
    sampled: dict[str, int]  # sampled readers per group: "m" in the main process, "w" in the workers
    workers: int
    notes: list[str]
    reference: Phase | None  # phase C: readers straight to Podium
    direct_counts: Counter[str]  # their answers in phase C


async def measure(args: argparse.Namespace) -> Outcome:
    notes: list[str] = []
    with (
        harness.podium_server(env=SERVER_ENV) as server,
        tempfile.TemporaryDirectory(prefix="podium-bench-timeline-") as tmp,
    ):
        prefix = Path(tmp)
        # The key of signed links (no private space here: any key will do).
        (prefix / "link-key.nginx.conf").write_text('set $podium_link_key "bench-without-private-spaces";\n')
        # Every reader keeps a connection open (its held request): a worker may hold all of them, plus its
        # connections to Podium; each may also have a cache file open.
        connections = max(8192, args.readers + 64 + 1024)
        origin_port = int(server.base.rsplit(":", 1)[1])
        tier = start_cache_tier(origin_port, prefix, prefix, connections, ORIGIN_LOG, args.nginx_workers)
        edge = f"http://{harness.HOST}:{tier.port}"
        workers: list[asyncio.subprocess.Process] = []
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                space = await harness.create_space(client, edge, "timeline benchmark")
                space_id = space["id"]
                token = await sign_in(client, edge)
                return await _run(args, server, tier, client, edge, space_id, token, workers, notes)
        finally:
            for proc in workers:
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(proc.wait(), 10)
            harness.stop_process(tier.proc, "nginx")
            errors = [line for line in (prefix / "error.log").read_text(errors="replace").splitlines() if line]
            if errors:
                print(f"[timeline] nginx's error log has {len(errors)} line(s), first: {errors[0]}", file=sys.stderr)
                notes.append(f"nginx's error log has {len(errors)} line(s); the first: `{errors[0][:200]}`")


async def _run(
    args: argparse.Namespace,
    server: harness.Server,
    tier: Nginx,
    client: httpx.AsyncClient,
    edge: str,
    space_id: str,
    token: str,
    workers: list[asyncio.subprocess.Process],
    notes: list[str],
) -> Outcome:
    interval_s = 1.0
    now = time.time()
    # The schedule, in wall-clock seconds (nginx logs wall-clock time), windows on whole seconds.
    a_start = math.ceil(now + args.warmup)
    a_end = a_start + args.window_a
    ramp_start = a_end + 3.0  # the workers' interpreters start meanwhile
    b_start = math.ceil(ramp_start + args.ramp + args.settle)
    b_end = b_start + args.window_b
    tail = 4.5  # readers stay a little after a window, so the sampled ones see its last posts (max ~1.5 s)
    c_start = math.ceil(b_end + tail)
    c_end = c_start + args.window_c
    windows = {"A": (float(a_start), float(a_end)), "B": (float(b_start), float(b_end))}
    stats = Stats(windows)
    main_stats = Stats({**windows, "C": (float(c_start), float(c_end))})
    direct_stats = Stats({"C": (float(c_start), float(c_end))})
    watcher = Watcher()
    posts: list[Post] = []
    last_end = c_end if args.window_c else b_end

    writer = asyncio.create_task(write(client, edge, space_id, token, posts, stop_at=last_end))
    await asyncio.sleep(1.0)  # the first post makes the timeline tick
    rng = random.Random(1)
    sampled = [
        asyncio.create_task(
            follow(
                harness.HOST,
                tier.port,
                main_stats,
                space_id,
                time.time() + rng.random(),
                last_end + tail,
                interval_s,
                watcher.on_item(f"m{i}"),
            )
        )
        for i in range(args.base_readers)
    ]
    lag = asyncio.create_task(watch_lag(main_stats, last_end))

    cpu_pids: dict[str, list[int]] = {"Podium": [server.proc.pid], "nginx": tier.pids()}
    marks: dict[float, dict[str, float]] = {}

    def cpu_now() -> dict[str, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        got = {name: sum(harness.cpu_seconds(p) for p in pids) for name, pids in cpu_pids.items()}
        got["readers (main)"] = usage.ru_utime + usage.ru_stime
        got["readers (workers)"] = sum(harness.cpu_seconds(w.pid) for w in workers)
        got["wall"] = time.time()
        got["load"] = os.getloadavg()[0]
        return got

    async def mark_at(when: float) -> None:
        await asyncio.sleep(max(0.0, when - time.time()))
        marks[when] = cpu_now()

    await mark_at(a_start)
    print(f"[timeline] phase A: {args.base_readers} readers for {args.window_a} s", flush=True)
    await mark_at(a_end)

    others = args.readers - args.base_readers
    per_worker = _split(others, args.workers)
    sample_per_worker = _split(min(args.worker_sample, others), args.workers)
    for number, count in enumerate(per_worker):
        config = {
            "port": tier.port, "space_id": space_id, "readers": count,
            "ramp_start": ramp_start, "ramp_s": args.ramp, "stop_at": b_end + tail, "interval_s": interval_s,
            "windows": windows, "seed": 100 + number, "number": number, "sample": sample_per_worker[number],
        }  # fmt: skip
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(config)]
        workers.append(await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    print(f"[timeline] {others} more readers join over {args.ramp} s in {args.workers} worker process(es)", flush=True)
    await mark_at(b_start)
    print(f"[timeline] phase B: {args.readers} readers for {args.window_b} s", flush=True)
    await mark_at(b_end)

    # Phase C, the reference: a few readers straight to Podium, no cache in between, with the same writer.
    origin_port = int(server.base.rsplit(":", 1)[1])
    direct = [
        asyncio.create_task(
            follow(
                harness.HOST,
                origin_port,
                direct_stats,
                space_id,
                c_start - 1 + rng.random(),
                c_end + tail,
                interval_s,
                watcher.on_item(f"d{i}"),
            )
        )
        for i in range(args.direct_readers if args.window_c else 0)
    ]

    outputs = await asyncio.gather(
        *(asyncio.wait_for(w.communicate(), timeout=tail + 60) for w in workers), return_exceptions=True
    )
    for number, output in enumerate(outputs):
        if isinstance(output, BaseException):
            notes.append(f"worker {number} gave no result: {type(output).__name__} {output}")
            continue
        out, err = output
        lines = [line for line in out.decode().splitlines() if line.startswith(WORKER_TAG)]
        if not lines:
            notes.append(f"worker {number} gave no result: {err.decode()[-500:]}")
            continue
        data = json.loads(lines[-1][len(WORKER_TAG) :])
        stats.merge_json(data)
        watcher.merge_json(data["watch"])
        if data["late_s"] > 0.5:
            notes.append(f"worker {number} started its readers {data['late_s']:.1f} s after the ramp began")
    if direct:
        print(f"[timeline] phase C: {args.direct_readers} readers straight to Podium for {args.window_c} s", flush=True)
        await asyncio.wait_for(asyncio.gather(*direct), timeout=c_end + tail - time.time() + 30)
    problems = await writer
    await asyncio.wait_for(asyncio.gather(*sampled, lag), timeout=tail + 30)
    stats.merge_json(main_stats.to_json())
    notes += problems[:5]
    if len(problems) > 5:
        notes.append(f"... and {len(problems) - 5} more failed posts")

    phases = [
        Phase("A", args.base_readers, *windows["A"]),
        Phase("B", args.readers, *windows["B"]),
    ]
    reference = Phase("C", args.base_readers + args.direct_readers, float(c_start), float(c_end))
    direct_counts = window_counts(direct_stats, reference)
    await asyncio.sleep(1.0)  # nginx writes its log line when the answer is done
    for phase in phases:
        origin_log = tier.prefix / ORIGIN_LOG.file
        phase.origin, phase.origin_item_s = origin_requests(origin_log, space_id, phase.start, phase.end)
        before, after = marks[phase.start], marks[phase.end]
        wall = after["wall"] - before["wall"]
        phase.cpu = {k: (after[k] - before[k]) / wall for k in before if k not in ("wall", "load")}
        notes.append(
            f"phase {phase.name}: 1-minute load average {before['load']:.2f} at its start, {after['load']:.2f} at "
            "its end (other work on the machine counts too)"
        )
    return Outcome(
        phases=phases,
        stats=stats,
        main_stats=main_stats,
        posts=posts,
        watcher=watcher,
        sampled={"m": args.base_readers, "w": sum(sample_per_worker), "d": args.direct_readers},
        workers=args.workers,
        notes=notes,
        reference=reference if args.window_c else None,
        direct_counts=direct_counts,
    )


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# -- report ------------------------------------------------------------------------------------


def window_counts(stats: Stats, phase: Phase, attr: str = "per_second") -> Counter[str]:
    out: Counter[str] = Counter()
    for key, bins in getattr(stats, attr).items():
        out[key] = sum(n for second, n in bins.items() if phase.start <= second < phase.end)
    return out


def _s(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def delays(outcome: Outcome, phase: Phase, group: str) -> dict[str, Any]:
    """Post → visible for the comments acknowledged in `phase`, as seen by the sampled readers of `group`."""
    watcher = outcome.watcher
    mine = [p for p in outcome.posts if p.ack is not None and p.status == 201 and phase.start <= p.ack < phase.end]
    pairs: list[float] = []
    first: list[float] = []
    tick: list[float] = []
    after_tick: list[float] = []
    for post in mine:
        assert post.ack is not None
        seen = [at for reader, at in watcher.seen.get(post.text, {}).items() if reader.startswith(group)]
        pairs += [at - post.ack for at in seen]
        if seen:
            first.append(min(seen) - post.ack)
        tick_at = watcher.tick_at.get(post.text)
        if tick_at is not None:
            tick.append(tick_at - post.ack)
            after_tick += [at - tick_at for at in seen]

    def pct(values: list[float]) -> list[float | None]:
        return [harness.percentile(values, q) if values else None for q in (50, 95, 100)]

    return {
        "posts": len(mine),
        "pairs": len(pairs),
        "missed": len(mine) * outcome.sampled[group] - len(pairs),
        "pairs_p": pct(pairs),
        "first_p": pct(first),
        "tick_p": pct(tick),
        "after_tick_p": pct(after_tick),
    }


# The previous run's figures, with the page's old loop (commit 7a004cb's readers, Podium 94009ac): the
# index every second, then the new items. Shown beside the new ones.
PREVIOUS = (
    "Before (Podium 94009ac, the page's old loop: `index.json` every second, then the new items; same machine "
    "and defaults): origin 1.50 requests/s in both phases (index 0.50 + items 1.00), ratio 1.00; post → visible "
    "p95 3.13-3.20 s through nginx (p50 about 2.1 s, tick → seen p95 about 2.5 s), 1.69 s straight to Podium. "
    "nginx keeps `max-age` in whole seconds, so the index (`max-age=1`) lived 2 s in its cache"
)


def report(outcome: Outcome, args: argparse.Namespace) -> str:
    a, b = outcome.phases
    main_sample, worker_sample = outcome.sampled["m"], outcome.sampled["w"]
    lines = ["## Timeline: origin load at 100 and at 10,000 readers behind nginx; post → visible", ""]
    lines += harness.header_lines()
    lines += [
        f"- Cache tier: nginx {nginx_version()}, {args.nginx_workers} worker(s), the shipped "
        "`deploy/nginx/podium.conf` (upstream, `listen` and cache path rewritten) plus a log of the requests "
        "that had an upstream (`log_subrequest on`, so background updates count); Podium is one process",
        f"- Readers: asyncio tasks on uvloop with a small httptools HTTP/1.1 client, one keep-alive connection "
        f"each; {a.readers:,} readers in the main process run throughout; in phase B "
        f"{b.readers - a.readers:,} more run in {outcome.workers} worker process(es), joining over {args.ramp:.0f} s "
        f"(phase B is measured from {args.settle:.0f} s after). Sampled for post → visible: the {main_sample} "
        f"readers of the main process and {worker_sample} of the workers'",
        "",
        "Each reader does what the listener page does (`follow()` in audience.js): `GET /timeline/ID/index.json` "
        "once, then from its `keyframe` on `GET /timeline/ID/SEQ.json` for each object in turn, asking for the "
        "next one as soon as one is answered 200. Podium holds the request for the next object (latest + 1) until "
        "it is made (up to 2.5 intervals), so a reader that is up to date has one request open at a time and "
        "makes about one per interval (1 s). After a 404 (not made in time, or past latest + 1) it re-reads the "
        "index, sleeps `interval_s` and goes on (from the keyframe if it was past latest + 1). A "
        f"writer posts a comment with a unique text every {POST_PERIOD_S} s (± {POST_JITTER:.0%}) through nginx "
        f"during all phases. **Goals: origin requests/s at {b.readers:,} readers ÷ at {a.readers:,} ≤ "
        f"{GOAL_RATIO}; post → visible p95 ≤ {GOAL_P95_S:.0f} s.**",
        "",
        "| phase | readers | window (s) | reader req/s (nominal) | answered from cache | item 404s | errors "
        "| item wait p50 / p99 (ms, with the hold) | origin req/s: index + items = total "
        "| CPU: Podium / nginx / readers |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    origin_rps = {}
    for phase in outcome.phases:
        counts = window_counts(outcome.stats, phase)
        total = sum(counts.values())
        not_found = counts["item status 404"]
        errors = sum(n for k, n in counts.items() if k.endswith(" error") or " status " in k) - not_found
        cached = sum(n for k, n in counts.items() if k.split(" ", 1)[1] in CACHED)
        item_lat = outcome.stats.latency.get(f"{phase.name} item", Counter())
        index_rps = phase.origin["index"] / phase.seconds
        item_rps = phase.origin["item"] / phase.seconds
        origin_rps[phase.name] = index_rps + item_rps
        readers_cpu = phase.cpu["readers (main)"] + phase.cpu["readers (workers)"]
        share = f"{100 * cached / total:.2f}%" if total else "n/a"
        lines.append(
            f"| {phase.name} | {phase.readers:,} | {phase.seconds:.0f} | {total / phase.seconds:,.0f} "
            f"({phase.readers:,}) | {cached:,} of {total:,} ({share}) | {not_found:,} | {errors} | "
            f"{_s(histogram_percentile(item_lat, 50), 0)} / {_s(histogram_percentile(item_lat, 99), 0)} | "
            f"{index_rps:.2f} + {item_rps:.2f} = **{index_rps + item_rps:.2f}** | "
            f"{100 * phase.cpu['Podium']:.0f}% / {100 * phase.cpu['nginx']:.0f}% / {100 * readers_cpu:.0f}% |"
        )
    lines.append("")
    if origin_rps["A"]:
        ratio = origin_rps["B"] / origin_rps["A"]
        verdict = "met" if ratio <= GOAL_RATIO else "**not met**"
        lines.append(
            f"**Origin requests/s for the timeline, {b.readers:,} readers ÷ {a.readers:,}: {ratio:.2f}** "
            f"({origin_rps['B']:.2f} ÷ {origin_rps['A']:.2f}); goal ≤ {GOAL_RATIO}: {verdict}."
        )
    else:
        lines.append("No origin request for the timeline was logged in phase A: no ratio.")
    lines += [
        "",
        "Post → visible: for each comment acknowledged (201) in the window and each sampled reader, when that "
        "reader first got a timeline item holding the comment minus when the writer got the 201. *First reader*: "
        "the earliest sampled reader, per post. *201 → tick*: the item's own `at` (when Podium closed the "
        "interval) minus the 201; *tick → seen*: each reader's time minus that `at` (same machine, same clock).",
        "",
        "| phase | sample | posts | pairs | not seen | p50 (s) | p95 (s) | max (s) | first reader p50 / p95 "
        "| 201 → tick p50 / p95 / max | tick → seen p50 / p95 / max | goal p95 ≤ 2 s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    rows = [(a, "m", f"{main_sample} (all)"), (b, "m", f"{main_sample}, main process")]
    if worker_sample:
        rows.append((b, "w", f"{worker_sample}, worker process(es)"))
    c = outcome.reference
    if c is not None:
        rows.append((c, "m", f"{main_sample} through nginx"))
        rows.append((c, "d", f"{outcome.sampled['d']} straight to Podium"))
    after_tick: dict[str, list[float | None]] = {}
    for phase, group, label in rows:
        d = delays(outcome, phase, group)
        after_tick[f"{phase.name}{group}"] = d["after_tick_p"]
        p50, p95, pmax = d["pairs_p"]
        verdict = "n/a" if p95 is None else ("met" if p95 <= GOAL_P95_S else "**not met**")
        lines.append(
            f"| {phase.name} ({phase.readers:,} readers) | {label} | {d['posts']} | {d['pairs']:,} | {d['missed']} "
            f"| {_s(p50)} | **{_s(p95)}** | {_s(pmax)} | {_s(d['first_p'][0])} / {_s(d['first_p'][1])} "
            f"| {' / '.join(_s(v) for v in d['tick_p'])} | {' / '.join(_s(v) for v in d['after_tick_p'])} "
            f"| {verdict} |"
        )
    if c is not None:
        direct_total = sum(outcome.direct_counts.values())
        lines += [
            "",
            f"Phase C is the reference without a cache: after phase B, {outcome.sampled['d']} more readers follow "
            f"Podium directly for {c.seconds:.0f} s ({direct_total / c.seconds:.0f} requests/s; "
            + ", ".join(
                f"{k.replace('no-cache-status', '200')} {n}" for k, n in sorted(outcome.direct_counts.items()) if n
            )
            + f") while the {main_sample} readers go on through nginx and the writer goes on posting.",
        ]
    lines += ["", "Readers' answers by `X-Cache-Status`, per phase (requests in the window):", ""]
    for phase in outcome.phases:
        counts = window_counts(outcome.stats, phase)
        shown = ", ".join(f"{k} {n:,}" for k, n in sorted(counts.items()) if n)
        events = window_counts(outcome.stats, phase, "events")
        shown_events = "; ".join(f"{k}: {n:,}" for k, n in sorted(events.items()) if n)
        lines.append(f"- {phase.name}: {shown}" + (f"; readers' other events: {shown_events}" if shown_events else ""))
    lines += ["", "Notes:", ""]
    for phase in outcome.phases:
        statuses = ", ".join(f"{k[5:]} {n}" for k, n in sorted(phase.origin.items()) if k.startswith("item "))
        held = sorted(phase.origin_item_s)
        held_text = (
            f"; each took at Podium (the hold until the object was made) p50 {held[len(held) // 2]:.2f} s, "
            f"max {held[-1]:.2f} s"
            if held
            else ""
        )
        index_statuses = ", ".join(f"{k[6:]} {n}" for k, n in sorted(phase.origin.items()) if k.startswith("index "))
        objects = phase.origin["objects"]
        per_object = f", {phase.origin['item'] / objects:.2f} per object" if objects else ""
        lines.append(
            f"- phase {phase.name}: origin requests for items {phase.origin['item']} for {objects} objects"
            f"{per_object} (Podium's answers: {statuses or 'none'}){held_text}; for the index {phase.origin['index']}"
            + (f" ({index_statuses})" if index_statuses else "")
            + f"; other origin requests (the posts): {phase.origin['other']}"
        )
        lag = outcome.main_stats.lag.get(phase.name, Counter())
        all_lag = outcome.stats.lag.get(phase.name, Counter())
        lines.append(
            f"- phase {phase.name}: event-loop lag of the main process (its readers, the writer) p50 "
            f"{_s(histogram_percentile(lag, 50), 1)} ms, p99 {_s(histogram_percentile(lag, 99), 1)} ms; of all "
            f"reader processes p99 {_s(histogram_percentile(all_lag, 99), 1)} ms"
        )
    per_object = {ph.name: ph.origin["item"] / ph.origin["objects"] for ph in outcome.phases if ph.origin["objects"]}
    if max(per_object.values(), default=1.0) > 1.05:
        lines.append(
            "- More than one origin request per object ("
            + ", ".join(f"phase {name}: {value:.2f}" for name, value in per_object.items())
            + "): `proxy_cache_lock` lets a request through whenever nginx's count of requests for an object "
            "that is not cached yet wraps around. That count (`uses` in `ngx_http_file_cache_node_t`) is a 10-bit "
            "field: every 1,024th request for the next object, while it is held at Podium, finds `uses` back at 0, "
            "below `proxy_cache_min_uses` (1), and goes to Podium uncached, past the lock. With every reader asking "
            "for the next object before it exists, that is one more origin request per object per 1,024 readers"
        )
    nginx_p50, direct_p50 = after_tick.get("Cm", [None])[0], after_tick.get("Cd", [None])[0]
    if nginx_p50 is not None and direct_p50 is not None and nginx_p50 > direct_p50 + 0.1:
        lines.append(
            f"- Tick → seen, phase C: p50 {nginx_p50:.2f} s through nginx against {direct_p50:.2f} s straight to "
            "Podium. Requests waiting on `proxy_cache_lock` are not woken when the object arrives: each re-checks "
            "the lock on a timer of its own, every 500 ms (`ngx_http_file_cache_lock_wait`), so a reader whose "
            "request waits behind the one held at Podium gets the object 0 to 0.5 s after nginx has it"
        )
    lines += [
        "- CPU: CPU time over the window's wall time (100% = one CPU) of Podium, nginx (master and workers) and "
        "the reader processes (the main one includes the writer); all share the machine's CPUs",
        "- answered from cache: `X-Cache-Status` HIT, STALE or UPDATING; a MISS went to Podium (for the next "
        "object: held there until it was made), the others asking for the same object meanwhile wait on "
        "`proxy_cache_lock` and get a HIT",
        f"- {PREVIOUS}",
    ]
    if outcome.watcher.bad_items:
        lines.append(f"- {outcome.watcher.bad_items} timeline item(s) could not be read as JSON with `comments`")
    if outcome.stats.error_examples:
        lines.append(f"- reader errors, first ones: {'; '.join(outcome.stats.error_examples[:3])}")
    lines += [f"- {note}" for note in outcome.notes]
    return "\n".join(lines) + "\n"


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        return worker_main(sys.argv[2])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a CI smoke run: short windows, under a minute")
    parser.add_argument("--readers", type=int, default=10_000, help="readers in phase B (default 10,000)")
    parser.add_argument("--base-readers", type=int, default=100, help="readers in phase A, the sample (100)")
    parser.add_argument("--window-a", type=int, help="seconds measured with the base readers (default 30, quick 6)")
    parser.add_argument("--window-b", type=int, help="seconds measured with all readers (default 60, quick 10)")
    parser.add_argument("--ramp", type=float, help="seconds over which phase B's readers join (default 10, quick 4)")
    parser.add_argument("--settle", type=float, help="seconds between the ramp and phase B (default 5, quick 3)")
    parser.add_argument("--warmup", type=float, help="seconds before phase A (default 4, quick 3)")
    parser.add_argument("--workers", type=int, default=1, help="processes for phase B's other readers (default 1)")
    parser.add_argument("--window-c", type=int, help="seconds of phase C, readers straight to Podium (20, quick 5)")
    parser.add_argument("--direct-readers", type=int, default=20, help="readers in phase C straight to Podium (20)")
    parser.add_argument("--worker-sample", type=int, default=100, help="workers' readers sampled (100)")
    parser.add_argument("--nginx-workers", type=int, default=1, help="nginx worker processes (default 1)")
    parser.add_argument("--no-write", action="store_true", help="print the results, leave RESULTS.md alone")
    args = parser.parse_args()
    args.window_a = args.window_a or (6 if args.quick else 30)
    args.window_b = args.window_b or (10 if args.quick else 60)
    args.window_c = args.window_c if args.window_c is not None else (5 if args.quick else 20)
    args.ramp = args.ramp if args.ramp is not None else (4.0 if args.quick else 10.0)
    args.settle = args.settle if args.settle is not None else (3.0 if args.quick else 5.0)
    args.warmup = args.warmup if args.warmup is not None else (3.0 if args.quick else 4.0)
    if not 1 <= args.base_readers <= args.readers <= 50_000:
        parser.error("need 1 ≤ --base-readers ≤ --readers ≤ 50,000")
    if not 0 <= args.direct_readers <= 200:
        parser.error("keep it bounded: 0 ≤ --direct-readers ≤ 200")
    if max(args.window_a, args.window_b, args.window_c) > 300 or args.ramp > 120 or not 1 <= args.workers <= 8:
        parser.error("keep it bounded: windows ≤ 300 s, --ramp ≤ 120 s, 1 ≤ --workers ≤ 8")
    if not os.path.exists(NGINX) and shutil.which("nginx") is None:
        parser.error(f"{NGINX} is not installed")
    # A connection per reader: file descriptors per process, and source ports towards nginx's one address.
    fd_limit = harness.raise_fd_limit()
    per_process = max(args.base_readers + args.direct_readers, -(-(args.readers - args.base_readers) // args.workers))
    if per_process + FD_MARGIN > fd_limit:
        parser.error(f"{per_process:,} readers in one process need more than {fd_limit:,} open files: more --workers")
    with contextlib.suppress(OSError, ValueError):
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        if args.readers + 1024 > high - low + 1:
            parser.error(f"{args.readers:,} connections to nginx need more local ports than {low}-{high}")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        outcome = runner.run(measure(args))
    text = report(outcome, args)
    print(text)
    if not args.no_write:
        harness.write_section("timeline", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
