"""`podium rehearse URL`: a dress rehearsal of a deployment before the crowd comes.

Simulated listeners join a live space (or its pre-show) along a flash-crowd curve, each as the
listener page does: the space's state, the join (waiting in line, solving the puzzle when asked),
both playlists, the init section, then the newest part; time to first audio runs from the start of
its join to the last byte of that part. Joined listeners stay, beating and reloading the playlist.
A flood may run alongside: forged WHIP tokens, random paths, forged and replayed join tickets, and
slow connections that send their headers a byte at a time.

The verdict is GO when ≥ 99 % of joins succeed, first audio's p95 is ≤ 3 s and no legitimate
request got a 5xx. The command refuses no target: point it only at your own deployment.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import math
import random
import re
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from podium import urls
from podium.ops.cli import progress_bar
from podium.web.urls import url_path

# Classes of requests, as the admission control ranks them.
JOIN, PLAYLIST, MEDIA, BEAT, FLOOD = "join", "playlist", "media", "heartbeat", "flood"
MAX_LISTENERS = 20_000
MAX_DURATION_S = 600.0
SUCCESS_GOAL, TTFA_P95_GOAL_S = 0.99, 3.0  # GO: at least this share of joins, first audio's p95 within this
TIMEOUT_S = 10.0  # of one request
MAX_WAIT_S = 120.0  # how long a simulated listener stays in line before giving up
# Simulated listeners per HTTP client, and connections in all (see `Rehearsal.run`).
LISTENERS_PER_CLIENT = 100
MAX_CONNECTIONS = 1000


@dataclass
class Plan:
    base: str
    space: str
    listeners: int
    peak_joins_per_s: float
    flood_per_s: float = 0.0
    stay_s: float = 10.0
    slow_connections: int = 0

    def join_times(self) -> list[float]:
        """When each listener starts joining, seconds from the start: the rate rises linearly to its
        peak over the first third of the joins, then holds."""
        ramp_joins = self.listeners / 3
        # Joins during a linear ramp from 0 to R over T seconds: R*T/2; so T = 2*ramp_joins/R.
        ramp_s = 2 * ramp_joins / self.peak_joins_per_s
        times = []
        for k in range(self.listeners):
            if k < ramp_joins:
                times.append(math.sqrt(2 * k * ramp_s / self.peak_joins_per_s))
            else:
                times.append(ramp_s + (k - ramp_joins) / self.peak_joins_per_s)
        return times


@dataclass
class Tally:
    answers: dict[str, Counter[str]] = field(default_factory=dict)
    ttfa_s: list[float] = field(default_factory=list)
    joined: int = 0
    failed: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    flood_sent: int = 0
    slow_closed: int = 0
    slow_open_at_end: int = 0
    answered_per_s: Counter[int] = field(default_factory=Counter)
    admitted_per_s: Counter[int] = field(default_factory=Counter)
    waited_s: list[float] = field(default_factory=list)  # of those who were told to wait
    max_position: int = 0
    puzzles: int = 0
    no_retry_after: int = 0  # 202/429/503 answers without Retry-After (there should be none)
    used_tickets: list[tuple[str, str]] = field(default_factory=list)  # (client id, ticket) for the flood

    def note(self, klass: str, status: int | str, started: float) -> None:
        self.answers.setdefault(klass, Counter())[str(status)] += 1
        self.answered_per_s[int(time.monotonic() - started)] += 1


def parse_target(url: str, space: str | None) -> tuple[str, str]:
    """The instance's base address and the space id, from a space's page URL or a base and --space."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not an http(s) address")
    base = f"{parts.scheme}://{parts.netloc}"
    found = re.fullmatch(r"/(?:s|host)/([A-Za-z0-9_-]+)/?", parts.path)
    space_id = space or (found.group(1) if found else None)
    if not space_id:
        raise ValueError("give the space's page address (…/s/ID) or --space ID")
    return base, space_id


def solve_puzzle(challenge: str, bits: int) -> int:
    """The counter whose SHA-256 with the challenge starts with `bits` zero bits (as the page finds it)."""
    for counter in itertools.count():
        digest = int.from_bytes(hashlib.sha256(f"{challenge}:{counter}".encode()).digest()[:8], "big")
        if digest >> (64 - bits) == 0:
            return counter
    raise AssertionError("unreachable")


def junk_join(k: int, used: list[tuple[str, str]]) -> dict[str, Any]:
    """What a flood sends to the join call: forged tickets and passes, tickets of another space's
    shape, and replays of tickets real listeners already used."""
    client_id = secrets.token_hex(12)
    kind = k % 3
    if kind == 0 and used:
        owner, ticket = used[k % len(used)]
        return {"client_id": owner, "ticket": ticket}  # replayed: already used once
    if kind == 1:
        return {"client_id": client_id, "pass": secrets.token_urlsafe(40) + "." + secrets.token_urlsafe(8)}
    forged = f"eyJzIjoi{secrets.token_urlsafe(30)}.{secrets.token_urlsafe(6)}.{secrets.token_urlsafe(20)}"
    return {"client_id": client_id, "ticket": forged}


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


class Rehearsal:
    def __init__(self, plan: Plan, progress: bool = True) -> None:
        self.plan = plan
        self.tally = Tally()
        self.progress = progress
        self._started = 0.0
        self._stop = asyncio.Event()
        # The space's addresses by route name (`podium.web.routes`), built before the clock starts.
        routes = ("getSpace", "join", "heartbeat", "whipPublish", "hls.index", "hls.live", "hls.init")
        self.urls = {route: plan.base + url_path(route, space_id=plan.space) for route in routes}
        # The stream's folder (`urls.HLS`, where route "hls.file" serves parts and segments).
        self.urls["hls"] = plan.base + urls.fill(urls.HLS, space_id=plan.space)

    async def _send(
        self, client: httpx.AsyncClient, klass: str, url: str, method: str = "GET", **request: Any
    ) -> httpx.Response | None:
        """The request, its answer (or its error's name) counted under `klass`; None if it got no answer."""
        try:
            response = await client.request(method, url, **request)
        except httpx.HTTPError as error:
            self.tally.note(klass, type(error).__name__, self._started)
            return None
        self.tally.note(klass, response.status_code, self._started)
        return response

    async def listener(self, client: httpx.AsyncClient, start_at: float) -> None:
        plan = self.plan
        await asyncio.sleep(max(0.0, start_at - (time.monotonic() - self._started)))
        began = time.monotonic()
        listener_id = secrets.token_hex(12)
        state = await self._send(client, JOIN, self.urls["getSpace"])
        if state is None or state.status_code != 200:
            self._fail("the space's state")
            return
        view = state.json()
        if view.get("state") != "live" and not view.get("preshow"):
            self._fail("the space is not live")
            return
        listener_pass = await self.join(client, listener_id, began)
        if listener_pass is None:
            return
        answers: dict[str, httpx.Response] = {}
        for klass, route, what in (
            (PLAYLIST, "hls.index", "the multivariant playlist"),
            (PLAYLIST, "hls.live", "the media playlist"),
            (MEDIA, "hls.init", "the init section"),
        ):
            answer = await self._send(client, klass, self.urls[route])
            if answer is None or answer.status_code != 200:
                self._fail(what)
                return
            answers[route] = answer
        media = await self._newest_part(client, answers["hls.live"].text)
        if media is not None and media.status_code == 404:
            # The playlist was older than its parts (a slow client, a stale cache; parts are kept
            # for the last few segments only): like a player, this listener reloads it and asks
            # for the newest part again, then falls back to the newest whole segment.
            playlist = await self._send(client, PLAYLIST, self.urls["hls.live"])
            media = await self._newest_part(client, playlist.text) if playlist is not None else None
            if playlist is not None and (media is None or media.status_code == 404):
                media = await self._newest_part(client, playlist.text, whole_segment=True)
        if media is None or media.status_code != 200 or not media.content:
            self._fail("the first part")
            return
        self.tally.ttfa_s.append(time.monotonic() - began)
        self.tally.joined += 1
        # Staying: a heartbeat and a playlist reload every few seconds, until the run ends.
        until = time.monotonic() + plan.stay_s
        while time.monotonic() < until and not self._stop.is_set():
            body = {"listener_id": listener_id, "pass": listener_pass}
            await self._send(client, BEAT, self.urls["heartbeat"], "POST", json=body)
            await self._send(client, PLAYLIST, self.urls["hls.live"] + "?_HLS_skip=YES")
            await asyncio.sleep(random.uniform(2.0, 4.0))

    async def _newest_part(
        self, client: httpx.AsyncClient, playlist: str, whole_segment: bool = False
    ) -> httpx.Response | None:
        parts = [] if whole_segment else re.findall(r'#EXT-X-PART:[^\n]*URI="([^"]+)"', playlist)
        segments = re.findall(r"^(s\d+\.m4s)$", playlist, re.M)
        newest = parts[-1] if parts else (segments[-1] if segments else None)
        return await self._send(client, MEDIA, self.urls["hls"] + newest) if newest else None

    async def join(self, client: httpx.AsyncClient, client_id: str, began: float) -> str | None:
        """The join call as the page makes it: in line until let in, the puzzle when asked.
        Returns the pass the heartbeats carry, or None when this listener did not get in."""
        body: dict[str, Any] = {"client_id": client_id}
        waited = False
        deadline = time.monotonic() + MAX_WAIT_S
        while time.monotonic() < deadline and not self._stop.is_set():
            response = await self._send(client, JOIN, self.urls["join"], "POST", json=body)
            if response is None:
                await asyncio.sleep(1.0)
                continue
            data = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
            retry = response.headers.get("retry-after")
            if response.status_code in (202, 429, 503) and retry is None:
                self.tally.no_retry_after += 1
            if response.status_code == 200:
                self.tally.admitted_per_s[int(time.monotonic() - self._started)] += 1
                if waited:
                    self.tally.waited_s.append(time.monotonic() - began)
                if "ticket" in body and len(self.tally.used_tickets) < 1000:
                    self.tally.used_tickets.append((client_id, body["ticket"]))
                return str(data.get("pass", ""))
            if response.status_code == 202 and "challenge" in data:
                self.tally.puzzles += 1
                counter = await asyncio.to_thread(solve_puzzle, data["challenge"], int(data["difficulty_bits"]))
                body = {"client_id": client_id, "challenge": data["challenge"], "counter": counter}
                continue
            if response.status_code == 202:
                waited = True
                self.tally.max_position = max(self.tally.max_position, int(data.get("position", 0)))
                body = {"client_id": client_id, "ticket": data["ticket"]}
                if "solved" in data:
                    body["solved"] = data["solved"]
            elif response.status_code not in (429, 503):
                self._fail(f"the join ({response.status_code})")
                return None
            # In line: when the place is due, to the millisecond, as the page does; else Retry-After.
            due_ms = data.get("retry_after_ms") if response.status_code == 202 else None
            wait_s = due_ms / 1000 if isinstance(due_ms, int) else float(retry or 1)
            await asyncio.sleep(wait_s + random.uniform(0, 0.3))
        self._fail("the join (still in line at the end)")
        return None

    def _fail(self, what: str) -> None:
        self.tally.failed += 1
        self.tally.failures[what] += 1

    async def flood(self, client: httpx.AsyncClient, until: float) -> None:
        """Forged WHIP tokens and random paths, at the planned rate, until `until` (run time)."""
        plan = self.plan
        if plan.flood_per_s <= 0:
            return
        interval = 1 / plan.flood_per_s
        tasks: set[asyncio.Task[None]] = set()

        async def one(k: int) -> None:
            if k % 4 == 2:
                junk = junk_join(k, self.tally.used_tickets)
                await self._send(client, FLOOD, self.urls["join"], "POST", json=junk)
            elif k % 2:
                forged = {"Authorization": f"Bearer m.{secrets.token_urlsafe(48)}", "Content-Type": "application/sdp"}
                await self._send(client, FLOOD, self.urls["whipPublish"], "POST", content=b"v=0\r\n", headers=forged)
            else:
                await self._send(client, FLOOD, f"{plan.base}/{secrets.token_hex(6)}/{secrets.token_hex(4)}")

        while time.monotonic() - self._started < until and not self._stop.is_set():
            task = asyncio.create_task(one(self.tally.flood_sent))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            self.tally.flood_sent += 1
            await asyncio.sleep(interval)
        if tasks:
            await asyncio.wait(tasks, timeout=TIMEOUT_S)

    async def slow_connection(self, until: float) -> None:
        """Opens a connection and sends a request's headers a byte a second; notes if the server closes it."""
        parts = urlsplit(self.plan.base)
        host = parts.hostname or "127.0.0.1"
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            reader, writer = await asyncio.open_connection(host, port, ssl=parts.scheme == "https" or None)
        except OSError:
            return
        request = f"GET {url_path('getSpace', space_id=self.plan.space)} HTTP/1.1\r\nHost: {host}\r\nX-Slow: ".encode()
        try:
            for byte in request + b"x" * 600:
                if time.monotonic() - self._started >= until:
                    self.tally.slow_open_at_end += 1
                    return
                writer.write(bytes([byte]))
                await writer.drain()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(reader.read(1024), 1.0)
                    # Anything back before our head is whole is the server cutting us: end of
                    # stream, or a 408 and then the end.
                    self.tally.slow_closed += 1
                    return
        except (ConnectionError, OSError):
            self.tally.slow_closed += 1
        finally:
            writer.close()

    async def run(self) -> dict[str, Any]:
        plan = self.plan
        times = plan.join_times()
        last_join = times[-1] if times else 0.0
        # Room for the last to wait in line, then stay: the run ends earlier once all are done.
        run_s = min(MAX_DURATION_S, last_join + MAX_WAIT_S + plan.stay_s + TIMEOUT_S)
        # Listeners share clients in groups of LISTENERS_PER_CLIENT: a connection pool finds a free
        # connection by scanning all of its waiting requests, so one pool for thousands of listeners
        # spends the load generator's CPU on itself instead of on requests.
        groups = max(1, math.ceil(plan.listeners / LISTENERS_PER_CLIENT))
        per_client = max(10, MAX_CONNECTIONS // groups)
        limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=min(per_client, 200))
        self._started = time.monotonic()
        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(httpx.AsyncClient(timeout=TIMEOUT_S, limits=limits))
                for _ in range(groups)
            ]
            listeners = [asyncio.create_task(self.listener(clients[n % groups], t)) for n, t in enumerate(times)]
            end = last_join + plan.stay_s
            side = [asyncio.create_task(self.slow_connection(end)) for _ in range(plan.slow_connections)]
            side.append(asyncio.create_task(self.flood(clients[0], end)))
            shower = [asyncio.create_task(self._show_progress(len(times)))] if self.progress else []
            _done, pending = await asyncio.wait(listeners + side, timeout=run_s)
            self._stop.set()
            for task in [*pending, *shower]:
                task.cancel()
            for task in [*pending, *shower]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        elapsed = time.monotonic() - self._started
        return self.report(elapsed)

    async def _show_progress(self, total: int) -> None:
        while True:
            done = self.tally.joined + self.tally.failed
            p95 = percentile(self.tally.ttfa_s, 95)
            print(
                f"\r  joins {progress_bar(done, total)}"
                f"  failed {self.tally.failed}  first audio p95 {p95 or 0:.2f} s"
                f"  flood {self.tally.flood_sent}   ",
                end="",
                file=sys.stderr,
                flush=True,
            )
            if done >= total:
                print(file=sys.stderr)
                return
            await asyncio.sleep(0.5)

    def report(self, elapsed_s: float) -> dict[str, Any]:
        plan, tally = self.plan, self.tally
        attempted = tally.joined + tally.failed
        success = tally.joined / attempted if attempted else 0.0
        legit = [JOIN, PLAYLIST, MEDIA, BEAT]
        server_errors = {
            k: sum(n for status, n in tally.answers.get(k, Counter()).items() if status.startswith("5")) for k in legit
        }
        shed = {
            k: sum(n for status, n in counts.items() if status in ("429", "503")) for k, counts in tally.answers.items()
        }
        ttfa = {f"p{p}": percentile(tally.ttfa_s, p) for p in (50, 95, 99)}
        reasons = []
        if success < SUCCESS_GOAL:
            reasons.append(f"joins succeeded {success:.1%} < {SUCCESS_GOAL:.0%}")
        if ttfa["p95"] is None or ttfa["p95"] > TTFA_P95_GOAL_S:
            reasons.append(f"first audio p95 {ttfa['p95'] or float('nan'):.2f} s > {TTFA_P95_GOAL_S:.1f} s")
        if tally.no_retry_after:
            reasons.append(f"{tally.no_retry_after} wait or shed answer(s) without Retry-After")
        if sum(server_errors.values()):
            reasons.append(f"{sum(server_errors.values())} legitimate request(s) got a 5xx")
        per_s = [tally.answered_per_s.get(s, 0) for s in range(int(elapsed_s) + 1)]
        return {
            "verdict": "GO" if not reasons else "NO-GO",
            "reasons": reasons,
            "target": {"base": plan.base, "space": plan.space},
            "plan": {
                k: getattr(plan, k)
                for k in ("listeners", "peak_joins_per_s", "flood_per_s", "slow_connections", "stay_s")
            },
            "elapsed_s": round(elapsed_s, 2),
            "joins": {
                "attempted": attempted,
                "succeeded": tally.joined,
                "success": round(success, 4),
                "failures": dict(tally.failures),
            },
            "time_to_first_audio_s": {k: None if v is None else round(v, 3) for k, v in ttfa.items()},
            "waiting_room": {
                "waited": len(tally.waited_s),
                "max_position": tally.max_position,
                "wait_s": {f"p{p}": percentile(tally.waited_s, p) for p in (50, 95)},
                "puzzles_solved": tally.puzzles,
                "answers_without_retry_after": tally.no_retry_after,
                "admitted_per_s": [tally.admitted_per_s.get(s, 0) for s in range(int(elapsed_s) + 1)],
            },
            "requests": {k: dict(v) for k, v in sorted(tally.answers.items())},
            "shed": shed,
            "legitimate_5xx": server_errors,
            "origin_answers_per_s": {"mean": round(sum(per_s) / max(elapsed_s, 1e-9), 1), "max": max(per_s or [0])},
            "flood": {
                "sent": tally.flood_sent,
                "slow_connections_closed": tally.slow_closed,
                "slow_open_at_end": tally.slow_open_at_end,
            },
        }


def render(report: dict[str, Any]) -> str:
    ttfa = report["time_to_first_audio_s"]

    def s(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f} s"

    lines = [
        f"Rehearsal of {report['target']['base']}{url_path('page.listen', space_id=report['target']['space'])} "
        f"({report['elapsed_s']:.0f} s)",
        f"  joins: {report['joins']['succeeded']}/{report['joins']['attempted']} ({report['joins']['success']:.1%})"
        + (f"; failed at: {report['joins']['failures']}" if report["joins"]["failures"] else ""),
        f"  time to first audio: p50 {s(ttfa['p50'])}, p95 {s(ttfa['p95'])}, p99 {s(ttfa['p99'])}",
        "  requests by class: " + "; ".join(f"{k} {dict(sorted(v.items()))}" for k, v in report["requests"].items()),
        f"  shed (429/503): {report['shed']}",
        "  origin answers/s: mean {mean}, max {max}".format(**report["origin_answers_per_s"]),
    ]
    room = report["waiting_room"]
    if room["waited"] or room["puzzles_solved"]:
        lines.append(
            f"  waiting room: {room['waited']} waited (longest line {room['max_position']}, "
            f"wait p50 {s(room['wait_s']['p50'])}, p95 {s(room['wait_s']['p95'])}); puzzles solved: "
            f"{room['puzzles_solved']}"
        )
    if report["plan"]["flood_per_s"] or report["plan"]["slow_connections"]:
        flood = report["flood"]
        lines.append(
            f"  flood: {flood['sent']} forged/random requests; slow connections closed by the server: "
            f"{flood['slow_connections_closed']}, still open at the end: {flood['slow_open_at_end']}"
        )
    verdict = report["verdict"]
    lines.append(f"VERDICT: {verdict}" + (f" ({'; '.join(report['reasons'])})" if report["reasons"] else ""))
    return "\n".join(lines)


def run(args: Any) -> int:
    try:
        base, space = parse_target(args.url, args.space)
        if not 1 <= args.listeners <= MAX_LISTENERS:
            raise ValueError(f"--listeners must be 1 to {MAX_LISTENERS}")
        if args.peak_joins_per_s <= 0 or args.flood < 0 or args.stay <= 0:
            raise ValueError("rates and --stay must be positive")
    except ValueError as error:
        print(f"podium rehearse: {error}", file=sys.stderr)
        return 2
    plan = Plan(base, space, args.listeners, args.peak_joins_per_s, args.flood, args.stay, args.slow)
    print(
        f"Rehearsing {base}{url_path('page.listen', space_id=space)}: {plan.listeners} listeners, "
        f"joins climbing to {plan.peak_joins_per_s:g}/s"
        + (f", a flood of {plan.flood_per_s:g}/s" if plan.flood_per_s else "")
        + (f", {plan.slow_connections} slow connections" if plan.slow_connections else ""),
        file=sys.stderr,
    )
    # uvloop (a dependency of the server already) where it runs: the crowd one process can simulate
    # is bound by its event loop's cost per request.
    try:
        import uvloop

        report = uvloop.run(Rehearsal(plan, progress=not args.quiet).run())
    except ImportError:
        report = asyncio.run(Rehearsal(plan, progress=not args.quiet).run())
    print(render(report))
    path = Path(args.report)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"report: {path}")
    if args.host_token:
        answer = httpx.post(
            base + url_path("rehearse", space_id=space),
            json=report,
            headers={"Authorization": f"Bearer {args.host_token}"},
            timeout=TIMEOUT_S,
        )
        if answer.status_code == 201:
            print("the verdict is on the host's go/no-go board")
        else:
            print(f"podium rehearse: the board did not take the report ({answer.status_code})", file=sys.stderr)
    return 0 if report["verdict"] == "GO" else 1
