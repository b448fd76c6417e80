"""Flash crowd (issue 6): 10,000 listeners joining in 10 s through nginx in front of Podium, with a flood of junk.

`podium serve` (join rate and burst raised so that 10,000 fit in about 10 s) sits behind nginx running the
shipped `deploy/nginx/podium.conf` (upstream, listen address, cache path and the include of the link key
rewritten, as tests/test_nginx.py does). Per phase, a space is scheduled to start a few seconds into the crowd:
its pre-show (hold audio) is open and its host connected backstage over WHIP before the first listener comes.

Each listener comes from its own loopback address (127.1.x.y), as a crowd comes from many, and does what the
listener page does (as `podium rehearse` does): the space's state, the join call (in line with its ticket
when told to wait, solving the puzzle when asked), the multivariant and the media playlist, the init section
and the newest part. Time to first audio: from its first request to the last byte of that part, which is
pre-show or stage audio (told apart by the stream's segment records). Then it follows the stream with
blocking playlist reloads for two parts; one listener in ten goes on following until after the start, and
its arrivals of the first stage parts give the on-time start (as tests/test_on_time_start.py measures it).

Alongside, wrk sends junk to nginx from 127.0.0.1, paced with wrk's `delay()`: forged join tickets and
listener passes, random paths, random HLS names and cache-busting queries, forged WHIP tokens. nginx's
access log (every request, with `$upstream_addr`) tells what nginx answered itself and what reached Podium;
the host's board gives Podium's own counts (served and shed per class, refused by signature, database
statements); `ss` gives the connections waiting in Podium's accept queue every second.

Phases, one after the other: the crowd with the flood; the same crowd without it (a new space), to tell the
two costs apart; Podium alone answering random paths from wrk (its capacity for junk); and the peer: the same
crowd and flood against nginx serving a snapshot of the same objects as static files (the join answered by
nginx with a fixed 200), the floor that this machine and these load generators give when nothing dynamic is
involved.

Listeners are asyncio tasks on uvloop in worker processes (subprocesses of this script), each with its own
keep-alive connection, through a small HTTP/1.1 client on httptools. Everything shares 2 CPUs: the CPU and
the run-queue wait of every process are sampled every second and the lateness of every listener's start is
reported, so the figures say whether the load generators kept their schedule and who waited for a CPU.

Usage: python bench/flash_crowd.py [--quick] [--listeners N] [--ramp S] [--flood N] [--no-crowd-alone] [--no-peer]
       [--no-write] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import harness
import httpx
import uvloop
from http_client import LeanClient
from listener_client import MAX_JOIN_WAIT_S, PART_URI, REQUEST_TIMEOUT_S, crowd_times, run_crowd
from nginx_tier import (
    NGINX,
    AccessLog,
    Nginx,
    nginx_main_conf,
    nginx_version,
    start_cache_tier,
    start_nginx,
    upstream_keepalive,
)

from podium.settings import Settings

PLOT = harness.BENCH_DIR / "flash-crowd.png"
WORKER_TAG = "FLASH-CROWD-WORKER "
GOAL_P50_S, GOAL_P99_S = 1.0, 3.0
JUNK_ADDRESS = "127.0.0.1"  # wrk cannot choose its source address
CONTROL_ADDRESS = "127.0.0.3"  # the benchmark's own checks through nginx
FD_MARGIN = 256
# nginx's listen backlog here (its default on Linux is 511): wrk opens its 1,000 connections at once, and a full accept
# queue at the edge would drop listeners' SYNs, which is this machine's trouble, not what the benchmark is about.
EDGE_BACKLOG = 4096
PART_NAME = re.compile(r"^[ps](\d+)(?:-(\d+))?\.m4s$")
# Every request nginx answered, with `$upstream_addr` (empty when nginx answered it itself).
CROWD_LOG = AccessLog(
    "access.log",
    "crowd",
    "$msec|$remote_addr|$request_method|$request_uri|$status|$upstream_addr|$upstream_status|$request_time",
    "buffer=256k flush=1s",
)


def worker_main(config_json: str) -> int:
    cfg = json.loads(config_json)
    harness.raise_fd_limit()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(run_crowd(cfg))
    print(WORKER_TAG + json.dumps(result), flush=True)
    return 0


# -- the edges: the shipped config in front of Podium, and the static peer ---------------------


def start_crowd_tier(origin_port: int, data_dir: Path, prefix: Path, workers: int, connections: int) -> Nginx:
    """nginx with the shipped site config in front of Podium, logging every request."""
    # A connection per listener and per wrk connection, plus nginx's connections to Podium (one per request
    # in flight: the flood's can be many); each may also hold a cache file open.
    return start_cache_tier(origin_port, data_dir, prefix, 2 * connections, CROWD_LOG, workers, EDGE_BACKLOG)


def start_static_peer(snapshot: Path, space_id: str, join_answer: str, prefix: Path, workers: int, conn: int) -> Nginx:
    """nginx serving the snapshot as files: the state, the join (a fixed 200, behind the same per-address
    limit as the shipped config), the playlists, init and parts; anything else 404, from nginx itself."""
    port = harness.free_port()
    answer = join_answer.replace("\\", "\\\\").replace("'", "\\'")
    site = f"""    types {{ application/vnd.apple.mpegurl m3u8; video/iso.segment m4s; audio/mp4 mp4; }}
    limit_req_zone $binary_remote_addr zone=peer_joins:10m rate=2r/s;
    server {{
        listen {harness.HOST}:{port} backlog={EDGE_BACKLOG};
        client_max_body_size 64k;
        location = /api/spaces/{space_id} {{
            default_type application/json;
            add_header Cache-Control "public, max-age=1";
            alias {snapshot}/state.json;
        }}
        # `return` would answer before limit_req runs: a POST to a file is 405 after the limit, turned into the
        # answer here. Limited as in the shipped config: 429 with Retry-After 5.
        location = /api/spaces/{space_id}/join {{
            limit_req zone=peer_joins burst=20 nodelay;
            limit_req_status 429;
            error_page 429 = @join_limited;
            error_page 405 = @joined;
            alias {snapshot}/state.json;
        }}
        location @joined {{
            default_type application/json;
            return 200 '{answer}';
        }}
        location @join_limited {{
            default_type application/json;
            add_header Retry-After 5 always;
            return 429 '{{"error": "too many joins from your network; try again in 5 s"}}';
        }}
        location /hls/{space_id}/ {{
            alias {snapshot}/hls/;
        }}
        location / {{
            return 404;
        }}
    }}
"""
    conf = nginx_main_conf(prefix, workers, 2 * conn, CROWD_LOG.lines(prefix) + site)
    return start_nginx(prefix, port, conf, access_log=prefix / CROWD_LOG.file)


# -- the flood ------------------------------------------------------------------------------------

# wrk's Lua (LuaJIT: Lua 5.1). Kinds by request number mod 10: 0-2 forged tickets, 3-4 forged passes, 5-7 random
# paths, 8 HLS junk (random part names, and the playlist with a random query: a cache buster), 9 forged WHIP.
FLOOD_LUA = r"""
local space, delay_ms, counter = "", 100, 0
local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local hexd = "0123456789abcdef"
local threads, count = {}, 0
local function rand(set, n)
  local t = {}
  for i = 1, n do local k = math.random(1, #set); t[i] = set:sub(k, k) end
  return table.concat(t)
end
function setup(thread)
  count = count + 1
  thread:set("thread_id", count)
  table.insert(threads, thread)
end
function init(args)
  space, delay_ms = args[1], tonumber(args[2])
  math.randomseed(tonumber(args[3]) + 7919 * (thread_id or 0) + os.time())
end
function delay()
  return math.random(math.floor(delay_ms / 2), math.floor(delay_ms * 3 / 2))
end
function request()
  counter = counter + 1
  local k = counter % 10
  local json = {["Content-Type"] = "application/json"}
  local join = "/api/spaces/" .. space .. "/join"
  if k <= 2 then
    local ticket = "eyJzIjoi" .. rand(chars, 40) .. "." .. rand(chars, 6) .. "." .. rand(chars, 27)
    return wrk.format("POST", join, json, '{"client_id":"' .. rand(chars, 16) .. '","ticket":"' .. ticket .. '"}')
  elseif k <= 4 then
    local pass = "eyJzIjoi" .. rand(chars, 50) .. "." .. rand(chars, 6) .. "." .. rand(chars, 27)
    return wrk.format("POST", join, json, '{"client_id":"' .. rand(chars, 16) .. '","pass":"' .. pass .. '"}')
  elseif k <= 7 then
    return wrk.format("GET", "/" .. rand(hexd, 12) .. "/" .. rand(hexd, 8))
  elseif k == 8 then
    if counter % 20 < 10 then
      return wrk.format("GET", "/hls/" .. space .. "/p" .. math.random(1, 99999) .. "-" .. math.random(0, 9) .. ".m4s")
    end
    return wrk.format("GET", "/hls/" .. space .. "/live.m3u8?" .. rand(hexd, 8) .. "=1")
  end
  local sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
  return wrk.format("POST", "/whip/" .. space,
    {["Content-Type"] = "application/sdp", ["Authorization"] = "Bearer m." .. rand(chars, 48)}, sdp)
end
"""


@dataclass
class Flood:
    proc: subprocess.Popen[bytes]
    out: Path
    rate_per_s: float
    connections: int
    delay_ms: float
    command: list[str]


def start_flood(prefix: Path, port: int, space_id: str, total: int, seconds: float, connections: int) -> Flood:
    """wrk from 127.0.0.1 against the edge, paced: each connection waits `delay` (uniform 0.5-1.5 x the mean)
    after each answer, so the flood comes at `total / seconds` requests/s while answers are fast."""
    script = prefix / "flood.lua"
    script.write_text(FLOOD_LUA)
    rate = total / seconds
    delay_ms = max(1.0, connections * 1000 / rate)
    command = [
        "wrk", "-t", "1", "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "--timeout", "10s",
        "-s", str(script), f"http://{harness.HOST}:{port}", "--", space_id, f"{delay_ms:.0f}", "1",
    ]  # fmt: skip
    out = prefix / "wrk.out"
    with out.open("wb") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    return Flood(proc, out, rate, connections, delay_ms, command)


def wrk_command(command: list[str]) -> str:
    """wrk's command line as run, with the temporary paths and ports named instead."""
    shown = [Path(part).name if part.endswith(".lua") else part for part in command]
    shown = ["EDGE" if part.startswith("http://") else part for part in shown]
    return " ".join([*shown[:-3], "SPACE_ID", "DELAY_MS", "SEED"])


def wrk_summary(text: str) -> dict[str, Any]:
    found = re.search(r"(\d+) requests in ([\d.]+)(m?s)", text)
    got: dict[str, Any] = {"raw": text.strip()}
    if found:
        seconds = float(found.group(2)) * (1 if found.group(3) == "s" else 0.001)
        got |= {"requests": int(found.group(1)), "seconds": seconds}
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if errors:
        got["socket_errors"] = dict(
            zip(("connect", "read", "write", "timeout"), map(int, errors.groups()), strict=True)
        )
    return got


# -- the run ---------------------------------------------------------------------------------------


# A line of nginx's log: when, remote address, method, URI, status, upstream, upstream status, $request_time.
LogRow = tuple[float, str, str, str, int, str, str, float]


@dataclass
class Phase:
    """One crowd against one edge: what the workers, nginx, wrk, the kernel and (for Podium) the board said."""

    name: str
    flood_planned: int
    start: float  # the crowd's first join is due at `start` (wall clock)
    end: float  # when the last worker was done
    records: list[dict[str, Any]]
    counts: dict[str, Counter[int]]
    arrivals: dict[int, dict[str, float]]
    lag_ms: list[float]
    flood: dict[str, Any]
    log: list[LogRow]
    cpu: list[dict[str, float]]  # per second: wall, then CPU seconds so far per process group and the machine's
    sockets: list[dict[str, float]]  # per second: Podium's accept queue, nginx's connections to Podium
    board: list[dict[str, Any]]
    notes: list[str]
    space_id: str
    # A scheduled Podium space only; the static peer has none of these.
    starts_at: float | None = None
    started_at: float | None = None
    first_stage_msn: int | None = None
    first_stage_pdt: float | None = None
    last_preshow_msn: int = -1
    board_before: dict[str, Any] | None = None
    board_after: dict[str, Any] | None = None

    @property
    def podium(self) -> bool:
        return self.starts_at is not None


def machine_busy_s() -> tuple[float, float]:
    """CPU seconds all CPUs of the machine have spent busy since boot (everything but idle and iowait), and of
    those in soft interrupts (the kernel's network work, charged to whichever process was running)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ticks = [int(x) for x in fields[:8]]
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - ticks[3] - ticks[4]) / hz, ticks[6] / hz


def accept_queues(origin_port: int, edge_port: int) -> dict[str, float]:
    """Connections waiting in Podium's and nginx's accept queues (`ss` on the two listening sockets: cheap)."""
    got: dict[str, float] = {"wall": time.time()}
    with contextlib.suppress(OSError, subprocess.SubprocessError, ValueError, IndexError):
        query = f"( sport = :{origin_port} or sport = :{edge_port} )"
        for line in subprocess.run(
            ["ss", "-Hltn", query], capture_output=True, text=True, timeout=5
        ).stdout.splitlines():
            fields = line.split()
            port = int(fields[3].rsplit(":", 1)[1])
            got["accept queue" if port == origin_port else "edge accept queue"] = int(fields[1])
    return got


def tcp_counters() -> dict[str, int]:
    """The machine's TCP counters that tell of a full accept queue: SYNs dropped, and SYNs sent again."""
    wanted = ("ListenOverflows", "TCPSynRetrans")
    with contextlib.suppress(OSError, ValueError):
        lines = [
            line.split() for line in Path("/proc/net/netstat").read_text().splitlines() if line.startswith("TcpExt:")
        ]
        names, values = lines[0][1:], lines[1][1:]
        return {name: int(value) for name, value in zip(names, values, strict=True) if name in wanted}
    return {}


def closed_to_podium(origin_port: int) -> set[str] | None:
    """nginx's connections to Podium in TIME-WAIT (nginx closes them; they stay 60 s), by their local address and
    port: once at each end of a phase, as this walks every socket of the machine."""
    try:
        out = subprocess.run(
            ["ss", "-Htn", "state", "time-wait", f"dport = :{origin_port}"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {line.split()[2] for line in out.splitlines() if len(line.split()) >= 4}


class CpuMeter:
    """CPU seconds per process group, remembered per pid (a process that has exited keeps its last figure), and
    the time their main threads waited for a CPU (`/proc/PID/schedstat`: the run queue)."""

    def __init__(self, groups: dict[str, list[int]], waits: dict[str, list[int]]) -> None:
        self.groups, self.waits = groups, waits
        self._last: dict[int, float] = {}

    def _cpu(self, pid: int) -> float:
        now = harness.cpu_seconds(pid)
        self._last[pid] = max(now, self._last.get(pid, 0.0))
        return self._last[pid]

    def sample(self) -> dict[str, float]:
        busy, softirq = machine_busy_s()
        got = {"wall": time.time(), "machine": busy, "kernel:softirq": softirq}
        got |= {k: sum(self._cpu(p) for p in v) for k, v in self.groups.items()}
        for name, pids in self.waits.items():
            waited = 0.0
            for pid in pids:
                with contextlib.suppress(OSError, ValueError, IndexError):
                    waited += int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
            got[f"wait:{name}"] = waited
        return got


async def run_phase(
    args: argparse.Namespace,
    name: str,
    edge: Nginx,
    space_id: str,
    start: float,
    follow_until: float,
    watch: dict[str, list[int]],
    flood_total: int,
    board: Any = None,
    origin_port: int | None = None,
) -> Phase:
    """The crowd (and the flood, if any) against `edge`, the crowd's first join due at `start`."""
    _, peak = crowd_times(args.listeners, args.ramp)
    deadline = start + args.ramp + MAX_JOIN_WAIT_S + 20
    workers = []
    for number in range(args.workers):
        config = {
            "number": number, "workers": args.workers, "listeners": args.listeners, "ramp": args.ramp,
            "start": start, "follow_every": args.follow_every, "port": edge.port, "space_id": space_id,
            "follow_until": follow_until, "follow_rounds": args.follow_rounds, "deadline": deadline,
        }  # fmt: skip
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(config)]
        workers.append(await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE))
    pids = {**watch, "nginx": edge.pids(), "listeners": [w.pid for w in workers], "wrk": []}
    print(
        f"[flash-crowd] {name}: {args.listeners:,} listeners in {args.workers} worker(s), joins climbing to "
        f"{peak:,.0f}/s, due from {datetime.fromtimestamp(start, UTC):%H:%M:%S}; flood {flood_total:,} junk",
        file=sys.stderr,
        flush=True,
    )
    cpu: list[dict[str, float]] = []
    sockets: list[dict[str, float]] = []
    boards: list[dict[str, Any]] = []
    meter = CpuMeter(pids, {"Podium": watch["Podium"], "nginx": edge.pids()[1:], "bench": [os.getpid()]})

    def sample_cpu() -> None:
        cpu.append(meter.sample())

    await asyncio.sleep(max(0.0, start - 1.0 - time.time()))
    closed_before = closed_to_podium(origin_port) if origin_port is not None else None
    counters_before = tcp_counters()
    sample_cpu()
    await asyncio.sleep(max(0.0, start - time.time()))
    flood = None
    if flood_total:
        flood = start_flood(edge.prefix, edge.port, space_id, flood_total, args.ramp, args.flood_connections)
        pids["wrk"] = [flood.proc.pid]
    outputs: list[Any] = []
    gather = asyncio.ensure_future(
        asyncio.gather(*(asyncio.wait_for(w.communicate(), deadline - time.time() + 30) for w in workers))
    )
    try:
        for second in range(int(deadline - time.time()) + 40):
            sample_cpu()
            if origin_port is not None:
                sockets.append(await asyncio.to_thread(accept_queues, origin_port, edge.port))
            if board is not None:
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    boards.append({"wall": time.time(), **(await board())})
            if second % 2 == 0 and boards:
                b = boards[-1]
                queue = sockets[-1].get("accept queue", 0) if sockets else 0
                print(
                    f"[flash-crowd] {name} t+{time.time() - start:3.0f} s: admitted {b['joins']['admitted']:,}, "
                    f"in line {b['joins']['waiting']:,}, pressure {b['load']['pressure']:.2f} "
                    f"(lag {b['load']['lag_ms']:.0f} ms), shedding {','.join(b['load']['shedding']) or 'nothing'}; "
                    f"Podium's accept queue {queue:.0f}",
                    file=sys.stderr,
                    flush=True,
                )
            if gather.done():
                break
            await asyncio.sleep(max(0.0, cpu[-1]["wall"] + 1.0 - time.time()))
        outputs = await gather
    finally:
        if not gather.done():
            gather.cancel()
        for worker in workers:
            if worker.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.kill()
        if flood is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                flood.proc.wait(timeout=max(5.0, start + args.ramp + 15 - time.time()))
            harness.stop_process(flood.proc, "wrk", grace_s=5)
    end = time.time()
    sample_cpu()
    if origin_port is not None and closed_before is not None:
        closed_after = closed_to_podium(origin_port)
        if closed_after is not None:
            # New TIME-WAIT entries: connections nginx opened and closed during the phase (ports may be reused
            # within 60 s only after the range of 28,000 is used up).
            sockets.append({"wall": end, "opened": len(closed_after - closed_before)})
    counters_after = tcp_counters()
    sockets.append(
        {"wall": end, **{k: counters_after[k] - v for k, v in counters_before.items() if k in counters_after}}
    )
    records: list[dict[str, Any]] = []
    counts: dict[str, Counter[int]] = defaultdict(Counter)
    arrivals: dict[int, dict[str, float]] = {}
    lag: list[float] = []
    notes: list[str] = []
    for number, (out, _err) in enumerate(outputs):
        lines = [line for line in out.decode().splitlines() if line.startswith(WORKER_TAG)]
        if not lines:
            notes.append(f"worker {number} gave no result")
            continue
        try:
            data = json.loads(lines[-1][len(WORKER_TAG) :])
        except ValueError as error:
            kept = Path(tempfile.gettempdir()) / f"flash-crowd-worker-{number}.out"
            kept.write_bytes(out)
            notes.append(f"worker {number}'s result did not parse ({error}); its output is in {kept}")
            continue
        records += data["records"]
        for key, bins in data["counts"].items():
            counts[key].update({int(s): c for s, c in bins.items()})
        arrivals |= {int(n): a for n, a in data["arrivals"].items()}
        lag += data["lag_ms"]
    await asyncio.sleep(1.5)  # nginx flushes its log buffer every second
    log = [row for row in read_log(edge.access_log) if start - 1.0 <= row[0] <= end + 1.0]
    summary = wrk_summary(flood.out.read_text(errors="replace")) | {"command": flood.command} if flood else {}
    return Phase(
        name=name,
        flood_planned=flood_total,
        start=start,
        end=end,
        records=records,
        counts=counts,
        arrivals=arrivals,
        lag_ms=lag,
        flood=summary,
        log=log,
        cpu=cpu,
        sockets=sockets,
        board=boards,
        notes=notes,
        space_id=space_id,
    )


def read_log(path: Path) -> list[LogRow]:
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        fields = line.split("|")
        if len(fields) != 8:
            continue
        with contextlib.suppress(ValueError):
            rows.append(
                (
                    float(fields[0]),
                    fields[1],
                    fields[2],
                    fields[3],
                    int(fields[4]),
                    fields[5],
                    fields[6],
                    float(fields[7]),
                )
            )
    return rows


@dataclass
class Outcome:
    phases: list[Phase]  # through nginx to Podium: with the flood, then (unless skipped) without
    peer: Phase | None
    checks: list[str]
    settings: dict[str, str]
    notes: list[str]
    probe: dict[str, float]  # Podium alone answering random paths: requests/s, CPU, seconds


PROBE_LUA = r"""
local hexd = "0123456789abcdef"
local function rand(n)
  local t = {}
  for i = 1, n do local k = math.random(1, 16); t[i] = hexd:sub(k, k) end
  return table.concat(t)
end
function init(args) math.randomseed(os.time()) end
function request() return wrk.format("GET", "/" .. rand(12) .. "/" .. rand(8)) end
"""


def probe_podium(prefix: Path, base: str, pid: int, seconds: int) -> dict[str, float]:
    """Podium alone answering random paths (the flood's commonest junk to reach it), as fast as it can: its
    capacity for junk when it has a core, for comparison with what it served in the crowd."""
    script = prefix / "probe.lua"
    script.write_text(PROBE_LUA)
    command = ["wrk", "-t", "1", "-c", "64", "-d", f"{seconds}s", "-s", str(script), base]
    before, start = harness.cpu_seconds(pid), time.time()
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    cpu = (harness.cpu_seconds(pid) - before) / max(time.time() - start, 1e-9)
    summary = wrk_summary(out)
    if "requests" not in summary:
        return {}
    return {"rate": summary["requests"] / summary["seconds"], "cpu": cpu, "seconds": summary["seconds"]}


async def podium_phase(
    args: argparse.Namespace,
    server: harness.Server,
    edge: Nginx,
    client: httpx.AsyncClient,
    name: str,
    flood_total: int,
    checks: list[str] | None,
    snapshot: Path | None,
) -> tuple[Phase, str | None]:
    """A scheduled space with its host backstage, the crowd (and flood) through nginx, the start during the
    crowd; then the host leaves and the space ends. With `snapshot`, the stream's objects are copied there
    (for the static peer) while it is live; returns a join's answer then."""
    from podium.testing.whip_client import SampleTrack, publish, tone  # aiortc: not imported by the worker processes

    # The crowd's first join is due `lead` s from now; the start falls `start_after` s into it.
    starts_at = float(math.ceil(time.time() + args.lead + args.start_after))
    crowd_start = starts_at - args.start_after
    body = {"title": f"Flash crowd, {name}", "starts_at": datetime.fromtimestamp(starts_at, UTC).isoformat()}
    created = await client.post("/api/spaces", json=body)
    if created.status_code != 201:
        raise RuntimeError(f"POST /api/spaces answered {created.status_code}: {created.text}")
    space = created.json()
    space_id = space["id"]
    auth = {"Authorization": f"Bearer {space['host_token']}"}

    async def board() -> dict[str, Any]:
        answer = await client.get(f"/api/spaces/{space_id}/board", headers=auth, timeout=5)
        result: dict[str, Any] = answer.json()
        return result

    for _ in range(100):
        if (await client.get(f"/api/spaces/{space_id}")).json().get("preshow"):
            break
        await asyncio.sleep(0.1)
    else:
        raise RuntimeError("the pre-show did not open")
    host = await publish(server.base + space["urls"]["whip"], space["host_token"], SampleTrack(tone(660)))
    join_answer = None
    try:
        await harness.wait_for_segments(client, f"{server.base}/hls/{space_id}/live.m3u8", 2)
        if checks is not None:
            checks += await check_edge(edge, space_id)
        board_before = await board()
        follow_until = max(starts_at + args.follow_after_start, crowd_start + args.ramp + 2)
        watch = {"Podium": [server.proc.pid], "bench (host, control)": [os.getpid()]}
        origin_port = int(server.base.rsplit(":", 1)[1])
        phase = await run_phase(
            args, name, edge, space_id, crowd_start, follow_until, watch, flood_total, board, origin_port
        )
        phase.board_before, phase.board_after = board_before, await board()
        view = (await client.get(f"/api/spaces/{space_id}")).json()
        phase.starts_at = starts_at
        phase.started_at = harness.parse_time(view["started_at"]) if view.get("started_at") else None
        lines = (server.data_dir / "media" / space_id / "segments.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines]
        stage = [r for r in records if not r.get("preshow")]
        phase.last_preshow_msn = max((r["msn"] for r in records if r.get("preshow")), default=-1)
        if stage:
            phase.first_stage_msn, phase.first_stage_pdt = stage[0]["msn"], harness.parse_time(stage[0]["pdt"])
        if snapshot is not None:
            join_answer = await take_snapshot(client, server.base, space_id, snapshot)
    finally:
        with contextlib.suppress(Exception):
            await host.close()
        with contextlib.suppress(httpx.HTTPError):
            await harness.end_space(client, server.base, space)
    return phase, join_answer


async def measure(args: argparse.Namespace) -> Outcome:
    notes: list[str] = []
    checks: list[str] = []
    settings = {"PODIUM_JOIN_RATE_PER_S": f"{args.join_rate:g}", "PODIUM_JOIN_BURST": str(args.join_burst)}
    # The flooded crowd varies much from run to run (see the notes): it is repeated, the others run once.
    flooded = [("with the flood" + (f", run {n + 1}" if n else ""), args.flood) for n in range(args.flood_repeats)]
    plan = flooded[:1] if args.flood else []
    if not args.flood or not args.no_crowd_alone:
        plan.append(("without the flood", 0))
    plan += flooded[1:] if args.flood else []
    with tempfile.TemporaryDirectory(prefix="podium-bench-crowd-") as tmp:
        root = Path(tmp)
        (root / "edge").mkdir()
        (root / "peer").mkdir()
        connections = args.listeners + args.flood_connections + 1024
        with harness.serve(root / "data", root / "podium.log", env=settings) as server:
            origin_port = int(server.base.rsplit(":", 1)[1])
            edge = start_crowd_tier(origin_port, server.data_dir, root / "edge", args.nginx_workers, connections)
            phases: list[Phase] = []
            join_answer = None
            try:
                async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
                    for number, (name, flood) in enumerate(plan):
                        want_snapshot = number == 0 and not args.no_peer
                        phase, answer = await podium_phase(
                            args, server, edge, client, name, flood, checks if number == 0 else None,
                            root / "snapshot" if want_snapshot else None,
                        )  # fmt: skip
                        phases.append(phase)
                        join_answer = join_answer or answer
            finally:
                harness.stop_process(edge.proc, "nginx")
                errors = edge.error_summary(4)
                if errors:
                    notes.append(f"nginx's error log (in front of Podium) has {errors[0]:,} line(s): {errors[1]}")
            probe = {}
            if args.flood:
                probe = await asyncio.to_thread(
                    probe_podium, root, server.base, server.proc.pid, 2 if args.quick else 5
                )
            peer = None
            if join_answer is not None:
                # The peer runs while Podium idles (no live space), so that the machine is as it was.
                peer_edge = start_static_peer(
                    root / "snapshot", phases[0].space_id, join_answer, root / "peer", args.nginx_workers, connections
                )
                try:
                    start = time.time() + 4.0
                    watch = {"Podium": [server.proc.pid], "bench (host, control)": [os.getpid()]}
                    follow_for = args.follow_after_start + args.start_after
                    peer = await run_phase(
                        args, "static nginx", peer_edge, phases[0].space_id, start,
                        start + max(follow_for, args.ramp + 2), watch, args.flood,
                    )  # fmt: skip
                finally:
                    harness.stop_process(peer_edge.proc, "nginx (static peer)")
        if args.keep is not None:
            keep(args.keep, root, *phases, peer)
    return Outcome(phases=phases, peer=peer, checks=checks, settings=settings, notes=notes, probe=probe)


def keep(folder: Path, root: Path, *phases: Phase | None) -> None:
    """The raw material, for a closer look: nginx's access and error logs, Podium's log, the listeners' records."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("edge/access.log", "edge/error.log", "peer/access.log", "podium.log"):
        if (root / name).exists():
            shutil.copy(root / name, folder / name.replace("/", "-"))
    for number, phase in enumerate(phases):
        if phase is not None:
            data = {"name": phase.name, "start": phase.start, "records": phase.records, "sockets": phase.sockets}
            (folder / f"records-{number}.json").write_text(json.dumps(data))


async def check_edge(edge: Nginx, space_id: str) -> list[str]:
    """Before the crowd: what the shipped config does with the listener page and its script (not fetched by
    the simulated listeners), asked twice each through nginx."""
    client = LeanClient(harness.HOST, edge.port, CONTROL_ADDRESS, REQUEST_TIMEOUT_S)
    found = []
    try:
        for path in (f"/s/{space_id}", "/static/listen.js", f"/api/spaces/{space_id}"):
            statuses = []
            for _ in range(2):
                status, headers, body = await client.request("GET", path)
                statuses.append(f"{status} {headers.get(b'x-cache-status', b'(no X-Cache-Status)').decode()}")
            found.append(f"`{path}` twice through nginx: {', '.join(statuses)}")
            if path.startswith("/s/"):
                assets = sorted(set(re.findall(rb'(?:src|href)="(/static/[^"]+)"', body)))
                found.append(
                    f"the listener page loads {len(assets)} file(s) from `/static/` ("
                    + ", ".join(f"`{a.decode()}`" for a in assets)
                    + "), which the shipped config caches at the edge (its pages location)"
                )
    finally:
        client.close()
    return found


async def take_snapshot(client: httpx.AsyncClient, base: str, space_id: str, folder: Path) -> str:
    """The objects a listener fetches, from Podium, into files for the static peer; returns a join's answer."""
    hls = folder / "hls"
    hls.mkdir(parents=True)
    (folder / "state.json").write_bytes((await client.get(f"{base}/api/spaces/{space_id}")).content)
    playlist = (await client.get(f"{base}/hls/{space_id}/live.m3u8")).content
    (hls / "live.m3u8").write_bytes(playlist)
    for name in ("index.m3u8", "init.mp4", *(p.decode() for p in PART_URI.findall(playlist))):
        (hls / name).write_bytes((await client.get(f"{base}/hls/{space_id}/{name}")).content)
    joined = await client.post(f"{base}/api/spaces/{space_id}/join", json={"client_id": "static-peer-0001"})
    return joined.text


# -- analysis --------------------------------------------------------------------------------------


def _pct(values: list[float], p: float) -> float | None:
    return harness.percentile(values, p) if values else None


def _s(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def part_msn(name: str) -> int | None:
    found = PART_NAME.match(name)
    return int(found.group(1)) if found else None


@dataclass
class Figures:
    started: int
    heard: int
    failures: Counter[str]
    ttfa: list[float]
    join_s: list[float]
    waited: int
    puzzles: int
    shed: int
    max_position: int
    first_kind: Counter[str]
    lateness: list[float]
    lag_p99: float | None
    lag_max: float | None
    listener_requests: int
    listener_by_cache: Counter[str]
    listener_errors: Counter[str]
    junk_edge: Counter[str]  # kind -> answered by nginx
    junk_origin: Counter[str]  # kind -> reached Podium
    junk_status: dict[str, Counter[str]]  # kind -> "nginx 429" / "Podium 404" counts
    junk_rate: float
    origin_legit: Counter[str]  # kind of listener request -> requests that reached Podium
    origin_per_s: list[int]  # every request nginx sent to Podium, per second of the window
    window: tuple[float, float]
    cpu: dict[str, float]  # process group -> mean share of one CPU over the window
    cpu_peak: dict[str, float]
    missed: int  # listeners whose playlist named a part the origin no longer had (404)
    missed_recovered: int  # of them, those who heard audio after reloading the playlist
    missed_cache: Counter[str]  # X-Cache-Status of the playlists that named a missing part
    origin_times: list[float]  # nginx's $request_time of every request that went to Podium
    stream_times: list[tuple[float, float]]  # (when, $request_time) of the listeners' stream requests to Podium
    accept_queue_max: float | None
    edge_queue_max: float | None
    listen_overflows: int | None  # the machine's, during the phase: SYNs dropped by a full accept queue
    syn_retransmits: int | None
    upstream_opened: float | None


def legit_kind(uri: str, space_id: str) -> str:
    if uri.startswith(f"/api/spaces/{space_id}/join"):
        return "join"
    if uri.startswith(f"/api/spaces/{space_id}"):
        return "state"
    if "live.m3u8?" in uri:
        return "blocking reload"
    if uri.endswith(".m3u8"):
        return "playlist"
    if uri.startswith(f"/hls/{space_id}/"):
        return "init, parts"
    return "other"


def junk_kind(uri: str, space_id: str) -> str:
    if uri.endswith(f"/api/spaces/{space_id}/join"):
        return "forged join"  # ticket or pass: the log does not show the body
    if uri.startswith(f"/hls/{space_id}/"):
        return "HLS junk"
    if uri.startswith("/whip/"):
        return "forged WHIP"
    return "random path"


def figures(phase: Phase) -> Figures:
    records = phase.records
    heard = [r for r in records if "heard" in r]
    first_kind: Counter[str] = Counter()
    for r in heard:
        msn = part_msn(r["first"])
        if not phase.podium:
            first_kind["stage (snapshot)"] += 1
        elif msn is not None and msn <= phase.last_preshow_msn:
            first_kind["pre-show"] += 1
        else:
            first_kind["stage"] += 1
    listener_by_cache: Counter[str] = Counter()
    listener_errors: Counter[str] = Counter()
    total = 0
    for key, bins in phase.counts.items():
        kind, status, cache = key.split("|")
        n = sum(bins.values())
        total += n
        if status == "200":
            listener_by_cache[cache if cache != "-" else "no cache status"] += n
        else:
            listener_errors[f"{kind} {status}"] += n
    junk_edge: Counter[str] = Counter()
    junk_origin: Counter[str] = Counter()
    junk_status: dict[str, Counter[str]] = defaultdict(Counter)
    origin_legit: Counter[str] = Counter()
    last = max([r.get("heard", r["began"]) for r in records] + [phase.start + 1])
    window = (phase.start, last)
    origin_per_s = [0] * (int(last - phase.start) + 1)
    origin_times: list[float] = []
    stream_times: list[tuple[float, float]] = []
    for when, remote, _method, uri, status, upstream, up_status, took in phase.log:
        reached = upstream not in ("", "-")
        if reached:
            origin_times.append(took)
        attempts = upstream.count(",") + 1 if reached else 0
        if reached and phase.start <= when < last:
            origin_per_s[int(when - phase.start)] += attempts
        if remote == JUNK_ADDRESS:
            kind = junk_kind(uri, phase.space_id)
            if reached:
                junk_origin[kind] += 1
                # No status from Podium: wrk hung up first (nginx logs 499), at the end of its run.
                junk_status[kind][f"Podium {up_status}" if up_status != "-" else f"Podium none, nginx {status}"] += 1
            else:
                junk_edge[kind] += 1
                junk_status[kind][f"nginx {status}"] += 1
        elif remote.startswith("127.1.") and reached:
            kind = legit_kind(uri, phase.space_id)
            origin_legit[kind] += attempts
            if kind in ("blocking reload", "init, parts", "playlist"):
                stream_times.append((when, took))
    cpu, peak = cpu_shares(phase, window)
    lag = sorted(phase.lag_ms)
    queue = [s["accept queue"] for s in phase.sockets if "accept queue" in s]
    edge_queue = [s["edge accept queue"] for s in phase.sockets if "edge accept queue" in s]
    opened = [s["opened"] for s in phase.sockets if "opened" in s]
    counters = next((s for s in phase.sockets if "ListenOverflows" in s), {})
    return Figures(
        started=len(records),
        heard=len(heard),
        failures=Counter(r["outcome"] for r in records if "heard" not in r),
        ttfa=[r["heard"] - r["began"] for r in heard],
        join_s=[r["admitted"] - r["began"] for r in heard],
        waited=sum(1 for r in records if r.get("waited")),
        puzzles=sum(r.get("puzzles", 0) for r in records),
        shed=sum(r.get("shed", 0) for r in records),
        max_position=max([r.get("position", 0) for r in records] or [0]),
        first_kind=first_kind,
        lateness=[r["began"] - r["due"] for r in records],
        lag_p99=_pct(lag, 99),
        lag_max=lag[-1] if lag else None,
        listener_requests=total,
        listener_by_cache=listener_by_cache,
        listener_errors=listener_errors,
        junk_edge=junk_edge,
        junk_origin=junk_origin,
        junk_status=junk_status,
        junk_rate=phase.flood.get("requests", 0) / max(phase.flood.get("seconds", 1.0), 1e-9),
        origin_legit=origin_legit,
        origin_per_s=origin_per_s,
        window=window,
        cpu=cpu,
        cpu_peak=peak,
        missed=sum(1 for r in records if r.get("missed")),
        missed_recovered=sum(1 for r in records if r.get("missed") and "heard" in r),
        missed_cache=Counter(cache for r in records for _part, cache in r.get("missed", [])),
        origin_times=origin_times,
        stream_times=stream_times,
        accept_queue_max=max(queue) if queue else None,
        edge_queue_max=max(edge_queue) if edge_queue else None,
        listen_overflows=counters.get("ListenOverflows"),
        syn_retransmits=counters.get("TCPSynRetrans"),
        # Connections nginx closed to Podium during the crowd stay in TIME-WAIT for 60 s: about as many as it opened.
        upstream_opened=opened[0] if opened else None,
    )


def cpu_shares(phase: Phase, window: tuple[float, float]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean share of one CPU per process group over `window`, and the busiest second's; `others` is the machine's
    busy time that none of the benchmark's processes used."""
    inside = [c for c in phase.cpu if window[0] - 1.5 <= c["wall"] <= window[1] + 1.0]
    if len(inside) < 2:
        return {}, {}
    samples = []
    for c in inside:
        ours = sum(v for k, v in c.items() if k not in ("wall", "machine") and ":" not in k)
        samples.append({**c, "others": c["machine"] - ours})  # clock ticks: a few % either way at low load
    keys = [k for k in samples[0] if k != "wall"]
    wall = samples[-1]["wall"] - samples[0]["wall"]
    mean = {k: (samples[-1][k] - samples[0][k]) / wall for k in keys}
    # Busiest second: over sampling intervals of at least half a second (a shorter one magnifies a tick).
    spans = [(a, b) for a, b in itertools.pairwise(samples) if b["wall"] - a["wall"] >= 0.5]
    peak = {k: max(((b[k] - a[k]) / (b["wall"] - a["wall"]) for a, b in spans), default=0.0) for k in keys}
    return mean, peak


def around_start(phase: Phase, f: Figures) -> list[float]:
    """$request_time of the listeners' stream requests (playlists, parts) that nginx sent to Podium and that ended
    within 6 s after `starts_at`: the ones that bring the first stage parts to the followers."""
    if phase.starts_at is None:
        return []
    return [took for when, took in f.stream_times if phase.starts_at <= when <= phase.starts_at + 6.0]


def on_time(phase: Phase) -> dict[str, Any]:
    """For the listeners who heard the pre-show and followed the stream through the start: when the first stage
    part reached them, from `starts_at`."""
    first, starts_at = phase.first_stage_msn, phase.starts_at
    if first is None or starts_at is None:
        return {}
    name = f"p{first}-0.m4s"
    exact: list[float] = []
    any_stage: list[float] = []
    eligible = 0
    by_n = {r["n"]: r for r in phase.records}
    for n, got in phase.arrivals.items():
        if by_n.get(n, {}).get("heard", math.inf) >= starts_at:
            continue  # first audio after the start: it was not waiting in the pre-show
        eligible += 1
        if name in got:
            exact.append(got[name] - starts_at)
        stage = [t for part, t in got.items() if (part_msn(part) or -1) >= first]
        if stage:
            any_stage.append(min(stage) - starts_at)
    return {"eligible": eligible, "exact": exact, "any": any_stage, "name": name}


# -- report --------------------------------------------------------------------------------------

# `podium serve`'s listen backlog (PODIUM_LISTEN_BACKLOG), as the kernel caps it.
PODIUM_BACKLOG = min(Settings().listen_backlog, int(Path("/proc/sys/net/core/somaxconn").read_text()))


def _queue(value: float | None, backlog: int = PODIUM_BACKLOG) -> str:
    """An accept queue's longest length; Linux lets one more in than the backlog before it drops SYNs."""
    if value is None:
        return "-"
    return f"{value:,.0f}" + (" (full)" if value >= backlog else "")


CPU_KEYS = ("Podium", "nginx", "listeners", "wrk", "bench (host, control)", "others")


def _label(phase: Phase) -> str:
    return f"nginx → Podium, {phase.name}" if phase.podium else "static nginx (peer), with the flood"


def report(outcome: Outcome, args: argparse.Namespace, plot_written: bool) -> str:
    every = [*outcome.phases, *([outcome.peer] if outcome.peer else [])]
    figs = {id(ph): figures(ph) for ph in every}
    repeats = [ph for ph in outcome.phases if ph.flood]
    calm = [ph for ph in outcome.phases if not ph.flood]
    # The main table: the first crowd with the flood, the crowd without, the peer; the repeats get their own.
    columns = [*repeats[:1], *calm, *([outcome.peer] if outcome.peer else [])]
    peak = crowd_times(args.listeners, args.ramp)[1]
    lines = [f"## Flash crowd: {args.listeners:,} listeners joining in {args.ramp:g} s through nginx, with a flood", ""]
    lines += harness.header_lines()
    lines += [
        f"- Podium: one `podium serve` process, {', '.join(f'`{k}={v}`' for k, v in outcome.settings.items())} "
        "(the rest default: joins per address 120/minute, under-attack surge 5 x the rate, pre-show lead 900 s); "
        "per phase a space scheduled to start during the crowd, its host connected backstage over WHIP (aiortc, a "
        "660 Hz tone) before the first listener",
        f"- Edge: nginx {nginx_version()}, {args.nginx_workers} worker(s), the shipped "
        "`deploy/nginx/podium.conf` (upstream, `listen`, cache path and the link-key include rewritten; `listen` "
        f"with `backlog={EDGE_BACKLOG}` instead of nginx's 511, as wrk opens its 1,000 connections at once and the "
        "edge's accept queue is not what is measured here), logging every request with `$upstream_addr`",
        f"- Listeners: {args.listeners:,} per phase, each from its own address (127.1.x.y), in {args.workers} "
        "worker process(es) (asyncio on uvloop, an httptools client, a keep-alive connection each); joins due "
        f"along `podium rehearse`'s flash-crowd curve (the rate climbs to {peak:,.0f}/s over the first third of "
        f"the joins, then holds): all due within {args.ramp:g} s; the start (`starts_at`) {args.start_after:g} s "
        "after the first join",
        f"- Flood: wrk, 1 thread, {args.flood_connections:,} connections from {JUNK_ADDRESS}, each waiting "
        f"0.5-1.5 x {args.flood_connections * args.ramp * 1000 / max(args.flood, 1):.0f} ms after an answer: "
        f"{args.flood / args.ramp:,.0f} requests/s for {args.ramp:g} s ({args.flood:,} requests) if answers are "
        "instant, fewer when they are slow; 30 % forged join tickets, 20 % forged listener passes, 30 % random "
        "paths, 10 % HLS junk (random part names; the playlist with a random query), 10 % forged WHIP tokens",
        "",
        "A listener does what the listener page does: the space's state, the join call (in line with its ticket "
        "when answered 202, the puzzle if asked, again after Retry-After on 429/503), the multivariant and the "
        "media playlist, `init.mp4` and the newest part the playlist lists. **Time to first audio** is from its "
        "first request (the state, then the join) to the last byte of that part (pre-show or stage audio, told "
        "apart by the segment records). Then it follows the stream with blocking playlist reloads "
        "(`_HLS_msn`/`_HLS_part` from the "
        f"preload hint) and their new parts, {args.follow_rounds} reloads; one listener in {args.follow_every} "
        f"follows on until {args.follow_after_start:g} s after the start: those that heard the pre-show before it "
        "give the **on-time start**, when the first stage part reached them minus `starts_at`. Phases, one after "
        "the other, each Podium phase on a new space: the crowd with the flood, the same crowd without it"
        + (f", the crowd with the flood {args.flood_repeats - 1} more time(s)" if args.flood_repeats > 1 else "")
        + "; Podium alone answering random paths from wrk (its capacity for junk); and the peer: the same crowd "
        "and flood against nginx serving a snapshot of the same objects as files (the join answered by nginx with "
        "a fixed 200 behind the same per-address limit). "
        f"**Goals: 100 % of legitimate joins served; time to first audio p50 ≤ {GOAL_P50_S:g} s, p99 ≤ "
        f"{GOAL_P99_S:g} s; the space starts on the second.**",
        "",
        "| | " + " | ".join(_label(ph) for ph in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]

    def row(title: str, fn: Any) -> str:
        return f"| {title} | " + " | ".join(fn(ph, figs[id(ph)]) for ph in columns) + " |"

    def goal_cell(value: float | None, goal: float, text: str) -> str:
        if value is None:
            return "n/a"
        return f"**{text}**" + ("" if value <= goal else " (goal **not met**)")

    lines += [
        row(
            "heard audio",
            lambda ph, f: f"**{f.heard:,} of {f.started:,}**" + ("" if f.heard == f.started else " (goal **not met**)"),
        ),
        row("first audio p50 (s)", lambda ph, f: goal_cell(_pct(f.ttfa, 50), GOAL_P50_S, _s(_pct(f.ttfa, 50), 3))),
        row("p95 (s)", lambda ph, f: _s(_pct(f.ttfa, 95), 3)),
        row("p99 (s)", lambda ph, f: goal_cell(_pct(f.ttfa, 99), GOAL_P99_S, _s(_pct(f.ttfa, 99), 3))),
        row("max (s)", lambda ph, f: _s(_pct(f.ttfa, 100), 3)),
        row(
            "of which state + join, p50 / p99 (s)",
            lambda ph, f: f"{_s(_pct(f.join_s, 50), 3)} / {_s(_pct(f.join_s, 99), 3)}",
        ),
        row("first audio was", lambda ph, f: ", ".join(f"{k} {n:,}" for k, n in sorted(f.first_kind.items()))),
        row("told to wait (202); longest line", lambda ph, f: f"{f.waited:,}; {f.max_position:,}"),
        row("puzzles; 429/503 to joins", lambda ph, f: f"{f.puzzles:,}; {f.shed:,}"),
        row(
            "playlist named a part no longer there (404); heard audio after reloading it",
            lambda ph, f: f"{f.missed:,}; {f.missed_recovered:,}",
        ),
    ]

    def start_cell(ph: Phase, _f: Figures) -> str:
        ot = on_time(ph)
        if not ot:
            return "-"
        got = ot["any"]
        return f"**{_s(_pct(got, 50))} / {_s(_pct(got, 99))} / {_s(_pct(got, 100))}** ({len(got)} of {ot['eligible']})"

    def stamp_cell(ph: Phase, _f: Figures) -> str:
        if ph.started_at is None or ph.starts_at is None or ph.first_stage_pdt is None:
            return "-"
        return f"{ph.started_at - ph.starts_at:+.3f}; {ph.first_stage_pdt - ph.starts_at:+.3f}"

    lines += [
        row("on-time start: first stage part at the followers, p50 / p99 / max (s after `starts_at`)", start_cell),
        row("`started_at` - `starts_at`; first stage segment's media time - `starts_at` (s)", stamp_cell),
    ]
    flooded = [ph for ph in columns if ph.flood]
    if flooded:
        lines += [
            "",
            "The junk, as nginx logged it (wrk's requests are those from 127.0.0.1; forged tickets and passes both go "
            "to the join URL, so the log cannot tell them apart). Answered by nginx: without a request to the origin.",
            "",
            "| junk | " + " | ".join(f"{_label(ph)}: sent, answered by nginx, reached the origin" for ph in flooded)
            + " |",
            "|---|" + "---|" * len(flooded),
        ]  # fmt: skip
        for kind in ("forged join", "random path", "HLS junk", "forged WHIP", "all"):
            cells = []
            for ph in flooded:
                f = figs[id(ph)]
                kinds = list(f.junk_status) if kind == "all" else [kind]
                edge = sum(f.junk_edge[k] for k in kinds)
                origin = sum(f.junk_origin[k] for k in kinds)
                status: Counter[str] = Counter()
                for k in kinds:
                    status.update(f.junk_status[k])
                at_edge = ", ".join(f"{k[6:]}: {n:,}" for k, n in sorted(status.items()) if k.startswith("nginx"))
                at_origin = ", ".join(f"{k[7:]}: {n:,}" for k, n in sorted(status.items()) if k.startswith("Podium"))
                cell = f"{edge + origin:,}; {edge:,}" + (f" ({at_edge})" if at_edge and kind != "all" else "")
                cell += f"; {origin:,}" + (f" ({at_origin})" if at_origin and kind != "all" else "")
                cells.append(f"**{cell}**" if kind == "all" else cell)
            lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    if len(repeats) > 1:
        lines += [
            "",
            f"The crowd with the flood, every run ({len(repeats)}; the table above shows the first, each on a new "
            "space, the crowd without the flood between the first and the second). SYNs dropped and sent again: "
            "the machine's TCP counters (`ListenOverflows`, `TCPSynRetrans`) over the phase:",
            "",
            "| run | heard audio | first audio p50 / p95 / p99 / max (s) | on-time start p50 / max (s) | "
            "`started_at` - `starts_at` (s) | junk sent/s | Podium's accept queue, max | nginx's accept queue, max "
            "| SYNs dropped; sent again | stream requests sent to Podium in the 6 s after the start: how many, "
            "longest (s) | Podium CPU / waiting (%) |",
            "|---|" + "---:|" * 10,
        ]
        for number, ph in enumerate(repeats, 1):
            f = figs[id(ph)]
            ot = on_time(ph).get("any", [])
            stamp = "-" if ph.started_at is None or ph.starts_at is None else f"{ph.started_at - ph.starts_at:+.3f}"
            lines.append(
                f"| {number} | {f.heard:,} of {f.started:,} | "
                + " / ".join(_s(_pct(f.ttfa, q), 2) for q in (50, 95, 99, 100))
                + f" | {_s(_pct(ot, 50))} / {_s(_pct(ot, 100))} | {stamp} | {f.junk_rate:,.0f} | "
                f"{_queue(f.accept_queue_max)} | {_queue(f.edge_queue_max, EDGE_BACKLOG)} | "
                f"{'n/a' if f.listen_overflows is None else f'{f.listen_overflows:,}'}; "
                f"{'n/a' if f.syn_retransmits is None else f'{f.syn_retransmits:,}'} | "
                f"{len(around_start(ph, f))}, {_s(max(around_start(ph, f), default=None), 2)} | "
                f"{100 * f.cpu.get('Podium', 0):.0f} / {100 * f.cpu.get('wait:Podium', 0):.0f} |"
            )
        p99s = [v for v in (_pct(figs[id(ph)].ttfa, 99) for ph in repeats) if v is not None]
        starts = [v for v in (_pct(on_time(ph).get("any", []), 50) for ph in repeats) if v is not None]
        if p99s and starts:
            lines += [
                "",
                f"Over the {len(repeats)} runs with the flood: first audio p99 {min(p99s):.2f}-{max(p99s):.2f} s "
                f"(goal ≤ {GOAL_P99_S:g} s: met in {sum(1 for v in p99s if v <= GOAL_P99_S)} of {len(p99s)}); the "
                f"first stage part reached the followers {min(starts):.2f}-{max(starts):.2f} s (p50) after "
                "`starts_at`.",
            ]
    lines += ["", "Origin load and Podium's own view (the host's board), per phase:", ""]
    for ph in [*repeats[:1], *calm]:
        f = figs[id(ph)]
        seconds = max(1.0, f.window[1] - f.window[0])
        hls_listener = sum(sum(b.values()) for k, b in ph.counts.items() if k.split("|")[0] not in ("state", "join"))
        hls_origin = sum(n for k, n in f.origin_legit.items() if k not in ("state", "join"))
        lines.append(
            f"- {ph.name}, over {seconds:.0f} s (first join due → last first audio): nginx sent Podium "
            f"{sum(f.origin_per_s):,} requests, {sum(f.origin_per_s) / seconds:,.0f}/s on average, "
            f"{max(f.origin_per_s or [0]):,} in the busiest second; of the listeners' {f.listener_requests:,} "
            f"requests {sum(f.origin_legit.values()):,} reached Podium ("
            + ", ".join(f"{k} {n:,}" for k, n in f.origin_legit.most_common())
            + f"); for the stream (playlists, init, parts): {hls_origin:,} origin requests "
            f"({hls_origin / seconds:.1f}/s) for {hls_listener:,} listener requests, "
            f"**{hls_origin / max(hls_listener, 1):.4f} per listener request** (the static peer: none). "
            "Listeners' answers by `X-Cache-Status`: "
            + ", ".join(f"{k} {n:,}" for k, n in f.listener_by_cache.most_common())
            + (
                "; not 200: " + ", ".join(f"{k} {n:,}" for k, n in f.listener_errors.most_common(6))
                if f.listener_errors
                else ""
            )
        )
        before, after = ph.board_before, ph.board_after
        if before is not None and after is not None:
            served = {k: after["requests"][k]["served"] - before["requests"][k]["served"] for k in after["requests"]}
            shed = {k: after["requests"][k]["shed"] - before["requests"][k]["shed"] for k in after["requests"]}
            pressure = max((b["load"]["pressure"] for b in ph.board), default=0.0)
            lag = max((b["load"]["lag_ms"] for b in ph.board), default=0.0)
            in_flight = max((b["load"]["in_flight"] for b in ph.board), default=0)
            attack = any(b["under_attack"]["active"] for b in ph.board)
            gap = after["stream"]["input_gap_ms"]
            lines.append(
                f"- {ph.name}, the board before → after: served "
                + ", ".join(f"{k} {n:,}" for k, n in served.items() if n)
                + "; shed "
                + (", ".join(f"{k} {n:,}" for k, n in shed.items() if n) or "nothing")
                + f"; refused by signature {after['refused_by_signature'] - before['refused_by_signature']:,}; "
                f"database statements {after['database_statements'] - before['database_statements']:,}. Read every "
                f"second: pressure at most {pressure:.2f} (event-loop lag ≤ {lag:.0f} ms, ≤ {in_flight} requests in "
                f"flight), under-attack mode {'on at some point' if attack else 'off throughout'}; the stage's "
                f"input gaps p99 {gap['p99']} ms, max {gap['max']} ms, frames skipped "
                f"{after['stream']['frames_skipped']}"
            )
    lines += [
        "",
        "The machine: CPU in % of one core (2 cores = 200 %), mean over the crowd (busiest second); *others*: the "
        "machine's busy time that none of the benchmark's processes used (see the notes). Then whether the load "
        "generators kept their schedule, and the queue in front of Podium (`ss`, every second):",
        "",
        "| phase | Podium | nginx | listeners | wrk | bench (host, control) | others "
        "| Podium / nginx / bench waiting for a CPU (% of the time) | join start late p50 / p99 / max (ms) "
        "| listeners' loop lag p99 / max (ms) | junk sent/s (planned) | Podium's accept queue, max "
        "| connections nginx opened to Podium |",
        "|---|" + "---:|" * 12,
    ]
    for ph in every:
        f = figs[id(ph)]
        cells = [f"{max(0, 100 * f.cpu.get(k, 0)):.0f} ({max(0, 100 * f.cpu_peak.get(k, 0)):.0f})" for k in CPU_KEYS]
        waits = [f"{100 * f.cpu.get(f'wait:{k}', 0):.0f}" for k in ("Podium", "nginx", "bench")]
        if not ph.podium:
            waits[0] = "-"
        cells.append(" / ".join(waits))
        late = [1000 * x for x in f.lateness]
        cells.append(f"{_s(_pct(late, 50), 0)} / {_s(_pct(late, 99), 0)} / {_s(_pct(late, 100), 0)}")
        cells.append(f"{_s(f.lag_p99, 0)} / {_s(f.lag_max, 0)}")
        cells.append(f"{f.junk_rate:,.0f} ({ph.flood_planned / args.ramp:,.0f})" if ph.flood else "-")
        cells.append(_queue(f.accept_queue_max))
        cells.append("-" if f.upstream_opened is None else f"~{f.upstream_opened:,.0f}")
        lines.append(f"| {_label(ph)} | " + " | ".join(cells) + " |")
    if plot_written:
        lines += ["", f"![Flash crowd: joins, first audio, requests at Podium, CPU]({PLOT.name})"]
    lines += ["", "Notes:", ""]
    lines += notes(outcome, args, figs)
    return "\n".join(lines) + "\n"


def notes(outcome: Outcome, args: argparse.Namespace, figs: dict[int, Figures]) -> list[str]:
    """What the tables do not say by themselves, from this run's figures."""
    found: list[str] = []
    keepalive = upstream_keepalive()  # the idle connections the shipped config keeps to Podium
    flooded = next((ph for ph in outcome.phases if ph.flood), None)
    calm = next((ph for ph in outcome.phases if not ph.flood), None)
    if flooded is not None:
        f = figs[id(flooded)]
        slow = [t for t in f.origin_times if t > 1.0]
        board = flooded.board
        pressure = max((b["load"]["pressure"] for b in board), default=0.0)
        if f.accept_queue_max is not None and f.accept_queue_max >= 500:
            shed = 0
            if flooded.board_before is not None and flooded.board_after is not None:
                shed = sum(flooded.board_after["requests"][k]["shed"] - flooded.board_before["requests"][k]["shed"]
                           for k in flooded.board_after["requests"])  # fmt: skip
            found.append(
                f"- **Where the joins waited, with the flood.** Podium's accept queue reached "
                f"{f.accept_queue_max:,.0f} (its backlog: {PODIUM_BACKLOG:,}). nginx keeps "
                f"{keepalive} idle connections to Podium (`keepalive {keepalive}` in the shipped "
                "config); with the flood's requests held at Podium it opened about "
                f"{f.upstream_opened or 0:,.0f} more, and each waited in the kernel until Podium accepted it. "
                f"Of the {len(f.origin_times):,} requests nginx sent to Podium, nginx's `$request_time` was p50 "
                f"{_s(_pct(f.origin_times, 50), 3)} s, p99 {_s(_pct(f.origin_times, 99), 2)} s, max "
                f"{_s(_pct(f.origin_times, 100), 2)} s ({len(slow):,} over 1 s): a request on a kept-alive "
                "connection was answered at once, one on a new connection waited its turn in the queue, joins and "
                f"junk alike. Podium's governor, which sheds by requests in flight and event-loop lag, read pressure "
                f"≤ {pressure:.2f} on the board every second and shed {shed:,} requests: the backlog is outside the "
                "process, where neither measure sees it: the random paths went on being served, and the joins never "
                "went to the waiting room (a 202 with a place in line) while they waited unseen in the kernel"
                + (
                    f". When the queue was full the kernel dropped {f.listen_overflows:,} SYNs during the phase "
                    "(`ListenOverflows`, machine-wide): those connects were sent again after 1 s, then 2 s more"
                    if f.listen_overflows
                    else ""
                )
            )
            repeats = [ph for ph in outcome.phases if ph.flood]
            pairs = [
                (max(around_start(ph, figs[id(ph)])), _pct(on_time(ph).get("any", []), 50))
                for ph in repeats
                if around_start(ph, figs[id(ph)])
            ]
            if pairs:
                found.append(
                    "- The on-time start with the flood hangs on a few requests: each new playlist (blocking reload) "
                    "and each new part makes one origin request, nginx's cache lock holding the other followers "
                    "until it is answered; one that finds no idle kept-alive connection waits in Podium's accept "
                    "queue with the junk. Per run with the flood, the longest such request ending in the 6 s after "
                    "the start (nginx's `$request_time`) and the on-time start p50: "
                    + "; ".join(f"{longest:.2f} s and {_s(start)} s" for longest, start in pairs)
                )
    if calm is not None:
        f = figs[id(calm)]
        waiters = [r["heard"] - r["began"] for r in calm.records if r.get("waited") and "heard" in r]
        if waiters:
            found.append(
                f"- **The waiting room, without the flood.** Joins come at up to "
                f"{crowd_times(args.listeners, args.ramp)[1]:,.0f}/s at the crowd's peak against a rate of "
                f"{args.join_rate:g}/s (burst {args.join_burst:,}), so "
                f"{len(waiters):,} listeners were told to wait (longest line {f.max_position:,}). They come back "
                "when their place is due (`retry_after_ms`, position / rate, at least 0.1 s; Retry-After itself is "
                f"whole seconds), plus the page's 0-0.3 s jitter: their first audio p50 {_s(_pct(waiters, 50))} s, max "
                f"{_s(_pct(waiters, 100))} s, while at {args.join_rate:g}/s their turn came within "
                f"{f.max_position / args.join_rate:.2f} s"
            )
    from podium.spaces.schedule import SCHEDULE_TICK_S

    stamped = [ph for ph in outcome.phases if ph.started_at and ph.starts_at and ph.first_stage_pdt]
    if stamped:
        late = [ph.started_at - ph.starts_at for ph in stamped if ph.started_at and ph.starts_at]
        media = [ph.started_at - ph.first_stage_pdt for ph in stamped if ph.started_at and ph.first_stage_pdt]
        found.append(
            f"- `started_at` - `starts_at` was {min(late):+.3f} to {max(late):+.3f} s over the phases: Podium "
            f"looks at its schedule every {SCHEDULE_TICK_S:g} s (`SCHEDULE_TICK_S`, 'the start is on the quarter "
            "second'), so the stage takes over between 0 and that long after the announced second, whatever the "
            f"load; the first stage segment's media time is {1000 * min(media):.0f}-{1000 * max(media):.0f} ms "
            "before `started_at`"
        )
    for ph in [ph for ph in outcome.phases if ph is flooded or ph is calm]:
        ot = on_time(ph)
        if ot:
            exact = (
                f"{len(ot['exact'])} fetched `{ot['name']}` itself (the first stage part; p50 "
                f"{_s(_pct(ot['exact'], 50))} s, max {_s(_pct(ot['exact'], 100))} s after `starts_at`)"
                if ot["exact"]
                else f"none fetched `{ot['name']}` itself (the first stage part): a follower fetches the newest two "
                "parts its reload names, and their reloads came back after later parts were out"
            )
            found.append(
                f"- On-time start, {ph.name}: {ot['eligible']} followers heard the pre-show before the start; "
                f"{exact}; the table takes each follower's first stage part, whichever it was. Segments up to "
                f"s{ph.last_preshow_msn} are pre-show, the stage starts with s{ph.first_stage_msn} (the segment "
                "records' `preshow` flag). A part is 0.512 s long, so the first stage part is whole about 0.5 s "
                "after the switch; requests waiting on nginx's `proxy_cache_lock` re-check it every 500 ms"
            )
        after = ph.board_after
        if after is not None and after["stream"]["input_gap_ms"]["max"] > 100:
            gap = after["stream"]["input_gap_ms"]
            found.append(
                f"- The stage, {ph.name}: the longest gap between the host's frames reaching the mixer was "
                f"{gap['max']} ms (p99 {gap['p99']} ms; 20 ms when idle), frames skipped "
                f"{after['stream']['frames_skipped']}. The host's WHIP client runs in the benchmark's own process, "
                f"which waited for a CPU {100 * figs[id(ph)].cpu.get('wait:bench', 0):.0f} % of the time during the "
                "crowd: part of a gap may be the sender's"
            )
    every = [*outcome.phases, *([outcome.peer] if outcome.peer else [])]
    for ph in every:
        f = figs[id(ph)]
        if f.failures:
            found.append(f"- {_label(ph)}: listeners who heard nothing, by what failed: "
                         + ", ".join(f"{k} ({n:,})" for k, n in f.failures.most_common(6)))  # fmt: skip
    if flooded is not None:
        f = figs[id(flooded)]
        total = sum(max(0.0, v) for k, v in f.cpu.items() if ":" not in k and k not in ("machine", "others"))
        limited = (f.accept_queue_max or 0) >= 500 or (_pct(f.ttfa, 99) or 0) > GOAL_P99_S
        late = [1000 * x for x in f.lateness]
        on_schedule = (_pct(late, 99) or 0) <= 50 and (f.lag_max or 0) <= 100
        kept = "kept their schedule" if on_schedule else "fell behind at times"
        probe = ""
        if outcome.probe:
            probe = (
                f". Alone, straight from wrk (64 kept-alive connections, random paths only, for "
                f"{outcome.probe['seconds']:.0f} s after the phases), Podium answered "
                f"{outcome.probe['rate']:,.0f} requests/s at {100 * outcome.probe['cpu']:.0f} % of a core; in the "
                f"crowd it got {sum(f.origin_per_s) / max(1.0, f.window[1] - f.window[0]):,.0f} requests/s from "
                "nginx, many on new connections, with joins among them"
            )
        found.append(
            f"- **{'What limited the run' if limited else 'The machine'}, with the flood.** The machine was busy "
            f"{100 * f.cpu.get('machine', 0):.0f} % (in soft interrupts, the kernel's loopback network work charged to "
            f"whichever process was running: {100 * f.cpu.get('kernel:softirq', 0):.0f} %) "
            f"of 200 % on average over the crowd (the processes in the table: {100 * total:.0f} %), and Podium's "
            f"thread waited for a CPU {100 * f.cpu.get('wait:Podium', 0):.0f} % of the time. Podium is one process: "
            f"at {100 * f.cpu.get('Podium', 0):.0f} % of a core on average ({100 * f.cpu_peak.get('Podium', 0):.0f} % "
            "in the busiest second) it served what nginx passed it, 404s for random paths included. The load "
            f"generators {kept} (joins started p99 {_s(_pct(late, 99), 0)} ms late; their event loops "
            f"lagged ≤ {_s(f.lag_max, 0)} ms) and took {100 * (f.cpu.get('listeners', 0) + f.cpu.get('wrk', 0)):.0f} % "
            "of a core that a real edge would not take from Podium; wrk waits for each answer, so it sent "
            f"{f.junk_rate:,.0f} junk requests/s of the {args.flood / args.ramp:,.0f} planned (a real flood does not "
            "wait)" + probe
        )
    for ph in outcome.phases:
        f = figs[id(ph)]
        if f.missed:
            found.append(
                f"- {_label(ph)}: {f.missed:,} listeners got a playlist naming a part Podium no longer had (404; "
                "parts are kept for the last 3 segments, about 6 s, then only whole segments); the playlists that "
                "did, by `X-Cache-Status`: "
                + ", ".join(f"{k} {n:,}" for k, n in f.missed_cache.most_common())
                + f". Reloading the playlist, as a player does, {f.missed_recovered:,} of them then heard audio. "
                "nginx answers a playlist from its cache while its refresh is on the way (`proxy_cache_use_stale "
                "updating`), and the refresh waited at Podium with the flood: the playlist outlived its parts"
            )
        others = f.cpu.get("others", 0.0)
        if others >= 0.2:
            found.append(
                f"- {_label(ph)}: other work on the machine took {100 * others:.0f} % of a core on average during "
                f"the crowd ({100 * f.cpu_peak.get('others', 0):.0f} % in its busiest second): this phase had less "
                "of the machine than the others"
            )
    edge_full = [
        (n, ph) for n, ph in enumerate((ph for ph in outcome.phases if ph.flood), 1)
        if (figs[id(ph)].edge_queue_max or 0) >= EDGE_BACKLOG
    ]  # fmt: skip
    for number, ph in edge_full:
        f = figs[id(ph)]
        late = [1000 * x for x in f.lateness]
        found.append(
            f"- In run {number} with the flood nginx's own accept queue was full too ({f.edge_queue_max:,.0f}; "
            f"its backlog here is {EDGE_BACKLOG}): listeners' "
            "connects to the edge were dropped and sent again after 1 s as well, and the listeners' processes fell "
            f"behind (joins started p99 {_s(_pct(late, 99), 0)} ms late, event loops lagged up to "
            f"{_s(f.lag_max, 0)} ms). nginx's worker waited for a CPU {100 * f.cpu.get('wait:nginx', 0):.0f} % of "
            "the time: that run's first audio figures include the edge's and the load generators' share of this "
            "machine, not Podium's alone"
        )
    found += [
        "- Junk that reached Podium: the shipped config limits joins per address (2/s, burst 20) and every path "
        "outside the listener and page locations (20/s, burst 100), caches listener objects by the path and "
        "LL-HLS's own arguments only (a made-up query is a hit) and caches a missing object for 2 s; from "
        "127.0.0.1 what still reaches Podium is what passes those bursts and HLS junk with made-up part names "
        "(each a new object, a 404 from Podium). A flood from many addresses would reach Podium past the limits, "
        "where tokens are refused by their signature (`refused by signature`) and random paths get a 404",
        "- How this benchmark differs from the first plan, and why: a phase without the flood was added, to tell "
        "what the crowd costs from what the flood costs; "
        + (
            f"the crowd with the flood runs {args.flood_repeats} times, as its figures vary much from run to run "
            "(they depend on how deep the accept queue is at a given moment); "
            if args.flood_repeats > 1
            else ""
        )
        + "only one listener in "
        f"{args.follow_every} follows the stream through the start and the rest stop after {args.follow_rounds} "
        "blocking reloads, because 10,000 LL-HLS players following at their cadence (a reload and a part every "
        "0.512 s) would ask the edge for about 40,000 requests/s, more than these 2 CPUs can generate next to "
        "nginx and Podium (cache hits all: `bench/timeline.py` measures an edge holding 10,000 followers); wrk "
        "cannot pick its source address, so the flood comes from 127.0.0.1 alone; listeners do not fetch the page "
        "and its scripts (a browser may have them cached; see the check below), nor send heartbeats",
    ]
    found += [f"- Checked before the crowd: {check}" for check in outcome.checks]
    for ph in every:
        if ph.flood:
            errors = ph.flood.get("socket_errors")
            found.append(
                f"- wrk ({_label(ph)}): {ph.flood.get('requests', 0):,} requests in {ph.flood.get('seconds', 0):.1f} s"
                + (f"; socket errors {errors}" if errors else "")
                + f"; `{wrk_command(ph.flood['command'])}` (the Lua script is `FLOOD_LUA` in this benchmark)"
            )
        found += [f"- {_label(ph)}: {note}" for note in ph.notes]
    found.append(
        "- CPU: utime + stime from `/proc/PID/stat` (nginx: master and workers; listeners: the worker processes; "
        "bench: this process, which runs the host's WHIP client and polls the board); machine: `/proc/stat`; "
        "*others* is the difference: other users' processes and the kernel's own threads (`ksoftirqd` takes over "
        "network work when soft interrupts pile up); soft interrupts run in a process's time are charged to that "
        "process (tick-based CPU accounting); waiting for a CPU: the run-queue time in `/proc/PID/schedstat` of "
        "Podium's main thread, nginx's workers and this process's main thread. The busiest second's figures are from "
        "1-second samples"
    )
    found += [f"- {note}" for note in outcome.notes]
    found += [f"- {note}" for note in args.extra_notes]
    return found


# -- plot ---------------------------------------------------------------------------------------


def _per_second_percentiles(phase: Phase, p: float) -> tuple[list[int], list[float]]:
    by_second: dict[int, list[float]] = defaultdict(list)
    for r in phase.records:
        if "heard" in r:
            by_second[int(r["began"] - phase.start)].append(r["heard"] - r["began"])
    xs = sorted(by_second)
    return xs, [harness.percentile(by_second[x], p) for x in xs]


def plot(outcome: Outcome, args: argparse.Namespace, path: Path) -> bool:
    """Joins and first audio per second; requests at Podium; Podium's accept queue; CPU. False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    main = outcome.phases[0]
    calm = outcome.phases[1] if len(outcome.phases) > 1 else None
    t0 = main.start
    f = figures(main)
    span = int(max(args.ramp + 4, f.window[1] - t0 + 2))
    seconds = list(range(span))
    fig, axes = plt.subplots(4, 1, figsize=(9, 10.5), sharex=True, dpi=72)

    ax = axes[0]
    started = Counter(int(r["began"] - t0) for r in main.records)
    admitted = Counter(int(r["admitted"] - t0) for r in main.records if "admitted" in r)
    ax.plot(seconds, [started.get(s, 0) for s in seconds], label="joins started", drawstyle="steps-post")
    ax.plot(seconds, [admitted.get(s, 0) for s in seconds], label="let in (200)", drawstyle="steps-post")
    if main.board:
        ax.plot([b["wall"] - t0 for b in main.board], [b["joins"]["waiting"] for b in main.board],
                label="in line (the board)", linestyle=":")  # fmt: skip
    if calm is not None and calm.board:
        ax.plot([b["wall"] - calm.start for b in calm.board], [b["joins"]["waiting"] for b in calm.board],
                label="in line, the crowd without the flood", linestyle=":", color="grey")  # fmt: skip
    ax.set_ylabel("listeners per second")
    ax.set_title(
        f"{args.listeners:,} listeners through nginx to Podium, with the flood; x: seconds from the first join"
    )
    ax.legend(loc="upper left", fontsize=8)

    ax = axes[1]
    for phase, style, label in ((main, "-", "with the flood"), (calm, "--", "without"), (outcome.peer, ":", "static")):
        if phase is None:
            continue
        for p, colour in ((50, "tab:blue"), (99, "tab:red")):
            xs, ys = _per_second_percentiles(phase, p)
            ax.plot(xs, ys, linestyle=style, color=colour, label=f"p{p}, {label}")
    ax.axhline(GOAL_P99_S, color="grey", linewidth=0.8, linestyle=":")
    ax.set_yscale("log")
    ax.set_ylim(3e-4, 10)
    ax.set_ylabel("time to first audio (s)\nby second of join")
    ax.legend(loc="lower right", fontsize=7, ncol=2)

    ax = axes[2]
    edge_s: Counter[int] = Counter()
    origin_s: Counter[int] = Counter()
    legit_s: Counter[int] = Counter()
    for when, remote, _method, _uri, _status, upstream, _up, _took in main.log:
        second = int(when - t0)
        reached = upstream not in ("", "-")
        if remote == JUNK_ADDRESS:
            (origin_s if reached else edge_s)[second] += 1
        elif reached:
            legit_s[second] += 1
    ax.plot(seconds, [edge_s.get(s, 0) for s in seconds], label="junk answered by nginx", drawstyle="steps-post",
            linestyle="--")  # fmt: skip
    ax.plot(seconds, [origin_s.get(s, 0) for s in seconds], label="junk that reached Podium", drawstyle="steps-post")
    ax.plot(seconds, [legit_s.get(s, 0) for s in seconds], label="listeners' requests that reached Podium",
            drawstyle="steps-post")  # fmt: skip
    ax.set_ylabel("requests per second")
    if main.sockets:
        twin = ax.twinx()
        twin.plot([s["wall"] - t0 for s in main.sockets], [s.get("accept queue", 0) for s in main.sockets],
                  color="black", linewidth=1.5, label="Podium's accept queue (right)")  # fmt: skip
        twin.set_ylabel("connections waiting")
        twin.set_ylim(0, 2100)
        handles, labels = ax.get_legend_handles_labels()
        more, more_labels = twin.get_legend_handles_labels()
        twin.legend(handles + more, labels + more_labels, loc="upper right", fontsize=7)
    else:
        ax.legend(loc="upper right", fontsize=7)

    ax = axes[3]
    samples = main.cpu
    for key in CPU_KEYS:
        xs, ys = [], []
        for a, b in itertools.pairwise(samples):
            if b["wall"] - a["wall"] < 0.5:
                continue  # the last sample follows the one before closely: a tick would look like a spike
            if key == "others":
                va = a["machine"] - sum(v for k, v in a.items() if k not in ("wall", "machine") and ":" not in k)
                vb = b["machine"] - sum(v for k, v in b.items() if k not in ("wall", "machine") and ":" not in k)
            else:
                va, vb = a[key], b[key]
            xs.append(b["wall"] - t0)
            ys.append(max(0.0, 100 * (vb - va) / max(b["wall"] - a["wall"], 1e-9)))
        ax.plot(xs, ys, label=key, drawstyle="steps-pre")
    ax.set_ylabel("CPU (% of one core)")
    ax.set_xlabel("seconds from the first join (with the flood)")
    ax.legend(loc="upper right", fontsize=8, ncol=3)
    for ax in axes:
        if main.starts_at is not None:
            ax.axvline(main.starts_at - t0, color="red", linewidth=0.8, linestyle="--")
        ax.grid(alpha=0.3)
        ax.set_xlim(0, span)
    if main.starts_at is not None:
        axes[0].text(main.starts_at - t0, axes[0].get_ylim()[1] * 0.9, " starts_at", color="red", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return True


# -- main -------------------------------------------------------------------------------------------


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        return worker_main(sys.argv[2])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI smoke run: 500 listeners, 5,000 junk, < 1 min")
    parser.add_argument("--listeners", type=int, help="legitimate listeners per phase (default 10,000; quick 500)")
    parser.add_argument("--ramp", type=float, help="seconds within which all joins are due (default 10; quick 5)")
    parser.add_argument("--flood", type=int, help="junk requests planned over the ramp (default 10 x listeners)")
    parser.add_argument("--flood-connections", type=int, default=1000, help="wrk's connections (default 1,000)")
    parser.add_argument("--start-after", type=float, help="the start, s after the first join (default 7; quick 3)")
    parser.add_argument("--lead", type=float, help="s from creating a space to its first join (default 10; quick 7)")
    parser.add_argument("--follow-every", type=int, default=10, help="one listener in N follows through the start")
    parser.add_argument("--follow-rounds", type=int, default=2, help="blocking reloads the others follow (2)")
    parser.add_argument("--follow-after-start", type=float, default=4.0, help="followers stop this long after it")
    parser.add_argument("--workers", type=int, default=2, help="listener processes (default 2)")
    parser.add_argument("--nginx-workers", type=int, default=1, help="nginx worker processes (default 1)")
    parser.add_argument("--join-rate", type=float, help="PODIUM_JOIN_RATE_PER_S (default listeners / ramp)")
    parser.add_argument("--join-burst", type=int, help="PODIUM_JOIN_BURST (default: the rate)")
    parser.add_argument("--no-crowd-alone", action="store_true", help="skip the phase without the flood")
    parser.add_argument("--flood-repeats", type=int, help="runs of the crowd with the flood (default 3; quick 1)")
    parser.add_argument("--no-peer", action="store_true", help="skip the static nginx peer")
    parser.add_argument("--no-plot", action="store_true", help=f"no {PLOT.name}")
    parser.add_argument("--no-write", action="store_true", help="print the results, leave RESULTS.md alone")
    parser.add_argument("--keep", type=Path, help="copy nginx's logs and every listener's record into this folder")
    args = parser.parse_args()
    args.listeners = args.listeners or (500 if args.quick else 10_000)
    args.ramp = args.ramp or (5.0 if args.quick else 10.0)
    args.flood = args.flood if args.flood is not None else 10 * args.listeners
    args.start_after = args.start_after if args.start_after is not None else (3.0 if args.quick else 7.0)
    args.lead = args.lead if args.lead is not None else (7.0 if args.quick else 10.0)
    args.flood_repeats = args.flood_repeats or (1 if args.quick else 3)
    args.join_rate = args.join_rate or float(round(args.listeners / args.ramp))
    args.join_burst = args.join_burst or max(1, int(args.join_rate))
    args.extra_notes = []
    if not 1 <= args.listeners <= 60_000 or not 1 <= args.ramp <= 120 or not 0 <= args.flood <= 2_000_000:
        parser.error("keep it bounded: 1 ≤ --listeners ≤ 60,000, 1 ≤ --ramp ≤ 120 s, --flood ≤ 2,000,000")
    if not 1 <= args.workers <= 8 or not 1 <= args.flood_connections <= 4000 or not 0 <= args.start_after <= 60:
        parser.error("keep it bounded: 1 ≤ --workers ≤ 8, 1 ≤ --flood-connections ≤ 4,000, --start-after ≤ 60")
    if args.follow_every < 1 or not 0 <= args.follow_rounds <= 50 or not 0 < args.follow_after_start <= 30:
        parser.error("--follow-every ≥ 1, 0 ≤ --follow-rounds ≤ 50, 0 < --follow-after-start ≤ 30")
    if not 1 <= args.flood_repeats <= 10:
        parser.error("keep it bounded: 1 ≤ --flood-repeats ≤ 10")
    if not 5 <= args.lead <= 120:
        parser.error("--lead: 5 to 120 s (the pre-show needs a few seconds to have two segments)")
    if args.flood and shutil.which("wrk") is None:
        parser.error("wrk is not installed")
    if not os.path.exists(NGINX) or shutil.which("ss") is None:
        parser.error(f"{NGINX} and ss (iproute2) are needed")
    fd_limit = harness.raise_fd_limit()  # Podium and nginx inherit it
    if -(-args.listeners // args.workers) + FD_MARGIN > fd_limit:
        parser.error(f"{args.listeners:,} listeners need more than {fd_limit:,} open files per process: more --workers")
    if args.flood == 0:
        args.no_peer = True  # the peer is the reference for the flooded crowd
    started = time.monotonic()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        outcome = runner.run(measure(args))
    args.extra_notes.append(f"the whole run took {time.monotonic() - started:.0f} s")
    written = False
    if not args.no_plot and not args.no_write:
        written = plot(outcome, args, PLOT)
        if written and PLOT.stat().st_size > 150_000:
            args.extra_notes.append(f"the plot came out at {PLOT.stat().st_size // 1000} KB")
    text = report(outcome, args, written)
    print(text)
    if not args.no_write:
        harness.write_section("flash-crowd", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
