"""What a listener hears when a speaker's network loses and delays packets: PESQ beside libopus's own limit.

The path: a network namespace (`podium-bench-<pid>`) joined to the root namespace by a veth pair with
TEST-NET-2 addresses (198.51.100.0/24, a /30 of it). `podium serve` runs in the root namespace and
listens on the host end of the veth (198.51.100.1, no PODIUM_ICE_LOOPBACK: its aiortc offers its
interface addresses, that one included, and the benchmark checks that it did). The speaker is a
process of its own inside the namespace (`ip netns exec NS python bench/network.py --speaker JOB`),
publishing speech over WHIP to the space, so its RTP crosses the veth.

The impairment: this kernel has no netem, so packets are lost and delayed in user space, in the
speaker's process, before they leave it: `podium.testing.impair.impair_sender` shadows the DTLS
transport's `_send_rtp` of the speaker's aiortc peer, where each RTP packet is serialised but not yet
SRTP-protected; a lost packet is never sent (it still took a sequence number), a delayed one is sent
later (neighbours more than 20 ms apart in delay are reordered); RTCP passes untouched. The trace
(which packet indices were lost) comes back from the speaker's `ImpairedPath`.

Per run: a new space; the speaker plays the speech (espeak-ng, made at start) once, then silence;
the host ends the space; the listener's audio is the replay (`read_hls`: ffmpeg reads the ended
space's playlist, which is the recording). PESQ wide band (ITU-T P.862.2, the `pesq` package) of
that against the spoken speech, after alignment. Beside it, libopus's own limit on the very same
loss trace: the same speech through the same encoder (deterministic, so the very packets the speaker
sent) and an ideal libopus receiver without jitter, AAC or mixing, that conceals every lost packet
(PLC) or first rebuilds it from the next packet's in-band FEC when that one arrived (FEC + PLC).
Lossy conditions run twice per run, with a speaker that sends FEC (libopus voip, complexity 9,
told to expect the condition's loss) and with one that does not (the same encoder expecting no
loss: libopus then sends no FEC). Runs are interleaved: run 1 of every condition, then run 2...

Usage: python bench/network.py [--quick] [--runs N] [--conditions clean,loss2,...] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
import httpx
import numpy as np

from podium.media.mixer import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, Samples
from podium.testing.impair import BurstLoss, Impairment, LossModel, NoLoss, RandomLoss
from podium.testing.speech import (
    SENTENCES,
    align,
    aligned,
    decode_with_losses,
    pesq_wb,
    read_hls,
    silences_inside,
    speak,
    speaker_packets,
    speech_spans,
)

SCRIPT = Path(__file__).resolve()
PLOT = harness.BENCH_DIR / "network.png"
PLOT_MAX_BYTES = 100_000
TAG = "[network]"

# About 25 s at espeak-ng's 150 words a minute: voiced vowels, fricatives, stops and pauses.
TEXT = (
    SENTENCES + " "
    "A quick brown fox jumps over the lazy dog, while six thick thistle sticks shiver in the wind. "
    "She sells sea shells by the sea shore, and the shells she sells are surely seashells. "
    "Nobody notices good audio until a word is missing."
)

NET = ipaddress.IPv4Network("198.51.100.0/24")  # TEST-NET-2 (RFC 5737): traffic goes nowhere else
TAIL_S = 1.0  # silence the speaker sends after the speech: the jitter buffer, mixer and AAC drain
RESULT_PREFIX = "RESULT "

# Goals (the issue's): PESQ wb medians.
GOAL_CLEAN = 3.7
GOAL_CLEAN_SPREAD = 0.1
GOAL_JITTER_OF_CLEAN = 0.2
GOAL_OF_LIBOPUS = 0.2


@dataclass(frozen=True)
class Condition:
    name: str
    label: str
    loss: LossModel
    jitter_ms: float = 0.0
    goal_fec: float | None = None  # median with a speaker that sends FEC
    goal_plain: float | None = None  # median with a speaker that does not

    @property
    def lossy(self) -> bool:
        return not isinstance(self.loss, NoLoss)

    @property
    def loss_perc(self) -> int:
        """The loss a FEC speaker is told to expect (as a browser learns it from receiver reports)."""
        rate = self.loss.rate if isinstance(self.loss, (RandomLoss, BurstLoss)) else 0.0
        return round(rate * 100)

    @property
    def variants(self) -> tuple[str, ...]:
        # Without loss a FEC speaker expects 0 % and sends exactly what the plain one sends: run once.
        return ("fec", "plain") if self.lossy else ("plain",)

    def impairment(self, seed: int) -> Impairment:
        return Impairment(self.loss, jitter_ms=self.jitter_ms, seed=seed)

    def seed(self, run: int) -> int:
        # The same trace for both speakers of a run, another one for each run and condition.
        return zlib.crc32(self.name.encode()) % 100_000 * 100 + run


CONDITIONS = (
    Condition("clean", "clean", NoLoss()),
    Condition("loss2", "2 % random loss", RandomLoss(0.02), goal_fec=3.4, goal_plain=2.7),
    Condition("loss5", "5 % random loss", RandomLoss(0.05), goal_fec=2.9, goal_plain=2.0),
    Condition("loss10", "10 % random loss", RandomLoss(0.10), goal_fec=2.45, goal_plain=1.5),
    Condition("burst5-jitter40", "5 % loss in bursts (mean 3 packets) + 40 ms jitter", BurstLoss(0.05, 3), 40.0),
    Condition("jitter80", "80 ms jitter, no loss", NoLoss(), 80.0),
)
BY_NAME = {c.name: c for c in CONDITIONS}
VARIANT_LABEL = {"fec": "with FEC", "plain": "without FEC"}


# -- the network -------------------------------------------------------------------------------


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=15, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")
    return result


def _free_block() -> ipaddress.IPv4Network:
    """A /30 of TEST-NET-2 that no address or route of the root namespace touches (others may use it)."""
    taken: list[ipaddress.IPv4Network] = []
    for line in _ip("-4", "-o", "addr", "show").stdout.splitlines():
        fields = line.split()
        if "inet" in fields:
            taken.append(ipaddress.IPv4Interface(fields[fields.index("inet") + 1]).network)
    for line in _ip("-4", "route", "show").stdout.splitlines():
        with contextlib.suppress(ValueError, IndexError):
            taken.append(ipaddress.IPv4Network(line.split()[0], strict=False))
    for block in NET.subnets(new_prefix=30):
        if not any(block.overlaps(t) for t in taken if t.prefixlen > 0):
            return block
    raise RuntimeError(f"every /30 of {NET} is in use in this namespace")


@dataclass
class Namespace:
    """A network namespace and a veth pair into it; `ip netns del` takes both away."""

    name: str
    host_if: str
    ns_if: str
    host_address: str
    ns_address: str
    prefix: int

    @classmethod
    @contextlib.contextmanager
    def made(cls) -> Iterator[Namespace]:
        pid = os.getpid()
        block = _free_block()
        hosts = list(block.hosts())
        net = cls(f"podium-bench-{pid}", f"pbh{pid}"[:15], f"pbn{pid}"[:15], str(hosts[0]), str(hosts[1]), 30)
        try:
            _ip("netns", "add", net.name)
            _ip("link", "add", net.host_if, "type", "veth", "peer", "name", net.ns_if)
            _ip("link", "set", net.ns_if, "netns", net.name)
            _ip("addr", "add", f"{net.host_address}/{net.prefix}", "dev", net.host_if)
            _ip("link", "set", net.host_if, "up")
            _ip("-n", net.name, "addr", "add", f"{net.ns_address}/{net.prefix}", "dev", net.ns_if)
            _ip("-n", net.name, "link", "set", net.ns_if, "up")
            _ip("-n", net.name, "link", "set", "lo", "up")
            yield net
        finally:
            net.remove()

    def remove(self) -> None:
        # Deleting the namespace destroys its end of the pair, which takes the other end with it.
        _ip("netns", "del", self.name, check=False)
        if _ip("link", "show", self.host_if, check=False).returncode == 0:
            _ip("link", "del", self.host_if, check=False)

    def exec_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def host_rx_packets(self) -> int:
        """Packets the host end of the veth has received (what the speaker sent, and nothing else can)."""
        with contextlib.suppress(OSError, ValueError):
            return int(Path(f"/sys/class/net/{self.host_if}/statistics/rx_packets").read_text())
        return -1


# -- the server --------------------------------------------------------------------------------


# `podium serve` listening on the veth's host end, ICE on interface addresses (not loopback only), the limits on
# strangers' spaces and the stages' budget left at their defaults.
SERVER_ENV: dict[str, str | None] = {
    "PODIUM_ICE_LOOPBACK": None,
    "PODIUM_SPACE_LIMIT_PER_ADDRESS": None,
    "PODIUM_MAX_STAGES": None,
}


# -- the speaker (runs inside the namespace) ---------------------------------------------------


def loss_to_json(loss: LossModel) -> dict[str, Any]:
    if isinstance(loss, RandomLoss):
        return {"kind": "random", "rate": loss.rate}
    if isinstance(loss, BurstLoss):
        return {"kind": "burst", "rate": loss.rate, "mean_burst": loss.mean_burst}
    if isinstance(loss, NoLoss):
        return {"kind": "none"}
    raise ValueError(f"no JSON form for {loss!r}")


def loss_from_json(data: dict[str, Any]) -> LossModel:
    kind = data["kind"]
    if kind == "random":
        return RandomLoss(float(data["rate"]))
    if kind == "burst":
        return BurstLoss(float(data["rate"]), float(data["mean_burst"]))
    if kind == "none":
        return NoLoss()
    raise ValueError(f"unknown loss kind {kind!r}")


def _nominated_pair(pc: Any) -> str:
    """The ICE pair the media flows over (aioice private state, read for the record only)."""
    with contextlib.suppress(Exception):
        for transceiver in pc.getTransceivers():
            connection = transceiver.sender.transport.transport._connection
            for pair in connection._nominated.values():
                local, remote = pair.local_addr, pair.remote_addr
                return f"{local[0]}:{local[1]} -> {remote[0]}:{remote[1]}"
    return "unknown"


async def _speak_once(job: dict[str, Any]) -> dict[str, Any]:
    from podium.testing.whip_client import SampleTrack, from_samples, publish  # aiortc: only the speaker needs it

    speech: Samples = np.load(job["speech_path"])
    frames = len(speech) // FRAME_SAMPLES
    wanted = frames + round(job["tail_s"] * 1000 / FRAME_MS)
    # The stream of `fec_encoder(expected_loss_perc)`: libopus voip at 32 kb/s, complexity 9; at 0 %
    # expected loss libopus sends no FEC (checked in `main`), so that is the speaker without FEC.
    frame_of = from_samples(speech)
    # When each frame was asked for (the track asks just before encoding it), on the monotonic clock:
    # `SampleTrack.sent_at` is wall time, which a clock step would show as a stall.
    asked: dict[int, float] = {}

    def source(n: int) -> Samples:
        asked[n] = time.monotonic()
        return frame_of(n)

    track = SampleTrack(source, fec=True, expected_loss_perc=int(job["expected_loss_perc"]))
    impairment = Impairment(loss_from_json(job["loss"]), jitter_ms=float(job["jitter_ms"]), seed=int(job["seed"]))
    started = time.monotonic()
    publisher = await publish(
        job["whip_url"], job["token"], track, loopback_only=False, impairment=impairment, timeout_s=20.0
    )
    connect_s = time.monotonic() - started
    try:
        answer = publisher.pc.remoteDescription.sdp
        offered = sorted({line.split()[4] for line in answer.splitlines() if line.startswith("a=candidate:")})
        pair = _nominated_pair(publisher.pc)
        deadline = time.monotonic() + wanted * FRAME_MS / 1000 + 20.0
        while len(track.sent_at) < wanted:
            if publisher.pc.connectionState in ("failed", "closed"):
                raise ConnectionError(f"the connection went {publisher.pc.connectionState} while speaking")
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(track.sent_at)} of {wanted} frames were sent in time")
            await asyncio.sleep(0.1)
        path = publisher.path
        assert path is not None
        return {
            "connect_s": round(connect_s, 3),
            "server_candidates": offered,
            "pair": pair,
            "frames_speech": frames,
            "packets": path.index,
            "sent": len(path.sent),
            "dropped_indices": list(path.dropped_indices),
            "expected_dropped": impairment.lost_indices(path.index),
            # Frames handed to the encoder more than 30 ms after the one before: the speaker's process
            # fell behind real time there (the packets then leave in a burst).
            "sender_gaps": [
                (n, round((asked[n] - asked[n - 1]) * 1000, 1))
                for n in range(1, frames)
                if n in asked and n - 1 in asked and asked[n] - asked[n - 1] > 0.030
            ],
        }
    finally:
        await publisher.close()


def speaker_main(job_text: str) -> int:
    result = asyncio.run(_speak_once(json.loads(job_text)))
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


# -- one run -----------------------------------------------------------------------------------


@dataclass
class Run:
    condition: str
    variant: str
    run: int
    seed: int
    pesq: float | None = None
    error: str | None = None
    lost: list[int] = field(default_factory=list)  # frame indices within the speech
    frames: int = 0
    longest_hole_ms: float = 0.0
    holes: int = 0
    stretch_ms: float | None = None
    stage: dict[str, Any] = field(default_factory=dict)  # the host's board: the speaker's connection
    pair: str = ""
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # where the run's wall time went, seconds
    sender_gaps: list[tuple[int, float]] = field(default_factory=list)  # (frame, ms since the one before)


class Bench:
    def __init__(self, args: argparse.Namespace, net: Namespace, server: harness.Server, speech: Samples, tmp: Path):
        self.args = args
        self.net = net
        self.server = server
        self.speech = speech
        self.spans = speech_spans(speech)
        self.tmp = tmp
        self.speech_path = tmp / "speech.npy"
        np.save(self.speech_path, speech)
        self.runs: list[Run] = []
        self.references: dict[tuple[str, int, str], float | None] = {}  # (condition, run, "plc"/"fec")
        self.notes: list[str] = []
        self.candidates_seen: set[str] = set()
        self.pairs_seen: set[str] = set()
        self._clean_reference: float | None = None
        self._clean_with_aac: float | None = None
        # (condition, variant) → PESQ of run 1: libopus alone, libopus + the stage's AAC, Podium.
        self.with_aac: dict[tuple[str, str], tuple[float | None, float | None, float]] = {}
        self._packets: dict[int, list[bytes]] = {}  # the speech's Opus packets, by expected loss

    async def measure(self, plan: list[tuple[Condition, str, int]]) -> None:
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=30) as client:
            for done, (condition, variant, run) in enumerate(plan):
                label = f"{condition.name} {VARIANT_LABEL[variant]}, run {run + 1}"
                print(f"{TAG} {done + 1}/{len(plan)}: {label} …", flush=True)
                result = await self.one_run(client, condition, variant, run)
                self.runs.append(result)
                scoring = time.monotonic()
                self.reference_for(condition, result)
                result.phases["libopus"] = time.monotonic() - scoring
                result.seconds += result.phases["libopus"]
                elapsed = time.monotonic() - started
                left = elapsed / (done + 1) * (len(plan) - done - 1)
                print(f"{TAG}     {self.summary(condition, result)}; {result.seconds:.0f} s "
                      f"(elapsed {elapsed / 60:.1f} min, about {left / 60:.1f} min left)", flush=True)  # fmt: skip

    def summary(self, condition: Condition, r: Run) -> str:
        if r.pesq is None:
            return f"FAILED: {r.error}"
        refs = ", ".join(
            f"libopus {kind.upper() if kind == 'plc' else 'FEC+PLC'} {value:.2f}"
            for kind in ("fec", "plc")
            if (value := self.references.get((condition.name, r.run, kind))) is not None
        )
        stage = r.stage
        phases = ", ".join(f"{name} {seconds:.1f}" for name, seconds in r.phases.items())
        return (
            f"PESQ {r.pesq:.2f} ({refs}); lost {len(r.lost)}/{r.frames}, longest hole {r.longest_hole_ms:.0f} ms; "
            f"stage: recovered {stage.get('recovered_ms', '?')} ms, concealed {stage.get('concealed_ms', '?')} ms; "
            f"speaker late > 30 ms: {len(r.sender_gaps)}x{_worst_gap(r)}; s: {phases}"
        )

    async def one_run(self, client: httpx.AsyncClient, condition: Condition, variant: str, run: int) -> Run:
        seed = condition.seed(run)
        result = Run(condition.name, variant, run, seed, frames=len(self.speech) // FRAME_SAMPLES)
        started = time.monotonic()
        base = self.server.base
        try:
            space = await harness.create_space(client, base, f"network {condition.name} {variant} {run + 1}")
        except (httpx.HTTPError, RuntimeError) as error:
            result.error = f"could not create a space: {error}"
            return result
        proc: asyncio.subprocess.Process | None = None
        try:
            job = {
                "whip_url": base + space["urls"]["whip"],
                "token": space["host_token"],
                "speech_path": str(self.speech_path),
                "expected_loss_perc": condition.loss_perc if variant == "fec" else 0,
                "loss": loss_to_json(condition.loss),
                "jitter_ms": condition.jitter_ms,
                "seed": seed,
                "tail_s": TAIL_S,
            }
            command = [*self.net.exec_prefix(), sys.executable, str(SCRIPT), "--speaker", json.dumps(job)]
            proc = await asyncio.create_subprocess_exec(
                *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
            speech_s = len(self.speech) / SAMPLE_RATE
            talk = asyncio.ensure_future(proc.communicate())
            deadline = time.monotonic() + speech_s + TAIL_S + 60
            # While the speaker talks, the host's board says what the stage makes of the connection.
            while not talk.done() and time.monotonic() < deadline:
                await asyncio.wait([talk], timeout=1.0)
                if not talk.done():
                    result.stage = await self.board(client, space) or result.stage
            if not talk.done():
                raise TimeoutError("the speaker did not finish in time")
            stdout, stderr = talk.result()
            lines = [line for line in stdout.decode().splitlines() if line.startswith(RESULT_PREFIX)]
            if proc.returncode != 0 or not lines:
                tail = stderr.decode(errors="replace").strip().splitlines()[-6:]
                raise RuntimeError(f"the speaker exited with {proc.returncode}: {' | '.join(tail)}")
            spoken = json.loads(lines[-1][len(RESULT_PREFIX) :])
            result.phases["speaker"] = time.monotonic() - started
            result.phases["connect"] = spoken["connect_s"]
            self.check_path(condition, spoken)
            result.pair = spoken["pair"]
            result.sender_gaps = [(int(n), float(ms)) for n, ms in spoken["sender_gaps"]]
            result.lost = [i for i in spoken["dropped_indices"] if i < result.frames]
        except Exception as error:
            result.error = f"{type(error).__name__}: {error}"
        finally:
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()  # this pid only: `ip netns exec` execs the speaker's python
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(proc.wait(), 10)
            with contextlib.suppress(httpx.HTTPError):
                await harness.end_space(client, base, space)
        if result.error is None:
            try:
                replay = time.monotonic()
                heard = await self.replay(client, base, space)
                result.phases["replay"] = time.monotonic() - replay
                if self.args.keep:  # what the listener heard and what was lost, to look at afterwards
                    stem = self.tmp / f"heard-{condition.name}-{variant}-{run + 1}"
                    np.save(stem.with_suffix(".npy"), heard)
                    about = {"lost": result.lost, "space": space["id"], "sender_gaps": result.sender_gaps}
                    stem.with_suffix(".json").write_text(json.dumps(about))
                scoring = time.monotonic()
                self.score(result, heard)
                result.phases["scoring"] = time.monotonic() - scoring
            except Exception as error:
                result.error = f"{type(error).__name__}: {error}"
        result.seconds = time.monotonic() - started
        return result

    def check_path(self, condition: Condition, spoken: dict[str, Any]) -> None:
        """The trace must be the one the impairment promised, and the media must have crossed the veth."""
        self.candidates_seen.update(spoken["server_candidates"])
        self.pairs_seen.add(spoken["pair"])
        if self.net.host_address not in spoken["server_candidates"]:
            raise RuntimeError(
                f"the stage's answer offered no {self.net.host_address} candidate: {spoken['server_candidates']}"
            )
        if spoken["dropped_indices"] != spoken["expected_dropped"]:
            raise RuntimeError("the packets dropped are not those the impairment's trace names")
        if spoken["frames_speech"] != len(self.speech) // FRAME_SAMPLES:
            raise RuntimeError("the speaker read another speech")

    async def board(self, client: httpx.AsyncClient, space: dict[str, Any]) -> dict[str, Any] | None:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            response = await client.get(
                f"{self.server.base}/api/spaces/{space['id']}/board",
                headers={"Authorization": f"Bearer {space['host_token']}"},
            )
            connections = response.json()["stream"].get("connections") or []
            if connections:
                found: dict[str, Any] = connections[0]
                return found
        return None

    async def replay(self, client: httpx.AsyncClient, base: str, space: dict[str, Any]) -> Samples:
        url = base + space["urls"]["hls"]
        live = url.replace("index.m3u8", "live.m3u8")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                response = await client.get(live)
                if response.status_code == 200 and "#EXT-X-ENDLIST" in response.text:
                    break
            await asyncio.sleep(0.1)
        else:
            raise TimeoutError("the ended space's playlist never got EXT-X-ENDLIST")
        heard: Samples = await asyncio.to_thread(read_hls, url, 120)
        return heard

    def score(self, result: Run, heard: Samples) -> None:
        if len(heard) < SAMPLE_RATE or not np.any(heard):
            raise RuntimeError(f"the listener heard {len(heard) / SAMPLE_RATE:.1f} s, all silent: no audio")
        result.pesq = pesq_wb(self.speech, heard)
        lag = align(self.speech, heard)
        holes = silences_inside(aligned(heard, lag, len(self.speech)), self.spans, reference=self.speech)
        result.holes = len(holes)
        result.longest_hole_ms = max((ms for _, ms in holes), default=0.0)
        with contextlib.suppress(ValueError):
            result.stretch_ms = self.stretch(heard, lag) * 1000 / SAMPLE_RATE

    def stretch(self, heard: Samples, lag: int, part_s: float = 1.0, search_s: float = 1.0) -> int:
        """How many samples longer the speech lasts in `heard` than spoken: its first and last second
        aligned apart (as `speech_length_change` does, correlating only near `lag`, which is cheaper)."""
        first, last = self.spans[0][0], self.spans[-1][1]
        part, search = round(part_s * SAMPLE_RATE), round(search_s * SAMPLE_RATE)
        lag_first = _lag_near(self.speech, heard, first, min(first + part, last), lag, search)
        lag_last = _lag_near(self.speech, heard, max(last - part, first), last, lag, search)
        return lag_last - lag_first

    def reference_for(self, condition: Condition, result: Run) -> None:
        """libopus's own limit on the run's very trace: PLC for the plain speaker, FEC + PLC for the FEC one."""
        if result.error is not None:
            return
        if not condition.lossy:
            if self._clean_reference is None:
                self._clean_reference = self._pesq_or_none(self.libopus(0, [], fec=False))
            for kind in ("plc", "fec"):
                self.references[(condition.name, result.run, kind)] = self._clean_reference
            decoded = None
        elif result.variant == "plain":
            decoded = self.libopus(0, result.lost, fec=False)
            self.references[(condition.name, result.run, "plc")] = self._pesq_or_none(decoded)
        else:
            decoded = self.libopus(condition.loss_perc, result.lost, fec=True)
            self.references[(condition.name, result.run, "fec")] = self._pesq_or_none(decoded)
        if result.run == 0 and result.pesq is not None:
            # Where the gap goes, on the first run's trace: libopus's decode put through the stage's own
            # AAC encoder (offline) is what Podium would give if its reception matched the ideal receiver.
            if decoded is None:
                if self._clean_with_aac is None:
                    self._clean_with_aac = self._pesq_or_none(through_aac(self.libopus(0, [], fec=False)))
                with_aac = self._clean_with_aac
            else:
                with_aac = self._pesq_or_none(through_aac(decoded))
            kind = "fec" if result.variant == "fec" else "plc"
            self.with_aac[(condition.name, result.variant)] = (
                self.references.get((condition.name, 0, kind)),
                with_aac,
                result.pesq,
            )

    def libopus(self, expected_loss_perc: int, lost: list[int], *, fec: bool) -> Samples:
        """`podium.testing.speech.opus_round_trip`, with each encoding made once and kept: the encoder is
        deterministic, so these are the very packets the speaker sent (encoding is most of the cost)."""
        packets = self._packets.get(expected_loss_perc)
        if packets is None:
            packets = self._packets[expected_loss_perc] = speaker_packets(self.speech, expected_loss_perc)
        return decode_with_losses(packets, lost, fec=fec)

    def _pesq_or_none(self, decoded: Samples) -> float | None:
        try:
            return pesq_wb(self.speech, decoded)
        except Exception as error:  # the pesq package raises its own errors for unusable audio
            self.notes.append(f"libopus reference could not be scored: {error}")
            return None


def _worst_gap(run: Run) -> str:
    if not run.sender_gaps:
        return ""
    frame, ms = max(run.sender_gaps, key=lambda gap: gap[1])
    return f" (worst {ms:.0f} ms at {frame * FRAME_MS / 1000:.2f} s)"


def _lag_near(reference: Samples, heard: Samples, start: int, stop: int, lag: int, search: int) -> int:
    """The lag of `reference[start:stop]` in `heard`, within `lag` ± `search` samples (FFT correlation)."""
    part = reference[start:stop].astype(np.float64)
    low, high = max(0, start + lag - search), min(len(heard), stop + lag + search)
    window = heard[low:high].astype(np.float64)
    if len(window) < len(part):
        raise ValueError("the heard audio ends before the speech does")
    part -= part.mean()
    window -= window.mean()
    size = 1 << (len(part) + len(window)).bit_length()
    # corr[k] = sum_i window[i + k] * part[i]: part[0] heard at low + k, for k where part fits in the window.
    corr = np.fft.irfft(np.fft.rfft(window, size) * np.conj(np.fft.rfft(part, size)), size)
    return low + int(np.argmax(corr[: len(window) - len(part) + 1])) - start


def through_aac(samples: Samples) -> Samples:
    """`samples` through the stage's `AacEncoder` (AAC-LC, its bitrate and coder) and FFmpeg's decoder."""
    import av

    from podium.media.aac import AacEncoder
    from podium.media.stage import BITRATE

    encoder = AacEncoder(bitrate=BITRATE)
    # Zeros after the end push the encoder's last frames (and its look-ahead) out.
    frames = encoder.encode(np.concatenate([samples, np.zeros(4 * 1024, dtype=np.int16)]))
    decoder = av.CodecContext.create("aac", "r")
    decoder.extradata = encoder.audio_specific_config
    out: list[Samples] = []
    for frame in frames:
        for decoded in decoder.decode(av.Packet(frame)):
            floats = decoded.to_ndarray().reshape(-1)
            out.append(np.clip(floats * 32768.0, -32768, 32767).astype(np.int16))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int16)


# -- figures -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    values: tuple[float, ...]
    wanted: int

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    @property
    def spread(self) -> float | None:
        return max(self.values) - min(self.values) if self.values else None

    def cell(self) -> str:
        if not self.values:
            return "no run" if self.wanted else "—"
        text = f"{statistics.median(self.values):.2f} [{min(self.values):.2f}-{max(self.values):.2f}]"
        return text + (f" ({len(self.values)} of {self.wanted})" if len(self.values) < self.wanted else "")


@dataclass
class Row:
    condition: Condition
    fec: Figure
    plain: Figure
    ref_fec: Figure
    ref_plc: Figure
    hole_fec: list[float]
    hole_plain: list[float]
    lost_perc: list[float]
    goals: list[tuple[str, str, bool | None]]  # what, figure, met


def rows_of(bench: Bench, conditions: list[Condition], runs: int) -> list[Row]:
    def ok(condition: Condition, variant: str) -> list[Run]:
        return [r for r in bench.runs if r.condition == condition.name and r.variant == variant and r.pesq is not None]

    def ref(condition: Condition, kind: str, variant: str) -> Figure:
        values = [bench.references.get((condition.name, r.run, kind)) for r in ok(condition, variant)]
        return Figure(tuple(v for v in values if v is not None), runs)

    rows: list[Row] = []
    clean_median: float | None = None
    for condition in conditions:
        fec_runs, plain_runs = ok(condition, "fec"), ok(condition, "plain")
        fec = Figure(tuple(r.pesq for r in fec_runs if r.pesq is not None), runs if condition.lossy else 0)
        plain = Figure(tuple(r.pesq for r in plain_runs if r.pesq is not None), runs)
        ref_fec = ref(condition, "fec", "fec" if condition.lossy else "plain")
        ref_plc = ref(condition, "plc", "plain")
        every = fec_runs + plain_runs
        lost = [100 * len(r.lost) / r.frames for r in every if r.frames]
        row = Row(
            condition,
            fec,
            plain,
            ref_fec,
            ref_plc,
            [r.longest_hole_ms for r in fec_runs],
            [r.longest_hole_ms for r in plain_runs],
            lost,
            [],
        )
        if condition.name == "clean":
            clean_median = plain.median
            row.goals.append(_at_least("median ≥ 3.7", plain.median, GOAL_CLEAN))
            spread = plain.spread
            met = None if spread is None or len(plain.values) < 2 else spread <= GOAL_CLEAN_SPREAD
            row.goals.append(("spread ≤ 0.1", "—" if spread is None else f"{spread:.2f}", met))
        if condition.goal_fec is not None:
            row.goals.append(_at_least(f"FEC ≥ {condition.goal_fec}", fec.median, condition.goal_fec))
        if condition.goal_plain is not None:
            row.goals.append(_at_least(f"no FEC ≥ {condition.goal_plain}", plain.median, condition.goal_plain))
        if condition.lossy:
            row.goals.append(_near("FEC within 0.2 of libopus FEC+PLC", fec.median, ref_fec.median, GOAL_OF_LIBOPUS))
            row.goals.append(_near("no FEC within 0.2 of libopus PLC", plain.median, ref_plc.median, GOAL_OF_LIBOPUS))
        if condition.name == "jitter80":
            row.goals.append(_near("within 0.2 of clean", plain.median, clean_median, GOAL_JITTER_OF_CLEAN))
        rows.append(row)
    return rows


def _at_least(what: str, value: float | None, goal: float) -> tuple[str, str, bool | None]:
    if value is None:
        return what, "—", None
    return what, f"{value:.2f}", value >= goal


def _near(what: str, value: float | None, limit: float | None, margin: float) -> tuple[str, str, bool | None]:
    """At most `margin` below `limit` (above it is no failure)."""
    if value is None or limit is None:
        return what, "—", None
    return what, f"{value - limit:+.2f}", value >= limit - margin


def _verdict(met: bool | None) -> str:
    return "n/a" if met is None else ("met" if met else "**not met**")


def _holes(values: list[float]) -> str:
    if not values:
        return "—"
    return f"{statistics.median(values):.0f} (max {max(values):.0f})"


def report(bench: Bench, rows: list[Row], args: argparse.Namespace, elapsed_s: float, plot_name: str | None) -> str:
    speech_s = len(bench.speech) / SAMPLE_RATE
    lines = ["## Network: what a listener hears over lossy speaker networks (PESQ wb)", "", *harness.header_lines()]
    lines += [
        f"- Runs: {args.runs} per condition and speaker, interleaved; {speech_s:.1f} s of espeak-ng speech per run; "
        f"the whole benchmark took {elapsed_s / 60:.1f} min",
        "",
        f"**Where the impairment sits.** This kernel has no netem: packets are lost and delayed in user space, in "
        f"the speaker's own process, before they leave it (`podium.testing.impair.impair_sender`: aiortc's "
        f"`_send_rtp`, after RTP serialisation, before SRTP; RTCP untouched). The speaker runs in a network "
        f"namespace (`ip netns exec`) and its packets cross a veth pair ({bench.net.ns_address} → "
        f"{bench.net.host_address}, TEST-NET-2) to `podium serve` in the root namespace, listening on "
        f"{bench.net.host_address} with ICE on its interface addresses. Jitter is an extra delay per packet, uniform "
        f"in [0, J] ms, so packets are reordered.",
        "",
        "**What is scored.** PESQ wide band (ITU-T P.862.2, `pesq` package, MOS-LQO) of the ended space's replay, "
        "read by ffmpeg, against the spoken speech (aligned first). The speaker: libopus voip, 32 kb/s, 20 ms, "
        "complexity 9, sending in-band FEC sized for the condition's loss (*with FEC*) or expecting no loss, when "
        "libopus sends none (*without FEC*). **libopus FEC+PLC / PLC**: the same speech through the same encoder "
        "(the very packets sent) and an ideal libopus receiver losing exactly the run's packets: each lost frame "
        "rebuilt from the next packet's FEC when that one arrived, else concealed / always concealed; no jitter "
        "buffer, mixer or AAC. Cells: median [min-max] over the runs. *Longest hole*: the longest stretch of "
        "speech the listener heard as silence (`silences_inside`, holes over 40 ms; 0 = none), median (max) "
        "over runs, ms.",
        "",
        "| condition | lost (mean) | Podium, FEC sent | Podium, no FEC | libopus FEC+PLC | libopus PLC "
        "| longest hole, FEC (ms) | longest hole, no FEC (ms) | goal | met? |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        lost = f"{statistics.mean(row.lost_perc):.1f} %" if row.lost_perc else "—"
        goals = "; ".join(what for what, _, _ in row.goals) or "—"
        mets = "; ".join(f"{_verdict(met)} ({figure})" for _, figure, met in row.goals) or "—"
        lines.append(
            f"| {row.condition.label} | {lost} | {row.fec.cell()} | {row.plain.cell()} | {row.ref_fec.cell()} "
            f"| {row.ref_plc.cell()} | {_holes(row.hole_fec)} | {_holes(row.hole_plain)} | {goals} | {mets} |"
        )
    lines += ["", "Goals, one by one:", "", "| condition | goal | figure | met? |", "|---|---|---:|---|"]
    for row in rows:
        for what, figure, met in row.goals:
            lines.append(f"| {row.condition.label} | {what} | {figure} | {_verdict(met)} |")
    lines += [
        "",
        "Without loss (clean, jitter only) a speaker told to expect 0 % loss sends no FEC, so one speaker runs and "
        'both libopus columns are the lossless decode. "Within 0.2 of" is one-sided: a figure above its '
        "reference meets it. The figure beside each such goal is Podium's median minus the reference's.",
    ]
    if plot_name:
        lines += ["", f"![PESQ wb against loss]({plot_name})"]
    lines += [
        "",
        "What the stage reported (the host's board, last look before the speaker hung up), medians over runs:",
        "",
    ]
    lines += [
        "| condition | speaker | lost (ms of speech) | recovered (ms) | concealed (ms) | stage's loss estimate "
        "| jitter buffer (ms) | speech stretched by (ms) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        for variant in row.condition.variants:
            done = [
                r for r in bench.runs
                if r.condition == row.condition.name and r.variant == variant and r.pesq is not None
            ]  # fmt: skip
            if not done:
                continue

            def med(values: list[float], fmt: str = "{:.0f}") -> str:
                return fmt.format(statistics.median(values)) if values else "—"

            lines.append(
                f"| {row.condition.label} | {VARIANT_LABEL[variant]} | {med([len(r.lost) * FRAME_MS for r in done])} "
                f"| {med([r.stage['recovered_ms'] for r in done if 'recovered_ms' in r.stage])} "
                f"| {med([r.stage['concealed_ms'] for r in done if 'concealed_ms' in r.stage])} "
                f"| {med([r.stage['loss_percent'] for r in done if 'loss_percent' in r.stage], '{:.1f} %')} "
                f"| {med([r.stage['jitter_buffer_ms'] for r in done if 'jitter_buffer_ms' in r.stage])} "
                f"| {med([round(r.stretch_ms) for r in done if r.stretch_ms is not None], '{:+.0f}')} |"
            )
    from podium.media.stage import BITRATE

    aac_kbps = BITRATE // 1000
    lines += [
        "",
        "Where the gap to libopus goes, on run 1's trace: libopus's own decode (the reference above), the same "
        f"put through the stage's AAC encoder offline (`AacEncoder`, AAC-LC at the stage's {aac_kbps} kb/s), and "
        "Podium. The first step "
        "is what re-encoding to AAC costs; the second what the stage's reception (jitter buffer, FEC, "
        "concealment, timing) costs beyond the ideal receiver:",
        "",
        "| condition | speaker | libopus | libopus + AAC | Podium | AAC's share | reception's share |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        for variant in row.condition.variants:
            found = bench.with_aac.get((row.condition.name, variant))
            if found is None:
                continue
            alone, aac, podium = found
            if alone is None or aac is None:
                continue
            lines.append(
                f"| {row.condition.label} | {VARIANT_LABEL[variant]} | {alone:.2f} | {aac:.2f} | {podium:.2f} "
                f"| {aac - alone:+.2f} | {podium - aac:+.2f} |"
            )
    lines += [
        "",
        "Each run's PESQ (Podium / libopus on the same trace; how much longer the speech lasted at the listener; "
        "how often the speaker's process fell more than 30 ms behind real time, if it did), in run order:",
        "",
    ]
    for row in rows:
        for variant in row.condition.variants:
            kind = "fec" if variant == "fec" else "plc"
            cells = []
            for r in (r for r in bench.runs if r.condition == row.condition.name and r.variant == variant):
                ref = bench.references.get((r.condition, r.run, kind))
                if r.pesq is None:
                    cells.append(f"failed ({r.error})")
                else:
                    notes = [] if r.stretch_ms is None else [f"{round(r.stretch_ms):+d} ms"]
                    if r.sender_gaps:
                        worst = max(ms for _, ms in r.sender_gaps)
                        notes.append(f"speaker late {len(r.sender_gaps)}x, worst {worst:.0f} ms")
                    stretched = f" ({'; '.join(notes)})" if notes else ""
                    cells.append(f"{r.pesq:.2f} / {'—' if ref is None else f'{ref:.2f}'}{stretched}")
            lines.append(f"- {row.condition.label}, {VARIANT_LABEL[variant]}: " + ", ".join(cells))
    lines += ["", "Notes:", ""]
    hosts = sorted({" -> ".join(side.rsplit(":", 1)[0] for side in pair.split(" -> ")) for pair in bench.pairs_seen})
    pairs = ", ".join(hosts) or "—"
    lines.append(
        f"- the stage's answers offered these host candidates: {', '.join(sorted(bench.candidates_seen)) or '—'}; "
        f"the media's ICE pair (speaker → stage) was {pairs} in every run that completed"
    )
    lines += [f"- {note}" for note in bench.notes]
    return "\n".join(lines) + "\n"


def plot(rows: list[Row]) -> str | None:
    """PESQ against random loss, Podium and libopus, with and without FEC; None if it cannot be made small."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"{TAG} matplotlib is not installed; no plot", file=sys.stderr)
        return None
    by_name = {row.condition.name: row for row in rows}
    points = [(0, "clean"), (2, "loss2"), (5, "loss5"), (10, "loss10")]
    if sum(name in by_name for _, name in points) < 2:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=90)
    series = [
        ("Podium, FEC sent", "fec", "o-", "tab:blue"),
        ("Podium, no FEC", "plain", "s-", "tab:orange"),
        ("libopus FEC+PLC", "ref_fec", "o--", "tab:blue"),
        ("libopus PLC", "ref_plc", "s--", "tab:orange"),
    ]
    for label, attr, style, color in series:
        xs, ys, lo, hi = [], [], [], []
        for x, name in points:
            row = by_name.get(name)
            if row is None:
                continue
            figure: Figure = getattr(row, "plain" if name == "clean" and attr == "fec" else attr)
            if figure.median is None:
                continue
            xs.append(x)
            ys.append(figure.median)
            lo.append(figure.median - min(figure.values))
            hi.append(max(figure.values) - figure.median)
        if xs:
            face = "white" if "--" in style else color  # libopus: hollow markers
            ax.errorbar(xs, ys, yerr=[lo, hi], fmt=style, color=color, label=label, capsize=3, markersize=5,
                        markerfacecolor=face)  # fmt: skip
    # The goals: a short bar in the colour of the speaker they are for (clean: grey).
    goals = [(0, GOAL_CLEAN, "grey")] if "clean" in by_name else []
    for x, name in points:
        row = by_name.get(name)
        if row is not None and row.condition.goal_fec is not None and row.condition.goal_plain is not None:
            goals += [(x, row.condition.goal_fec, "tab:blue"), (x, row.condition.goal_plain, "tab:orange")]
    for index, (x, goal, color) in enumerate(goals):
        label = "goal" if index == 0 else None
        ax.plot([x], [goal], marker="_", markersize=16, markeredgewidth=2, color=color, linestyle="none", label=label)
    burst = by_name.get("burst5-jitter40")
    if burst is not None:
        for figure, marker, color in ((burst.fec, "^", "tab:blue"), (burst.plain, "v", "tab:orange")):
            if figure.median is not None:
                ax.plot([5.3], [figure.median], marker=marker, color=color, linestyle="none")
        ax.annotate(
            "bursts + 40 ms jitter (Podium)", (5.5, (burst.plain.median or burst.fec.median or 2.0)), fontsize=7
        )
    ax.set_xlabel("packets lost on the speaker's path (%, random)")
    ax.set_ylabel("PESQ wb (MOS-LQO)")
    ax.set_xticks([0, 2, 5, 10])
    ax.set_ylim(1, 4.7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    return harness.save_plot(fig, PLOT, PLOT_MAX_BYTES, TAG)


# -- main --------------------------------------------------------------------------------------


def _check_no_fec_at_zero(speech: Samples) -> None:
    """The speaker 'without FEC' is the FEC encoder expecting 0 % loss: it must carry no FEC at all."""
    from podium.media.reception import opus_packet_has_fec
    from podium.testing.whip_client import fec_encoder

    with fec_encoder(0) as encoder:
        carrying = sum(
            opus_packet_has_fec(encoder.encode(speech[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]))
            for i in range(len(speech) // FRAME_SAMPLES)
        )
    if carrying:
        raise RuntimeError(f"libopus expecting 0 % loss still sent FEC in {carrying} packets")


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI smoke: clean and 2 %% loss, 1 run, 10 s of speech")
    parser.add_argument("--runs", type=int, help="runs per condition and speaker (default 5; quick 1)")
    parser.add_argument(
        "--conditions", help=f"comma-separated, of {', '.join(BY_NAME)} (default all; quick clean,loss2)"
    )
    parser.add_argument("--no-write", action="store_true", help="print the results, leave RESULTS.md alone")
    parser.add_argument("--no-plot", action="store_true", help=f"do not draw {PLOT.name}")
    parser.add_argument("--keep", action="store_true", help="keep the server's data dir and log (path printed)")
    parser.add_argument("--speaker", metavar="JOB", help=argparse.SUPPRESS)  # the speaker, inside the namespace
    args = parser.parse_args()
    if args.speaker is not None:
        return speaker_main(args.speaker)
    if os.geteuid() != 0:
        parser.error("network namespaces need root (ip netns add)")
    for program in ("ip", "ffmpeg", "espeak-ng"):
        if shutil.which(program) is None:
            parser.error(f"{program} is not installed")
    if args.runs is None:
        args.runs = 1 if args.quick else 5
    names = (args.conditions or ("clean,loss2" if args.quick else ",".join(BY_NAME))).split(",")
    unknown = [n for n in names if n not in BY_NAME]
    if unknown or args.runs < 1:
        parser.error(f"unknown condition(s) {unknown}; known: {', '.join(BY_NAME)}" if unknown else "--runs ≥ 1")
    conditions = [c for c in CONDITIONS if c.name in names]
    plan = [(c, v, run) for run in range(args.runs) for c in conditions for v in c.variants]
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored (&)

    speech = speak(SENTENCES if args.quick else TEXT)
    _check_no_fec_at_zero(speech)
    print(f"{TAG} {len(plan)} runs of {len(speech) / SAMPLE_RATE:.1f} s of speech: {', '.join(names)}", flush=True)
    started = time.monotonic()
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="podium-network-"))
    try:
        with Namespace.made() as net:
            print(f"{TAG} namespace {net.name}: speaker {net.ns_address} → veth → {net.host_address} (podium serve); "
                  "loss and jitter applied in the speaker's process before sending", flush=True)  # fmt: skip
            rx_before = net.host_rx_packets()
            with harness.serve(tmp / "data", tmp / "podium.log", env=SERVER_ENV, host=net.host_address) as server:
                bench = Bench(args, net, server, speech, tmp)
                asyncio.run(bench.measure(plan))
                log = server.log_text()
            rx = net.host_rx_packets() - rx_before
            completed = sum(1 for r in bench.runs if r.error is None)
            bench.notes.append(
                f"the host end of the veth received {rx:,} packets in all: the speakers' RTP, RTCP, STUN and HTTP "
                f"({completed} run(s) completed, {len(speech) // FRAME_SAMPLES:,} speech frames each)"
            )
    finally:
        if args.keep:
            print(f"{TAG} kept {tmp} (server log: {tmp / 'podium.log'})", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    noisy = [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line or "Traceback" in line]
    if noisy:
        bench.notes.append(f"the podium log has {len(noisy)} warning/error line(s), e.g. `{noisy[0][:200]}`")
    load_after = os.getloadavg()
    bench.notes.append(
        f"load average (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in load_before)}; "
        f"after: {', '.join(f'{x:.2f}' for x in load_after)} (the machine is shared)"
    )
    late = [r for r in bench.runs if r.sender_gaps]
    if late:
        worst = max((gap for r in late for gap in r.sender_gaps), key=lambda gap: gap[1])
        bench.notes.append(
            f"the speaker's process fell more than 30 ms behind real time (a frame handed to its encoder over 30 ms "
            f"after the one before; the packets then left in a burst) in {len(late)} of {len(bench.runs)} runs, "
            f"{sum(len(r.sender_gaps) for r in late)} times in all, at worst {worst[1]:.0f} ms"
        )
    else:
        bench.notes.append("the speaker's process kept real time in every run (no frame more than 30 ms late)")
    failed = [r for r in bench.runs if r.error is not None]
    if failed:
        bench.notes.append(
            f"{len(failed)} run(s) failed, e.g. {failed[0].condition} {failed[0].variant}: {failed[0].error}"
        )
    elapsed = time.monotonic() - started
    rows = rows_of(bench, conditions, args.runs)
    write = not (args.no_write or args.quick)
    plot_name = plot(rows) if write and not args.no_plot else None
    text = report(bench, rows, args, elapsed, plot_name)
    print(text)
    if write:
        harness.write_section("network", text)
    elif args.quick:
        print(f"{TAG} --quick writes nothing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
