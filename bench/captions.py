"""Live captions (issue 19): words right per engine, CPU per captioned speaker, delay, speakers in real time.

1. Words right, in-process: fixed English and German sentences (below), spoken by espeak-ng at run
   time, each cut by the live path's utterance cutter (one utterance a sentence) and downsampled to
   16 kHz as the workers do, into `load_engine(...).recognizer(lang)`:
   pocketsphinx (en only), Whisper tiny.en (en), Whisper base (en and de). Words right = reference
   words matched in order (the longest common subsequence of normalised words: lowercase, no
   punctuation, umlauts kept) / reference words.
2. CPU per captioned speaker: the process CPU time of that recognition (every thread counted; the
   engines run with one thread) / the seconds of audio recognized; and, live (3.), the worker
   processes' CPU while N speakers talk.
3. Live: `podium serve` with the engine set by PODIUM_CAPTIONS_*; N WHIP speakers (aiortc) talk at
   once, sentences back to back, each a different order of the sentences, all starting on the same
   20 ms frame. Per N: the stage's `podium_stage_frames_skipped` before and after, the host's captions
   status every second (live/behind/paused), the server's and its workers' CPU, and the caption
   delay: from when the publisher sent a sentence's last voiced frame to when its final caption is
   on the listener page (headless Chromium, a MutationObserver stamping each final `.caption` line
   with Date.now()) and, beside it, in the timeline object (followed as the page does).
   In real time at N: the status stayed "live", every sentence got a final caption, and the stage
   skipped no frame.

Usage: python bench/captions.py [--quick] [--no-write] [--no-browser] [--engines pocketsphinx,whisper-base]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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

# Never a model hub: every model here is a local directory from a package of the registry.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from podium.media.mixer import FRAME_SAMPLES
from podium.testing import models
from podium.testing.speech import SAMPLE_RATE, speak, speech_spans
from podium.testing.whip_client import Publisher, SampleTrack, publish

GOAL_DELAY_P95_S = 3.0
GOAL_BASE_WORDS = 0.90
GOAL_SPEAKERS = 2

# Plain sentences without numbers or names (a number may come back as digits, a name spelled
# otherwise): what is scored is hearing, not spelling. Each lasts 2-4 s at espeak-ng's 150 words a
# minute, under the 5 s a Whisper utterance is cut at.
ENGLISH = (
    "The weather was cold and windy this morning.",
    "Please open the window before the meeting starts.",
    "She bought fresh bread and milk at the market.",
    "We will talk about music and books tonight.",
    "The children played in the garden after school.",
    "Our next guest has travelled a long way to be here.",
    "The train was late because of the heavy snow.",
    "Thank you all for listening and for your questions.",
)
GERMAN = (
    "Das Wetter war heute Morgen kalt und windig.",
    "Bitte öffne das Fenster vor der Sitzung.",
    "Sie kaufte frisches Brot und Milch auf dem Markt.",
    "Wir sprechen heute Abend über Musik und Bücher.",
    "Die Kinder spielten nach der Schule im Garten.",
    "Unser nächster Gast ist von weit her gekommen.",
    "Der Zug hatte wegen des Schnees Verspätung.",
    "Vielen Dank fürs Zuhören und für eure Fragen.",
)
# The live speakers' sentences: the English ones and four more, each speaker in another order.
LIVE_EXTRA = (
    "A good question deserves a short and clear answer.",
    "The river runs quietly past the old stone bridge.",
    "Coffee tastes better when you share it with friends.",
    "Tomorrow we will meet again at the same time.",
)
NAMES = ("Ada", "Ben", "Cleo", "Dan")
GAP_S = 0.8  # silence after each sentence (beside espeak-ng's own): speech back to back, utterances apart
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
MATCH_SLACK_S = 0.4  # a caption and a sentence belong together if their spans overlap within this
CHROMIUM = "/usr/bin/chromium"

_STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[captions +{time.monotonic() - _STARTED:.0f} s] {message}", file=sys.stderr, flush=True)


# -- words right -------------------------------------------------------------------------------


def words(text: str) -> list[str]:
    """Lowercase words without punctuation; letters of any script kept (umlauts, ß), apostrophes dropped."""
    return [re.sub("['\u2019]", "", w) for w in re.findall("[\\w'\u2019]+", text.lower())]


def common_words(reference: list[str], heard: list[str]) -> int:
    """Reference words matched in order: the length of the longest common subsequence."""
    previous = [0] * (len(heard) + 1)
    for ref in reference:
        current = [0]
        for j, word in enumerate(heard):
            current.append(previous[j] + 1 if ref == word else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


@dataclass
class Accuracy:
    engine: str  # as shown: "pocketsphinx", "whisper tiny.en", "whisper base"
    language: str
    voice: str  # espeak-ng's voice
    sentences: int = 0
    reference_words: int = 0
    right_words: int = 0
    audio_s: float = 0.0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    load_s: float = 0.0
    heard: list[tuple[str, str]] = field(default_factory=list)  # (reference, heard)
    unavailable: str | None = None

    @property
    def right(self) -> float:
        return self.right_words / self.reference_words if self.reference_words else float("nan")


@dataclass(frozen=True)
class EngineChoice:
    label: str  # "pocketsphinx", "whisper tiny.en", "whisper base"
    key: str  # as --engines names it
    name: str  # load_engine's name
    model: str  # a model directory, or ""


def engine_choices(cache: Path) -> dict[str, EngineChoice]:
    """The engines measured; a Whisper model that is not installed is left out with a notice."""
    choices = {"pocketsphinx": EngineChoice("pocketsphinx", "pocketsphinx", "pocketsphinx", "")}
    try:
        choices["whisper-tiny"] = EngineChoice(
            "whisper tiny.en", "whisper-tiny", "whisper", str(models.whisper_tiny_en())
        )
    except models.ModelMissing as e:
        say(f"whisper tiny.en left out: {e}")
    try:
        choices["whisper-base"] = EngineChoice(
            "whisper base", "whisper-base", "whisper", str(models.whisper_base(cache))
        )
    except models.ModelMissing as e:
        say(f"whisper base left out: {e}")
    return choices


def measure_accuracy(choice: EngineChoice, language: str, voice: str, sentences: tuple[str, ...]) -> Accuracy:
    """Each sentence as one utterance through the engine's recognizer, in this process."""
    result = Accuracy(choice.label, language, voice)
    try:
        from podium.captions.engine import CaptionsUnavailable
        from podium.captions.engines import load_engine
    except ImportError as e:
        result.unavailable = f"the engines are not on this checkout ({e})"
        return result
    started = time.perf_counter()
    try:
        engine = load_engine(choice.name, choice.model, language)
        recognizer = engine.recognizer(language)
    except CaptionsUnavailable as e:
        result.unavailable = str(e)
        return result
    result.load_s = time.perf_counter() - started
    for text in sentences:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        heard, audio_s = recognize(recognizer, speak(text, voice=voice))
        result.cpu_s += time.process_time() - cpu0
        result.wall_s += time.perf_counter() - wall0
        result.audio_s += audio_s
        reference = words(text)
        result.sentences += 1
        result.reference_words += len(reference)
        result.right_words += common_words(reference, words(heard))
        result.heard.append((text, heard))
        say(f"  {choice.label} [{voice}] {common_words(reference, words(heard))}/{len(reference)}: {heard!r}")
    return result


def recognize(recognizer: Any, speech: npt.NDArray[np.int16]) -> tuple[str, float]:
    """`speech` (48 kHz) through the live path's utterance cutter and downsampler into `recognizer`:
    (the words of every utterance cut, seconds of audio recognized)."""
    from podium.captions.utterances import Audio, Begin, Downsampler, End, UtteranceCutter

    cutter = UtteranceCutter(new_id=lambda at_s: f"u{at_s:.2f}")
    downsample = Downsampler()
    # A second of silence before (the cutter learns the noise floor, as on a stage before one talks) and after.
    silence = np.zeros(SAMPLE_RATE, dtype=np.int16)
    padded = np.concatenate([silence, speech, silence])
    said: list[str] = []
    audio_s = 0.0
    events = []
    for i in range(len(padded) // FRAME_SAMPLES):
        events += cutter.frame(i * FRAME_S, padded[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES])
    events += cutter.close()
    for event in events:
        if isinstance(event, Begin):
            downsample.reset()
        elif isinstance(event, Audio):
            recognizer.accept(downsample(event.samples))
            audio_s += len(event.samples) / SAMPLE_RATE
        elif isinstance(event, End):
            said.append(recognizer.finish())
    return " ".join(t for t in said if t.strip()), audio_s


# -- live: speakers, page, timeline ------------------------------------------------------------


@dataclass
class Sentence:
    speaker: int
    text: str
    first_frame: int  # in the speaker's script: its first and last voiced 20 ms frames
    last_frame: int
    start_wall: float = float("nan")  # when the publisher sent those frames (time.time())
    end_wall: float = float("nan")
    captions: list[str] = field(default_factory=list)  # the final captions' utterance ids


@dataclass
class Script:
    """One speaker's speech: sentences back to back, and where each one is voiced."""

    samples: npt.NDArray[np.int16]
    sentences: list[Sentence]


_SPOKEN: dict[tuple[str, str], npt.NDArray[np.int16]] = {}


def spoken(text: str, voice: str = "en") -> npt.NDArray[np.int16]:
    if (text, voice) not in _SPOKEN:
        _SPOKEN[text, voice] = speak(text, voice=voice)
    return _SPOKEN[text, voice]


def script_for(speaker: int, talk_s: float) -> Script:
    pool = ENGLISH + LIVE_EXTRA
    gap = np.zeros(round(GAP_S / FRAME_S) * FRAME_SAMPLES, dtype=np.int16)
    pieces: list[npt.NDArray[np.int16]] = []
    sentences: list[Sentence] = []
    length = 0
    for i in range(len(pool) * 4):
        text = pool[(speaker * 3 + i) % len(pool)]
        audio = spoken(text)
        if sentences and (length + len(audio)) / SAMPLE_RATE > talk_s:
            break
        spans = speech_spans(audio)
        first, last = spans[0][0], spans[-1][1] - 1
        sentences.append(Sentence(speaker, text, (length + first) // FRAME_SAMPLES, (length + last) // FRAME_SAMPLES))
        pieces += [audio, gap]
        length += len(audio) + len(gap)
    return Script(np.concatenate(pieces), sentences)


class Gate:
    """Holds every speaker silent until `open()`: then each starts its script on its next frame."""

    def __init__(self) -> None:
        self.opened = False

    def source(self, script: Script, starts: dict[int, int], speaker: int) -> Any:
        silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)

        def frame(n: int) -> npt.NDArray[np.int16]:
            if speaker not in starts:
                if not self.opened:
                    return silence
                starts[speaker] = n
            i = n - starts[speaker]
            chunk = script.samples[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]
            return chunk if len(chunk) == FRAME_SAMPLES else silence

        return frame


# Stamps each final caption line the moment it is on the page. The page's captions (captions.js)
# are `.caption[data-utterance]` lines, `.partial` until their final replaces them in place.
OBSERVER_JS = """
(() => {
  const seen = {};
  window.__captionsSeen = seen;
  const look = () => {
    const now = Date.now();
    for (const line of document.querySelectorAll(".caption[data-utterance]")) {
      const words = (line.querySelector(".words") || line).textContent.trim();
      if (!words) continue;
      const entry = seen[line.dataset.utterance] || (seen[line.dataset.utterance] = {});
      if (line.classList.contains("partial")) {
        if (entry.partial_at === undefined) entry.partial_at = now;
      } else if (entry.final_at === undefined) {
        entry.final_at = now;
        entry.text = words;
        entry.hidden = !!line.closest("[hidden]");
      }
    }
  };
  new MutationObserver(look).observe(document, {
    subtree: true, childList: true, characterData: true, attributes: true,
    attributeFilter: ["class", "hidden", "data-utterance"],
  });
})();
"""


class TimelineFollower:
    """Follows the space's timeline objects as the listener page's `follow()` does; stamps (time.time())
    when each utterance's final caption first appears."""

    def __init__(self, client: httpx.AsyncClient, base: str, space_id: str) -> None:
        self.client, self.base, self.space_id = client, base, space_id
        self.finals: dict[str, dict[str, Any]] = {}
        self.final_at: dict[str, float] = {}
        self.partial_at: dict[str, float] = {}
        self.errors = 0

    def apply(self, item: dict[str, Any], at: float) -> None:
        for caption in [*item.get("captions", []), *item.get("recent_captions", [])]:
            uid = str(caption.get("id"))
            if caption.get("final"):
                if uid not in self.final_at:
                    self.final_at[uid] = at
                    self.finals[uid] = caption
            else:
                self.partial_at.setdefault(uid, at)

    async def index(self) -> dict[str, Any]:
        response = await self.client.get(f"{self.base}/timeline/{self.space_id}/index.json", timeout=10.0)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    async def run(self, stop: asyncio.Event) -> None:
        index: dict[str, Any] | None = None
        seq: int | None = None
        for _ in range(100_000):  # bounded: about one object a second
            if stop.is_set():
                return
            try:
                if index is None:
                    index = await self.index()
                    seq = int(index["keyframe"]) if seq is None else seq
                assert seq is not None
                url = str(httpx.URL(self.base).join(str(index["item_url"]).replace("{seq}", str(seq))))
                response = await self.client.get(url, timeout=10.0)
                if response.status_code == 200:
                    self.apply(response.json(), time.time())
                    seq += 1
                    continue
                index = await self.index()
                if seq > int(index["latest"]) + 1:
                    seq = int(index["keyframe"])
                await asyncio.sleep(float(index.get("interval_s") or 1.0))
            except (httpx.HTTPError, ValueError, KeyError):
                self.errors += 1
                index = None
                await asyncio.sleep(1.0)


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, by the parent pid in /proc/*/stat (the workers are started from
    a thread of the server, and /proc/PID/task/PID/children lists only the main thread's children)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = list(parents.get(pid, []))
    while todo and len(found) < 200:
        p = todo.pop()
        found.append(p)
        todo.extend(parents.get(p, []))
    return found


def tree_cpu(pid: int) -> dict[int, float]:
    """CPU seconds so far of `pid` and every process below it (the captions workers)."""
    return {p: harness.cpu_seconds(p) for p in [pid, *descendants(pid)]}


def cpu_between(before: dict[int, float], after: dict[int, float], root: int) -> tuple[float, float]:
    """(server, workers) CPU seconds between two `tree_cpu` looks; a process started between them counts from 0."""
    server = after.get(root, 0.0) - before.get(root, 0.0)
    workers = sum(cpu - before.get(p, 0.0) for p, cpu in after.items() if p != root)
    return server, workers


async def frames_skipped(client: httpx.AsyncClient, base: str, space_id: str) -> float | None:
    try:
        text = (await client.get(base + "/metrics", timeout=10.0)).text
    except httpx.HTTPError:
        return None
    pattern = rf'^podium_stage_frames_skipped(?:_total)?\{{space="{re.escape(space_id)}"\}} ([0-9.e+]+)$'
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else None


@dataclass
class StatusLook:
    at: float
    http: int
    state: str
    detail: str
    body: dict[str, Any] = field(default_factory=dict)


async def captions_status(client: httpx.AsyncClient, base: str, space: dict[str, Any]) -> StatusLook:
    """The host's view of the space's captions (GET /api/spaces/{id}/captions)."""
    try:
        response = await client.get(
            f"{base}/api/spaces/{space['id']}/captions",
            headers={"Authorization": f"Bearer {space['host_token']}"},
            timeout=10.0,
        )
    except httpx.HTTPError as e:
        return StatusLook(time.time(), 0, "error", str(e))
    if response.status_code != 200:
        return StatusLook(time.time(), response.status_code, "n/a", response.text[:200])
    body = response.json()
    detail = str(body.get("detail") or body.get("reason") or "")
    return StatusLook(time.time(), 200, str(body.get("state")), detail, body)


async def captions_ready(client: httpx.AsyncClient, base: str, space: dict[str, Any]) -> str | None:
    """Waits (bounded) until the node's engine is loaded and the space's captions are on; None when
    they are, else why not. The workers load their model after the server first answers."""
    deadline = time.monotonic() + 60
    look = await captions_status(client, base, space)
    for _ in range(200):
        if look.http == 404:
            return "the captions API is not on this checkout (GET /captions: 404)"
        if look.http == 200 and look.body.get("available") is True:
            if look.body.get("enabled") is False:
                response = await client.put(
                    f"{base}/api/spaces/{space['id']}/captions",
                    headers={"Authorization": f"Bearer {space['host_token']}"},
                    json={"enabled": True, "language": "en"},
                )
                if response.status_code != 200:
                    return f"switching captions on answered {response.status_code}: {response.text[:200]}"
            return None
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
        look = await captions_status(client, base, space)
    return f"GET /captions: {look.http} {look.state}: {look.detail}"


async def poll_status(
    client: httpx.AsyncClient, base: str, space: dict[str, Any], into: list[StatusLook], stop: asyncio.Event
) -> None:
    for _ in range(3600):  # bounded: one look a second
        into.append(await captions_status(client, base, space))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
        if stop.is_set():
            return


async def join_speaker(client: httpx.AsyncClient, base: str, space: dict[str, Any], k: int) -> tuple[str, str]:
    """(member id, token) of speaker k, named NAMES[k]: the host for k = 0, an invited speaker else."""
    auth = {"Authorization": f"Bearer {space['host_token']}"}
    if k == 0:
        response = await client.put(f"{base}/api/spaces/{space['id']}/me/name", headers=auth, json={"name": NAMES[0]})
        if response.status_code != 200:
            raise RuntimeError(f"naming the host answered {response.status_code}: {response.text}")
        return str(response.json()["id"]), str(space["host_token"])
    response = await client.post(f"{base}/api/spaces/{space['id']}/invites", headers=auth, json={"role": "speaker"})
    if response.status_code != 201:
        raise RuntimeError(f"POST invites answered {response.status_code}: {response.text}")
    invite = response.json()["token"]
    response = await client.post(
        f"{base}/api/spaces/{space['id']}/invites/redeem",
        headers={"Authorization": f"Bearer {invite}"},
        json={"name": NAMES[k]},
    )
    if response.status_code != 201:
        raise RuntimeError(f"redeeming the invite answered {response.status_code}: {response.text}")
    body = response.json()
    return str(body["member"]["id"]), str(body["token"])


@dataclass
class LiveStep:
    engine: str
    speakers: int
    talk_s: float = 0.0
    sentences: list[Sentence] = field(default_factory=list)
    finals: dict[str, dict[str, Any]] = field(default_factory=dict)  # by utterance id, from the timeline
    timeline_at: dict[str, float] = field(default_factory=dict)
    page_at: dict[str, float] | None = None  # None: no browser, or the page shows no captions
    page_note: str = ""
    statuses: list[StatusLook] = field(default_factory=list)
    skipped: tuple[float | None, float | None] = (None, None)
    server_cpu_s: float = 0.0  # over the talking (window_s)
    workers_cpu_s: float = 0.0  # from the first word to the last final (or the end of the drain)
    client_cpu_s: float = 0.0  # this process: the speakers' Opus and WebRTC, over the talking
    window_s: float = 0.0

    transcript_segments: int | None = None
    unavailable: str | None = None
    notes: list[str] = field(default_factory=list)

    # -- what the step shows

    @property
    def worker_share(self) -> float:
        """The workers' CPU per second of one speaker's talking: the share of a core a speaker costs."""
        return self.workers_cpu_s / max(self.window_s * self.speakers, 1e-9)

    def delays(self, at: dict[str, float]) -> list[float]:
        """Per captioned sentence: its last caption visible - its last voiced frame sent."""
        out = []
        for s in self.sentences:
            if s.captions and all(uid in at for uid in s.captions):
                out.append(max(at[uid] for uid in s.captions) - s.end_wall)
        return out

    @property
    def lost(self) -> int:
        return sum(1 for s in self.sentences if not s.captions)

    @property
    def unmatched(self) -> int:
        matched = {uid for s in self.sentences for uid in s.captions}
        return sum(1 for uid, c in self.finals.items() if uid not in matched and str(c.get("text", "")).strip())

    @property
    def states(self) -> list[str]:
        return sorted({look.state for look in self.statuses})

    @property
    def skipped_delta(self) -> float | None:
        before, after = self.skipped
        return None if before is None or after is None else after - before

    @property
    def realtime(self) -> bool:
        return (
            self.unavailable is None
            and bool(self.sentences)
            and self.states == ["live"]
            and self.lost == 0
            and self.skipped_delta == 0
        )

    def live_words(self) -> float:
        right = total = 0
        for s in self.sentences:
            heard = " ".join(str(self.finals[u].get("text", "")) for u in s.captions)
            reference = words(s.text)
            total += len(reference)
            right += common_words(reference, words(heard))
        return right / total if total else float("nan")


def match_captions(step: LiveStep, members: dict[str, int], offset: float) -> None:
    """Each final caption to the sentences of its speaker it covers (an utterance the cutter ran on
    over two sentences counts for both), else to the nearest within MATCH_SLACK_S. `offset` turns the
    recording's time axis into wall time (started_at), then is corrected by the median start residual."""
    finals = [c for c in step.finals.values() if str(c.get("text", "")).strip() and c.get("speaker") in members]

    def overlap(c: dict[str, Any], s: Sentence) -> float:
        end = min(offset + float(c["end_s"]), s.end_wall + FRAME_S)
        return float(end - max(offset + float(c["start_s"]), s.start_wall))

    for _ in range(2):
        for s in step.sentences:
            s.captions = []
        residuals = []
        for c in finals:
            mine = [s for s in step.sentences if s.speaker == members[str(c["speaker"])]]
            best = max(mine, key=lambda s: overlap(c, s), default=None)
            if best is None or overlap(c, best) < -MATCH_SLACK_S:
                continue
            residuals.append(offset + float(c["start_s"]) - best.start_wall)
            for s in mine:
                if s is best or overlap(c, s) >= min(0.3, 0.3 * (s.end_wall - s.start_wall)):
                    s.captions.append(str(c["id"]))
        if len(residuals) < 3:
            return
        shift = statistics.median(residuals)
        if abs(shift) < 0.05 or abs(shift) > 3.0:
            return
        if abs(shift) >= 0.5:  # below that it is mostly the cutter's pre-roll
            step.notes.append(f"captions began {shift:+.2f} s from their sentences on the started_at axis")
        offset -= shift


async def live_step(
    choice: EngineChoice, n: int, args: argparse.Namespace, browser: Any | None, client: httpx.AsyncClient
) -> LiveStep:
    step = LiveStep(choice.label, n)
    env = {
        "PODIUM_CAPTIONS_ENGINE": choice.name,
        "PODIUM_CAPTIONS_MODEL": choice.model,
        "PODIUM_CAPTIONS_LANGUAGE": "en",
        "PODIUM_CAPTIONS_MAX_SPEAKERS": str(n),
        "PODIUM_CAPTIONS_WORKERS": str(args.workers),
        "HF_HUB_OFFLINE": "1",
    }
    scripts = [script_for(k, args.talk) for k in range(n)]
    step.talk_s = max(len(s.samples) for s in scripts) / SAMPLE_RATE
    with harness.podium_server(startup_timeout_s=60.0, env=env) as server:
        space = await harness.create_space(client, server.base, f"captions benchmark: {choice.label}, {n} speakers")
        base, pid = server.base, server.proc.pid
        why = await captions_ready(client, base, space)
        if why is not None:
            step.unavailable = why
            await harness.end_space(client, base, space)
            return step
        gate = Gate()
        starts: dict[int, int] = {}
        tracks: list[SampleTrack] = []
        publishers: list[Publisher] = []
        members: dict[str, int] = {}
        page = context = None
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        follower = TimelineFollower(client, base, space["id"])
        try:
            for k in range(n):
                member, token = await join_speaker(client, base, space, k)
                members[member] = k
                track = SampleTrack(gate.source(scripts[k], starts, k))
                publishers.append(await publish(base + space["urls"]["whip"], token, track))
                tracks.append(track)
            if browser is not None:
                context = await browser.new_context()
                page = await context.new_page()
                await page.add_init_script(OBSERVER_JS)
                await page.goto(str(httpx.URL(base).join(space["urls"]["page"])), wait_until="load", timeout=30_000)
            tasks.append(asyncio.create_task(follower.run(stop)))
            tasks.append(asyncio.create_task(poll_status(client, base, space, step.statuses, stop)))
            await asyncio.sleep(args.settle)
            view = (await client.get(f"{base}/api/spaces/{space['id']}")).json()
            started_at = harness.parse_time(view["started_at"]) if view.get("started_at") else time.time()
            skipped0 = await frames_skipped(client, base, space["id"])
            cpu0, own0, wall0 = tree_cpu(pid), harness.cpu_seconds(os.getpid()), time.monotonic()
            gate.opened = True
            say(f"{choice.label}, {n} speaker(s): talking for {step.talk_s:.0f} s")
            await asyncio.sleep(step.talk_s + 0.5)
            # The server's and the speakers' CPU over the talking; the workers' until their last final.
            cpu_talk, own1, wall1 = tree_cpu(pid), harness.cpu_seconds(os.getpid()), time.monotonic()
            step.server_cpu_s = cpu_between(cpu0, cpu_talk, pid)[0]
            step.client_cpu_s, step.window_s = own1 - own0, wall1 - wall0
            for k, script in enumerate(scripts):
                for s in script.sentences:
                    start = starts.get(k)
                    if start is not None:
                        s.start_wall = tracks[k].sent_at.get(start + s.first_frame, float("nan"))
                        s.end_wall = tracks[k].sent_at.get(start + s.last_frame, float("nan"))
                step.sentences += [s for s in script.sentences if s.end_wall == s.end_wall]
            # The finals of the last sentences: until every sentence has one, or the drain time is up.
            drain_until = time.monotonic() + args.drain
            while time.monotonic() < drain_until:
                step.finals = dict(follower.finals)
                match_captions(step, members, started_at)
                if step.lost == 0:
                    break
                await asyncio.sleep(0.5)
            step.workers_cpu_s = cpu_between(cpu0, tree_cpu(pid), pid)[1]
            step.skipped = (skipped0, await frames_skipped(client, base, space["id"]))
            await asyncio.sleep(1.5)  # a final the page got with the timeline's last object
            step.finals, step.timeline_at = dict(follower.finals), dict(follower.final_at)
            step.notes.clear()
            match_captions(step, members, started_at)
            if page is not None:
                shows = await page.evaluate("typeof makeCaptions === 'function'")
                seen: dict[str, dict[str, Any]] = await page.evaluate("window.__captionsSeen || {}")
                if not shows and not seen:
                    step.page_note = "the listener page has no captions on this checkout: delays at the timeline only"
                else:
                    step.page_at = {uid: e["final_at"] / 1000 for uid, e in seen.items() if "final_at" in e}
                    hidden = sum(1 for e in seen.values() if e.get("hidden"))
                    if hidden:
                        step.notes.append(f"{hidden} final line(s) appeared inside a hidden element")
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if context is not None:
                with contextlib.suppress(Exception):
                    await context.close()
            for publisher in publishers:
                with contextlib.suppress(Exception):
                    await publisher.close()
            await harness.end_space(client, base, space)
        with contextlib.suppress(httpx.HTTPError, ValueError):
            response = await client.get(f"{base}/api/spaces/{space['id']}/transcript", timeout=10.0)
            if response.status_code == 200:
                step.transcript_segments = len(response.json().get("segments", []))
    return step


def describe(step: LiveStep) -> str:
    if step.unavailable:
        return f"{step.engine}, {step.speakers} speaker(s): unavailable ({step.unavailable})"
    page = summary(step.delays(step.page_at)) if step.page_at is not None else "-"
    return (
        f"{step.engine}, {step.speakers} speaker(s): status {'/'.join(step.states)}, "
        f"lost {step.lost}/{len(step.sentences)}, skipped {step.skipped_delta}, "
        f"delay page {page}, timeline {summary(step.delays(step.timeline_at))}, "
        f"workers {100 * step.worker_share:.0f} % of a core per speaker"
    )


# -- the run -----------------------------------------------------------------------------------


def summary(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{harness.percentile(values, 50):.2f} / {harness.percentile(values, 95):.2f}"


@dataclass
class Results:
    accuracy: list[Accuracy]
    live: dict[str, list[LiveStep]]  # by engine label
    skipped_steps: dict[str, list[int]]
    browser_note: str
    args: argparse.Namespace


async def measure_live(
    args: argparse.Namespace, choices: list[EngineChoice]
) -> tuple[dict[str, list[LiveStep]], dict[str, list[int]], str]:
    live: dict[str, list[LiveStep]] = {}
    skipped: dict[str, list[int]] = {}
    note = ""
    async with contextlib.AsyncExitStack() as stack:
        browser = None
        if not args.no_browser:
            try:
                from playwright.async_api import async_playwright

                playwright = await stack.enter_async_context(async_playwright())
                browser = await playwright.chromium.launch(
                    executable_path=args.chromium,
                    headless=True,
                    args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync"],
                )  # fmt: skip
                stack.push_async_callback(browser.close)
            except Exception as e:  # no Playwright or no Chromium: the timeline still tells
                note = f"no browser ({type(e).__name__}: {e}); delays at the timeline only"
                say(note)
                browser = None
        else:
            note = "--no-browser: delays at the timeline only"
        async with httpx.AsyncClient(timeout=30.0) as client:
            for choice in choices:
                steps = live.setdefault(choice.label, [])
                for n in args.speakers:
                    if steps and not steps[-1].realtime and steps[-1].unavailable is None and len(steps) >= 2:
                        skipped.setdefault(choice.label, []).append(n)
                        continue  # two steps in and already behind: more speakers will not do better
                    step = await live_step(choice, n, args, browser, client)
                    say(describe(step))
                    steps.append(step)
                    if step.unavailable:
                        skipped.setdefault(choice.label, []).extend(m for m in args.speakers if m > n)
                        break
    return live, skipped, note


def measure(args: argparse.Namespace) -> Results:
    choices = engine_choices(args.model_cache)
    english, german = ENGLISH[: args.sentences], GERMAN[: args.sentences]
    accuracy: list[Accuracy] = []
    if not args.no_words:
        # English in two of espeak-ng's voices: its default (a British male voice, the hardest for the
        # engines) and the American female variant the tests speak with.
        for key, language, voice in (
            ("pocketsphinx", "en", "en"),
            ("pocketsphinx", "en", "en-us+f2"),
            ("whisper-tiny", "en", "en"),
            ("whisper-tiny", "en", "en-us+f2"),
            ("whisper-base", "en", "en"),
            ("whisper-base", "en", "en-us+f2"),
            ("whisper-base", "de", "de"),
        ):
            if key not in choices:
                continue
            say(f"words right: {choices[key].label} [{voice}], {args.sentences} sentences")
            sentences = english if language == "en" else german
            accuracy.append(measure_accuracy(choices[key], language, voice, sentences))
    wanted = [choices[key] for key in args.engines if key in choices]
    live, skipped, note = asyncio.run(measure_live(args, wanted)) if args.speakers else ({}, {}, "")
    return Results(accuracy, live, skipped, note, args)


def report(results: Results) -> str:
    args = results.args
    lines = ["## Live captions (issue 19)", "", *harness.header_lines()]
    lines += [
        f"- Speech: espeak-ng (`podium.testing.speech.speak`), {args.sentences} English and {args.sentences} German"
        " sentences for the words, fixed in `bench/captions.py`",
        f"- Live: {args.talk:.0f} s of speech per speaker, {GAP_S} s between sentences; "
        f"PODIUM_CAPTIONS_WORKERS={args.workers}, PODIUM_CAPTIONS_MAX_SPEAKERS = the speakers of the step",
        "",
        "### Words right (each sentence through the utterance cutter, in-process)",
        "",
        "| engine | language (espeak-ng voice) | sentences | words right | CPU s / audio s | wall s / audio s"
        " | model load |",
        "|---|---|---|---|---|---|---|",
    ]
    for a in results.accuracy:
        if a.unavailable:
            lines.append(f"| {a.engine} | {a.language} ({a.voice}) | - | unavailable: {a.unavailable} | | | |")
            continue
        lines.append(
            f"| {a.engine} | {a.language} ({a.voice}) | {a.sentences} "
            f"| {a.right_words}/{a.reference_words} = **{100 * a.right:.1f} %** "
            f"| {a.cpu_s / a.audio_s:.3f} | {a.wall_s / a.audio_s:.3f} | {a.load_s:.1f} s |"
        )
    if results.accuracy:
        lines += [
            "",
            "CPU s / audio s is the CPU time of the recognition (every thread of the process) per second of"
            " speech, with the engine's one thread: the share of a core one talking speaker costs.",
        ]
        worst = [(a, ref, heard) for a in results.accuracy if not a.unavailable for ref, heard in a.heard
                 if common_words(words(ref), words(heard)) < len(words(ref))]  # fmt: skip
        if worst:
            lines += ["", "<details><summary>What the engines heard wrong</summary>", ""]
            lines += [f'- {a.engine} [{a.voice}]: "{ref}" → "{heard}"' for a, ref, heard in worst]
            lines += ["", "</details>"]
    for engine, steps in results.live.items():
        lines += ["", f"### Live: {engine}", ""]
        lines += [
            "| speakers | captions status | frames skipped | sentences captioned | delay on the page p50 / p95 (s) "
            "| delay in the timeline p50 / p95 (s) | server CPU | workers CPU (per speaker) | speakers' process CPU "
            "| live words right | real time |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for step in steps:
            if step.unavailable:
                lines.append(f"| {step.speakers} | unavailable: {step.unavailable} | | | | | | | | | no |")
                continue
            window = max(step.window_s, 1e-9)
            skipped = "?" if step.skipped_delta is None else f"{step.skipped_delta:.0f}"
            page = summary(step.delays(step.page_at)) if step.page_at is not None else "-"
            shown = ""
            if step.page_at is not None:
                on_page = sum(1 for s in step.sentences if s.captions and all(u in step.page_at for u in s.captions))
                shown = f" ({on_page} shown)"
            lines.append(
                f"| {step.speakers} | {'/'.join(step.states) or '-'} | {skipped} "
                f"| {len(step.sentences) - step.lost}/{len(step.sentences)}{shown} | {page} "
                f"| {summary(step.delays(step.timeline_at))} | {100 * step.server_cpu_s / window:.0f} % "
                f"| {100 * step.workers_cpu_s / window:.0f} % ({100 * step.worker_share:.0f} %) "
                f"| {100 * step.client_cpu_s / window:.0f} % | {100 * step.live_words():.0f} % "
                f"| {'yes' if step.realtime else 'no'} |"
            )
        if results.skipped_steps.get(engine):
            lines.append("")
            lines.append(
                f"Not run: {', '.join(map(str, results.skipped_steps[engine]))} speakers"
                " (fewer already fell behind, or captions were unavailable)."
            )
        notes = [
            f"{s.speakers} speaker(s): {note}" for s in steps for note in dict.fromkeys([*s.notes, s.page_note]) if note
        ]
        notes += [
            f"{s.speakers} speaker(s): status said \"{look.detail}\""
            for s in steps for look in {lk.detail: lk for lk in s.statuses if lk.state != "live" and lk.detail}.values()
        ][:6]  # fmt: skip
        notes += [
            f"{s.speakers} speaker(s): {s.unmatched} final caption(s) matched no sentence" for s in steps if s.unmatched
        ]
        notes += [f"{s.speakers} speaker(s): the transcript after the end has {s.transcript_segments} segments"
                  for s in steps if s.transcript_segments is not None]  # fmt: skip
        if notes:
            lines += [""] + [f"- {note}" for note in notes]
    if results.browser_note:
        lines += ["", f"Page: {results.browser_note}."]
    lines += ["", "### Against the goals", ""]
    lines += goal_lines(results)
    lines += [
        "",
        "Delay: from when the publisher sent the sentence's last voiced 20 ms frame (`SampleTrack.sent_at`) to"
        " when its final caption line was on the listener page (a MutationObserver in headless Chromium,"
        " `Date.now()`), or first in a timeline object fetched as the page fetches them; it includes the"
        " utterance cutter's wait for silence. A sentence cut into two captions counts when the last is"
        " visible. Shown: sentences whose final caption lines all appeared on the page (it shows the last"
        " three lines, by start). Real time: the captions status stayed `live` throughout, every sentence got a final"
        " caption, and `podium_stage_frames_skipped` did not grow. Speakers, server, its workers and"
        " Chromium share the machine's 2 CPUs.",
    ]
    return "\n".join(lines) + "\n"


def goal_lines(results: Results) -> list[str]:
    out = []
    for engine, steps in results.live.items():
        for step in steps:
            if step.unavailable or step.speakers > 2:
                continue
            delays = step.delays(step.page_at) if step.page_at is not None else step.delays(step.timeline_at)
            where = "on the page" if step.page_at is not None else "in the timeline"
            if delays:
                p95 = harness.percentile(delays, 95)
                verdict = "met" if p95 <= GOAL_DELAY_P95_S else "not met"
                out.append(
                    f"- Delay p95 ≤ {GOAL_DELAY_P95_S:.0f} s, {engine}, {step.speakers} speaker(s): "
                    f"{p95:.2f} s {where}: **{verdict}**"
                )
    for a in results.accuracy:
        if a.engine == "whisper base" and a.language == "en" and not a.unavailable:
            verdict = "met" if a.right >= GOAL_BASE_WORDS else "not met"
            out.append(
                f"- Whisper base ≥ {100 * GOAL_BASE_WORDS:.0f} % of English words (voice {a.voice}):"
                f" {100 * a.right:.1f} %: **{verdict}**"
            )
    for engine, steps in results.live.items():
        fine = [s.speakers for s in steps if s.realtime]
        most = max(fine) if fine else 0
        verdict = "met" if most >= GOAL_SPEAKERS else "not met"
        tried = max((s.speakers for s in steps), default=0)
        at_goal = [s for s in steps if s.speakers == GOAL_SPEAKERS and not s.unavailable]
        delays = at_goal[0].delays(at_goal[0].page_at or at_goal[0].timeline_at) if at_goal else []
        delay = f" (delay p95 at {GOAL_SPEAKERS}: {harness.percentile(delays, 95):.2f} s)" if delays else ""
        out.append(
            f"- {GOAL_SPEAKERS} speakers at once in real time, {engine}: up to {most} of {tried} tried: "
            f"**{verdict}**{delay}"
        )
    return out or ["- nothing measured"]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short run to check the script (fewer sentences, speakers, seconds); writes nothing",
    )
    parser.add_argument("--no-write", action="store_true", help="print the results; leave RESULTS.md alone")
    parser.add_argument("--no-browser", action="store_true", help="measure the delay at the timeline only")
    parser.add_argument("--no-words", action="store_true", help="skip part 1 (words right in-process)")
    parser.add_argument("--engines", help="live engines, comma-separated: pocketsphinx, whisper-base, whisper-tiny")
    parser.add_argument(
        "--speakers", help="speaker counts of the live steps, comma-separated (default 1,2,3,4; quick 1,2)"
    )
    parser.add_argument("--sentences", type=int, help="sentences per language for the words (default 8; quick 3)")
    parser.add_argument("--talk", type=float, help="seconds of speech per speaker and step (default 40; quick 12)")
    parser.add_argument("--drain", type=float, default=20.0, help="seconds to wait for the last finals (default 20)")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds between the speakers joining and talking")
    parser.add_argument(
        "--workers", type=int, default=2, help="PODIUM_CAPTIONS_WORKERS for the server (default 2: a core each)"
    )
    parser.add_argument("--model-cache", type=Path, default=Path(tempfile.gettempdir()) / "podium-bench-models",
                        help="where the Whisper base model is joined from its two packages (once)")  # fmt: skip
    parser.add_argument("--chromium", default=CHROMIUM)
    args = parser.parse_args()
    args.engines = [e.strip() for e in (args.engines or "pocketsphinx,whisper-base").split(",") if e.strip()]
    args.speakers = [int(n) for n in (args.speakers or ("1,2" if args.quick else "1,2,3,4")).split(",") if n.strip()]
    if any(not 1 <= n <= len(NAMES) for n in args.speakers):
        parser.error(f"--speakers takes counts from 1 to {len(NAMES)}")
    args.sentences = min(args.sentences or (3 if args.quick else 8), len(ENGLISH))
    args.talk = args.talk or (12.0 if args.quick else 40.0)
    results = measure(args)
    text = report(results)
    print(text)
    if not args.no_write and not args.quick:  # a quick run checks the script; it is no record
        harness.write_section("captions", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
