"""The stage (issue 3): the delay it adds between speakers, and its CPU use per speaker count.

1. Delay between speakers, in-process: a `Stage` with inputs A and B. A is fed in real time (paced by
   the loop clock, as the WebRTC ingest delivers), 20 ms at a time, silent but for a click every 500 ms;
   B's return track (its mix-minus) is read continuously. Two ingest paths: decoded frames pushed into
   A (`Stage.push`, the fallback), and Opus RTP packets handed to A's `SpeakerReception` (`Stage.receive`:
   the stage's own jitter buffer and libopus, pulled on its tick). Delay = when B's frame holding the
   click came out - when the frame or packet holding it was handed in. Each trial feeds A at another
   phase against the stage's 20 ms tick, spread evenly over one frame, since a speaker's packets arrive
   at any phase of the stage's clock; hiccup trials hold some audio back once and hand it in at once.
   Then the same end to end: two aiortc speakers on a real stage (`podium serve`, loopback), the host
   sending the clicks, the other hearing them in its mix-minus; delay = arrival of the received chunk
   holding the click - `SampleTrack.sent_at` of its frame. That adds two Opus codecs, two jitter
   buffers (the stage's, and aiortc's in the receiving speaker) and the network stack.
2. CPU: `podium serve` in a subprocess; 1, 5, 13 and 20 speakers (each a different tone, each
   receiving its mix-minus, so the server encodes one Opus stream per speaker) connected from this
   process; per step, the server's CPU time from /proc/PID/stat over a window, this (client) process's
   CPU time, and whether the stage kept real time (media time in `live.m3u8`, followed with blocking
   reloads, against wall time). The stage's own work (mixer, mix-minus, AAC, packager) without WebRTC
   is measured in-process for the same counts, to tell the two apart.

Usage: python bench/stage.py [--quick] [--no-write] [--no-plot]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import itertools
import os
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
import httpx
import numpy as np
import numpy.typing as npt

from podium.backends.files import FileMediaStore
from podium.ids import new_space_id
from podium.media import libopus
from podium.media.mixer import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, Mixer
from podium.media.reception import PAUSE_RMS, ReceptionHealth, SpeakerReception
from podium.media.stage import Stage
from podium.testing.whip_client import Publisher, SampleTrack, publish, tone

GOAL_DELAY_P95_MS = 40.0
GOAL_CPU_PCT = 30.0
GOAL_CPU_SPEAKERS = 13
SPEAKER_STEPS = (1, 5, 13, 20)
MAX_SPEAKERS = 25  # PODIUM_MAX_SPEAKERS for the server: the default (13) would refuse the 20-speaker step

FRAME_S = FRAME_MS / 1000
CLICK_EVERY_FRAMES = 25  # 500 ms
LEAD_FRAMES = 10  # pushed before the first click: the mixer primes with 40 ms
HICCUP_MS = (40, 60, 80, 100)  # the hiccup scenarios: this much audio arrives late, all at once
BURST_SAMPLES = SAMPLE_RATE * 5 // 1000  # a click: 5 ms of 2 kHz at the start of its frame
ONSET = 0.3  # a click is heard where the level first passes this (full scale 1.0) ...
QUIET = 0.1  # ... after at least QUIET_FRAMES frames below this
QUIET_FRAMES = 5
E2E_SETTLE_S = 1.0  # clicks in the listening speaker's first second are start-up, not the stage
E2E_MAX_DELAY_S = 0.45  # a longer "delay" would be a click matched to the wrong sent click
KEPT_UP = 0.98  # a CPU step whose speakers sent fewer of the frames due than this fell behind
TONE_AMPLITUDE = 0.04  # 20 tones of 0.04 add up to full scale at most: the mix never clips
PLOT = harness.BENCH_DIR / "stage-cpu.png"
PLOT_MAX_BYTES = 100_000

_BURST = (np.sin(2 * np.pi * 2000.0 * np.arange(BURST_SAMPLES) / SAMPLE_RATE) * 32767 * 0.9).astype(np.int16)
_SILENCE = np.zeros(FRAME_SAMPLES, dtype=np.int16)


_STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[stage +{time.monotonic() - _STARTED:.0f} s] {message}", flush=True)


def click_frame(k: int) -> npt.NDArray[np.int16]:
    """Click k: a burst, and k in the frame's last sample (inaudible) so the mixed frame names its click."""
    frame = _SILENCE.copy()
    frame[:BURST_SAMPLES] = _BURST
    frame[-1] = k
    return frame


def clicks_source(n: int) -> npt.NDArray[np.int16]:
    """Frame n of a speaker sending a click every 500 ms from frame LEAD_FRAMES on."""
    m = n - LEAD_FRAMES
    if m < 0 or m % CLICK_EVERY_FRAMES:
        return _SILENCE
    return click_frame(m // CLICK_EVERY_FRAMES)


def silence_source(n: int) -> npt.NDArray[np.int16]:
    return _SILENCE


def peak(samples: npt.NDArray[np.int16]) -> float:
    return float(np.abs(samples.astype(np.int32)).max(initial=0)) / 32768.0


def summary_ms(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {
        "n": len(ms),
        "p50": harness.percentile(ms, 50),
        "p95": harness.percentile(ms, 95),
        "max": max(ms),
        "min": min(ms),
    }


# -- 1. delay between speakers, in-process -----------------------------------------------------


PUSH = "push"  # decoded samples pushed into the mixer (`Stage.push`): the fallback ingest
RTP = "rtp"  # Opus RTP packets into a `SpeakerReception` (`Stage.receive`): the ingest with `RtpTap`
PATH_NAMES = {
    PUSH: "stage in-process, decoded samples pushed (fallback path)",
    RTP: "stage in-process, RTP packets through the stage's jitter buffer and libopus",
}
# The RTP path's stream: arbitrary starting points, as a sender picks them at random.
RTP_SEQ0 = 65_500  # wraps past 65535 early in each trial, as any long stream does
RTP_TS0 = 3_000_000_000
# Through the codec, a click is told by when it starts, not by a sample value: an onset is click k if it
# comes out within this long after click k was handed in. Half the spacing of the clicks, and more than
# the jitter buffer's cap (200 ms) plus a tick: a later onset cannot be the stage's delay of that click.
MATCH_WINDOW_S = CLICK_EVERY_FRAMES * FRAME_S / 2


@dataclass
class DelayTrial:
    phase_target_ms: float
    delays_s: list[float]
    phases_ms: list[float]  # per click: push time - when the stage's tick before it was due
    pushed: int
    unmatched: int
    late_pushes: int  # frames pushed more than 2 ms after their due time (the loop was busy)
    hiccup_frames: int = 0  # frames held back once and pushed at once with the next
    max_late_ms: float = 0.0  # the latest push against its due time (held frames aside)
    path: str = PUSH
    # The RTP path only: the jitter buffer's largest target (seen after each packet), the audio it
    # concealed, pause frames decoded but skipped to shrink the delay (all while the stream ran), and
    # the peak level of the clicks as they came out (sent at 0.9 of full scale).
    target_max_ms: int = 0
    concealed_ms: int = 0
    skipped_pauses: int = 0
    click_level: float = 0.0


def tick_origin(returned: list[float]) -> float:
    """When the stage's tick 0 was due, from when its return frames came out: frame k came out at
    (tick 0) + k * 20 ms + some lateness >= 0, so the smallest (out_k - k * 20 ms) is the best guess."""
    return float(min(out - k * FRAME_S for k, out in enumerate(returned)))


def encoded_clicks(frames: int) -> list[bytes]:
    """The click source as a speaker's Opus packets: libopus VOIP at 32 kb/s, one packet per 20 ms frame,
    as a browser sends speech (SILK/hybrid; no FEC, which libopus codes only when told to expect loss)."""
    encoder = libopus.Encoder(application="voip")
    try:
        return [encoder.encode(clicks_source(n)) for n in range(frames)]
    finally:
        encoder.close()


def match_by_onset(
    sent: dict[int, float], onsets: list[tuple[float, float]]
) -> tuple[dict[int, float], dict[int, float], int]:
    """Click k's onset: the onset, in order, that comes out within MATCH_WINDOW_S after click k was handed
    in (clicks are 500 ms apart, so in a run without losses the k-th onset is click k; placing each onset by
    its window keeps one missing click from shifting all the others). Returns the onset time and level per
    click, and how many onsets matched no click (the lead-in, a second onset in a window, a stray)."""
    heard: dict[int, float] = {}
    levels: dict[int, float] = {}
    rejected = 0
    for at, level in onsets:
        k = next((k for k, t in sent.items() if t <= at < t + MATCH_WINDOW_S), None)
        if k is None or k in heard:
            rejected += 1
            continue
        heard[k], levels[k] = at, level
    return heard, levels, rejected


async def stage_delay_trial(
    clicks: int,
    phase_s: float,
    store_dir: Path,
    hiccup_after_click: int | None = None,
    hiccup_frames: int = 0,
    path: str = PUSH,
) -> DelayTrial:
    """One stage, one phase: A fed at `phase_s` after B's return frames, `clicks` clicks.

    `path` PUSH pushes decoded frames into A (`Stage.push`), the click named by the frame's last sample;
    RTP hands A's `SpeakerReception` one Opus packet per frame (`Stage.receive`), the stage pulling a frame
    from it per tick, and the clicks are matched by their onsets (`match_by_onset`). With
    `hiccup_after_click`, `hiccup_frames` frames (or packets) between that click and the next are held
    back and then handed in at once with the one after them, as the ingest delivers packets that a
    network (or a busy event loop) delayed."""
    loop = asyncio.get_running_loop()
    stage = Stage(new_space_id(), FileMediaStore(store_dir), datetime.datetime.now(datetime.UTC), [])
    total = LEAD_FRAMES + clicks * CLICK_EVERY_FRAMES
    reception: SpeakerReception | None = None
    payloads: list[bytes] = []
    if path == RTP:
        payloads = encoded_clicks(total)  # before the stage starts: a speaker encodes before it sends
        reception = SpeakerReception()
    stage.add_input("A", reception=reception)
    stage.add_input("B")  # B sends nothing: its mix-minus is exactly A's audio
    back = stage.add_return("B")
    returned: list[float] = []  # loop time of every frame B's return track gave
    heard: dict[int, float] = {}  # PUSH: click number -> loop time its frame came out of B's return track
    chunks: list[tuple[float, npt.NDArray[np.int16]]] = []  # RTP: (loop time, samples) of every frame
    done_at = 0.0

    async def read_returns() -> None:
        for _ in range(int(60 / FRAME_S)):  # bounded: a trial lasts far less than 60 s
            samples = await back.next_samples()
            now = loop.time()
            returned.append(now)
            if path == RTP:
                chunks.append((now, samples))
            elif peak(samples) >= ONSET:
                heard.setdefault(int(samples[-1]), now)
            if done_at and now > done_at:
                return

    def hand_in(n: int) -> None:
        if reception is None:
            stage.push("A", clicks_source(n))
        else:
            seq, timestamp = (RTP_SEQ0 + n) % (1 << 16), (RTP_TS0 + n * FRAME_SAMPLES) % (1 << 32)
            stage.receive("A", seq, timestamp, payloads[n], None)  # no RFC 6464 level: pauses found by decoding

    await stage.start()
    reader = asyncio.create_task(read_returns())
    pushed: dict[int, float] = {}
    late = 0
    max_late = 0.0
    target_max_ms = skipped_pauses = 0
    health: ReceptionHealth | None = None
    try:
        for _ in range(100):  # learn the stage's tick: wait for a few return frames (2 s at most)
            if len(returned) >= 3:
                break
            await asyncio.sleep(FRAME_S)
        if len(returned) < 3:
            raise RuntimeError("the stage returned no frames within 2 s")
        # Tick k of the stage is due at its start + k * 20 ms and returns frame k a little later.
        ticks_from = tick_origin(returned)
        origin = ticks_from + FRAME_S * (int((loop.time() - ticks_from) / FRAME_S) + 2) + phase_s
        held: list[int] = []
        hiccup = range(0)
        if hiccup_after_click is not None:
            first_held = LEAD_FRAMES + hiccup_after_click * CLICK_EVERY_FRAMES + 5
            hiccup = range(first_held, first_held + hiccup_frames)
        for n in range(total):
            due = origin + n * FRAME_S
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            now = loop.time()
            if now - due > 0.002:
                late += 1
            max_late = max(max_late, now - due)
            if n in hiccup:
                held.append(n)
                continue
            for m in [*held, n]:
                hand_in(m)
                if clicks_source(m) is not _SILENCE:
                    pushed[(m - LEAD_FRAMES) // CLICK_EVERY_FRAMES] = now
            held.clear()
            if reception is not None:
                target_max_ms = max(target_max_ms, reception.jitter.stats().target_ms)
        # The stream's own figures, before the end of the stream is concealed as an outage.
        if reception is not None:
            health, skipped_pauses = reception.health(), reception.skipped_pauses
        done_at = loop.time() + 0.2
        await asyncio.wait_for(reader, 5.0)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await stage.finish()
        if reception is not None:
            reception.close()
    rejected = 0
    levels: dict[int, float] = {}
    if path == RTP:
        heard, levels, rejected = match_by_onset(pushed, heard_onsets(chunks))
    # In click order: the hiccup table reads the clicks before and after the hiccup by position.
    delays = [heard[k] - t for k, t in sorted(pushed.items()) if k in heard]
    ticks_from = tick_origin(returned)
    # Around the phase aimed at (a phase just past 20 ms is shown as such, not as 0.x ms).
    aimed_ms = phase_s * 1000
    phases = [
        aimed_ms + ((t - ticks_from) * 1000 - aimed_ms + FRAME_MS / 2) % FRAME_MS - FRAME_MS / 2
        for t in pushed.values()
    ]
    unmatched = len(set(heard) - set(pushed)) + len(set(pushed) - set(heard)) + rejected
    trial = DelayTrial(phase_s * 1000, delays, phases, len(pushed), unmatched, late, len(hiccup), max_late * 1000, path)
    if health is not None:
        trial.target_max_ms, trial.skipped_pauses = target_max_ms, skipped_pauses
        trial.concealed_ms = health.concealed_ms
        trial.click_level = statistics.median(levels.values()) if levels else 0.0
    return trial


async def measure_stage_delay(trials: int, clicks_per_trial: int, path: str = PUSH) -> list[DelayTrial]:
    results = []
    with tempfile.TemporaryDirectory(prefix="podium-bench-stage-") as tmp:
        for i in range(trials):
            # Phases spread evenly over one frame: a speaker's frames arrive at any phase of the tick.
            phase_s = (i + 0.5) / trials * FRAME_S
            trial = await stage_delay_trial(clicks_per_trial, phase_s, Path(tmp) / f"trial{i}", path=path)
            ds = [f"{d * 1000:.1f}" for d in trial.delays_s]
            say(f"delay trial {i + 1}/{trials} ({path}), phase {phase_s * 1000:.1f} ms: {', '.join(ds)} ms")
            results.append(trial)
    return results


# -- the stage's own work without WebRTC, in-process ------------------------------------------


@dataclass
class CoreStep:
    speakers: int
    cpu_pct: float
    realtime: float  # frames mixed / frames due over the window


async def stage_core_cpu(speakers: int, window_s: float, store_dir: Path) -> CoreStep:
    """CPU of a `Stage` mixing `speakers` tones, one mix-minus each read back, no codecs but AAC."""
    loop = asyncio.get_running_loop()
    stage = Stage(new_space_id(), FileMediaStore(store_dir), datetime.datetime.now(datetime.UTC), [])
    # One second of each tone, pushed over and over (whole cycles of a whole-Hz tone loop seamlessly).
    sources = [tone(200.0 + 37.0 * k, TONE_AMPLITUDE) for k in range(speakers)]
    seconds = [[source(n) for n in range(int(1 / FRAME_S))] for source in sources]
    returns = []
    for k in range(speakers):
        stage.add_input(k)
        returns.append(stage.add_return(k))
    stop = False

    async def drain(track: Any) -> None:
        while not stop:
            await track.recv()  # the mix-minus, Opus-encoded as aiortc would send it

    await stage.start()
    readers = [asyncio.create_task(drain(track)) for track in returns]
    settle_s = min(1.0, window_s / 2)
    try:
        origin = loop.time()
        cpu0 = mixed0 = t0 = None
        total = int((settle_s + window_s) / FRAME_S)
        for n in range(total):
            wait = origin + n * FRAME_S - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            for k in range(speakers):
                stage.push(k, seconds[k][n % len(seconds[k])])
            if n == int(settle_s / FRAME_S):
                cpu0, mixed0, t0 = harness.cpu_seconds(os.getpid()), stage.frames_mixed, loop.time()
        await asyncio.sleep(max(0.0, origin + total * FRAME_S - loop.time()))
        cpu1, mixed1, t1 = harness.cpu_seconds(os.getpid()), stage.frames_mixed, loop.time()
    finally:
        stop = True
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await stage.finish()
    assert cpu0 is not None and mixed0 is not None and t0 is not None
    wall = t1 - t0
    return CoreStep(speakers, 100 * (cpu1 - cpu0) / wall, (mixed1 - mixed0) / (wall / FRAME_S))


async def measure_stage_core(window_s: float) -> list[CoreStep]:
    steps = []
    with tempfile.TemporaryDirectory(prefix="podium-bench-stage-") as tmp:
        for n in SPEAKER_STEPS:
            step = await stage_core_cpu(n, window_s, Path(tmp) / f"core{n}")
            say(f"stage core, {n} inputs: {step.cpu_pct:.1f} % CPU, real time x{step.realtime:.3f}")
            steps.append(step)
    return steps


def opus_decode_pct(seconds: float = 2.0) -> float:
    """CPU, in % of one core, of receiving one speaker's Opus in real time, as the server does it:
    each packet into the stage's jitter buffer and one frame pulled and decoded with libopus per tick
    (`SpeakerReception`, on the event loop). The mix-minus encoding is part of the stage core above
    (`ReturnTrack.recv()` encodes)."""
    encoder, source = libopus.Encoder(application="voip"), tone(440.0, 0.3)
    frames = int(seconds / FRAME_S)
    payloads = [encoder.encode(source(n)) for n in range(frames)]
    reception = SpeakerReception()
    start = time.process_time()
    for n, payload in enumerate(payloads):
        reception.push(n, n * FRAME_SAMPLES, payload, n * 20.0)
        reception.pull(n * 20.0 + 1)
    elapsed = time.process_time() - start
    reception.close()
    return 100 * elapsed / seconds


# -- talking to podium serve ------------------------------------------------------------------


async def speaker_token(client: httpx.AsyncClient, base: str, space: dict[str, Any]) -> str:
    """An invite token for a speaker; it is the speaker's WHIP Bearer token (the first publish redeems it)."""
    response = await client.post(
        f"{base}/api/spaces/{space['id']}/invites",
        headers={"Authorization": f"Bearer {space['host_token']}"},
        json={"role": "speaker"},
    )
    if response.status_code != 201:
        raise RuntimeError(f"POST invites answered {response.status_code}: {response.text}")
    token: str = response.json()["token"]
    return token


class ArrivalClock:
    """Timestamps the chunks a publisher receives, by polling `Publisher.received` every millisecond.

    The list is appended to by whip_client's receiving task, with no hook: the stamp of a chunk is
    the first poll that sees it, 0-1 ms (more when the loop is busy) after it arrived."""

    POLL_S = 0.001

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher
        self.chunks: list[tuple[float, npt.NDArray[np.int16]]] = []  # (time.time() seen, samples)
        self.max_poll_gap_s = 0.0

    async def run(self, until_monotonic: float) -> None:
        seen = 0
        last = time.monotonic()
        for _ in range(int(120 / self.POLL_S)):  # bounded: 120 s of polls at most
            now = time.monotonic()
            self.max_poll_gap_s = max(self.max_poll_gap_s, now - last)
            last = now
            received = self.publisher.received
            if len(received) > seen:
                stamp = time.time()
                self.chunks.extend((stamp, chunk) for chunk in received[seen:])
                seen = len(received)
            if now >= until_monotonic:
                return
            await asyncio.sleep(self.POLL_S)


@dataclass
class EndToEnd:
    delays_s: list[float]
    unmatched: int
    chunks: int
    max_poll_gap_s: float
    click_level: float  # the peak level of a received click (sent at 0.9 of full scale)


def heard_onsets(chunks: list[tuple[float, npt.NDArray[np.int16]]]) -> list[tuple[float, float]]:
    """(arrival, peak) of each chunk where a click starts: level past ONSET after QUIET_FRAMES quiet chunks."""
    onsets = []
    quiet = QUIET_FRAMES
    for arrival, samples in chunks:
        level = peak(samples)
        if level >= ONSET and quiet >= QUIET_FRAMES:
            onsets.append((arrival, level))
        quiet = quiet + 1 if level < QUIET else 0
    return onsets


async def measure_end_to_end(client: httpx.AsyncClient, server: harness.Server, clicks: int) -> EndToEnd:
    space = await harness.create_space(client, server.base, "stage benchmark: delay between speakers")
    whip = server.base + space["urls"]["whip"]
    sender = SampleTrack(clicks_source)
    host = await publish(whip, space["host_token"], sender)  # the host goes first: the space goes live
    listener: Publisher | None = None
    try:
        listener = await publish(
            whip, await speaker_token(client, server.base, space), SampleTrack(silence_source), receive=True
        )
        clock = ArrivalClock(listener)
        listen_s = E2E_SETTLE_S + clicks * CLICK_EVERY_FRAMES * FRAME_S + 0.5
        await clock.run(time.monotonic() + listen_s)
    finally:
        if listener is not None:
            await listener.close()
        await host.close()
        await harness.end_space(client, server.base, space)
    sent = {
        (n - LEAD_FRAMES) // CLICK_EVERY_FRAMES: t
        for n, t in sender.sent_at.items()
        if n >= LEAD_FRAMES and (n - LEAD_FRAMES) % CLICK_EVERY_FRAMES == 0
    }
    first = clock.chunks[0][0] if clock.chunks else 0.0
    delays, levels, unmatched = [], [], 0
    for arrival, level in heard_onsets(clock.chunks):
        if arrival < first + E2E_SETTLE_S:
            continue
        before = [t for t in sent.values() if t < arrival]
        delay = arrival - max(before) if before else None
        if delay is None or delay > E2E_MAX_DELAY_S:
            unmatched += 1
            continue
        delays.append(delay)
        levels.append(level)
    level = statistics.median(levels) if levels else 0.0
    return EndToEnd(delays[:clicks], unmatched, len(clock.chunks), clock.max_poll_gap_s, level)


# -- 2. CPU per speaker count -----------------------------------------------------------------


_HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p(\d+)-(\d+)\.m4s"')
_EXTINF = re.compile(r"#EXTINF:([0-9.]+),")
_PART = re.compile(r"#EXT-X-PART:DURATION=([0-9.]+),")


def media_seconds(playlist: str) -> float:
    """Media time a live playlist holds: whole segments (EXTINF) plus the open segment's parts."""
    whole = sum(float(d) for d in _EXTINF.findall(playlist))
    tail = playlist.rsplit("#EXTINF:", 1)[-1] if "#EXTINF:" in playlist else playlist
    return whole + sum(float(d) for d in _PART.findall(tail))


class PlaylistFollower:
    """Follows `live.m3u8` part by part with blocking reloads; records (monotonic time, media seconds)."""

    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self.client = client
        self.url = url
        self.points: list[tuple[float, float]] = []
        self.errors = 0

    async def run(self, until_monotonic: float) -> None:
        params: dict[str, str] = {}
        for _ in range(10_000):  # bounded: about 2 requests a second over at most a few minutes
            if time.monotonic() >= until_monotonic:
                return
            try:
                response = await self.client.get(self.url, params=params, timeout=10.0)
            except httpx.HTTPError:
                self.errors += 1
                await asyncio.sleep(0.1)
                continue
            now = time.monotonic()
            if response.status_code != 200:
                self.errors += 1
                params = {}
                await asyncio.sleep(0.1)
                continue
            self.points.append((now, media_seconds(response.text)))
            hint = _HINT.search(response.text)
            if hint is None:
                return  # the playlist ended
            params = {"_HLS_msn": hint.group(1), "_HLS_part": hint.group(2)}

    def over(self, start: float, end: float) -> tuple[float, float]:
        """Media time made / wall time between the first and last part seen in [start, end]; longest gap."""
        inside = [(t, m) for t, m in self.points if start <= t <= end]
        if len(inside) < 2:
            return float("nan"), float("nan")
        gap = max(b[0] - a[0] for a, b in itertools.pairwise(inside))
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0]), gap


@dataclass
class CpuStep:
    speakers: int
    window_s: float
    server_pct: float
    client_pct: float
    realtime: float
    max_part_gap_s: float
    sent_ratio: float  # frames the speakers sent / frames due over the window
    received_ratio: float  # mix-minus chunks the speakers received / frames due
    skips: int  # "fell behind; skipping ahead" lines the server logged during the step
    load: tuple[float, float]  # 1-minute load average before and after the window


@dataclass
class Speakers:
    """The speakers connected so far, and their received chunks counted (the lists are emptied as we go)."""

    publishers: list[Publisher] = field(default_factory=list)
    tracks: list[SampleTrack] = field(default_factory=list)
    received: int = 0

    def count_received(self) -> int:
        for publisher in self.publishers:
            self.received += len(publisher.received)
            publisher.received.clear()  # the same list whip_client appends to; keeps memory flat
        return self.received

    def sent(self) -> int:
        return sum(len(track.sent_at) for track in self.tracks)


async def measure_cpu(
    client: httpx.AsyncClient, server: harness.Server, window_s: float, settle_s: float
) -> tuple[list[CpuStep], float]:
    """The CPU steps; also returns the idle server's CPU % (no live space) measured first."""
    pid = server.proc.pid
    cpu0, t0 = harness.cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(min(3.0, window_s / 2))
    idle_pct = 100 * (harness.cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)

    space = await harness.create_space(client, server.base, "stage benchmark: CPU")
    whip = server.base + space["urls"]["whip"]
    live_url = server.base + space["urls"]["hls"].replace("index.m3u8", "live.m3u8")
    speakers = Speakers()
    steps: list[CpuStep] = []
    follower = PlaylistFollower(client, live_url)
    follow_task: asyncio.Task[None] | None = None
    try:
        for n in SPEAKER_STEPS:
            while len(speakers.publishers) < n:
                k = len(speakers.publishers)
                token = space["host_token"] if k == 0 else await speaker_token(client, server.base, space)
                track = SampleTrack(tone(200.0 + 37.0 * k, TONE_AMPLITUDE))
                speakers.publishers.append(await publish(whip, token, track, receive=True))
                speakers.tracks.append(track)
            if follow_task is None:
                follow_task = asyncio.create_task(follower.run(time.monotonic() + 600))
            await asyncio.sleep(settle_s)
            skips0 = server.log_text().count("skipping ahead")
            load0 = os.getloadavg()[0]
            s0, c0, w0 = harness.cpu_seconds(pid), harness.cpu_seconds(os.getpid()), time.monotonic()
            sent0, received0 = speakers.sent(), speakers.count_received()
            for _ in range(int(window_s)):
                await asyncio.sleep(window_s / int(window_s))
                speakers.count_received()
            s1, c1, w1 = harness.cpu_seconds(pid), harness.cpu_seconds(os.getpid()), time.monotonic()
            sent1, received1 = speakers.sent(), speakers.count_received()
            wall = w1 - w0
            due = n * wall / FRAME_S
            realtime, gap = follower.over(w0, w1)
            step = CpuStep(
                n,
                wall,
                100 * (s1 - s0) / wall,
                100 * (c1 - c0) / wall,
                realtime,
                gap,
                (sent1 - sent0) / due,
                (received1 - received0) / due,
                server.log_text().count("skipping ahead") - skips0,
                (load0, os.getloadavg()[0]),
            )
            say(
                f"{n} speakers: server {step.server_pct:.1f} %, client {step.client_pct:.1f} %, "
                f"media/wall {step.realtime:.4f}, sent {step.sent_ratio:.3f}, received {step.received_ratio:.3f}"
            )
            steps.append(step)
    finally:
        if follow_task is not None:
            follow_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follow_task
        for publisher in speakers.publishers:
            with contextlib.suppress(Exception):
                await publisher.close()
        await harness.end_space(client, server.base, space)
    return steps, idle_pct


# -- the run -----------------------------------------------------------------------------------


@dataclass
class Results:
    trials: dict[str, list[DelayTrial]]  # by path: PUSH, RTP
    hiccups: dict[str, list[DelayTrial]]
    hiccup_after: int
    core: list[CoreStep]
    e2e: EndToEnd | None
    cpu: list[CpuStep]
    idle_pct: float
    decode_pct: float  # decoding one speaker's Opus in real time, % of one core
    notes: list[str]


async def measure(args: argparse.Namespace) -> Results:
    notes: list[str] = []
    trials: dict[str, list[DelayTrial]] = {}
    hiccups: dict[str, list[DelayTrial]] = {}
    for path in (PUSH, RTP):
        say(f"delay in-process, {PATH_NAMES[path]}: {args.trials} trials x {args.clicks} clicks")
        trials[path] = await measure_stage_delay(args.trials, args.clicks, path)
        hiccups[path] = []
        with tempfile.TemporaryDirectory(prefix="podium-bench-stage-") as tmp:
            for hiccup_ms in args.hiccups:
                frames = max(1, round(hiccup_ms / FRAME_MS))
                trial = await stage_delay_trial(
                    args.hiccup_clicks, FRAME_S / 2, Path(tmp) / f"hiccup{hiccup_ms}", args.hiccup_after, frames, path
                )
                ds = ", ".join(f"{d * 1000:.1f}" for d in trial.delays_s)
                say(f"one {frames * FRAME_MS} ms hiccup after click {args.hiccup_after} ({path}): {ds} ms")
                hiccups[path].append(trial)
    say("the stage's own work in-process")
    core = await measure_stage_core(args.core_window)
    decode_pct = opus_decode_pct()
    say(f"Opus decode of one speaker: {decode_pct:.1f} % CPU")
    e2e: EndToEnd | None = None
    with harness.podium_server(env={"PODIUM_MAX_SPEAKERS": str(MAX_SPEAKERS)}) as server:
        async with httpx.AsyncClient(timeout=30) as client:
            say(f"end to end between two aiortc speakers: {args.e2e_clicks} clicks")
            try:
                e2e = await measure_end_to_end(client, server, args.e2e_clicks)
            except Exception as error:  # the CPU figures are still worth having
                notes.append(f"the end-to-end measurement failed: {type(error).__name__}: {error}")
                print(f"[stage] end to end failed: {error!r}", file=sys.stderr)
            say(f"CPU: {', '.join(map(str, SPEAKER_STEPS))} speakers, {args.window:g} s each")
            cpu, idle_pct = await measure_cpu(client, server, args.window, args.settle)
        log = server.log_text()
    for pattern in ("skipping ahead", "Traceback", "ERROR"):
        count = log.count(pattern)
        if count:
            notes.append(f"the server's log has {count} line(s) with `{pattern}`")
    if "cannot conceal loss" in log:  # `RtpTap.install` failed: aiortc's jitter buffer and decoder push instead
        notes.append("the server could not tap aiortc's jitter buffer: its speakers used the fallback push path")
    return Results(trials, hiccups, args.hiccup_after, core, e2e, cpu, idle_pct, decode_pct, notes)


def plot(results: Results) -> str | None:
    """CPU against speakers, as a small PNG; None (and a reason printed) if it cannot be made small."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("[stage] matplotlib is not installed; no plot", file=sys.stderr)
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.2), dpi=90)
    xs = [s.speakers for s in results.cpu]
    ax.plot(xs, [s.server_pct for s in results.cpu], "o-", label="podium serve (all of it)")
    ax.plot(
        [s.speakers for s in results.core],
        [s.cpu_pct for s in results.core],
        "s-",
        label="stage core alone (no WebRTC)",
    )
    ax.plot(xs, [s.client_pct for s in results.cpu], "^--", color="grey", label="the speakers' process (aiortc)")
    ax.axhline(GOAL_CPU_PCT, color="red", linewidth=0.8, linestyle=":")
    ax.plot([GOAL_CPU_SPEAKERS], [GOAL_CPU_PCT], marker="*", markersize=10, color="red", linestyle="none")
    ax.annotate(
        f"goal: ≤ {GOAL_CPU_PCT:.0f} % at {GOAL_CPU_SPEAKERS} speakers",
        (GOAL_CPU_SPEAKERS + 0.4, GOAL_CPU_PCT - 7),
        color="red",
        fontsize=8,
    )
    ax.set_xlabel("speakers talking at once (each receiving its mix-minus)")
    ax.set_ylabel("% of one core")
    ax.set_xticks(list(SPEAKER_STEPS))
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return harness.save_plot(fig, PLOT, PLOT_MAX_BYTES, "[stage]")


def report(results: Results, args: argparse.Namespace, plot_name: str | None) -> str:
    lines = ["## Stage: delay between speakers, CPU per speaker count", "", *harness.header_lines(), ""]

    push, rtp = results.trials.get(PUSH, []), results.trials.get(RTP, [])
    lines += [
        "### Delay the stage adds between speakers",
        "",
        f"In-process `Stage`, input A fed in real time, 20 ms at a time, a click (a 5 ms burst at 0.9 of full "
        f"scale) every 500 ms; input B's mix-minus read with `ReturnTrack.next_samples()`. Two ingest paths. "
        f"*Fallback*: decoded frames pushed into A (`Stage.push`, what the ingest does for a codec other than "
        f"Opus or when aiortc's jitter buffer cannot be tapped); a click is named by its frame's last sample. "
        f"*RTP*: A is a `SpeakerReception` (`Stage.add_input(..., reception=...)`), handed one Opus packet per "
        f"frame (`Stage.receive`, with no RFC 6464 audio level, as a sender that sends none) encoded beforehand by "
        f'`podium.media.libopus.Encoder(application="voip")` at 32 kb/s, as a browser sends speech; the stage '
        f"pulls a frame from its jitter buffer and libopus decoder each tick; the codec changes the samples, so a "
        f"click is the onset (peak past {ONSET} after {QUIET_FRAMES} frames below {QUIET}) that comes out within "
        f"{MATCH_WINDOW_S * 1000:.0f} ms of its packet: the k-th click's onset, an onset outside every window "
        f"being rejected. Delay = when the frame holding the click came out - when its frame or packet was "
        f"handed to the stage. {len(push)} trials of {args.clicks} clicks per path, each feeding A at another "
        f"phase against the stage's 20 ms tick (spread evenly over a frame). End to end: two aiortc speakers "
        f"through `podium serve` on loopback; delay = arrival of the received chunk holding the click - "
        f"`SampleTrack.sent_at` of its frame. Percentiles are nearest-rank. "
        f"**Goal: p95 ≤ {GOAL_DELAY_P95_MS:.0f} ms (the stage's part).**",
        "",
        "| path | clicks | p50 (ms) | p95 (ms) | max (ms) | min (ms) | goal p95 ≤ 40 ms |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for path, trials in ((PUSH, push), (RTP, rtp)):
        delays = [d for t in trials for d in t.delays_s]
        if not delays:
            continue
        st = summary_ms(delays)
        verdict = "met" if st["p95"] <= GOAL_DELAY_P95_MS else "**not met**"
        lines.append(
            f"| {PATH_NAMES[path]} | {st['n']:.0f} | {st['p50']:.1f} | {st['p95']:.1f} | {st['max']:.1f} | "
            f"{st['min']:.1f} | {verdict} |"
        )
    if results.e2e is not None and results.e2e.delays_s:
        st = summary_ms(results.e2e.delays_s)
        lines.append(
            f"| end to end, aiortc speaker → `podium serve` → aiortc speaker | {st['n']:.0f} | {st['p50']:.1f} | "
            f"{st['p95']:.1f} | {st['max']:.1f} | {st['min']:.1f} | (includes 2 Opus codecs and 2 jitter buffers) |"
        )
    lines += [
        "",
        "Per trial of the in-process stage (phase = when the frame or packet was handed in - when the stage's last "
        "tick was due; RTP only: the jitter buffer's target, largest after any packet, and the audio it concealed "
        "while the stream ran):",
        "",
        "| path | phase (ms) | clicks | delay p50 (ms) | delay max (ms) | phase + delay p50 (ms) | late pushes | "
        "jitter target, max (ms) | concealed (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in [*push, *rtp]:
        jitter = f"{t.target_max_ms} | {t.concealed_ms}" if t.path == RTP else "- | -"
        if not t.delays_s:
            lines.append(f"| {t.path} | {t.phase_target_ms:.1f} | 0 | - | - | - | {t.late_pushes} | {jitter} |")
            continue
        phase = statistics.median(t.phases_ms) if t.phases_ms else float("nan")
        p50 = statistics.median(t.delays_s) * 1000
        lines.append(
            f"| {t.path} | {phase:.1f} | {len(t.delays_s)} | {p50:.1f} | {max(t.delays_s) * 1000:.1f} | "
            f"{p50 + phase:.1f} | {t.late_pushes} | {jitter} |"
        )
    lines += hiccup_lines(results.hiccups, results.hiccup_after)
    if results.e2e is not None and results.e2e.delays_s:
        each = ", ".join(f"{d * 1000:.0f}" for d in results.e2e.delays_s)
        lines += ["", f"End to end, each delay in ms, in order: {each}"]

    lines += [
        "",
        "### CPU per speaker count",
        "",
        f"`PODIUM_MAX_SPEAKERS={MAX_SPEAKERS} podium serve` in a subprocess; the speakers (aiortc, each a different "
        f"tone, each receiving its mix-minus) connected from the benchmark's process; per step {args.settle:g} s to "
        f"settle, then a {args.window:g} s window. CPU = utime+stime from /proc/PID/stat over the window, in % of "
        f"one core. Real time = media time added to `live.m3u8` (EXTINF and EXT-X-PART durations, followed part by "
        f"part with blocking reloads) / wall time. Sent and received = frames the speakers sent and mix-minus chunks "
        f"they got / frames due. Stage core = an in-process `Stage` with as many inputs, each pushed a tone and each "
        f"mix-minus read back Opus-encoded as the server sends it "
        f"(`ReturnTrack.recv()`), no WebRTC and no decoding ({args.core_window:g} s window). "
        f"**Goal: ≤ {GOAL_CPU_PCT:.0f} % of one core at {GOAL_CPU_SPEAKERS} speakers.**",
        "",
        "| speakers | podium serve CPU (%) | stage core alone (%) | speakers' process CPU (%) | real time "
        "(media/wall) | longest wait for a part (s) | sent | received | load avg (before → after) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        f"| 0 (server idle, no live space) | {results.idle_pct:.1f} | - | - | - | - | - | - | - |",
    ]
    core = {s.speakers: s for s in results.core}
    for s in results.cpu:
        c = core.get(s.speakers)
        core_text = f"{c.cpu_pct:.1f}" if c else "-"
        # The speakers fell behind: the server had less to do than with real speakers.
        bound = " (lower bound: speakers behind)" if s.sent_ratio < KEPT_UP else ""
        lines.append(
            f"| {s.speakers} | {s.server_pct:.1f}{bound} | {core_text} | {s.client_pct:.1f} | {s.realtime:.4f} | "
            f"{s.max_part_gap_s:.3f} | {s.sent_ratio:.3f} | {s.received_ratio:.3f} | "
            f"{s.load[0]:.2f} → {s.load[1]:.2f} |"
        )
    at_goal = next((s for s in results.cpu if s.speakers == GOAL_CPU_SPEAKERS), None)
    if at_goal is not None:
        verdict = "met" if at_goal.server_pct <= GOAL_CPU_PCT else "**not met**"
        lines += [
            "",
            f"Goal ≤ {GOAL_CPU_PCT:.0f} % at {GOAL_CPU_SPEAKERS} speakers: {verdict} ({at_goal.server_pct:.1f} %).",
        ]
    if plot_name:
        lines += ["", f"![CPU against speakers]({plot_name})"]

    lines += ["", "Notes:", ""]
    lines += [f"- {note}" for note in results.notes]
    lines += delay_notes(results)
    lines += cpu_notes(results)
    return "\n".join(lines) + "\n"


def hiccup_figures(trial: DelayTrial, after: int) -> tuple[float, float, float] | None:
    """(delay before the hiccup (p50), first click after it, last click) in ms; None if clicks are missing."""
    if len(trial.delays_s) <= after + 1:
        return None
    before = statistics.median(trial.delays_s[: after + 1]) * 1000
    return before, trial.delays_s[after + 1] * 1000, trial.delays_s[-1] * 1000


def hiccup_lines(trials: dict[str, list[DelayTrial]], after: int) -> list[str]:
    """The hiccup scenarios: the delay before the hiccup, just after it, and at the end of the trial."""
    if not any(trials.values()):
        return []
    lines = [
        "",
        f"One hiccup, in-process: the same stage and clicks (phase {FRAME_MS / 2:.0f} ms), but after click "
        f"{after} some frames (push) or packets (RTP) are held back and then handed in at once with the one after "
        "them, as the ingest delivers packets that the network or a busy event loop delayed. Nothing else changes: "
        "the speaker keeps sending in real time. 'Kept' = the last click's delay - the delay before the hiccup. "
        "RTP only: the jitter buffer's largest target, and the pause frames the reception decoded but skipped to "
        "shrink the delay.",
        "",
        "| path | hiccup (ms) | delay before (p50, ms) | first click after (ms) | last click (ms) | last click, s "
        "after the hiccup | kept (ms) | clicks heard | latest push (ms late) | jitter target, max (ms) | pause "
        "frames skipped |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for trial in [t for path in (PUSH, RTP) for t in trials.get(path, [])]:
        hiccup_ms = trial.hiccup_frames * FRAME_MS
        jitter = f"{trial.target_max_ms} | {trial.skipped_pauses}" if trial.path == RTP else "- | -"
        figures = hiccup_figures(trial, after)
        if figures is None:
            lines.append(
                f"| {trial.path} | {hiccup_ms} | - | - | - | - | - | {len(trial.delays_s)}/{trial.pushed} | - | "
                f"{jitter} |"
            )
            continue
        before, first, last = figures
        later_s = (len(trial.delays_s) - after - 1) * CLICK_EVERY_FRAMES * FRAME_S
        lines.append(
            f"| {trial.path} | {hiccup_ms} | {before:.1f} | {first:.1f} | {last:.1f} | {later_s:.1f} | "
            f"{last - before:.0f} | {len(trial.delays_s)}/{trial.pushed} | {trial.max_late_ms:.0f} | {jitter} |"
        )
    return lines


def hiccup_entries(trials: list[DelayTrial], after: int) -> tuple[list[str], list[str]]:
    """The hiccups after which the delay stayed up (by more than half a frame), and those it came back from."""
    kept: list[str] = []
    shed: list[str] = []
    for trial in trials:
        figures = hiccup_figures(trial, after)
        if figures is None:
            continue
        before, first, last = figures
        entry = f"{trial.hiccup_frames * FRAME_MS} ms ({before:.0f} → {first:.0f} → {last:.0f} ms)"
        if trial.max_late_ms > FRAME_MS or len(trial.delays_s) < trial.pushed:
            # A stall of the loop longer than a frame can run the input dry: it then primes afresh.
            entry += f", in a trial where a push ran {trial.max_late_ms:.0f} ms late"
            if len(trial.delays_s) < trial.pushed:
                entry += f" and {trial.pushed - len(trial.delays_s)} click(s) went missing"
        (kept if last - before > FRAME_MS / 2 else shed).append(entry)
    return kept, shed


def hiccup_notes(trials: dict[str, list[DelayTrial]], after: int) -> list[str]:
    notes = []
    kept, shed = hiccup_entries(trials.get(PUSH, []), after)
    if kept or shed:
        mixer = Mixer()
        high_water = getattr(mixer, "high_water_samples", None)
        settle = getattr(mixer, "settle_frames", None)
        if high_water is not None and settle is not None:
            rule = (
                f"this mixer drops a backlog only once it has held more than {high_water * 1000 // SAMPLE_RATE} ms "
                f"after a tick for {settle} ticks in a row ({settle * FRAME_MS} ms), and only past "
                f"{mixer.max_buffer_samples * 1000 // SAMPLE_RATE} ms at once"
            )
        else:
            rule = f"this mixer drops queued audio only past {mixer.max_buffer_samples * 1000 // SAMPLE_RATE} ms"
        text = (
            "- Hiccups, fallback push path: late frames that arrive together are all queued in the mixer, so a burst "
            f"adds its length, less the frame already queued, to that speaker's delay; {rule}."
        )
        if kept:
            text += (
                f" The delay stayed up after hiccups of {', '.join(kept)}, for as long as the trial ran: on this path "
                "nothing shrinks a smaller backlog, so one such burst puts a speaker past the 40 ms goal for good, or "
                "until the input runs dry."
            )
        if shed:
            text += f" It came back down after hiccups of {', '.join(shed)}."
        notes.append(text)
    rtp = trials.get(RTP, [])
    kept, shed = hiccup_entries(rtp, after)
    if kept or shed:
        targets = ", ".join(f"{t.target_max_ms}" for t in rtp)
        skipped = ", ".join(f"{t.skipped_pauses}" for t in rtp)
        text = (
            "- Hiccups, RTP path (the stage's jitter buffer): while the held packets are missing the buffer conceals "
            "without moving its playout point, so when they arrive they still play, and the burst adds its length to "
            "the delay; as these packets carry no RFC 6464 level, the reception then skips decoded pause frames (RMS "
            f"under {PAUSE_RMS:.0f}) while the buffer holds more than its target, "
            f"one per tick at most (skipped per trial: {skipped}). The burst also raises the target for a while "
            f"(largest per trial: {targets} ms)."
        )
        if shed:
            text += f" The delay came back to its level before the hiccup after {', '.join(shed)}."
        if kept:
            kept_ms = [f[2] - f[0] for t in rtp if (f := hiccup_figures(t, after)) is not None]
            text += f" It stayed up after {', '.join(kept)}, for as long as the trial ran"
            if kept_ms and all(abs(k - FRAME_MS) < FRAME_MS / 2 for k in kept_ms if k > FRAME_MS / 2):
                text += (
                    ", by one frame: the reception skips a pause frame only while the buffer holds more than its "
                    "target once that frame is taken, so it settles one frame above a clean start (which plays each "
                    "packet at the first tick after it arrives)"
                )
            text += "."
        notes.append(text)
    return notes


def delay_notes(results: Results) -> list[str]:
    notes = []
    push, rtp = results.trials.get(PUSH, []), results.trials.get(RTP, [])
    sums = [statistics.median(t.phases_ms) + statistics.median(t.delays_s) * 1000 for t in push if t.delays_s]
    if sums:
        notes.append(
            f"- Fallback push path: phase + delay is {min(sums):.1f}-{max(sums):.1f} ms in every trial: a frame pushed "
            "at some phase after a tick waits for the next tick and then one whole tick more. The mixer starts an "
            "input only once 40 ms are buffered and then takes 20 ms per tick, so each input keeps one frame queued "
            "for good (delay = 40 ms - phase): the stage adds 20-40 ms, uniformly spread when packets arrive at any "
            "phase, so its p95 is 39 ms plus the event loop's lateness (a millisecond or so here), which leaves the "
            "goal no margin. A late push ('late pushes': more than 2 ms behind schedule) counts from when it "
            "happened."
        )
    sums = [statistics.median(t.phases_ms) + statistics.median(t.delays_s) * 1000 for t in rtp if t.delays_s]
    if sums:
        targets = sorted({t.target_max_ms for t in rtp})
        concealed = sum(t.concealed_ms for t in rtp)
        levels = [t.click_level for t in rtp if t.click_level]
        unmatched = sum(t.unmatched for t in rtp)
        text = f"- RTP path: phase + delay is {min(sums):.1f}-{max(sums):.1f} ms in every trial"
        if max(sums) < FRAME_MS * 1.5:
            text += (
                ": each tick the stage pulls one frame from the speaker's jitter buffer, which on this clean path "
                "plays a packet at the first tick after it arrives (delay = 20 ms - phase, 0-20 ms), and the mixer "
                "mixes it as it is (a paced input: no priming)"
            )
        text += (
            f". The jitter buffer's target (the 95th percentile of the measured jitter plus a frame, less 5 ms of "
            f"slack, in whole frames; one frame at least) was at most {' or '.join(map(str, targets))} ms in these "
            f"trials; {concealed} ms were concealed while the streams ran. The codec's look-ahead (6.5 ms for VOIP) "
            "moves the click within its 20 ms frame and is not counted here (end to end counts it)."
        )
        if levels:
            text += (
                f" The clicks came out at {statistics.median(levels):.2f} of full scale after libopus (sent at 0.90); "
                f"{unmatched} onset(s) or click(s) matched nothing."
            )
        notes.append(text)
    notes += hiccup_notes(results.hiccups, results.hiccup_after)
    if results.e2e is not None and len(results.e2e.delays_s) >= 8:
        ds = results.e2e.delays_s
        quarter = len(ds) // 4
        first_ms, last_ms = statistics.median(ds[:quarter]) * 1000, statistics.median(ds[-quarter:]) * 1000
        if abs(last_ms - first_ms) > 20 or (max(ds) - min(ds)) * 1000 > 50:
            notes.append(
                f"- End to end, the delay moved during the run (first quarter's median {first_ms:.0f} ms, last "
                f"quarter's {last_ms:.0f} ms, range {min(ds) * 1000:.0f}-{max(ds) * 1000:.0f} ms): most likely the "
                "hiccup effect above (a busy machine delays packets or the server's loop), as the RTP path's hiccup "
                "rows show the server treating a burst."
            )
    late = sum(t.late_pushes for t in push + rtp)
    pushes = sum(t.pushed for t in push + rtp) * CLICK_EVERY_FRAMES
    if late:
        notes.append(f"- In-process, {late} of about {pushes} pushes ran more than 2 ms late (a shared machine).")
    if results.e2e is not None:
        e = results.e2e
        notes.append(
            "- End to end adds, on top of the stage: the speaker's Opus encoder; in the server, the stage's own "
            "jitter buffer (`SpeakerReception`: about one frame on a clean path, the RTP path above) and libopus's "
            "decoder; then the mix-minus's Opus encoder and, in the receiving aiortc speaker, aiortc's RTP jitter "
            "buffer (audio: capacity 16, prefetch 4, so a frame is handed on once about 4 more packets, ~80 ms, have "
            "arrived): about 80 ms of the figure is that buffer. A browser's WebRTC jitter buffer adapts to the "
            "network and is usually shorter on a clean path."
        )
        notes.append(
            f"- End to end: {e.chunks} chunks received, {e.unmatched} onset(s) matched no sent click; arrivals were "
            f"stamped by polling `Publisher.received` every 1 ms (longest gap between polls "
            f"{e.max_poll_gap_s * 1000:.1f} ms). A click sent at 0.90 of full scale came back at {e.click_level:.2f} "
            f"(about {20 * np.log10(max(e.click_level, 1e-6) / 0.9):.1f} dB) after two lossy Opus codecs: the "
            "speaker's (stereo, equal channels) and the stage's mono mix-minus."
        )
    return notes


def cpu_notes(results: Results) -> list[str]:
    notes = []
    steps = {s.speakers: s for s in results.cpu}
    first, goal = steps.get(SPEAKER_STEPS[0]), steps.get(GOAL_CPU_SPEAKERS)
    core = {s.speakers: s for s in results.core}
    if first and goal and goal.speakers > first.speakers:
        per_speaker = (goal.server_pct - first.server_pct) / (goal.speakers - first.speakers)
        core_goal = core.get(GOAL_CPU_SPEAKERS)
        core_text = f"{core_goal.cpu_pct:.1f} % for the stage core" if core_goal else "the stage core"
        notes.append(
            f"- Where the server's CPU goes: each speaker beyond the first adds about {per_speaker:.1f} % of a core "
            f"({first.speakers} → {goal.speakers} speakers). At {GOAL_CPU_SPEAKERS} speakers, of "
            f"{goal.server_pct:.1f} %, {core_text} (mixer, {GOAL_CPU_SPEAKERS} mix-minus with their Opus encoding, "
            f"AAC, packager, as measured in-process); receiving one speaker's Opus (jitter buffer and libopus "
            f"decoding) costs {results.decode_pct:.1f} % (measured here on the same audio), so "
            f"{GOAL_CPU_SPEAKERS} speakers' take about "
            f"{GOAL_CPU_SPEAKERS * results.decode_pct:.0f} %; the rest is aiortc's per-packet work in Python (RTP "
            "parsing and building, SRTP, RTCP, ICE). Measured on a shared machine, where the "
            "speakers' process runs beside the server: repeated runs of the 13-speaker step vary by several points."
        )
    notes.append(
        "- The speakers' process (aiortc, the benchmark's own process) needs about as much CPU as the server: on "
        "this 2-CPU machine the two compete with each other and with whatever else runs. When the speakers' "
        f"process cannot keep up, 'sent' drops below 1.000 and the server has less to do than it would with real "
        f"speakers: below {KEPT_UP}, that step's server figure is marked as a lower bound."
    )
    notes.append(
        "- Real time: media/wall near 1.000 means the stage produced its 20 ms frames on schedule; 'longest wait "
        "for a part' is the longest gap between two parts appearing (a part is 0.512 s). The server logs "
        "'fell N frames behind; skipping ahead' if it ever drops audio to catch up; such lines are counted above "
        "when there are any."
    )
    return notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a CI smoke run, under a minute")
    parser.add_argument("--trials", type=int, help="in-process delay trials (phases) (default 10, quick 4)")
    parser.add_argument("--clicks", type=int, help="clicks per in-process trial (default 12, quick 5)")
    parser.add_argument("--hiccups", help="hiccup sizes in ms, comma-separated (default 40,60,80,100; quick 60,100)")
    parser.add_argument("--hiccup-clicks", type=int, help="clicks per hiccup scenario (default 12, quick 6)")
    parser.add_argument("--hiccup-after", type=int, help="the click after which the hiccup comes (default 3, quick 2)")
    parser.add_argument("--e2e-clicks", type=int, help="clicks end to end (default 60, quick 8)")
    parser.add_argument("--window", type=float, help="seconds measured per CPU step (default 20, quick 2)")
    parser.add_argument("--settle", type=float, help="seconds before each CPU window (default 3, quick 1)")
    parser.add_argument("--core-window", type=float, help="seconds per stage-core step (default 5, quick 1)")
    parser.add_argument("--no-plot", action="store_true", help=f"do not draw {PLOT.name}")
    parser.add_argument("--no-write", action="store_true", help="print the results, leave RESULTS.md alone")
    args = parser.parse_args()
    defaults = {
        "trials": (10, 4),
        "clicks": (12, 5),
        "hiccups": (",".join(map(str, HICCUP_MS)), "60,100"),
        "hiccup_clicks": (12, 6),
        "hiccup_after": (3, 2),
        "e2e_clicks": (60, 8),
        "window": (20.0, 2.0),
        "settle": (3.0, 1.0),
        "core_window": (5.0, 1.0),
    }
    for name, (default, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else default)
    try:
        args.hiccups = [int(ms) for ms in str(args.hiccups).split(",") if ms.strip()]
    except ValueError:
        parser.error("--hiccups takes milliseconds, comma-separated, e.g. 40,100")
    results = asyncio.run(measure(args))
    plot_name = None if args.no_plot or args.no_write else plot(results)
    text = report(results, args, plot_name)
    print(text)
    if not args.no_write:
        harness.write_section("stage", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
