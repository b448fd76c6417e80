"""The edge (issue 7): origin requests per space at 100 and at 10,000 listeners behind nginx; listeners per edge
core at 64 kbps, with icecast2 as the peer.

Part 1, origin load. `podium serve` with one live space (a WHIP speaker sending a tone, as the other benchmarks
do) sits behind nginx running the shipped `deploy/nginx/podium.conf` (rewritten as tests/test_nginx.py does, one
worker) with a log of the requests that had an upstream: the requests that reached Podium. Simulated listeners
do what an LL-HLS player does (hls.js with `lowLatencyMode`, as the listener page runs it): the media playlist,
the init section and the newest part once; then, again and again, a blocking playlist reload for the part the
preload hint names (`_HLS_msn`, `_HLS_part`, `_HLS_skip=YES`, which Podium holds until that part exists) and the
new part(s) it lists. First 100 listeners alone (phase A), then 9,900 more in worker processes (phase B); origin
requests per second in a steady window of each, and their ratio.

Part 2, listeners per edge core. The same nginx (one worker) serves the same listener mix to wrk as fast as it
can, a blocking reload (cached: the key of a part that exists) then a part, turn and turn about, following the
live edge (one connection holds a reload for the next part, as every player does); requests/s and bytes/s over
the nginx worker's CPU time give requests per core-second, divided by a listener's requests per second (a reload
and a part per 0.512 s part). The peer: icecast2 (one process) fed a 64 kbps MP3 stream by ffmpeg, with as many
listeners as the machine allows, joining step by step; its CPU time per listener-second gives its listeners per
core.

Every process started here (Podium, nginx, the listener workers, wrk, icecast2, ffmpeg, the icecast listeners)
is stopped by its pid; everything talks to 127.0.0.0/8 only; every loop is bounded in count and time.

Usage: python bench/edge.py [--quick] [--listeners N] [--no-icecast] [--no-write] (--help for the rest)
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import datetime
import errno
import json
import math
import os
import random
import re
import resource
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
import httpx
import uvloop
from listener_client import (
    MAX_BEHIND_S,
    PART_S,
    PARTS_PER_SEGMENT,
    REQUEST_TIMEOUT_S,
    check_layout,
    part_path,
    read_playlist,
    reload_path,
    run_players,
    whole_parts,
)
from nginx_tier import NGINX, AccessLog, Nginx, nginx_version, start_cache_tier

FIGURES = harness.BENCH_DIR / "figures.json"
PLOT = harness.BENCH_DIR / "edge.png"
WORKER_TAG = "EDGE-WORKER "
ICE_TAG = "EDGE-ICECAST "
WRK = "wrk"
ICECAST = "icecast2"
FFMPEG = "ffmpeg"

AUDIO_KBPS = 64  # podium.media.stage.BITRATE; the icecast stream is encoded at the same rate
# A listener at the live edge makes one blocking reload and fetches one part per part duration.
REQUESTS_PER_LISTENER_PER_S = 2 / PART_S
GOAL_RATIO = 1.1
FD_MARGIN = 256
# Only the requests that went to Podium: `$upstream_addr` is empty for an answer from the cache. "|"-separated: with
# retries, $upstream_status, $upstream_response_time and $upstream_addr list one value per attempt, separated by ", ".
ORIGIN_LOG = AccessLog(
    "origin.log",
    "origin",
    "$msec|$upstream_cache_status|$upstream_status|$upstream_response_time|$upstream_addr|$request_uri|$request_time",
    "if=$upstream_addr",
)
ORIGIN_KINDS = ("blocking reload", "part", "playlist", "init", "other")
CACHED = ("HIT", "STALE", "UPDATING", "REVALIDATED")  # X-Cache-Status values answered without Podium


STARTED = time.monotonic()


def say(message: str) -> None:
    """Progress, on stderr, with the seconds since the benchmark (or this worker) started."""
    print(f"[edge] {time.monotonic() - STARTED:5.1f} s  {message}", file=sys.stderr, flush=True)


def worker_main(config_json: str) -> int:
    cfg = json.loads(config_json)
    harness.raise_fd_limit()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        tally = runner.run(run_players(cfg, f"worker {cfg['number']}", say))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(WORKER_TAG + json.dumps({**tally.to_json(), "cpu_s": usage.ru_utime + usage.ru_stime}), flush=True)
    return 0


# -- part 1: origin requests at 100 and at 10,000 listeners ---------------------------------------------


@dataclass
class Phase:
    name: str
    listeners: int
    start: float
    end: float
    origin: Counter[str] = field(default_factory=Counter)  # per kind, and "kind CACHE-STATUS"
    origin_parts: int = 0  # distinct parts fetched from Podium
    origin_took: list[float] = field(default_factory=list)  # $upstream_response_time of blocking reloads
    cpu: dict[str, float] = field(default_factory=dict)  # share of one CPU over the window
    load: tuple[float, float] = (0.0, 0.0)

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def origin_rps(self) -> float:
        return sum(self.origin[k] for k in ORIGIN_KINDS) / self.seconds


@dataclass
class OriginOutcome:
    phases: list[Phase]
    answers: Counter[tuple[str, str, str, int]]  # all listeners: (kind, status, cache, second)
    took: Counter[tuple[str, str, int]]
    age: Counter[tuple[str, int]]
    jumps: Counter[int]
    skipped: Counter[int]
    per_listener: dict[str, list[tuple[int, int]]]  # window -> (requests, parts) of each listener in the window
    lag_ms: dict[str, list[float]]  # "main", "workers"
    origin_series: dict[int, Counter[str]]  # second -> origin requests per kind
    failed: int
    errors: list[str]
    workers: int


def origin_kind(uri: str, hls: str) -> str:
    if not uri.startswith(hls):
        return "other"
    name, _, query = uri[len(hls) :].partition("?")
    if name == "live.m3u8":
        return "blocking reload" if "_HLS_msn" in query else "playlist"
    if name == "init.mp4":
        return "init"
    if re.fullmatch(r"p\d+-\d+\.m4s", name):
        return "part"
    return "other"


def read_origin_log(log: Path, hls: str) -> list[tuple[float, str, list[str]]]:
    """(when it ended, kind, fields) of each request nginx sent to Podium (one per attempt when retried)."""
    rows = []
    for line in log.read_text(errors="replace").splitlines():
        fields = line.split("|")
        if len(fields) != 7:
            continue
        with contextlib.suppress(ValueError):
            rows.append((float(fields[0]), origin_kind(fields[5], hls), fields))
    return rows


def count_origin(rows: list[tuple[float, str, list[str]]], phase: Phase) -> None:
    parts: set[str] = set()
    for at, kind, fields in rows:
        if not phase.start <= at < phase.end:
            continue
        attempts = fields[4].count(",") + 1
        phase.origin[kind] += attempts
        phase.origin[f"{kind} {fields[1] or '-'}"] += attempts
        if kind == "part":
            parts.add(fields[5])
        if kind == "blocking reload":
            with contextlib.suppress(ValueError):
                phase.origin_took.append(float(fields[3].split(",")[-1]))
    phase.origin_parts = len(parts)


def cpu_marks(pids: dict[str, list[int]], workers: list[asyncio.subprocess.Process]) -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    got = {name: sum(harness.cpu_seconds(p) for p in group) for name, group in pids.items()}
    got["bench (speaker, 100 listeners)"] = usage.ru_utime + usage.ru_stime
    got["listener workers"] = sum(harness.cpu_seconds(w.pid) for w in workers)
    got["wall"] = time.time()
    got["load"] = os.getloadavg()[0]
    return got


async def origin_load(
    args: argparse.Namespace, server: harness.Server, edge: Nginx, space_id: str, notes: list[str]
) -> OriginOutcome:
    hls = f"/hls/{space_id}/"
    now = time.time()
    # The schedule in wall-clock seconds (nginx logs wall-clock time), windows on whole seconds.
    a_start = math.ceil(now + args.warmup)
    # Windows of whole parts: Podium is asked for about two objects per part, so a window of k parts holds k of
    # each whatever its phase against the stream (a window of whole seconds would hold one more or one fewer).
    a_end = a_start + whole_parts(args.window_a)
    ramp_start = a_end + 2.0  # the workers' interpreters start meanwhile
    b_start = math.ceil(ramp_start + args.ramp + args.settle)
    b_end = b_start + whole_parts(args.window_b)
    stop_at = b_end + 0.5
    windows = {"A": [float(a_start), float(a_end)], "B": [float(b_start), float(b_end)]}
    base_cfg = {"host": harness.HOST, "port": edge.port, "hls": hls, "windows": windows, "stop_at": stop_at}
    main_cfg = {**base_cfg, "count": args.base_listeners, "ramp_start": now, "ramp_s": 1.0, "seed": 1}
    say(
        f"part 1: {args.base_listeners} listeners; phase A measured for {args.window_a:.2f} s, "
        f"{a_start - time.time():.1f} s from now"
    )
    main_task = asyncio.create_task(run_players(main_cfg, "main process", say))
    workers: list[asyncio.subprocess.Process] = []
    pids = {"Podium": [server.proc.pid], "nginx": edge.pids()}
    marks: dict[float, dict[str, float]] = {}

    async def mark_at(when: float) -> None:
        await asyncio.sleep(max(0.0, when - time.time()))
        marks[when] = cpu_marks(pids, workers)

    try:
        await mark_at(a_start)
        await mark_at(a_end)
        others = args.listeners - args.base_listeners
        shares = [others // args.workers + (1 if i < others % args.workers else 0) for i in range(args.workers)]
        for number, count in enumerate(shares):
            cfg = {**base_cfg, "count": count, "ramp_start": ramp_start, "ramp_s": args.ramp, "seed": 100 + number,
                   "number": number}  # fmt: skip
            command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(cfg)]
            workers.append(await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE))
        say(
            f"part 1: {others:,} more listeners join over {args.ramp:.0f} s in {args.workers} worker "
            f"process(es); phase B measured for {args.window_b:.2f} s, {b_start - time.time():.1f} s from now"
        )
        await mark_at(b_start)
        await mark_at(b_end)
        outputs = await asyncio.gather(
            *(asyncio.wait_for(w.communicate(), timeout=REQUEST_TIMEOUT_S + 60) for w in workers),
            return_exceptions=True,
        )
        main_tally = await main_task
    finally:
        main_task.cancel()
        for worker in workers:
            if worker.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.kill()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(worker.wait(), 10)
    tallies = [main_tally.to_json()]
    for number, output in enumerate(outputs):
        if isinstance(output, BaseException):
            notes.append(f"listener worker {number} gave no result: {type(output).__name__} {output}")
            continue
        lines = [line for line in output[0].decode().splitlines() if line.startswith(WORKER_TAG)]
        if not lines:
            notes.append(f"listener worker {number} gave no result")
            continue
        tallies.append(json.loads(lines[-1][len(WORKER_TAG) :]))
    await asyncio.sleep(1.0)  # nginx writes a log line when the answer is done
    rows = read_origin_log(edge.prefix / ORIGIN_LOG.file, hls)
    phases = [
        Phase("A", args.base_listeners, windows["A"][0], windows["A"][1]),
        Phase("B", args.listeners, windows["B"][0], windows["B"][1]),
    ]
    for phase in phases:
        count_origin(rows, phase)
        before, after = marks[phase.start], marks[phase.end]
        wall = after["wall"] - before["wall"]
        phase.cpu = {k: (after[k] - before[k]) / wall for k in before if k not in ("wall", "load")}
        phase.load = (before["load"], after["load"])
    series: dict[int, Counter[str]] = defaultdict(Counter)
    for at, kind, fields in rows:
        series[int(at)][kind] += fields[4].count(",") + 1
    return merge_tallies(tallies, phases, series, len(workers), notes)


def merge_tallies(
    tallies: list[dict[str, Any]],
    phases: list[Phase],
    series: dict[int, Counter[str]],
    workers: int,
    notes: list[str],
) -> OriginOutcome:
    answers: Counter[tuple[str, str, str, int]] = Counter()
    took: Counter[tuple[str, str, int]] = Counter()
    age: Counter[tuple[str, int]] = Counter()
    jumps: Counter[int] = Counter()
    skipped: Counter[int] = Counter()
    per_listener: dict[str, list[tuple[int, int]]] = defaultdict(list)
    lag: dict[str, list[float]] = {"main": [], "workers": []}
    errors: list[str] = []
    failed = 0
    for number, data in enumerate(tallies):
        for kind, status, cache, second, n in data["answers"]:
            answers[(kind, status, cache, second)] += n
        for window, kind, bucket, n in data["took"]:
            took[(window, kind, bucket)] += n
        for window, bucket, n in data["age"]:
            age[(window, bucket)] += n
        jumps.update(dict(data["jumps"]))
        skipped.update(dict(data["skipped"]))
        snaps = data["snapshots"]
        for phase in phases:
            start, end = snaps.get(f"{phase.name} start"), snaps.get(f"{phase.name} end")
            if start is None or end is None:
                continue
            for i in range(len(start["requests"])):
                if end["requests"][i] and start["requests"][i]:  # listening when the window opened
                    per_listener[phase.name].append(
                        (end["requests"][i] - start["requests"][i], end["parts"][i] - start["parts"][i])
                    )
        lag["main" if number == 0 else "workers"] += data["lag_ms"]
        errors += data["errors"][: max(0, 5 - len(errors))]
        failed += data["failed"]
    return OriginOutcome(
        phases=phases,
        answers=answers,
        took=took,
        age=age,
        jumps=jumps,
        skipped=skipped,
        per_listener=per_listener,
        lag_ms=lag,
        origin_series=series,
        failed=failed,
        errors=errors,
        workers=workers,
    )


# -- part 2: what one nginx worker serves, in listeners ----------------------------------------------------

# wrk's Lua (LuaJIT: Lua 5.1). A crowd of listeners at the live edge, seen from the edge: blocking reloads that
# nginx has cached (the key of the newest part, which exists) and the newest parts, turn and turn about; one
# connection at a time holds a reload for the part being made (the preload hint), as every player does, and its
# answer moves everyone on to that part.
EDGE_LUA = r"""
local base, per_segment = "", 4
local msn, idx, hint_msn, hint_idx = 0, 0, 0, 1
local hint_uri, reload_request, probe_request, warm_request = "", "", "", ""
local parts, part_requests = {}, {}
local probing, since_probe, turn, want_playlist = false, 0, 0, false
local warming, warm_sent, since_warm, calls = false, false, 0, 0
local threads = {}
playlists, part_answers, advanced, probes, not_ok, not_ok_codes = 0, 0, 0, 0, 0, ""

function setup(thread)
  table.insert(threads, thread)
end

local function reload_path(m, i)
  return base .. "live.m3u8?_HLS_msn=" .. m .. "&_HLS_part=" .. i .. "&_HLS_skip=YES"
end

local function following(m, i)
  if i + 1 >= per_segment then return m + 1, 0 end
  return m, i + 1
end

-- The requests for the current part (the newest that every connection asks for) and the probe for the next.
local function prepare()
  reload_request = wrk.format("GET", reload_path(msn, idx))
  part_requests = {}
  for k, name in ipairs(parts) do part_requests[k] = wrk.format("GET", base .. name) end
end

local function prepare_probe(m, i)
  hint_msn, hint_idx = following(m, i)
  -- As a part line lists it (`...,URI="p1-2.m4s",INDEPENDENT=YES`), not as the preload hint does (no comma after).
  hint_uri = 'URI="p' .. hint_msn .. "-" .. hint_idx .. '.m4s",'
  probe_request = wrk.format("GET", reload_path(hint_msn, hint_idx))
end

-- The part the probe brought is fetched once (a miss, from Podium) before every connection moves on to it:
-- moving all at once would make them all wait on nginx's cache lock, which looks again only every 500 ms.
local function move_on()
  msn, idx = hint_msn, hint_idx
  parts = {parts[#parts], "p" .. msn .. "-" .. idx .. ".m4s"}
  prepare()
  prepare_probe(msn, idx)
  warming = false
  advanced = advanced + 1
end

function init(args)
  base = args[1]
  msn, idx, per_segment = tonumber(args[2]), tonumber(args[3]), tonumber(args[4])
  for k = 5, #args do parts[#parts + 1] = args[k] end
  prepare()
  prepare_probe(msn, idx)
end

function request()
  calls = calls + 1
  if calls == 1 then return reload_request end  -- wrk calls request() once to check the script and sends nothing
  if not probing and not warming then
    probing, since_probe = true, 0
    probes = probes + 1
    return probe_request
  end
  since_probe = since_probe + 1
  if since_probe > 300000 then probing = false end  -- its answer never came: ask again
  if warming and not warm_sent then
    warm_sent = true
    return warm_request
  end
  want_playlist = not want_playlist
  if want_playlist then return reload_request end
  turn = turn % #part_requests + 1
  return part_requests[turn]
end

function response(status, headers, body)
  if warming then
    since_warm = since_warm + 1
    if since_warm > 20000 then move_on() end
  end
  if status ~= 200 then
    not_ok = not_ok + 1
    if not not_ok_codes:find(tostring(status), 1, true) then not_ok_codes = not_ok_codes .. " " .. status end
    if status == 503 then probing = false end  -- Podium's hold ran out (only a held reload gets 503)
    return
  end
  if body:byte(1) == 35 then
    playlists = playlists + 1
    if probing and not warming and body:find(hint_uri, 1, true) then
      probing = false
      warming, warm_sent, since_warm = true, false, 0
      warm_request = wrk.format("GET", base .. "p" .. hint_msn .. "-" .. hint_idx .. ".m4s")
    end
  else
    part_answers = part_answers + 1
    if warming and warm_sent and headers["X-Cache-Status"] == "MISS" then
      move_on()
    end
  end
end

function done(summary, latency, requests)
  local p, q, a, pr, bad, codes = 0, 0, 0, 0, 0, ""
  for _, thread in ipairs(threads) do
    p = p + thread:get("playlists")
    q = q + thread:get("part_answers")
    a = a + thread:get("advanced")
    pr = pr + thread:get("probes")
    bad = bad + thread:get("not_ok")
    codes = codes .. thread:get("not_ok_codes")
  end
  local e = summary.errors
  io.write(string.format(
    'EDGE {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "status_errors": %d, "timeouts": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"playlists": %d, "parts": %d, "advanced": %d, "probes": %d, "not_ok": %d, "not_ok_codes": "%s"}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, p, q, a, pr, bad, codes))
end
"""


@dataclass
class WrkRound:
    number: int
    result: dict[str, Any]
    nginx_cpu: float  # share of one CPU over the run: master and worker
    wrk_cpu: float
    podium_cpu: float
    load: tuple[float, float]

    @property
    def seconds(self) -> float:
        return float(self.result["duration_us"]) / 1e6

    @property
    def rps(self) -> float:
        return float(self.result["requests"]) / self.seconds

    @property
    def bytes_per_s(self) -> float:
        return float(self.result["bytes"]) / self.seconds

    @property
    def requests_per_core_s(self) -> float:
        return self.rps / self.nginx_cpu if self.nginx_cpu else 0.0

    @property
    def listeners_per_core(self) -> float:
        return self.requests_per_core_s / REQUESTS_PER_LISTENER_PER_S


async def run_wrk(
    edge: Nginx, origin: str, space_id: str, script: Path, seconds: int, connections: int
) -> dict[str, Any]:
    """One wrk run, starting from the live edge as Podium has it now (nginx could answer with a playlist it has kept
    since the last round: see the notes); wrk's summary plus the counts of the Lua script."""
    async with httpx.AsyncClient(timeout=10) as client:
        listing = read_playlist((await client.get(f"{origin}/hls/{space_id}/live.m3u8")).content)
    if len(listing.parts) < 2:
        raise RuntimeError("the playlist lists fewer than 2 parts")
    newest = listing.parts[-1]
    names = [f"p{m}-{i}.m4s" for m, i in listing.parts[-2:]]
    async with httpx.AsyncClient(timeout=10) as client:
        # Into nginx's cache first: wrk's connections all start on these, and would all wait on the cache lock.
        for path in (reload_path(f"/hls/{space_id}/", newest), *(f"/hls/{space_id}/{name}" for name in names)):
            await client.get(edge.base + path)
    command = [
        WRK, "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "5s", "-s", str(script),
        edge.base, "--", f"/hls/{space_id}/", str(newest[0]), str(newest[1]), str(PARTS_PER_SEGMENT), *names,
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=seconds + 30)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    text = out.decode(errors="replace")
    found = [line for line in text.splitlines() if line.startswith("EDGE ")]
    if not found:
        raise RuntimeError(f"wrk gave no result:\n{text[-2000:]}")
    result: dict[str, Any] = json.loads(found[-1][len("EDGE ") :])
    return result


async def edge_capacity(
    args: argparse.Namespace, server: harness.Server, edge: Nginx, space_id: str, prefix: Path
) -> list[WrkRound]:
    script = prefix / "edge.lua"
    script.write_text(EDGE_LUA)
    say(f"part 2: wrk against the nginx worker, {args.wrk_warmup} s warm-up")
    await run_wrk(edge, server.base, space_id, script, args.wrk_warmup, args.wrk_connections)
    rounds = []
    for number in range(1, args.wrk_rounds + 1):
        nginx_pids = edge.pids()
        load_before = os.getloadavg()[0]
        before = sum(harness.cpu_seconds(p) for p in nginx_pids), harness.cpu_seconds(server.proc.pid)
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        result = await run_wrk(edge, server.base, space_id, script, args.wrk_seconds, args.wrk_connections)
        wall = time.monotonic() - started
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        after = sum(harness.cpu_seconds(p) for p in nginx_pids), harness.cpu_seconds(server.proc.pid)
        wrk_cpu = (children_after.ru_utime + children_after.ru_stime) - (
            children_before.ru_utime + children_before.ru_stime
        )
        # wrk's own clock covers its requests; the CPU figures cover the whole process lifetime, a little longer.
        run = WrkRound(
            number=number,
            result=result,
            nginx_cpu=(after[0] - before[0]) / wall,
            wrk_cpu=wrk_cpu / wall,
            podium_cpu=(after[1] - before[1]) / wall,
            load=(load_before, os.getloadavg()[0]),
        )
        rounds.append(run)
        say(
            f"part 2, round {number}: {run.rps:,.0f} requests/s, {run.bytes_per_s / 1e6:.1f} MB/s, nginx "
            f"{100 * run.nginx_cpu:.0f}% of a core, wrk {100 * run.wrk_cpu:.0f}%: "
            f"{run.listeners_per_core:,.0f} listeners per core"
        )
    return rounds


# -- part 2, the peer: icecast2 ---------------------------------------------------------------------------

STREAM_BYTES_PER_S = AUDIO_KBPS * 1000 / 8
SERVED = 0.95  # a listener that got at least this share of the stream's rate in a window was served in real time


def icecast_listeners_main(config_json: str) -> int:
    """Icecast listeners in one process, as lean as a listener can be. Each sends one GET; a listener is *joining*
    until its first bytes come (icecast's source thread takes new listeners in when it wakes up to send the next
    block, about every 0.18 s), and at most `joining` join at a time: icecast listens with a backlog of 5, and
    connects it has no room for are dropped and sent again by the kernel after 1 s, 3 s, 7 s... New connections are
    paced at `rate` per second. Once in, every socket is read every `sweep_s` with one `recv_into` (the kernel keeps
    what arrives in between, as a player's buffer would).

    Driven by lines on stdin: `open N` (listeners up to N in all; prints a line once all are in), `hold` (no more
    joins: those still joining are given up; prints how many are in), `mark NAME` (notes every listener's bytes; at
    `NAME end`, prints how much each got since `NAME start`), `stop`."""
    cfg = json.loads(config_json)
    harness.raise_fd_limit()
    address = (cfg["host"], cfg["port"])
    payload = f"GET {cfg['path']} HTTP/1.1\r\nHost: {cfg['host']}:{cfg['port']}\r\nUser-Agent: podium-bench\r\n\r\n"
    request = payload.encode()
    sel = selectors.DefaultSelector()
    sel.register(sys.stdin.fileno(), selectors.EVENT_READ, -1)
    socks: list[socket.socket] = []
    alive: list[bool] = []  # in: has had bytes, and was not closed since
    got = array.array("q")
    joining: set[int] = set()  # connecting, or connected and waiting for the first bytes
    failed: Counter[str] = Counter()
    marks: dict[str, tuple[float, list[int]]] = {}
    view = memoryview(bytearray(1 << 18))
    target = 0
    opening_since, opened_before = time.time(), 0
    announced = True
    pending = b""
    next_sweep = time.time()
    stop_at = time.time() + float(cfg["max_s"])

    def read(i: int) -> None:
        for _ in range(8):
            try:
                n = socks[i].recv_into(view)
            except BlockingIOError:
                return
            except OSError as exc:
                failed[type(exc).__name__] += 1
                alive[i] = False
                joining.discard(i)
                return
            if n == 0:
                failed["closed by icecast"] += 1
                alive[i] = False
                joining.discard(i)
                return
            got[i] += n
            if i in joining:
                joining.discard(i)
                alive[i] = True
            if n < len(view):
                return

    def summary(first: tuple[float, list[int]], last: tuple[float, list[int]]) -> dict[str, Any]:
        seconds = last[0] - first[0]
        both = [i for i in range(len(first[1])) if first[1][i] >= 0 and last[1][i] >= 0]
        rates = sorted((last[1][i] - first[1][i]) / seconds for i in both)
        return {
            "seconds": seconds, "listeners": len(rates), "served": sum(r >= SERVED * STREAM_BYTES_PER_S for r in rates),
            "lost": sum(first[1][i] >= 0 > last[1][i] for i in range(len(first[1]))),
            "min": rates[0] if rates else None, "p1": rates[len(rates) // 100] if rates else None,
            "p50": rates[len(rates) // 2] if rates else None, "mean": sum(rates) / len(rates) if rates else None,
        }  # fmt: skip

    for _ in range(int(float(cfg["max_s"]) / 0.002) + 1000):
        now = time.time()
        if now >= stop_at:
            break
        due = min(target, opened_before + int((now - opening_since) * cfg["rate"]) + 1)
        while len(socks) < due and len(joining) < cfg["joining"]:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            code = sock.connect_ex(address)
            if code not in (0, errno.EINPROGRESS):
                failed[errno.errorcode.get(code, str(code))] += 1
                sock.close()
                target -= 1
                continue
            joining.add(len(socks))
            sel.register(sock, selectors.EVENT_WRITE, len(socks))
            socks.append(sock)
            alive.append(False)
            got.append(0)
        commands = []
        for key, events in sel.select(0):
            if key.data == -1:
                chunk = os.read(sys.stdin.fileno(), 4096)
                pending += chunk if chunk else b"stop\n"
                *lines, pending = pending.split(b"\n")
                commands += [line.decode().split(" ", 1) for line in lines if line]
                continue
            i = key.data
            if alive[i] or i not in joining:  # in already, or gone
                sel.unregister(key.fileobj)
            elif events & selectors.EVENT_READ:  # its first bytes: in, and read with the others from now on
                read(i)
                if i not in joining:
                    sel.unregister(key.fileobj)
            else:  # connected (or not): send the request, then wait for the first bytes
                code = socks[i].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code == 0:
                    socks[i].send(request)
                    sel.modify(key.fileobj, selectors.EVENT_READ, i)
                else:
                    failed[errno.errorcode.get(code, str(code))] += 1
                    joining.discard(i)
                    sel.unregister(key.fileobj)
        if not announced and len(socks) >= target and not joining:
            announced = True
            print(ICE_TAG + json.dumps({"mark": "in", "in": sum(alive)}), flush=True)
        if now >= next_sweep:
            for i in range(len(socks)):
                if alive[i]:
                    read(i)
            next_sweep = now + cfg["sweep_s"]
        for command in commands:
            if command[0] == "open":  # up to N listening: as many more as that takes
                target, announced = len(socks) + max(0, int(command[1]) - sum(alive)), False
                opening_since, opened_before = time.time(), len(socks)
            elif command[0] == "mark":
                for i in range(len(socks)):
                    if alive[i]:
                        read(i)
                # -1: not (or no longer) receiving, so not counted in the window.
                marks[command[1]] = (time.time(), [got[i] if alive[i] else -1 for i in range(len(socks))])
                name, _, edge = command[1].rpartition(" ")
                if edge == "end" and f"{name} start" in marks:
                    data = summary(marks[f"{name} start"], marks[command[1]])
                    print(ICE_TAG + json.dumps({"mark": name, **data}), flush=True)
            elif command[0] == "hold":  # no more joins: those still joining are given up
                dropped = len(joining)
                for i in list(joining):
                    with contextlib.suppress(KeyError, ValueError):
                        sel.unregister(socks[i])
                    socks[i].close()
                joining.clear()
                target, announced = len(socks), True
                print(ICE_TAG + json.dumps({"mark": "held", "in": sum(alive), "dropped": dropped}), flush=True)
            elif command[0] == "stop":
                stop_at = 0.0
        time.sleep(0.002)
    for sock in socks:
        sock.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = {"opened": len(socks), "failed": dict(failed), "cpu_s": usage.ru_utime + usage.ru_stime}
    print(ICE_TAG + json.dumps({"mark": "", **result}), flush=True)
    return 0


ICECAST_CONF = """<icecast>
  <limits>
    <clients>{clients}</clients>
    <sources>2</sources>
    <queue-size>524288</queue-size>
    <client-timeout>30</client-timeout>
    <header-timeout>15</header-timeout>
    <source-timeout>10</source-timeout>
    <burst-on-connect>1</burst-on-connect>
    <burst-size>65535</burst-size>
  </limits>
  <authentication>
    <source-password>{password}</source-password>
    <admin-user>admin</admin-user>
    <admin-password>{password}</admin-password>
  </authentication>
  <hostname>{host}</hostname>
  <listen-socket><port>{port}</port><bind-address>{host}</bind-address></listen-socket>
  <fileserve>0</fileserve>
  <paths>
    <basedir>/usr/share/icecast2</basedir>
    <logdir>{logdir}</logdir>
    <webroot>/usr/share/icecast2/web</webroot>
    <adminroot>/usr/share/icecast2/admin</adminroot>
  </paths>
  <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog><loglevel>2</loglevel></logging>
  <security><chroot>0</chroot>{owner}</security>
</icecast>
"""
ICECAST_MOUNT = "/live.mp3"


@dataclass
class IceStep:
    listeners: int  # the step's target
    joined: int = 0  # receiving the stream when the joins were stopped
    dropped: int = 0  # still joining then: given up
    in_icecast: int = 0  # icecast's own count when the window opened
    cpu: float = 0.0  # icecast, all threads, share of one CPU
    busiest_thread: float = 0.0
    reader_cpu: float = 0.0
    ffmpeg_cpu: float = 0.0
    window: dict[str, Any] = field(default_factory=dict)  # the listeners' process's summary of the window
    load: tuple[float, float] = (0.0, 0.0)

    @property
    def served(self) -> int:
        return int(self.window.get("served", 0))

    @property
    def held(self) -> bool:
        """Every listener icecast had taken in got the stream in real time (99 % of them, at least)."""
        return bool(self.window) and self.served >= 0.99 * max(self.joined, 1)

    @property
    def listeners_per_core(self) -> float:
        return self.served / self.cpu if self.cpu else 0.0


@dataclass
class IceOutcome:
    steps: list[IceStep]
    version: str
    failed: dict[str, int]
    notes: list[str]
    overflows: int | None  # the machine's ListenOverflows over the icecast part


def listen_overflows() -> int | None:
    """The machine's count of connections dropped by full accept queues (TcpExt ListenOverflows)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        lines = [
            line.split() for line in Path("/proc/net/netstat").read_text().splitlines() if line.startswith("TcpExt:")
        ]
        return int(lines[1][lines[0].index("ListenOverflows")])
    return None


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of a process (/proc/TID/stat works for a thread's id too)."""
    with contextlib.suppress(OSError):
        return {int(t.name): harness.cpu_seconds(int(t.name)) for t in Path(f"/proc/{pid}/task").iterdir()}
    return {}


def icecast_stats(port: int, password: str) -> dict[str, int]:
    """The mount's listeners and the bytes icecast has read from the source (0s while there is no source)."""
    got: dict[str, int] = {}
    with contextlib.suppress(httpx.HTTPError):
        text = httpx.get(f"http://{harness.HOST}:{port}/admin/stats.xml", auth=("admin", password), timeout=5).text
        mount = text.split(f'<source mount="{ICECAST_MOUNT}">', 1)
        if len(mount) == 2:
            for name in ("listeners", "total_bytes_read"):
                found = re.search(rf"<{name}>(\d+)</{name}>", mount[1])
                if found:
                    got[name] = int(found.group(1))
    return got


def _nofile_limit(limit: int) -> Any:
    """A preexec_fn that lifts a child's limit on open files to `limit` (as far as this process may)."""

    def lift() -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, limit), max(hard, limit)))

    return lift


def start_icecast(logdir: Path, port: int, password: str, clients: int) -> subprocess.Popen[bytes]:
    owner = "<changeowner><user>icecast2</user><group>icecast</group></changeowner>" if os.geteuid() == 0 else ""
    conf = ICECAST_CONF.format(
        clients=clients, password=password, host=harness.HOST, port=port, logdir=logdir, owner=owner
    )
    (logdir / "icecast.xml").write_text(conf)
    (logdir / "icecast.xml").chmod(0o644)
    with (logdir / "stdout.log").open("wb") as log:
        ice = subprocess.Popen(
            [ICECAST, "-c", str(logdir / "icecast.xml")],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_nofile_limit(clients + 256),
        )
    for _ in range(100):
        if ice.poll() is not None:
            raise RuntimeError(f"icecast2 exited with {ice.returncode}: {(logdir / 'stdout.log').read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"http://{harness.HOST}:{port}/", timeout=1)
            return ice
        time.sleep(0.1)
    harness.stop_process(ice, "icecast2")
    raise RuntimeError("icecast2 did not answer within 10 s")


async def icecast_peer(args: argparse.Namespace, prefix: Path, notes: list[str]) -> IceOutcome:
    """icecast2 with a 64 kbps MP3 stream from ffmpeg; listeners joining in steps (`args.icecast_steps`) until a
    step is not served in real time any more."""
    wanted = sorted(set(args.icecast_steps))
    logdir = prefix / "icecast"
    logdir.mkdir()
    logdir.chmod(0o777)  # icecast drops root for its own user, and writes its logs here
    prefix.chmod(0o755)
    port = harness.free_port()
    password = f"bench{random.randrange(10**9)}"
    version = subprocess.run([ICECAST, "-v"], capture_output=True, text=True, timeout=10).stdout.strip()
    overflows_before = listen_overflows()
    ice = start_icecast(logdir, port, password, wanted[-1] + 100)
    ffmpeg = reader = None
    steps: list[IceStep] = []
    final: dict[str, Any] = {}
    try:
        source = f"icecast://source:{password}@{harness.HOST}:{port}{ICECAST_MOUNT}"
        ffmpeg_command = [
            FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-ac", "1", "-c:a", "libmp3lame", "-b:a", f"{AUDIO_KBPS}k", "-content_type", "audio/mpeg", "-f", "mp3",
            source,
        ]  # fmt: skip
        with (logdir / "ffmpeg.log").open("wb") as log:
            ffmpeg = subprocess.Popen(ffmpeg_command, stdout=log, stderr=subprocess.STDOUT)
        for _ in range(100):
            if "listeners" in await asyncio.to_thread(icecast_stats, port, password):  # the mount exists
                break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"icecast never got the source: {(logdir / 'ffmpeg.log').read_text()[-500:]}")
        say(f"icecast2 is up with its {AUDIO_KBPS} kbit/s MP3 source (ffmpeg)")
        await asyncio.sleep(1.0)  # some audio in icecast's queue for the first listeners' bursts
        cfg = {"host": harness.HOST, "port": port, "path": ICECAST_MOUNT, "joining": 400, "rate": args.connect_rate,
               "sweep_s": 1.0,
               "max_s": 30 + sum(wanted) / args.connect_rate + len(wanted) * (args.icecast_window + 40)}  # fmt: skip
        command = [sys.executable, str(Path(__file__).resolve()), "--icecast-listeners", json.dumps(cfg)]
        reader = await asyncio.create_subprocess_exec(
            *command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, preexec_fn=_nofile_limit(wanted[-1] + 1024)
        )
        assert reader.stdin is not None and reader.stdout is not None
        say(
            f"icecast2: listeners in steps up to {', '.join(f'{s:,}' for s in wanted)}, joining at "
            f"{args.connect_rate:,.0f}/s (at most 400 joining at a time), {args.icecast_window} s window per step"
        )
        pids = {"ice": ice.pid, "reader": reader.pid, "ffmpeg": ffmpeg.pid}
        previous = 0
        for count in wanted:
            step = IceStep(count)
            steps.append(step)
            reader.stdin.write(f"open {count}\n".encode())
            await reader.stdin.drain()
            # Until all are in, or as many as icecast took in meanwhile (it takes new listeners in ever more slowly
            # as it serves more: see the notes); then no more joins, and a moment for the bursts icecast sends a new
            # listener to go out, so that the window holds listening alone.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reader.stdout.readline(), (count - previous) / args.connect_rate + 5)
            reader.stdin.write(b"hold\n")
            await reader.stdin.drain()
            for _ in range(3):
                held = json.loads((await asyncio.wait_for(reader.stdout.readline(), 30)).decode()[len(ICE_TAG) :])
                if held["mark"] == "held":
                    step.joined, step.dropped = held["in"], held["dropped"]
                    break
            await asyncio.sleep(args.icecast_settle)
            step.in_icecast = (await asyncio.to_thread(icecast_stats, port, password)).get("listeners", 0)
            before = sample_cpu(pids)
            reader.stdin.write(f"mark {count} start\n".encode())
            await reader.stdin.drain()
            await asyncio.sleep(args.icecast_window)
            reader.stdin.write(f"mark {count} end\n".encode())
            await reader.stdin.drain()
            after = sample_cpu(pids)
            line = await asyncio.wait_for(reader.stdout.readline(), 30)
            step.window = json.loads(line.decode()[len(ICE_TAG) :])
            wall = after["wall"] - before["wall"]
            step.cpu = (after["ice"] - before["ice"]) / wall
            step.busiest_thread = max(
                (after["threads"][t] - before["threads"].get(t, 0.0)) / wall for t in after["threads"]
            )
            step.reader_cpu = (after["reader"] - before["reader"]) / wall
            step.ffmpeg_cpu = (after["ffmpeg"] - before["ffmpeg"]) / wall
            step.load = (before["load"], after["load"])
            say(
                f"icecast2: {step.joined:,} listeners in, {step.served:,} served in real time, icecast "
                f"{100 * step.cpu:.0f}% of a core (busiest thread {100 * step.busiest_thread:.0f}%)"
            )
            previous = step.joined
            if not step.held:
                break  # icecast no longer keeps up: more listeners would only say so again
        reader.stdin.write(b"stop\n")
        await reader.stdin.drain()
        out, _ = await asyncio.wait_for(reader.communicate(), 60)
        lines = [line for line in out.decode().splitlines() if line.startswith(ICE_TAG)]
        final = json.loads(lines[-1][len(ICE_TAG) :]) if lines else {}
    finally:
        if reader is not None and reader.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                reader.kill()
            await reader.wait()
        for proc, name in ((ffmpeg, "ffmpeg"), (ice, "icecast2")):
            if proc is not None:
                harness.stop_process(proc, name)
    errors = [line for line in (logdir / "error.log").read_text(errors="replace").splitlines() if " EROR " in line]
    if errors:
        notes.append(f"icecast's error log has {len(errors)} error line(s), the first: `{errors[0][:200]}`")
    overflows_after = listen_overflows()
    overflows = None
    if overflows_after is not None and overflows_before is not None:
        overflows = overflows_after - overflows_before
    return IceOutcome(steps, version, final.get("failed", {}), notes, overflows)


def sample_cpu(pids: dict[str, int]) -> dict[str, Any]:
    got: dict[str, Any] = {name: harness.cpu_seconds(pid) for name, pid in pids.items()}
    got |= {"threads": thread_cpu(pids["ice"]), "wall": time.time(), "load": os.getloadavg()[0]}
    return got


# -- the run ---------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    origin: OriginOutcome | None
    rounds: list[WrkRound]
    icecast: IceOutcome | None
    notes: list[str]
    part_bytes: int
    reload_bytes: int
    seconds: float
    load: tuple[float, float]


async def measure(args: argparse.Namespace) -> Outcome:
    from podium.testing.whip_client import SampleTrack, publish, tone  # aiortc: not imported by the worker processes

    started = time.monotonic()
    load_before = os.getloadavg()[0]
    notes: list[str] = []
    origin = None
    rounds: list[WrkRound] = []
    part_bytes = reload_bytes = 0
    with tempfile.TemporaryDirectory(prefix="podium-bench-edge-") as tmp:
        root = Path(tmp)
        (root / "edge").mkdir()
        with harness.serve(root / "data", root / "podium.log") as server:
            origin_port = int(server.base.rsplit(":", 1)[1])
            edge = start_cache_tier(origin_port, server.data_dir, root / "edge", args.listeners + 2048, ORIGIN_LOG)
            say(f"podium serve on {server.base}, nginx on {edge.base}")
            try:
                async with httpx.AsyncClient(timeout=30) as client:
                    space = await harness.create_space(client, server.base, "edge benchmark")
                    space_id = space["id"]
                    host = await publish(
                        server.base + space["urls"]["whip"], space["host_token"], SampleTrack(tone(440))
                    )
                    try:
                        say("a space is live, its speaker on the stage; waiting for 2 segments")
                        # Straight from Podium: through nginx, the first answer (held until the first segment is
                        # made, then sent with max-age=12) would be all this loop saw for 12 s (see the notes).
                        await harness.wait_for_segments(client, f"{server.base}/hls/{space_id}/live.m3u8", 2)
                        if not args.no_origin:
                            origin = await origin_load(args, server, edge, space_id, notes)
                        # Now that the stream is old enough for delta playlists (`_HLS_skip`) to have their size.
                        part_bytes, reload_bytes = await answer_sizes(client, edge.base, space_id)
                        if not args.no_capacity:
                            rounds = await edge_capacity(args, server, edge, space_id, root / "edge")
                        notes.append(await stale_playlist(client, server.base, edge.base, space_id))
                    finally:
                        with contextlib.suppress(Exception):
                            await host.close()
                        with contextlib.suppress(httpx.HTTPError):
                            await harness.end_space(client, server.base, space)
            finally:
                harness.stop_process(edge.proc, "nginx")
                errors = edge.error_summary(3)
                if errors:
                    notes.append(f"nginx's error log has {errors[0]:,} line(s): {errors[1]}")
            behind = server.log_text().count("behind; skipping ahead")
            if behind:
                notes.append(f"the stage fell behind and skipped ahead {behind} time(s) (the podium log)")
        icecast = None
        if not args.no_icecast:
            icecast = await icecast_peer(args, root, [])
    load = (load_before, os.getloadavg()[0])
    return Outcome(origin, rounds, icecast, notes, part_bytes, reload_bytes, time.monotonic() - started, load)


async def stale_playlist(client: httpx.AsyncClient, origin: str, edge: str, space_id: str) -> str:
    """What a listener joining now gets through nginx: nobody has asked for the plain `live.m3u8` since the last
    joins, so nginx's copy has expired; with `proxy_cache_use_stale updating` and `proxy_cache_background_update`
    nginx answers with that copy, however old, and updates it behind."""
    at_edge = await client.get(f"{edge}/hls/{space_id}/live.m3u8")
    at_origin = await client.get(f"{origin}/hls/{space_id}/live.m3u8")
    old, now = read_playlist(at_edge.content), read_playlist(at_origin.content)
    if not old.parts or not now.parts or old.edge_end is None or now.edge_end is None:
        return "the check of a joiner's playlist through nginx found no parts"
    missing = 0
    for key in old.parts[-4:]:
        missing += (await client.get(f"{origin}/hls/{space_id}/p{key[0]}-{key[1]}.m4s")).status_code == 404
    behind = now.edge_end - old.edge_end
    status = at_edge.headers.get("x-cache-status", "-")
    if behind < 2 * PART_S:
        return f"A listener joining at the end got an up-to-date playlist through nginx (`X-Cache-Status: {status}`)"
    return (
        "A listener joining after a quiet spell (nobody had asked for the plain `live.m3u8` since the last joins, "
        f"before part 2) got from nginx, `X-Cache-Status: {status}`, a playlist {behind:.1f} s older than Podium's: "
        "nginx answers with its expired copy, however old, while it updates it (`proxy_cache_use_stale updating` "
        f"with `proxy_cache_background_update on`); of the 4 newest parts it listed, {missing} were no longer kept "
        "as parts by Podium (404 for the player). That is why the wrk rounds start from Podium's own playlist"
    )


async def answer_sizes(client: httpx.AsyncClient, base: str, space_id: str) -> tuple[int, int]:
    """Bytes on the wire (status line, headers, body) of a part and of a blocking reload's answer through nginx,
    asked twice each so that the second is a cache hit, as most listeners get them."""
    hls = f"{base}/hls/{space_id}/"
    listing = read_playlist((await client.get(hls + "live.m3u8")).content)
    newest = listing.parts[-1]
    sizes = []
    for url in (part_path(hls, newest), reload_path(hls, newest)):
        for _ in range(2):
            response = await client.get(url)
        head = len(f"HTTP/1.1 {response.status_code} {response.reason_phrase}\r\n") + 2
        head += sum(len(k) + len(v) + 4 for k, v in response.headers.raw)
        sizes.append(head + len(response.content))
    return sizes[0], sizes[1]


# -- report ----------------------------------------------------------------------------------------------


def _pct(values: list[float], p: float) -> float | None:
    return harness.percentile(values, p) if values else None


def _s(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def bucket_percentile(hist: Counter[int], p: float, width_s: float = 0.01) -> float | None:
    """Nearest-rank percentile of a histogram of `width_s` buckets (the bucket's upper edge)."""
    total = sum(hist.values())
    if not total:
        return None
    rank, seen = max(1, math.ceil(total * p / 100)), 0
    for bucket in sorted(hist):
        seen += hist[bucket]
        if seen >= rank:
            return (bucket + 1) * width_s
    return (max(hist) + 1) * width_s


CPU_BOUND = 0.85  # a wrk round counts when the nginx worker used at least this share of a core


def median_round(rounds: list[WrkRound]) -> WrkRound:
    """The median round (the lower one of an even count) among those in which nginx was CPU-bound, if any."""
    bound = [r for r in rounds if r.nginx_cpu >= CPU_BOUND] or rounds
    return sorted(bound, key=lambda r: r.listeners_per_core)[(len(bound) - 1) // 2]


def icecast_figure(ice: IceOutcome) -> IceStep | None:
    """The step with the most listeners served in real time, among those where icecast kept up with all of them."""
    held = [s for s in ice.steps if s.held and s.cpu]
    return max(held, key=lambda s: s.served) if held else None


def origin_section(o: OriginOutcome, args: argparse.Namespace) -> tuple[list[str], dict[str, float]]:
    a, b = o.phases
    lines = [
        f"### Origin requests per space, {a.listeners:,} and {b.listeners:,} listeners",
        "",
        "| phase | listeners | window (s) | listeners' requests/s (per listener; nominal "
        f"{REQUESTS_PER_LISTENER_PER_S:.2f}) | parts/s per listener p1 / p50 (nominal {1 / PART_S:.2f}) | jumps to "
        "the live edge | newest part's age when a reload was answered, p50 / p99 (s) | answered by nginx's cache "
        "| origin requests/s: reloads + parts + other = **total** | CPU: Podium / nginx / listeners |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rates = {}
    for phase in (a, b):
        cached = answered = 0
        for (_, status, cache, second), n in o.answers.items():
            if phase.start <= second < phase.end:
                answered += n
                cached += n if status == "200" and cache in CACHED else 0
        per = o.per_listener.get(phase.name, [])
        parts_per_s = [p / phase.seconds for _, p in per]
        total = sum(r for r, _ in per)  # exact for the window; the per-second counts above are whole seconds
        jumps = sum(n for s, n in o.jumps.items() if phase.start <= s < phase.end)
        age = Counter({bucket: n for (w, bucket), n in o.age.items() if w == phase.name})
        reloads = phase.origin["blocking reload"] / phase.seconds
        parts = phase.origin["part"] / phase.seconds
        other = phase.origin_rps - reloads - parts
        rates[phase.name] = phase.origin_rps
        listeners_cpu = phase.cpu["bench (speaker, 100 listeners)"] + phase.cpu["listener workers"]
        lines.append(
            f"| {phase.name} | {phase.listeners:,} | {phase.seconds:.2f} | {total / phase.seconds:,.0f} "
            f"({total / phase.seconds / max(1, len(per)):.2f}) | {_s(_pct(parts_per_s, 1))} / "
            f"{_s(_pct(parts_per_s, 50))} | {jumps:,} | {_s(bucket_percentile(age, 50))} / "
            f"{_s(bucket_percentile(age, 99))} | {100 * cached / answered if answered else 0:.2f}% | {reloads:.2f} + "
            f"{parts:.2f} + {other:.2f} = **{phase.origin_rps:.2f}** | {100 * phase.cpu['Podium']:.0f}% / "
            f"{100 * phase.cpu['nginx']:.0f}% / {100 * listeners_cpu:.0f}% |"
        )
    ratio = rates["B"] / rates["A"] if rates["A"] else math.inf
    verdict = "met" if ratio <= GOAL_RATIO else "**not met**"
    lines += [
        "",
        f"**Origin requests/s per space, {b.listeners:,} listeners ÷ {a.listeners:,}: {ratio:.2f}** "
        f"({rates['B']:.2f} ÷ {rates['A']:.2f}); goal ≤ {GOAL_RATIO}: {verdict}.",
        "",
    ]
    return lines, {"A": rates["A"], "B": rates["B"], "ratio": ratio}


def origin_notes(o: OriginOutcome, args: argparse.Namespace) -> list[str]:
    notes = []
    for phase in o.phases:
        statuses = ", ".join(
            f"{k} {n:,}"
            for k, n in sorted(phase.origin.items())
            if k not in ORIGIN_KINDS and k.startswith(("blocking reload", "part"))
        )
        made = phase.seconds / PART_S
        held = sorted(phase.origin_took)
        notes.append(
            f"phase {phase.name}: origin requests {sum(phase.origin[k] for k in ORIGIN_KINDS):,} in "
            f"{phase.seconds:.2f} s, by nginx's cache status: {statuses or 'none'}; {phase.origin_parts} distinct "
            f"parts fetched from Podium for about {made:.0f} made in the window; the blocking reloads sent to Podium "
            f"waited there (`$upstream_response_time`) p50 {_s(_pct(held, 50))} s, max "
            f"{_s(held[-1] if held else None)} s; 1-minute load average {phase.load[0]:.2f} → {phase.load[1]:.2f}"
        )
    for phase in o.phases:
        answers = Counter[str]()
        for (kind, status, cache, second), n in o.answers.items():
            if phase.start <= second < phase.end:
                answers[f"{kind} {status} {cache}"] += n
        shown = ", ".join(f"{k} {n:,}" for k, n in answers.most_common(8))
        took = {kind: Counter({bk: n for (w, k, bk), n in o.took.items() if w == phase.name and k == kind})
                for kind in ("blocking reload", "part")}  # fmt: skip
        notes.append(
            f"phase {phase.name}, the listeners' answers (kind, status, X-Cache-Status): {shown}; a blocking reload "
            f"took p50 {_s(bucket_percentile(took['blocking reload'], 50))} s, p99 "
            f"{_s(bucket_percentile(took['blocking reload'], 99))} s (held until the part exists), a part p50 "
            f"{_s(bucket_percentile(took['part'], 50))} s, p99 {_s(bucket_percentile(took['part'], 99))} s"
        )
    b = o.phases[-1]
    skipped = sum(n for s, n in o.skipped.items() if b.start <= s < b.end)
    per = o.per_listener.get("B", [])
    requests = [r / b.seconds for r, _ in per]
    notes.append(
        f"phase B, what the listeners achieved: requests/s per listener p1 {_s(_pct(requests, 1))}, p50 "
        f"{_s(_pct(requests, 50))}, p99 {_s(_pct(requests, 99))} (a player at the live edge: "
        f"{REQUESTS_PER_LISTENER_PER_S:.2f}); {skipped:,} parts jumped over by listeners that fell more than "
        f"{MAX_BEHIND_S:.0f} s behind; the worker process(es) used {100 * b.cpu['listener workers']:.0f}% of a core "
        f"(a Python process can use one), nginx {100 * b.cpu['nginx']:.0f}%; event-loop lag of the worker "
        "process(es) p50 "
        f"{_s(_pct(o.lag_ms['workers'], 50), 0)} ms, p99 {_s(_pct(o.lag_ms['workers'], 99), 0)} ms; of the main "
        f"process (the speaker, 100 listeners) p99 {_s(_pct(o.lag_ms['main'], 99), 0)} ms"
    )
    if o.failed:
        notes.append(f"{o.failed} listener(s) never got a playlist and gave up")
    if o.errors:
        notes.append(f"listeners' failed requests, the first: {'; '.join(o.errors[:3])}")
    return notes


def capacity_section(out: Outcome) -> tuple[list[str], dict[str, float]]:
    rounds = out.rounds
    lines = [
        "### Listeners per edge core at 64 kbps",
        "",
        "| round | requests/s | MB/s | bytes per request | nginx CPU (1 worker) | wrk CPU | Podium CPU | requests per "
        "nginx core-second | listeners per core | latency p50 / p99 (ms) | not 200; socket errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rounds:
        res = r.result
        socket_errors = sum(res[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
        lines.append(
            f"| {r.number} | {r.rps:,.0f} | {r.bytes_per_s / 1e6:.1f} | {r.bytes_per_s / r.rps:,.0f} | "
            f"{100 * r.nginx_cpu:.0f}% | {100 * r.wrk_cpu:.0f}% | {100 * r.podium_cpu:.0f}% | "
            f"{r.requests_per_core_s:,.0f} | {r.listeners_per_core:,.0f} | {res['p50_us'] / 1000:.2f} / "
            f"{res['p99_us'] / 1000:.2f} | {res['not_ok']}; {socket_errors} |"
        )
    m = median_round(rounds)
    listener_bytes = out.part_bytes + out.reload_bytes
    listener_bps = listener_bytes / PART_S
    by_bytes = m.bytes_per_s / m.nginx_cpu / listener_bps if m.nginx_cpu else 0.0
    lines += [
        "",
        f"A listener at the live edge makes a blocking reload and fetches a part every {PART_S} s: "
        f"**{REQUESTS_PER_LISTENER_PER_S:.3f} requests/s**; through nginx a part is {out.part_bytes:,} bytes on the "
        f"wire and a reload's answer {out.reload_bytes:,} (status line, headers, body), so a listener takes "
        f"{listener_bytes:,} bytes per {PART_S} s = {listener_bps:,.0f} bytes/s = "
        f"**{8 * listener_bps / 1000:.1f} kbit/s** for {AUDIO_KBPS} kbit/s of audio. Median round ({m.number}): "
        f"{m.rps:,.0f} requests/s ÷ {m.nginx_cpu:.3f} (the nginx worker's share of one core; the median is taken "
        f"over the rounds in which nginx used at least {CPU_BOUND:.0%} of a core, when there are any) = "
        f"{m.requests_per_core_s:,.0f} requests per core-second ÷ {REQUESTS_PER_LISTENER_PER_S:.3f} = "
        f"**{m.listeners_per_core:,.0f} listeners per edge core**. By bytes: {m.bytes_per_s:,.0f} bytes/s ÷ "
        f"{m.nginx_cpu:.3f} ÷ {listener_bps:,.0f} bytes/s per listener = {by_bytes:,.0f} (wrk's requests are half "
        "reloads and half parts, as a listener's are).",
        "",
    ]
    figures = {"listeners": m.listeners_per_core, "kbps": 8 * listener_bps / 1000, "nginx_cpu": m.nginx_cpu}
    if out.origin is not None:
        # The same worker serving part 1's players: held reloads, cache-lock waits, a connection per listener.
        b = out.origin.phases[-1]
        rps = sum(r for r, _ in out.origin.per_listener.get(b.name, [])) / b.seconds
        nginx = b.cpu["nginx"]
        per_core = rps / nginx / REQUESTS_PER_LISTENER_PER_S if nginx else 0.0
        figures["players"] = per_core
        lines += [
            f"The same worker serving part 1's {b.listeners:,} simulated players (phase B: a connection each, "
            "reloads held at Podium and on nginx's cache lock): "
            f"{rps:,.0f} requests/s ÷ {nginx:.3f} of a core = {rps / nginx if nginx else 0:,.0f} requests per "
            f"core-second ÷ {REQUESTS_PER_LISTENER_PER_S:.3f} = **{per_core:,.0f} listeners per edge core** "
            f"({1e6 * nginx / rps if rps else 0:.1f} µs of nginx CPU per request, against "
            f"{1e6 * m.nginx_cpu / m.rps:.1f} µs under wrk).",
            "",
        ]
    return lines, figures


def icecast_section(ice: IceOutcome) -> tuple[list[str], IceStep | None]:
    lines = [
        f"The peer, {ice.version} (one process; one source thread sends the mount's stream to all its listeners): "
        f"a {AUDIO_KBPS} kbit/s MP3 stream (ffmpeg: `-re`, a 440 Hz sine, libmp3lame CBR, 48 kHz mono) on the "
        "mount, listeners joining step by step (400/s): each a socket of one process that sends a GET and then "
        "reads whatever arrived once a second (the kernel buffers in between, as a player's buffer does). "
        "*Served*: listeners that "
        f"got at least {SERVED:.0%} of {AUDIO_KBPS} kbit/s over the window; a step's joins stop when all are in or "
        "its time is up (those still joining are given up), before its window.",
        "",
        "| listeners: step / in (given up) / icecast's count | served | each listener got, kbit/s: min / p1 / p50 "
        "| lost in the window "
        "| icecast CPU: all threads / busiest thread | listeners per core | listeners' process CPU | ffmpeg CPU "
        "| load avg |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in ice.steps:
        w = s.window

        def kbps(name: str, w: dict[str, Any] = w) -> str:
            return _s(None if w.get(name) is None else 8 * w[name] / 1000, 1)

        lines.append(
            f"| {s.listeners:,} / {s.joined:,} ({s.dropped:,}) / {s.in_icecast:,} | {s.served:,} | {kbps('min')} / "
            f"{kbps('p1')} / {kbps('p50')} | "
            f"{w.get('lost', 0)} | {100 * s.cpu:.0f}% / {100 * s.busiest_thread:.0f}% | {s.listeners_per_core:,.0f} "
            f"| {100 * s.reader_cpu:.0f}% | {100 * s.ffmpeg_cpu:.0f}% | {s.load[0]:.2f} → {s.load[1]:.2f} |"
        )
    return [*lines, ""], icecast_figure(ice)


def report(out: Outcome, args: argparse.Namespace, plot_written: bool) -> tuple[str, dict[str, Any]]:
    lines = ["## Edge: origin requests per space, 100 and 10,000 listeners; listeners per edge core", ""]
    lines += harness.header_lines()
    lines += [
        f"- Edge: nginx {nginx_version()}, 1 worker, the shipped `deploy/nginx/podium.conf` (upstream, "
        "`listen`, cache path and the link-key include rewritten) plus a log of the requests that had an upstream "
        "(`log_subrequest on`, so background updates count); Podium is one `podium serve` process with one live "
        "space, a WHIP speaker (aiortc, a 440 Hz tone) on its stage",
        f"- The whole run took {out.seconds:.0f} s; 1-minute load average {out.load[0]:.2f} at its start, "
        f"{out.load[1]:.2f} at its end (the machine is shared: other people's test runs take CPU from every part)",
        "",
    ]
    figures: dict[str, Any] = {}
    notes: list[str] = []
    if out.origin is not None:
        o = out.origin
        lines += [
            f"Listeners: {args.base_listeners:,} in the benchmark's process throughout, and in phase B "
            f"{args.listeners - args.base_listeners:,} more in {o.workers} worker process(es), joining over "
            f"{args.ramp:.0f} s (phase B is measured from {args.settle:.0f} s after); asyncio tasks on uvloop, one "
            "keep-alive connection each, through the lean httptools client of `bench/http_client.py`. Each does what "
            "hls.js does with `lowLatencyMode` (the listener page's player): `live.m3u8`, `init.mp4` and the newest "
            "part; then a blocking reload for the part named by the preload hint "
            "(`live.m3u8?_HLS_msn=M&_HLS_part=P&_HLS_skip=YES`: Podium holds it until that part exists) and the "
            "new part(s) it lists, on and on: at the live edge, a reload and a part every 0.512 s, "
            f"{REQUESTS_PER_LISTENER_PER_S:.2f} requests/s. {args.listeners:,} such players would ask for about "
            f"{args.listeners * REQUESTS_PER_LISTENER_PER_S:,.0f} requests/s, more than these 2 CPUs can make and "
            "serve beside Podium, so in phase B the listeners fall behind; one that finds itself more than "
            f"{MAX_BEHIND_S:.0f} s behind the live edge (the newest part its reload listed ended that long ago, by "
            "the playlist's PROGRAM-DATE-TIME) fetches only that part and asks next for the part being made, as a "
            "player that fell behind seeks to the live edge. So every listener keeps asking for what the audience at "
            "the edge asks for, held reloads included, only less often than a real player: the rate they achieved "
            "is in the table. (Walking through every missed part instead would ask for reloads older than their "
            "12 s in nginx's cache, which players at the edge never do.) Origin requests: the lines of nginx's log "
            "by `$msec` (when the answer ended) in the window; windows are whole parts long. "
            f"**Goal: origin requests/s at {args.listeners:,} listeners ÷ at {args.base_listeners} ≤ "
            f"{GOAL_RATIO}.**",
            "",
        ]
        section, rates = origin_section(o, args)
        lines += section
        notes += origin_notes(o, args)
        figures["origin_requests_per_s_per_space"] = {
            "listeners_100": round(rates["A"], 2),
            "listeners_10000": round(rates["B"], 2),
            "ratio": round(rates["ratio"], 3),
        }
    edge = None
    if out.rounds:
        m = median_round(out.rounds)
        lines += [
            f"nginx as above (one worker), wrk (`wrk -t 1 -c {args.wrk_connections} -d {args.wrk_seconds}s -s "
            "edge.lua`, the Lua script is `EDGE_LUA` in this benchmark) asking for what listeners at the live edge "
            "ask for, as fast as nginx answers: blocking reloads (`_HLS_msn`/`_HLS_part` of the newest part, which "
            "exists: nginx has the answer cached, as it has for every listener but the first) and the newest two "
            "parts, turn and turn about; one connection holds a reload for the part being made, and its answer moves "
            "the others on to that part, so the requests follow the live edge as the stream goes on. "
            f"{args.wrk_rounds} round(s) of {args.wrk_seconds} s after a {args.wrk_warmup} s warm-up; CPU from "
            "`/proc` (nginx: master and worker; wrk: its rusage), over the run's wall time.",
            "",
        ]
        section, edge = capacity_section(out)
        lines += section
        figures["listeners_per_edge_core"] = {
            "value": int(edge["listeners"]),
            "bitrate_kbps": AUDIO_KBPS,
            "requests_per_listener_per_s": round(REQUESTS_PER_LISTENER_PER_S, 3),
            "wire_kbps_per_listener": round(edge["kbps"], 1),
            "nginx_cpu_share": round(edge["nginx_cpu"], 3),
            "source": "bench/edge.py",
        }
        if "players" in edge:  # the second estimate, from part 1's simulated players
            figures["listeners_per_edge_core"]["from_players"] = int(edge["players"])
    best = None
    if out.icecast is not None:
        section, best = icecast_section(out.icecast)
        lines += section
        notes += out.icecast.notes
        if best is not None:
            figures["icecast_listeners_per_core"] = {"value": int(best.listeners_per_core), "bitrate_kbps": AUDIO_KBPS}
    if edge is not None and best is not None:
        m = median_round(out.rounds)
        ratio = edge["listeners"] / best.listeners_per_core
        lines += [
            "| server | listeners per core | on the wire per listener | measured at |",
            "|---|---:|---:|---|",
            f"| Podium's edge: nginx, 1 worker, LL-HLS | **{edge['listeners']:,.0f}** | {edge['kbps']:.1f} kbit/s | "
            f"nginx at {100 * m.nginx_cpu:.0f}% of a core, wrk at {100 * m.wrk_cpu:.0f}% |",
            f"| icecast2, 1 process | **{best.listeners_per_core:,.0f}** | "
            f"{8 * (best.window.get('p50') or 0) / 1000:.1f} kbit/s | {best.served:,} listeners, icecast at "
            f"{100 * best.cpu:.0f}% of a core |",
            "",
            f"**Podium's edge ÷ icecast2, listeners per core: {ratio:.2f}.**",
            "",
        ]
        figures["edge_vs_icecast_listeners_per_core"] = round(ratio, 3)
    if plot_written:
        lines += [f"![Origin requests per second; listeners per core]({PLOT.name})", ""]
    lines += ["Notes:", ""]
    lines += [f"- {note}" for note in [*notes, *cpu_bound_notes(out, edge, best), *out.notes, START_NOTE]]
    return "\n".join(lines) + "\n", figures


START_NOTE = (
    "Noticed while writing this benchmark (not measured by it): a plain `live.m3u8` asked for before a stream's "
    "first segment is held by Podium until that segment exists and then answered with `max-age=12`, as a blocking "
    "reload is (`delivery/hls.py`), so nginx keeps that one-segment playlist for 12 s: waiting for 2 segments "
    "through nginx took 14.5 s, straight from Podium 5.8 s. The benchmark waits on Podium"
)


def cpu_bound_notes(out: Outcome, edge: dict[str, float] | None, best: IceStep | None) -> list[str]:
    notes = []
    if edge is not None:
        m = median_round(out.rounds)
        bound = "CPU-bound" if m.nginx_cpu >= 0.9 else "**not** CPU-bound"
        per_core = [r.requests_per_core_s for r in out.rounds]
        spread = max(per_core) / min(per_core) - 1 if min(per_core) else 0.0
        notes.append(
            f"Which side was CPU-bound, edge: the nginx worker was {bound}, at {100 * m.nginx_cpu:.0f}% of a core in "
            f"the median round (wrk {100 * m.wrk_cpu:.0f}%; the 2 CPUs also ran Podium, the speaker and other people's "
            "work); the figure is requests per nginx CPU-second, so it would hold below a full core only if nginx's "
            "cost per request stayed the same"
            + (
                f". The rounds' requests per core-second differ by {spread:.0%}: on this shared virtual machine a "
                "CPU-second is not always the same amount of work"
                if spread >= 0.05
                else ""
            )
        )
    if best is not None and out.icecast is not None:
        top = max(out.icecast.steps, key=lambda s: s.joined)
        bound = "CPU-bound" if best.busiest_thread >= 0.9 else "**not** CPU-bound"
        notes.append(
            f"Which side was CPU-bound, icecast2: {bound}: at {best.served:,} listeners its busiest thread (the "
            f"source thread, which sends to every listener) used {100 * best.busiest_thread:.0f}% of a core and every "
            f"listener got the stream in real time, so the figure, listeners ÷ icecast's share of a core, is an "
            "extrapolation to a full core (over the steps, listeners per core varied by "
            f"{min(s.listeners_per_core for s in out.icecast.steps if s.cpu):,.0f}-"
            f"{max(s.listeners_per_core for s in out.icecast.steps if s.cpu):,.0f}: icecast's cost per listener "
            f"stayed about flat). What bounded the run was icecast's intake of new listeners: it accepts one "
            "connection per turn of its accept loop and listens with a backlog of 5, and takes listeners in ever "
            f"more slowly as it serves more; at the largest step {top.joined:,} of {top.listeners:,} were in after "
            f"the time allowed ({top.dropped:,} still joining were given up)"
            + (
                f"; the machine's TCP counters over the icecast part: {out.icecast.overflows:,} connections dropped "
                "by full accept queues (`ListenOverflows`, machine-wide)"
                if out.icecast.overflows is not None
                else ""
            )
        )
    return notes


def write_figures(figures: dict[str, Any]) -> None:
    data = {
        "measured_on": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
        "machine": machine_short(),
        **figures,
        "podium_commit": harness.revision(),
        "command": harness.command_line(),
    }
    FIGURES.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    print(f"[bench] wrote {FIGURES}")


def machine_short() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{len(os.sched_getaffinity(0))} cores, {cpu}"


def plot(out: Outcome, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        say("matplotlib is not installed: no plot")
        return False
    panels = int(out.origin is not None) + int(bool(out.rounds) and out.icecast is not None)
    if not panels:
        return False
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 3.4), squeeze=False)
    ax_list = list(axes[0])
    if out.origin is not None:
        o = out.origin
        ax = ax_list.pop(0)
        first = int(o.phases[0].start) - 3
        last = int(o.phases[-1].end) + 1
        seconds = list(range(first, last))
        listener = Counter[int]()
        for (_, _, _, second), n in o.answers.items():
            listener[second] += n
        ax.plot([s - first for s in seconds], [max(listener[s], 0.5) for s in seconds], label="listeners' requests")
        origin = [sum(o.origin_series.get(s, Counter()).values()) for s in seconds]
        ax.plot([s - first for s in seconds], [max(v, 0.5) for v in origin], label="requests at Podium (origin)")
        for phase in o.phases:
            ax.axvspan(phase.start - first, phase.end - first, alpha=0.12, color="grey")
            ax.text(phase.start - first + 0.5, 2e5, f"{phase.name}: {phase.listeners:,}", fontsize=8)
        ax.set_yscale("log")
        ax.set_ylim(0.5, 6e5)
        ax.set_xlabel("seconds into part 1")
        ax.set_ylabel("requests per second")
        ax.set_title("Through nginx, and at the origin", fontsize=10)
        ax.legend(fontsize=8, loc="center right")
    if out.rounds and out.icecast is not None:
        best = icecast_figure(out.icecast)
        ax = ax_list.pop(0)
        names = ["Podium edge\n(nginx, LL-HLS)", "icecast2"]
        values = [median_round(out.rounds).listeners_per_core, best.listeners_per_core if best else 0.0]
        ax.bar(names, values, color=["tab:blue", "tab:orange"])
        for x, v in enumerate(values):
            ax.text(x, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=9)
        ax.set_ylabel(f"listeners per core at {AUDIO_KBPS} kbit/s")
        ax.set_title("One core of the edge", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    if path.stat().st_size > 100_000:
        path.unlink()
        say("the plot came out over 100 KB: not kept")
        return False
    return True


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        return worker_main(sys.argv[2])
    if len(sys.argv) == 3 and sys.argv[1] == "--icecast-listeners":
        return icecast_listeners_main(sys.argv[2])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run, under a minute; writes nothing")
    parser.add_argument("--listeners", type=int, help="listeners in phase B (default 10,000, quick 1,000)")
    parser.add_argument("--base-listeners", type=int, default=100, help="listeners in phase A (100)")
    parser.add_argument("--window-a", type=float, help="seconds measured with the base listeners, rounded to whole "
                        "parts (20.48, quick 5.12)")  # fmt: skip
    parser.add_argument("--window-b", type=float, help="seconds measured with all listeners, rounded to whole parts "
                        "(30.72, quick 6.14)")  # fmt: skip
    parser.add_argument("--ramp", type=float, help="seconds over which phase B's listeners join (10, quick 2)")
    parser.add_argument("--settle", type=float, help="seconds between the ramp and phase B's window (5, quick 1)")
    parser.add_argument("--warmup", type=float, help="seconds before phase A's window (3, quick 1)")
    parser.add_argument("--workers", type=int, default=1, help="processes for phase B's other listeners (1)")
    parser.add_argument("--wrk-seconds", type=int, help="seconds per wrk round (10, quick 3)")
    parser.add_argument("--wrk-rounds", type=int, help="wrk rounds (3, quick 1)")
    parser.add_argument("--wrk-warmup", type=int, help="seconds of wrk before the rounds (2, quick 1)")
    parser.add_argument("--wrk-connections", type=int, default=100, help="wrk's connections (100)")
    parser.add_argument("--icecast-steps", help="icecast listeners per step, comma-separated; the steps stop at the "
                        "first one icecast does not serve in real time (4000,10000,16000; quick 1000)")  # fmt: skip
    parser.add_argument("--icecast-window", type=int, help="seconds measured per icecast step (8, quick 3)")
    parser.add_argument(
        "--icecast-settle", type=float, help="seconds between a step's joins and its window (2, quick 1)"
    )
    parser.add_argument("--connect-rate", type=float, default=400.0, help="icecast listeners joining per s (400); a "
                        "step's joins stop after its listeners ÷ this + 5 s")  # fmt: skip
    parser.add_argument("--no-origin", action="store_true", help="skip part 1 (origin requests)")
    parser.add_argument("--no-capacity", action="store_true", help="skip part 2's wrk rounds")
    parser.add_argument("--no-icecast", action="store_true", help="skip the icecast2 peer")
    parser.add_argument("--no-plot", action="store_true", help="no edge.png")
    parser.add_argument("--no-write", action="store_true", help="print the results; leave RESULTS.md and "
                        "figures.json alone")  # fmt: skip
    args = parser.parse_args()
    quick = args.quick

    def pick(value: Any, full: Any, short: Any) -> Any:
        return value if value is not None else (short if quick else full)

    args.listeners = pick(args.listeners, 10_000, 1_000)
    args.window_a = whole_parts(pick(args.window_a, 40 * PART_S, 10 * PART_S))
    args.window_b = whole_parts(pick(args.window_b, 60 * PART_S, 12 * PART_S))
    args.ramp = pick(args.ramp, 10.0, 2.0)
    args.settle = pick(args.settle, 5.0, 1.0)
    args.warmup = pick(args.warmup, 3.0, 1.0)
    args.wrk_seconds = pick(args.wrk_seconds, 10, 3)
    args.wrk_rounds = pick(args.wrk_rounds, 3, 1)
    args.wrk_warmup = pick(args.wrk_warmup, 2, 1)
    args.icecast_window = pick(args.icecast_window, 8, 3)
    args.icecast_settle = pick(args.icecast_settle, 2.0, 1.0)
    steps = pick(args.icecast_steps, "4000,10000,16000", "1000")
    try:
        args.icecast_steps = [int(s) for s in steps.split(",") if s.strip()]
    except ValueError:
        parser.error("--icecast-steps: whole numbers, comma-separated")
    if not 1 <= args.base_listeners <= args.listeners <= 30_000:
        parser.error("keep it bounded: 1 ≤ --base-listeners ≤ --listeners ≤ 30,000")
    if max(args.window_a, args.window_b, args.wrk_seconds, args.icecast_window) > 300 or args.ramp > 120:
        parser.error("keep it bounded: windows and wrk rounds ≤ 300 s, --ramp ≤ 120 s")
    if not 1 <= args.workers <= 8 or not 1 <= args.wrk_rounds <= 10 or not 1 <= args.wrk_connections <= 5000:
        parser.error("keep it bounded: 1 ≤ --workers ≤ 8, 1 ≤ --wrk-rounds ≤ 10, 1 ≤ --wrk-connections ≤ 5,000")
    if not args.icecast_steps or min(args.icecast_steps) < 1 or max(args.icecast_steps) > 60_000:
        parser.error("keep it bounded: icecast steps between 1 and 60,000 listeners")
    if not 10 <= args.connect_rate <= 5000:
        parser.error("keep it bounded: 10 ≤ --connect-rate ≤ 5,000")
    tools = [NGINX, WRK] + ([] if args.no_icecast else [ICECAST, FFMPEG])
    for tool in tools:
        if shutil.which(tool) is None and not os.path.exists(tool):
            parser.error(f"{tool} is not installed")
    fd_limit = harness.raise_fd_limit()
    per_process = max(args.base_listeners, -(-(args.listeners - args.base_listeners) // args.workers))
    if per_process + FD_MARGIN > fd_limit:
        parser.error(f"{per_process:,} listeners in one process need more than {fd_limit:,} open files: more --workers")
    if not args.no_icecast and max(args.icecast_steps) + 1024 > fd_limit and os.geteuid() != 0:
        parser.error(f"{max(args.icecast_steps):,} icecast listeners need more than {fd_limit:,} open files")
    check_layout()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        out = runner.run(measure(args))
    write = not args.no_write and not quick
    plot_written = write and not args.no_plot and plot(out, PLOT)
    text, figures = report(out, args, plot_written)
    print(text)
    if write:
        harness.write_section("edge", text)
        wanted = ("listeners_per_edge_core", "origin_requests_per_s_per_space", "icecast_listeners_per_core")
        if args.listeners == 10_000 and args.base_listeners == 100 and all(k in figures for k in wanted):
            write_figures(figures)
        else:
            say(f"not all figures measured at 100 and 10,000 listeners: {FIGURES.name} left alone")
    else:
        say("a quick or --no-write run: RESULTS.md and figures.json left alone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
