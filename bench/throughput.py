"""Delivery throughput: Podium's LL-HLS origin against nginx serving a snapshot of the same stream.

A WHIP speaker publishes a tone; once the stream runs, the current `live.m3u8`, the parts it names
and `init.mp4` are fetched over HTTP into a folder that nginx (its own config, one worker, like
Podium's one process) serves with the same Cache-Control and CORS headers. wrk then runs
`throughput.lua` (playlist, newest part, playlist, next part, ...) against each server in turn,
with the same threads, connections and duration, in the same run.

Usage: python bench/throughput.py [--quick] [--duration S] [--connections N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness
import httpx
from nginx_tier import NGINX, Nginx, nginx_version, start_nginx

from podium.testing.whip_client import Publisher, SampleTrack, publish, tone

WRK = "/usr/bin/wrk"
LUA = harness.BENCH_DIR / "throughput.lua"
GOAL_RATIO = 0.5
KEEP_PARTS = 4  # the newest 2 s: what clients at the live edge ask for
_PART_URI = re.compile(r'#EXT-X-PART:[^\n]*URI="([^"]+)"')
_PART_NAME = re.compile(r"p(\d+)-(\d+)\.m4s")


@dataclass
class Snapshot:
    root: Path  # served as the document root: it holds hls/{space_id}/...
    playlist_path: str  # /hls/{space_id}/live.m3u8, the same on both servers
    parts: list[str]
    headers: dict[str, dict[str, str]]  # what Podium sent, per kind of file
    playlist_bytes: int
    listed_parts: int


@dataclass
class WrkRun:
    server: str
    round: int
    result: dict[str, Any]
    cpu_s: float
    wrk_cpu_s: float
    wall_s: float
    notes: list[str]

    @property
    def rps(self) -> float:
        return float(self.result["requests"]) / (float(self.result["duration_us"]) / 1e6)


# -- the snapshot and nginx --------------------------------------------------------------------


async def take_snapshot(client: httpx.AsyncClient, base: str, hls_url: str, root: Path) -> Snapshot:
    """Podium's files as they are now, into `root` (again before every nginx run: the playlist grows)."""
    playlist_path = hls_url.replace("index.m3u8", "live.m3u8")
    folder = root / playlist_path.lstrip("/").rsplit("/", 1)[0]
    folder.mkdir(parents=True, exist_ok=True)
    headers: dict[str, dict[str, str]] = {}
    playlist = await client.get(base + playlist_path)
    playlist.raise_for_status()
    parts = _PART_URI.findall(playlist.text)
    if not parts:
        raise RuntimeError(f"the playlist names no parts:\n{playlist.text}")
    (folder / "live.m3u8").write_bytes(playlist.content)
    headers["playlist"] = _kept_headers(playlist)
    for name in ["index.m3u8", "init.mp4", *parts]:
        response = await client.get(f"{base}{playlist_path.rsplit('/', 1)[0]}/{name}")
        response.raise_for_status()
        (folder / name).write_bytes(response.content)
        headers.setdefault("part" if name.endswith(".m4s") else name, _kept_headers(response))
    # nginx's workers may run as another user: let them read the folder.
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return Snapshot(root, playlist_path, parts[-KEEP_PARTS:], headers, len(playlist.content), len(parts))


def _kept_headers(response: httpx.Response) -> dict[str, str]:
    wanted = ("cache-control", "content-type", "access-control-allow-origin", "access-control-expose-headers")
    return {k: v for k, v in response.headers.items() if k.lower() in wanted}


def nginx_config(snapshot: Snapshot, port: int, prefix: Path, workers: int) -> str:
    def add_headers(kind: str) -> str:
        kept = snapshot.headers[kind]
        lines = [f'add_header {name} "{value}" always;' for name, value in kept.items() if name != "content-type"]
        return "\n            ".join(lines)

    playlist_type = snapshot.headers["playlist"].get("content-type", "application/vnd.apple.mpegurl")
    part_type = snapshot.headers["part"].get("content-type", "video/iso.segment")
    init_type = snapshot.headers["init.mp4"].get("content-type", "audio/mp4")
    return f"""
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    # uvicorn serves any number of requests on a kept-alive connection: so does nginx here.
    keepalive_requests 1000000;
    keepalive_timeout 15s;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    default_type application/octet-stream;
    server {{
        listen {harness.HOST}:{port};
        root {snapshot.root};
        location ~ \\.m3u8$ {{
            types {{ }} default_type "{playlist_type}";
            {add_headers("playlist")}
        }}
        location ~ \\.m4s$ {{
            types {{ }} default_type "{part_type}";
            {add_headers("part")}
        }}
        location ~ \\.mp4$ {{
            types {{ }} default_type "{init_type}";
            {add_headers("init.mp4")}
        }}
    }}
}}
"""


_IGNORED_HEADERS = {"date", "server", "content-length", "etag", "last-modified", "accept-ranges", "connection",
                    "keep-alive"}  # fmt: skip


async def header_differences(podium_base: str, nginx_base: str, snapshot: Snapshot, live_url: str) -> list[str]:
    """Where nginx's answers differ from Podium's in headers other than the per-server ones."""
    async with httpx.AsyncClient(timeout=10) as client:
        live_part = _PART_URI.findall((await client.get(live_url)).text)[-1]
        folder = snapshot.playlist_path.rsplit("/", 1)[0]
        pairs = {
            "playlist": (podium_base + snapshot.playlist_path, nginx_base + snapshot.playlist_path),
            "part": (f"{podium_base}{folder}/{live_part}", f"{nginx_base}{folder}/{snapshot.parts[-1]}"),
        }
        out = []
        for kind, (podium_url, nginx_url) in pairs.items():
            theirs = [(await client.get(url)).headers for url in (podium_url, nginx_url)]
            kept = [{k.lower(): v for k, v in h.items() if k.lower() not in _IGNORED_HEADERS} for h in theirs]
            if kept[0] != kept[1]:
                out.append(f"{kind}: Podium sent {kept[0]}, nginx sent {kept[1]}")
        return out


def start_peer(snapshot: Snapshot, prefix: Path, workers: int) -> Nginx:
    """nginx serving the snapshot (in the foreground: `start_nginx` adds `daemon off`)."""
    port = harness.free_port()
    return start_nginx(prefix, port, nginx_config(snapshot, port, prefix, workers))


# -- wrk ---------------------------------------------------------------------------------------


async def run_wrk(
    base: str, snapshot: Snapshot, parts: list[str], args: argparse.Namespace, duration_s: int
) -> dict[str, Any]:
    """One wrk run; `parts` are asked for until the first playlist answers name newer ones."""
    command = [
        WRK, "-t", str(args.threads), "-c", str(args.connections), "-d", f"{duration_s}s", "--timeout", "5s",
        "-s", str(LUA), base, "--", snapshot.playlist_path, str(KEEP_PARTS), *parts,
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=duration_s + 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"wrk did not finish within {duration_s + 30} s") from None
    for line in out.decode().splitlines():
        if line.startswith("BENCH "):
            result: dict[str, Any] = json.loads(line[len("BENCH ") :])
            return result
    raise RuntimeError(f"wrk printed no result (exit {proc.returncode}):\n{out.decode()}\n{err.decode()}")


def wrk_command_text(args: argparse.Namespace, duration_s: int) -> str:
    return (
        f"wrk -t {args.threads} -c {args.connections} -d {duration_s}s --timeout 5s -s bench/throughput.lua "
        f"BASE -- /hls/ID/live.m3u8 {KEEP_PARTS} PARTS..."
    )


def newest_part(playlist: str) -> int | None:
    """The newest part's ordinal (msn * 4 + index), to see whether the stage kept real time."""
    names = _PART_URI.findall(playlist)
    if not names:
        return None
    match = _PART_NAME.fullmatch(names[-1])
    return None if match is None else int(match.group(1)) * 4 + int(match.group(2))


async def measure_server(
    name: str,
    round_no: int,
    base: str,
    pids: list[int],
    snapshot: Snapshot,
    args: argparse.Namespace,
    live_playlist_url: str | None,
) -> WrkRun:
    notes: list[str] = []

    async def first_parts() -> tuple[list[str], str]:
        # Against the live origin, start from its live edge: the snapshot's parts are long gone from
        # Podium's memory by then, and the first requests (sent before any playlist is back) would 404.
        if live_playlist_url is None:
            return snapshot.parts, ""
        async with httpx.AsyncClient(timeout=10) as client:
            text = (await client.get(live_playlist_url)).text
        return _PART_URI.findall(text)[-KEEP_PARTS:], text

    if args.warmup:
        await run_wrk(base, snapshot, (await first_parts())[0], args, args.warmup)
    parts, before = await first_parts()
    notes.append(f"1-minute load average before the run: {os.getloadavg()[0]:.2f}")
    cpu_before = sum(harness.cpu_seconds(pid) for pid in pids)
    # wrk is the only child reaped during the run, so the children's rusage grows by its CPU time alone.
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = await run_wrk(base, snapshot, parts, args, args.duration)
    wall_s = time.monotonic() - started
    notes[-1] += f", after: {os.getloadavg()[0]:.2f}"
    cpu_s = sum(harness.cpu_seconds(pid) for pid in pids) - cpu_before
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu_s = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    if live_playlist_url:
        async with httpx.AsyncClient(timeout=10) as client:
            after = (await client.get(live_playlist_url)).text
        first, last = newest_part(before), newest_part(after)
        if first is not None and last is not None:
            made = last - first
            expected = wall_s / 0.512
            notes.append(
                f"the stage made {made} parts during the {wall_s:.1f} s run ({expected:.1f} in real time); "
                f"the playlist grew from {len(before)} to {len(after)} bytes"
            )
    print(f"[throughput] round {round_no} {name}: {result['requests'] / (result['duration_us'] / 1e6):.0f} req/s, "
          f"p50 {result['p50_us'] / 1000:.2f} ms, p99 {result['p99_us'] / 1000:.2f} ms", flush=True)  # fmt: skip
    return WrkRun(name, round_no, result, cpu_s, wrk_cpu_s, wall_s, notes)


async def measure(args: argparse.Namespace) -> tuple[list[WrkRun], Snapshot, list[str]]:
    runs: list[WrkRun] = []
    notes: list[str] = []
    with harness.podium_server() as server, tempfile.TemporaryDirectory(prefix="podium-bench-nginx-") as tmp:
        tmp_path = Path(tmp)
        tmp_path.chmod(0o755)
        async with httpx.AsyncClient(timeout=30) as client:
            space = await harness.create_space(client, server.base, "throughput benchmark")
            urls = space["urls"]
            publisher: Publisher = await publish(
                server.base + urls["whip"], space["host_token"], SampleTrack(tone(440))
            )
            nginx: Nginx | None = None
            try:
                live_url = server.base + urls["hls"].replace("index.m3u8", "live.m3u8")
                await harness.wait_for_segments(client, live_url, 2)
                snapshot = await take_snapshot(client, server.base, urls["hls"], tmp_path / "www")
                nginx = start_peer(snapshot, tmp_path, args.nginx_workers)
                nginx_base, nginx_pids = nginx.base, nginx.pids()
                differences = await header_differences(server.base, nginx_base, snapshot, live_url)
                notes += [f"headers differ: {d}" for d in differences] or [
                    "headers: nginx answers with the same headers as Podium, apart from Date, Server, ETag, "
                    "Last-Modified, Accept-Ranges and Content-Length"
                ]
                for round_no in range(1, args.rounds + 1):
                    runs.append(
                        await measure_server(
                            "Podium", round_no, server.base, [server.proc.pid], snapshot, args, live_url
                        )
                    )
                    # A fresh snapshot, so nginx serves a playlist as long as the one Podium just served.
                    snapshot = await take_snapshot(client, server.base, urls["hls"], tmp_path / "www")
                    run = await measure_server("nginx", round_no, nginx_base, nginx_pids, snapshot, args, None)
                    run.notes.insert(
                        0,
                        f"snapshot of a {snapshot.playlist_bytes}-byte playlist naming {snapshot.listed_parts} "
                        f"parts; wrk asked for {', '.join(snapshot.parts)}",
                    )
                    runs.append(run)
            finally:
                if nginx is not None:
                    harness.stop_process(nginx.proc, "nginx")
                await publisher.close()
                await harness.end_space(client, server.base, space)
        behind = server.log_text().count("behind; skipping ahead")
        if behind:
            notes.append(f"Podium's stage fell behind real time {behind} time(s) under load (see its log)")
    return runs, snapshot, notes


# -- report ------------------------------------------------------------------------------------


def report(runs: list[WrkRun], snapshot: Snapshot, notes: list[str], args: argparse.Namespace) -> str:
    lines = ["## Throughput: Podium's origin against nginx, same requests", "", *harness.header_lines()]
    lines += [
        f"- wrk: `{wrk_command_text(args, args.duration)}`, each server in turn, {args.rounds} round(s), "
        f"after a {args.warmup} s warm-up each; nginx {nginx_version()} with {args.nginx_workers} worker(s); "
        f"Podium is one process",
        "",
        f"Requests alternate between `live.m3u8` (no query: answered at once) and the newest {KEEP_PARTS} parts "
        "it names (served from memory by Podium). nginx serves a snapshot of the same files, taken over HTTP "
        "from Podium, with the same "
        f"Cache-Control headers (playlist {snapshot.headers['playlist'].get('cache-control')!r}, parts "
        f"{snapshot.headers['part'].get('cache-control')!r}). wrk, the servers and the speaker share the machine. "
        f"**Goal: Podium/nginx ≥ {GOAL_RATIO}.**",
        "",
        "| round | server | req/s | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | MB/s | errors | server CPU | wrk CPU |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        r = run.result
        errors = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"] + r["not_ok"]
        mb_s = r["bytes"] / (r["duration_us"] / 1e6) / 1e6
        cpu = f"{100 * run.cpu_s / run.wall_s:.0f}%" if run.wall_s else "n/a"
        wrk_cpu = f"{100 * run.wrk_cpu_s / run.wall_s:.0f}%" if run.wall_s else "n/a"
        lines.append(
            f"| {run.round} | {run.server} | {run.rps:,.0f} | {r['p50_us'] / 1000:.2f} | {r['p90_us'] / 1000:.2f} | "
            f"{r['p99_us'] / 1000:.2f} | {r['max_us'] / 1000:.1f} | {mb_s:.1f} | {errors} | {cpu} | {wrk_cpu} |"
        )
    podium = [run.rps for run in runs if run.server == "Podium"]
    nginx = [run.rps for run in runs if run.server == "nginx"]
    ratios = [p / n for p, n in zip(podium, nginx, strict=True) if n]
    lines.append("")
    if ratios:
        # The median round: other work on a shared machine lands on one round more than on the others.
        median = statistics.median(ratios)
        verdict = "met" if median >= GOAL_RATIO else "**not met**"
        each = ", ".join(f"{r:.2f}" for r in ratios)
        lines.append(
            f"**Podium/nginx requests per second: {median:.2f}** (median round; per round: {each}); "
            f"goal ≥ {GOAL_RATIO}: {verdict}."
        )
    lines += ["", "Notes:", ""]
    lines.append(
        "- Podium's playlist is an EVENT playlist that lists every segment since the start (bet 4: it is the "
        "recording), so it grows by about 70 bytes per 2.048 s segment; nginx's snapshot is taken again after "
        "each Podium run, so both serve playlists of about the same length in a round"
    )
    lines.append(
        "- server CPU, wrk CPU: CPU time of the server's processes (nginx: master and workers), and of wrk, over "
        "the run's wall time (100% = one CPU)"
    )
    for run in runs:
        r = run.result
        lines += [f"- round {run.round}, {run.server}: {note}" for note in run.notes]
        if r["not_ok"] or r["timeouts"] or r["connect_errors"] or r["read_errors"]:
            lines.append(
                f"- round {run.round}, {run.server}: {r['not_ok']} non-200 answer(s) (status{r['not_ok_codes']}; "
                f"first: `{r['not_ok_example'][:160]}`), {r['timeouts']} timeout(s), "
                f"{r['connect_errors']} connect and {r['read_errors']} read error(s)"
            )
        lines.append(f"- round {run.round}, {run.server}: {r['playlists']} playlists and {r['parts']} parts answered")
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a CI smoke run: one 5 s round")
    parser.add_argument("--duration", type=int, help="seconds per wrk run (default 15, quick 5)")
    parser.add_argument("--rounds", type=int, help="Podium-then-nginx rounds (default 3, quick 1)")
    parser.add_argument("--warmup", type=int, help="seconds of unmeasured wrk before each run (default 3, quick 1)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--nginx-workers", type=int, default=1, help="nginx worker processes (default 1)")
    parser.add_argument("--no-write", action="store_true", help="print the results, leave RESULTS.md alone")
    args = parser.parse_args()
    args.duration = args.duration or (5 if args.quick else 15)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    if args.duration > 120 or args.rounds > 5:
        parser.error("keep it bounded: --duration ≤ 120 and --rounds ≤ 5")
    for tool in (NGINX, WRK):
        if not os.path.exists(tool) and shutil.which(Path(tool).name) is None:
            parser.error(f"{tool} is not installed")
    runs, snapshot, notes = asyncio.run(measure(args))
    text = report(runs, snapshot, notes, args)
    print(text)
    if not args.no_write:
        harness.write_section("throughput", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
