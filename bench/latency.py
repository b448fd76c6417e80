"""Mouth-to-ear delay through Podium's LL-HLS, measured with clients Podium did not write.

A WHIP speaker sends silence with a click every 3 s; each click is 1-4 short 2 kHz bursts
(40 ms apart), the count being the click's number mod 4, so a listener can tell clicks apart even
when the delay exceeds the 3 s interval. The send time of a click is `SampleTrack.sent_at` of its
first frame. Listeners:

- ffmpeg's hls demuxer decoding to s16le on a pipe; each chunk is timestamped (time.time()) when
  read, and a click's delay is the arrival of the chunk holding its first burst minus its send time.
  ffmpeg does not pace its output, so a "paced playout" figure is added: the same audio played in
  real time from its first sample, stalling when it runs dry (what a zero-buffer player would do).
- hls.js (Podium's listener page) in headless Chromium; page JS polls `window.podium.analyser` on
  requestAnimationFrame and reports when each burst is rendered (performance.timeOrigin + now()).

Usage: python bench/latency.py [--quick] [--clicks N] [--no-browser] [--no-ffmpeg]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import harness
import httpx
import numpy as np
import numpy.typing as npt

from podium.media.mixer import FRAME_SAMPLES, SAMPLE_RATE
from podium.testing.whip_client import Publisher, SampleTrack, publish

CLICK_EVERY_FRAMES = 150  # 3 s of 20 ms frames
FIRST_CLICK_FRAME = 150
BURST_SAMPLES = SAMPLE_RATE * 5 // 1000  # 5 ms
BURST_HZ = 2000.0
BURST_GAP_FRAMES = 2  # bursts of one click start 40 ms apart
MAX_BURSTS = 4
# A burst starts where the decoded level first passes ONSET after at least QUIET_MS below QUIET.
ONSET = 0.3
QUIET = 0.1
QUIET_MS = 15
# Bursts whose onsets fall within GROUP_MS of a click's first burst belong to that click.
GROUP_MS = 200
# Clicks heard in the first WARMUP_S of a listener's audio are dropped: a client starts by
# fetching audio that is already old, which measures its start-up, not the stream's delay.
WARMUP_S = 3.0
GOAL_P50_S = 2.5

_BURST = (np.sin(2 * np.pi * BURST_HZ * np.arange(BURST_SAMPLES) / SAMPLE_RATE) * 32767 * 0.99).astype(np.int16)
_SILENCE = np.zeros(FRAME_SAMPLES, dtype=np.int16)


def bursts_of(click: int) -> int:
    return click % MAX_BURSTS + 1


def click_source(n: int) -> npt.NDArray[np.int16]:
    """Frame n of the speaker's signal: silence, and the bursts of a click every 3 s."""
    m = n - FIRST_CLICK_FRAME
    if m < 0:
        return _SILENCE
    click, offset = divmod(m, CLICK_EVERY_FRAMES)
    burst, rest = divmod(offset, BURST_GAP_FRAMES)
    if rest != 0 or burst >= bursts_of(click):
        return _SILENCE
    frame = _SILENCE.copy()
    frame[:BURST_SAMPLES] = _BURST
    return frame


def click_send_times(track: SampleTrack) -> dict[int, float]:
    """Click number → wall time its first burst was handed to the encoder."""
    out = {}
    for n, sent in track.sent_at.items():
        m = n - FIRST_CLICK_FRAME
        if m >= 0 and m % CLICK_EVERY_FRAMES == 0:
            out[m // CLICK_EVERY_FRAMES] = sent
    return out


# -- matching heard clicks to sent clicks ------------------------------------------------------


@dataclass(frozen=True)
class Heard:
    """A click as a listener heard it: when its first burst arrived, how many bursts it had."""

    at: float  # wall time, seconds
    bursts: int
    extra: dict[str, float] = field(default_factory=dict)  # other timings of the same click


def group_onsets(onsets: list[tuple[float, dict[str, float]]]) -> list[Heard]:
    """Burst onsets (stream time in seconds, timings) → clicks. Onsets must be in stream order."""
    clicks: list[Heard] = []
    group_start: float | None = None
    count = 0
    first: dict[str, float] = {}
    for stream_s, timings in onsets:
        if group_start is not None and stream_s - group_start <= GROUP_MS / 1000:
            count += 1
            continue
        if group_start is not None:
            clicks.append(Heard(first["at"], count, first))
        group_start, count, first = stream_s, 1, timings
    if group_start is not None:
        clicks.append(Heard(first["at"], count, first))
    return clicks


def match(heard: list[Heard], sent: dict[int, float]) -> tuple[list[tuple[int, Heard]], int]:
    """Pair each heard click with the newest sent click having its burst count, sent before it was heard.

    Returns the pairs and how many heard clicks matched nothing (a miscounted or spurious click)."""
    pairs: list[tuple[int, Heard]] = []
    unmatched = 0
    for click in heard:
        candidates = [k for k, t in sent.items() if bursts_of(k) == click.bursts and t < click.at]
        if not candidates or click.bursts > MAX_BURSTS:
            unmatched += 1
            continue
        k = max(candidates)
        if click.at - sent[k] > CLICK_EVERY_FRAMES * FRAME_SAMPLES / SAMPLE_RATE * MAX_BURSTS:
            unmatched += 1
            continue
        pairs.append((k, click))
    return pairs, unmatched


# -- the ffmpeg listener -----------------------------------------------------------------------


class PcmClickDetector:
    """Finds burst onsets in s16le mono audio arriving in chunks; remembers when each chunk arrived."""

    BLOCK = SAMPLE_RATE // 1000  # levels are judged per 1 ms block

    def __init__(self) -> None:
        self.first_arrival: float | None = None
        self.onsets: list[tuple[float, dict[str, float]]] = []
        self._samples = np.zeros(0, dtype=np.float32)  # not yet judged (less than a block)
        self._judged = 0  # samples judged so far
        self._chunks: list[tuple[int, float, float]] = []  # (first sample, arrival, paced play time)
        self._received = 0
        self._play_end: float | None = None
        self._carry = b""
        self._armed = True
        self._quiet_blocks = 0

    def feed(self, data: bytes, arrival: float) -> None:
        data = self._carry + data
        usable = len(data) - len(data) % 2
        self._carry = data[usable:]
        samples = np.frombuffer(data[:usable], dtype=np.int16).astype(np.float32) / 32768.0
        if len(samples) == 0:
            return
        if self.first_arrival is None:
            self.first_arrival = arrival
        # Paced playout: play from the first sample on, in real time, waiting whenever audio is missing.
        play_start = arrival if self._play_end is None else max(arrival, self._play_end)
        self._play_end = play_start + len(samples) / SAMPLE_RATE
        self._chunks.append((self._received, arrival, play_start))
        self._received += len(samples)
        self._samples = np.concatenate((self._samples, samples))
        blocks = len(self._samples) // self.BLOCK
        if blocks == 0:
            return
        level = np.abs(self._samples[: blocks * self.BLOCK]).reshape(blocks, self.BLOCK)
        peaks = level.max(axis=1)
        quiet_blocks_needed = QUIET_MS
        for b in range(blocks):
            if self._armed and peaks[b] >= ONSET:
                offset = int(np.flatnonzero(level[b] >= ONSET)[0])
                self._onset(self._judged + b * self.BLOCK + offset)
                self._armed = False
                self._quiet_blocks = 0
            elif not self._armed:
                self._quiet_blocks = self._quiet_blocks + 1 if peaks[b] < QUIET else 0
                if self._quiet_blocks >= quiet_blocks_needed:
                    self._armed = True
        self._judged += blocks * self.BLOCK
        self._samples = self._samples[blocks * self.BLOCK :]

    def _onset(self, sample: int) -> None:
        index = bisect.bisect_right(self._chunks, sample, key=lambda c: c[0]) - 1
        first, arrival, play_start = self._chunks[index]
        stream_s = sample / SAMPLE_RATE
        paced = play_start + (sample - first) / SAMPLE_RATE
        self.onsets.append((stream_s, {"at": arrival, "paced": paced, "stream_s": stream_s}))


@dataclass
class Listening:
    """What one client heard: its clicks, and facts worth printing next to the figures."""

    client: str
    heard: list[Heard]
    notes: list[str] = field(default_factory=list)
    # Other timings of the same clicks, keyed as in Heard.extra, with a label for the table.
    variants: dict[str, str] = field(default_factory=dict)


def ffmpeg_command(url: str) -> list[str]:
    return [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning",
        # Low-latency-friendly input: no input buffering, start at the newest complete segment.
        "-fflags", "nobuffer", "-flags", "low_delay",
        "-probesize", "32768", "-analyzeduration", "0",
        "-live_start_index", "-1",
        "-i", url,
        "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le",
        # Write every packet at once instead of filling a 32 KiB buffer (0.34 s of audio) first.
        "-flush_packets", "1",
        "pipe:1",
    ]  # fmt: skip


async def listen_ffmpeg(url: str, wanted: int, timeout_s: float) -> Listening:
    detector = PcmClickDetector()
    command = ffmpeg_command(url)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    stdout_fd = proc.stdout.fileno()

    def read_audio() -> None:
        # A thread of its own, so arrival times do not wait for the event loop (which runs the speaker).
        while True:
            data = os.read(stdout_fd, 65536)
            arrival = time.time()
            if not data:
                return
            detector.feed(data, arrival)

    stderr_lines: list[str] = []

    def read_stderr() -> None:
        for raw in proc.stderr:  # type: ignore[union-attr]
            if len(stderr_lines) < 200:
                stderr_lines.append(raw.decode(errors="replace").rstrip())

    readers = [threading.Thread(target=read_audio, daemon=True), threading.Thread(target=read_stderr, daemon=True)]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            await asyncio.sleep(0.25)
            if len(_after_warmup(group_onsets(list(detector.onsets)))) >= wanted:
                await asyncio.sleep(GROUP_MS / 1000 + 0.3)  # let the last click's bursts in
                break
    finally:
        harness.stop_process(proc, "ffmpeg", grace_s=5, sig=signal.SIGINT)
        for reader in readers:
            reader.join(timeout=5)
    heard = _after_warmup(group_onsets(list(detector.onsets)))
    notes = [f"ffmpeg command: `{' '.join(command[:-1])} pipe:1` (URL: the space's `index.m3u8`)"]
    if proc.returncode not in (0, 255) or detector.first_arrival is None:
        notes.append(f"ffmpeg exited with {proc.returncode}; its last messages: {stderr_lines[-5:]}")
    elif stderr_lines:
        notes.append(f"ffmpeg printed {len(stderr_lines)} warning line(s), e.g. `{stderr_lines[0]}`")
    return Listening("ffmpeg (hls demuxer)", heard, notes, {"paced": "ffmpeg, paced playout (simulated)"})


def _after_warmup(heard: list[Heard]) -> list[Heard]:
    return [h for h in heard if h.extra["stream_s"] >= WARMUP_S]


# -- the hls.js listener in headless Chromium --------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Installed in the listener page once it plays. Judges every sample the analyser shows once:
# the window ends at the audio context's current frame, so frames already judged are skipped.
PROBE_JS = """
(cfg) => {
  const p = window.podium, an = p.analyser, ctx = p.audioContext;
  const n = an.fftSize, sr = ctx.sampleRate, buf = new Float32Array(n);
  const quietNeeded = Math.round(sr * cfg.quietMs / 1000);
  const s = window.__bench = {
    onsets: [], sampleRate: sr, fftSize: n, polls: 0, gaps: 0, maxPollGapMs: 0, stop: false,
    started: performance.timeOrigin + performance.now(),
    baseLatency: ctx.baseLatency, outputLatency: ctx.outputLatency,
  };
  let lastFrame = null, armed = true, quietRun = 0, lastWall = null;
  function poll() {
    const wall = performance.timeOrigin + performance.now();
    an.getFloatTimeDomainData(buf);
    const endFrame = Math.round(ctx.currentTime * sr);
    const out = ctx.getOutputTimestamp ? ctx.getOutputTimestamp() : null;
    s.polls++;
    if (lastWall !== null) s.maxPollGapMs = Math.max(s.maxPollGapMs, wall - lastWall);
    lastWall = wall;
    if (lastFrame === null || endFrame > lastFrame) {
      let from = 0;
      if (lastFrame !== null) {
        if (endFrame - lastFrame > n) s.gaps++;
        from = Math.max(0, n - (endFrame - lastFrame));
      }
      for (let i = from; i < n; i++) {
        const v = Math.abs(buf[i]);
        if (armed) {
          if (v >= cfg.onset) {
            const frame = endFrame - (n - i);
            const at = wall - (n - i) * 1000 / sr;
            const atOut = out && out.performanceTime > 0
              ? performance.timeOrigin + out.performanceTime + (frame / sr - out.contextTime) * 1000 : null;
            s.onsets.push({ frame, at, atOut });
            armed = false; quietRun = 0;
          }
        } else {
          quietRun = v < cfg.quiet ? quietRun + 1 : 0;
          if (quietRun >= quietNeeded) armed = true;
        }
      }
      lastFrame = endFrame;
    }
    if (!s.stop) requestAnimationFrame(poll);
  }
  requestAnimationFrame(poll);
  return { sampleRate: sr, fftSize: n };
}
"""

HLS_STATS_JS = """
() => {
  const h = window.podium.hls, a = document.getElementById('audio');
  return {
    version: window.Hls ? window.Hls.version : null,
    latency: h ? h.latency : null, targetLatency: h ? h.targetLatency : null,
    lowLatencyMode: h ? h.lowLatencyMode : null,
    currentTime: a.currentTime, buffered: a.buffered.length ? a.buffered.end(a.buffered.length - 1) : null,
  };
}
"""


async def listen_browser(page_url: str, wanted: int, timeout_s: float) -> Listening:
    from playwright.async_api import async_playwright

    notes: list[str] = []
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            requests: dict[str, int] = {}

            def count_request(request: Any) -> None:
                if "/hls/" in request.url:
                    name = request.url.rsplit("/", 1)[-1].split("?")[0]
                    requests[name] = requests.get(name, 0) + 1

            page.on("request", count_request)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" and len(errors) < 50 else None)
            page.on("pageerror", lambda e: errors.append(str(e)) if len(errors) < 50 else None)
            await page.goto(page_url)
            await page.wait_for_selector("#play:not([disabled])", timeout=20_000)
            await page.click("#play")
            # The page's CSP forbids eval, so no wait_for_function: poll with evaluate, bounded.
            for _ in range(100):
                if await page.evaluate("() => !!(window.podium && window.podium.analyser && window.podium.playing)"):
                    break
                await asyncio.sleep(0.2)
            else:
                raise RuntimeError("the listener page did not start playing within 20 s")
            await page.evaluate(PROBE_JS, {"onset": ONSET, "quiet": QUIET, "quietMs": QUIET_MS})
            deadline = time.monotonic() + timeout_s
            state: dict[str, Any] = {}
            while time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                state = await page.evaluate("() => window.__bench")
                if len(_browser_clicks(state)) >= wanted:
                    await asyncio.sleep(GROUP_MS / 1000 + 0.3)
                    break
            state = await page.evaluate("() => { window.__bench.stop = true; return window.__bench; }")
            stats = await page.evaluate(HLS_STATS_JS)
        finally:
            await browser.close()
    heard = _browser_clicks(state)
    version = await _chromium_version()
    notes.append(
        f"{version}, hls.js {stats['version']} (lowLatencyMode={stats['lowLatencyMode']}); at the end hls.js "
        f"estimated its latency at {_fmt(stats['latency'])} s (target {_fmt(stats['targetLatency'])} s)"
    )
    notes.append(
        f"analyser: {state['sampleRate']} Hz, fftSize {state['fftSize']}; {state['polls']} rAF polls, longest gap "
        f"{state['maxPollGapMs']:.0f} ms, {state['gaps']} gap(s) longer than the analyser window; "
        f"AudioContext baseLatency {_fmt(state.get('baseLatency'))} s, "
        f"outputLatency {_fmt(state.get('outputLatency'))} s"
    )
    if requests:
        top, top_count = max(requests.items(), key=lambda item: item[1])
        notes.append(
            f"hls.js made {sum(requests.values())} HLS requests for {len(requests)} distinct files; "
            f"the most requested was `{top}` ({top_count} times)"
        )
    if errors:
        notes.append(f"the page logged {len(errors)} error(s), e.g. `{errors[0][:160]}`")
    variants = {"out": "hls.js, at audio output (getOutputTimestamp)"}
    return Listening("hls.js in headless Chromium", heard, notes, variants)


def _browser_clicks(state: dict[str, Any]) -> list[Heard]:
    if not state or not state.get("onsets"):
        return []
    sr = state["sampleRate"]
    onsets = []
    for o in state["onsets"]:
        timings = {"at": o["at"] / 1000, "stream_s": o["frame"] / sr}
        if o.get("atOut") is not None:
            timings["out"] = o["atOut"] / 1000
        onsets.append((o["frame"] / sr, timings))
    heard = group_onsets(onsets)
    return [h for h in heard if h.at >= state["started"] / 1000 + WARMUP_S]


async def _chromium_version() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=20).stdout
        return out.split(" built")[0].strip() or "Chromium"
    return "Chromium"


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


# -- the run -----------------------------------------------------------------------------------


async def measure(args: argparse.Namespace) -> tuple[list[Listening], dict[int, float], list[str]]:
    listenings: list[Listening] = []
    notes: list[str] = []
    with harness.podium_server() as server:
        async with httpx.AsyncClient(timeout=30) as client:
            space = await harness.create_space(client, server.base, "latency benchmark")
            urls = space["urls"]
            track = SampleTrack(click_source)
            publisher: Publisher = await publish(server.base + urls["whip"], space["host_token"], track)
            try:
                # By default listeners join once two segments are complete: hls.js 1.7.4 joining during the
                # first one can stall for seconds (see README); --early-join measures exactly that case.
                media_url = server.base + urls["hls"].replace("index.m3u8", "live.m3u8")
                await harness.wait_for_segments(client, media_url, 1 if args.early_join else 2)
                timeout_s = args.clicks * 3 + 45
                if not args.no_ffmpeg:
                    print(f"[latency] ffmpeg listening for {args.clicks} clicks…", flush=True)
                    listenings.append(await listen_ffmpeg(server.base + urls["hls"], args.clicks, timeout_s))
                if not args.no_browser:
                    print(f"[latency] hls.js in Chromium listening for {args.clicks} clicks…", flush=True)
                    try:
                        listenings.append(await listen_browser(server.base + urls["page"], args.clicks, timeout_s))
                    except Exception as error:  # the ffmpeg figures are still worth writing
                        notes.append(f"the browser listener failed: {type(error).__name__}: {error}")
                        print(f"[latency] browser listener failed: {error!r}", file=sys.stderr)
            finally:
                await publisher.close()
                await harness.end_space(client, server.base, space)
        behind = server.log_text().count("behind; skipping ahead")
        if behind:
            notes.append(f"Podium's stage fell behind real time {behind} time(s) during the run (see its log)")
    sent = click_send_times(track)
    return listenings, sent, notes


def report(listenings: list[Listening], sent: dict[int, float], notes: list[str], wanted: int) -> str:
    lines = ["## Latency: mouth to ear through LL-HLS", "", *harness.header_lines(), ""]
    lines += [
        f"A WHIP speaker (aiortc, loopback) sends silence with a click every 3 s (1-4 bursts of 5 ms at "
        f"{BURST_HZ:.0f} Hz, full scale); delay = when the listener got the click's first burst - when that "
        f"frame was handed to the speaker's encoder. Clicks in a listener's first {WARMUP_S:.0f} s are dropped "
        f"(start-up). Percentiles are nearest-rank. **Goal: p50 ≤ {GOAL_P50_S} s.**",
        "",
        "| client | clicks | p50 (s) | p95 (s) | max (s) | min (s) | goal p50 ≤ 2.5 s |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    details: list[str] = []
    for listening in listenings:
        pairs, unmatched = match(listening.heard, sent)
        rows = [("at", listening.client), *listening.variants.items()]
        for key, label in rows:
            delays = [h.extra[key] - sent[k] for k, h in pairs if key in h.extra]
            if not delays:
                lines.append(f"| {label} | 0 | - | - | - | - | no clicks heard |")
                continue
            p50 = harness.percentile(delays, 50)
            verdict = "met" if p50 <= GOAL_P50_S else "**not met**"
            short = f" (wanted {wanted})" if len(delays) < wanted else ""
            lines.append(
                f"| {label} | {len(delays)}{short} | {p50:.3f} | {harness.percentile(delays, 95):.3f} | "
                f"{max(delays):.3f} | {min(delays):.3f} | {verdict} |"
            )
            details.append(f"- {label}: " + ", ".join(f"{d:.2f}" for d in delays))
        if unmatched:
            listening.notes.append(f"{unmatched} heard click(s) matched no sent click (miscounted bursts?)")
    lines += ["", "Each delay in seconds, in order:", "", *details, "", "Notes:", ""]
    for listening in listenings:
        lines += [f"- {listening.client}: {note}" for note in listening.notes]
    lines += [f"- {note}" for note in notes]
    lines.append(
        "- ffmpeg's hls demuxer ignores EXT-X-PART and blocking reload: it fetches whole 2.048 s segments when "
        "it reloads the playlist, so it shows what a plain (non-LL) HLS client gets from the same stream. It "
        "re-reads the playlist about every 2.11 s (measured; its reload wait sleeps in 100 ms steps), so it falls "
        "~60 ms further behind with every segment until it skips one: its delays climb through a run, and its "
        "figures depend on the run's length."
    )
    lines.append(
        "- hls.js settles at some distance from the live edge when it starts (PART-HOLD-BACK is 1.536 s) and "
        "keeps it: its delays hardly vary within a run, but differ by a few tenths of a second between runs."
    )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a CI smoke run: 3 clicks per client")
    parser.add_argument("--clicks", type=int, help="clicks to measure per client (default 15, quick 3)")
    parser.add_argument("--no-browser", action="store_true", help="skip hls.js in Chromium")
    parser.add_argument("--no-ffmpeg", action="store_true", help="skip ffmpeg")
    parser.add_argument("--early-join", action="store_true", help="join as soon as the first segment is complete")
    parser.add_argument("--no-write", action="store_true", help="print the results, leave RESULTS.md alone")
    args = parser.parse_args()
    if args.clicks is None:
        args.clicks = 3 if args.quick else 15
    if not args.no_ffmpeg and shutil.which("ffmpeg") is None:
        parser.error("ffmpeg is not installed (or pass --no-ffmpeg)")
    if not args.no_browser and not os.path.exists(CHROMIUM):
        print(f"[latency] {CHROMIUM} not found; skipping the browser listener", file=sys.stderr)
        args.no_browser = True
    listenings, sent, notes = asyncio.run(measure(args))
    text = report(listenings, sent, notes, args.clicks)
    print(text)
    if not args.no_write:
        harness.write_section("latency", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
