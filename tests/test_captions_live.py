"""Live captions from real speech engines, end to end (issue 19).

A real `podium serve` with a real engine (pocketsphinx's own model; Whisper base from its registry
packages, checked by hash), two WHIP speakers, Ada (the host) and Ben (a guest), taking turns with
espeak-ng speech made here, and a listener in headless Chromium. What is asserted is what people
notice: the listener reads each line under the right name while the space is live; the transcript
after the end has both speakers in the order they spoke and most of their words; a recognition
worker killed mid-space is replaced and costs at most what it was working on, while the stage
skips no frame.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.sync_api import Browser, Page, expect

from podium.media.mixer import SAMPLE_RATE, Samples
from podium.testing import eventually_sync, models
from podium.testing.whip_client import Publisher, SampleTrack, from_samples, publish
from tests.browser_support import Speakers
from tests.captions.speech import VOICE, said, tiny_en, words, words_right
from tests.conftest import Server, free_port
from tests.test_live_media import create_space

pytestmark = [pytest.mark.browser, pytest.mark.media]

# Turns, as a conversation goes: each is one utterance (the pause between them is longer than the
# end-of-utterance silence), short plain sentences.
SCRIPT = (
    ("Ada", "Welcome to the show. Today we talk about live audio."),
    ("Ben", "Thank you for having me. I am glad to be here."),
    ("Ada", "How many people listen to a big interview?"),
    ("Ben", "More than one million people listen at the same time."),
)
# Two voices of espeak-ng's (pocketsphinx's model hears its American variants best: tests/captions).
VOICES = {"Ada": VOICE, "Ben": "en-us+m3"}
LEAD_IN_S = 1.0
GAP_S = 1.5
ENGINES = {
    # pocketsphinx: the default, gist quality; Whisper base: nine words in ten.
    "pocketsphinx": 0.5,
    "whisper": 0.9,
}


def recalled(said: str, heard: str) -> float:
    """Of the words said, the share heard, in order."""
    return words_right(said, heard) / len(words(said))


def tracks(script: tuple[tuple[str, str], ...]) -> tuple[dict[str, Samples], float]:
    """Each speaker's track (silence while the other speaks), all the same length, and its seconds."""
    spoken = [(who, said(text, voice=VOICES[who])) for who, text in script]
    gap = int(GAP_S * SAMPLE_RATE)
    total = int(LEAD_IN_S * SAMPLE_RATE) + sum(len(s) + gap for _, s in spoken) + gap
    out = {who: np.zeros(total, dtype=np.int16) for who, _ in script}
    at = int(LEAD_IN_S * SAMPLE_RATE)
    for who, samples in spoken:
        out[who][at : at + len(samples)] = samples
        at += len(samples) + gap
    return out, total / SAMPLE_RATE


def captions_env(engine: str, models_dir: Path) -> dict[str, str]:
    """The engine's settings. Whisper: base (multilingual), joined from its two registry packages and
    checked by hash; tiny.en, the smaller test model, hears about four words in five of this
    conversation (tests/captions measures it on its own sentences)."""
    if engine == "whisper":
        return {"PODIUM_CAPTIONS_ENGINE": "whisper", "PODIUM_CAPTIONS_MODEL": str(models.whisper_base(models_dir))}
    if engine == "whisper tiny.en":
        return {"PODIUM_CAPTIONS_ENGINE": "whisper", "PODIUM_CAPTIONS_MODEL": tiny_en()}
    return {"PODIUM_CAPTIONS_ENGINE": engine}


def captioned_server(tmp_path: Path, engine: str) -> Iterator[Server]:
    env = captions_env(engine, tmp_path / "models")
    server = Server(tmp_path / "data", free_port(), tmp_path / "podium.log", env=env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=list(ENGINES))
def engine_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Server]]:
    for server in captioned_server(tmp_path, request.param):
        yield request.param, server


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def stage_with_ada_and_ben(server: Server, speakers: Speakers, title: str) -> tuple[dict[str, Any], str]:
    """A space whose host is named Ada, and Ben's speaker token."""
    space = speakers.run(create_space(server, title))
    api = f"{server.base}/api/spaces/{space['id']}"
    httpx.put(f"{api}/me/name", json={"name": "Ada"}, headers=auth(space["host_token"])).raise_for_status()
    invite = httpx.post(f"{api}/invites", json={"role": "speaker"}, headers=auth(space["host_token"]))
    invite.raise_for_status()
    ben = httpx.post(f"{api}/invites/redeem", json={"name": "Ben"}, headers=auth(invite.json()["token"]))
    ben.raise_for_status()
    return space, str(ben.json()["token"])


def start_talking(
    server: Server, speakers: Speakers, space: dict[str, Any], ben_token: str, audio: dict[str, Samples]
) -> list[Publisher]:
    whip = server.base + space["urls"]["whip"]

    async def both() -> list[Publisher]:
        ada = await publish(whip, space["host_token"], SampleTrack(from_samples(audio["Ada"])))
        ben = await publish(whip, ben_token, SampleTrack(from_samples(audio["Ben"])))
        return [ada, ben]

    publishers = speakers.run(both())
    speakers.publishers.extend(publishers)
    return publishers


def end_and_read_transcript(server: Server, space: dict[str, Any]) -> dict[str, Any]:
    api = f"{server.base}/api/spaces/{space['id']}"
    httpx.post(f"{api}/end", headers=auth(space["host_token"]), timeout=30).raise_for_status()

    def complete() -> dict[str, Any] | None:
        body: dict[str, Any] = httpx.get(f"{api}/transcript", timeout=10).json()
        return body if body.get("complete") else None

    return eventually_sync(complete, "the transcript is complete", timeout_s=30)


def turns_heard(segments: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The transcript as turns: consecutive segments of one speaker joined."""
    turns: list[tuple[str, str]] = []
    for segment in segments:
        if not words(segment["text"]):
            continue
        if turns and turns[-1][0] == segment["speaker"]:
            turns[-1] = (segment["speaker"], turns[-1][1] + " " + segment["text"])
        else:
            turns.append((segment["speaker"], segment["text"]))
    return turns


def caption_lines(page: Page) -> list[str]:
    return list(page.locator("#captions .caption").all_inner_texts())


def test_listeners_read_each_speaker_live_and_the_transcript_keeps_them_in_order(
    engine_server: tuple[str, Server], browser: Browser, speakers: Speakers, artifacts: Path
) -> None:
    engine, server = engine_server
    audio, seconds = tracks(SCRIPT)
    space, ben_token = stage_with_ada_and_ben(server, speakers, f"Captions by {engine}")
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.goto(server.base + space["urls"]["page"])
    start_talking(server, speakers, space, ben_token, audio)
    page.locator("#play").click()

    # Live: each speaker's words appear under their name while the space goes on.
    captions = page.locator("#captions .caption")
    for name in ("Ada", "Ben"):
        expect(captions.filter(has_text=name).first).to_be_visible(timeout=int(seconds * 1000) + 15000)
    page.wait_for_timeout(int(seconds * 1000))  # the conversation runs its course (bounded: its length)
    page.screenshot(path=str(artifacts / f"captions-live-{engine}.png"))
    live_lines = caption_lines(page)
    assert any(line.startswith("Ada") for line in live_lines) and any(line.startswith("Ben") for line in live_lines)

    transcript = end_and_read_transcript(server, space)
    assert transcript["engine"] == engine and transcript["language"] == "en"
    heard = turns_heard(transcript["segments"])
    assert [who for who, _ in heard] == [who for who, _ in SCRIPT], heard
    share = recalled(" ".join(text for _, text in SCRIPT), " ".join(text for _, text in heard))
    print(f"{engine} heard {share:.0%} of the words: {heard}")
    assert share >= ENGINES[engine], f"{engine} heard {share:.0%} of the words: {heard}"
    starts = [segment["start_s"] for segment in transcript["segments"]]
    assert starts == sorted(starts) and all(s["end_s"] > s["start_s"] for s in transcript["segments"])


def worker_pids(server: Server) -> set[int]:
    """The server's speech workers: its children started by multiprocessing's spawn."""
    assert server.process is not None
    found = set()
    for task in Path(f"/proc/{server.process.pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"spawn_main" in cmdline:
                found.add(int(child))
    return found


def frames_skipped(server: Server) -> float:
    text = httpx.get(f"{server.base}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("podium_stage_frames_skipped")
    )


MONOLOGUE = (
    "Good evening and welcome.",
    "Tonight we talk about radio.",
    "Radio reaches people everywhere.",
    "Thank you all for listening.",
    "Good night and see you soon.",
)


@pytest.fixture
def whisper_server(tmp_path: Path) -> Iterator[Server]:
    yield from captioned_server(tmp_path, "whisper tiny.en")


def test_a_killed_recognition_worker_is_replaced_and_costs_at_most_the_utterance_it_held(
    whisper_server: Server, speakers: Speakers
) -> None:
    server = whisper_server
    audio, seconds = tracks(tuple(("Ada", sentence) for sentence in MONOLOGUE))
    space = speakers.run(create_space(server, "A worker falls over"))
    api = f"{server.base}/api/spaces/{space['id']}"
    track = SampleTrack(from_samples(audio["Ada"]))
    speakers.publishers.append(speakers.run(publish(server.base + space["urls"]["whip"], space["host_token"], track)))
    before = eventually_sync(lambda: worker_pids(server), "the speech worker runs", timeout_s=20)

    def finals() -> int:
        return len(httpx.get(f"{api}/transcript", timeout=10).json()["segments"])

    eventually_sync(lambda: finals() >= 2, "two sentences are captioned", timeout_s=seconds + 10)
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    eventually_sync(lambda: worker_pids(server) - before, "a new worker runs", timeout_s=20)
    speakers.run(asyncio.sleep(max(0.0, seconds - 4)), timeout_s=seconds + 5)
    assert frames_skipped(server) == 0, "the stage fell behind real time"
    transcript = end_and_read_transcript(server, space)
    heard = [segment["text"] for segment in transcript["segments"]]
    captioned = [any(recalled(sentence, h) >= 0.5 for h in heard) for sentence in MONOLOGUE]
    assert sum(captioned) >= len(MONOLOGUE) - 1, f"{sum(captioned)} of {len(MONOLOGUE)} sentences: {heard}"
    assert captioned[-1] or captioned[-2], "nothing said after the restart was captioned"
