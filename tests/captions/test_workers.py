"""CaptionWorkers end to end: real engines in real worker processes, fed frame by frame as the stage does."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np
import numpy.typing as npt
import pytest

from podium.captions.engine import Caption, CaptionsUnavailable
from podium.captions.utterances import FRAME_SAMPLES
from podium.captions.workers import CaptionConfig, CaptionWorkers
from podium.testing import FakeClock
from podium.testing.eventually import eventually
from tests.captions.speech import SENTENCES, said, silence, tiny_en, words, words_right

Samples = npt.NDArray[np.int16]
SPACE = "sp1"


@asynccontextmanager
async def running(
    config: CaptionConfig, clock: FakeClock | None = None
) -> AsyncIterator[tuple[CaptionWorkers, list[Caption]]]:
    captions: list[Caption] = []
    workers = CaptionWorkers(config, captions.append, clock)
    await workers.start()
    try:
        yield workers, captions
    finally:
        await workers.stop()


async def feed(
    workers: CaptionWorkers, tracks: dict[str, tuple[str, Samples]], *, at_s: float = 0.0, space: str = SPACE
) -> float:
    """Every speaker's track, tick by tick (20 ms each, all speakers per tick, as the stage does), as
    fast as the loop goes. Returns the time after the last tick; the per-frame costs go to `COSTS`."""
    ticks = max(len(audio) for _, audio in tracks.values()) // FRAME_SAMPLES
    for tick in range(ticks):
        for speaker, (name, audio) in tracks.items():
            frame = audio[tick * FRAME_SAMPLES : (tick + 1) * FRAME_SAMPLES]
            if len(frame) == FRAME_SAMPLES:
                began = time.thread_time()
                workers.frame(space, speaker, name, "en", at_s + tick * 0.02, frame)
                COSTS.append(time.thread_time() - began)
        if tick % 10 == 9:
            await asyncio.sleep(0)
    return at_s + ticks * 0.02


COSTS: list[float] = []


def finals(captions: list[Caption], speaker: str | None = None) -> list[Caption]:
    return [c for c in captions if c.final and (speaker is None or c.speaker == speaker)]


def spoken_span(audio: Samples, offset_s: float) -> tuple[float, float]:
    loud = np.flatnonzero(np.abs(audio.astype(np.int32)) > 300)
    return offset_s + loud[0] / 48_000, offset_s + (loud[-1] + 1) / 48_000


async def two_speakers_take_turns(workers: CaptionWorkers, captions: list[Caption]) -> None:
    """Ada says a sentence, then Ben another: each final carries its speaker, name and times."""
    ada_says, ben_says = said(SENTENCES[0]), said(SENTENCES[2], voice="en-us+f5")
    lead, pause = 0.5, 1.0
    ben_from = lead + len(ada_says) / 48_000 + pause
    ada = np.concatenate([silence(lead), ada_says, silence(pause + len(ben_says) / 48_000 + 1.0)])
    ben = np.concatenate([silence(ben_from), ben_says, silence(1.0)])
    await feed(workers, {"ada": ("Ada", ada), "ben": ("Ben", ben)})
    await eventually(lambda: len(finals(captions)) >= 2, "a final caption from each speaker", timeout_s=20)
    ada_final, ben_final = finals(captions, "ada"), finals(captions, "ben")
    assert [(c.name, c.space) for c in ada_final + ben_final] == [("Ada", SPACE), ("Ben", SPACE)]
    for caption, (spoken_from, spoken_to) in (
        (ada_final[0], spoken_span(ada_says, lead)),
        (ben_final[0], spoken_span(ben_says, ben_from)),
    ):
        assert spoken_from - 0.25 <= caption.start_s <= spoken_from
        assert spoken_to - 0.1 <= caption.end_s <= spoken_to + 0.05
    assert ada_final[0].utterance != ben_final[0].utterance
    right = words_right(SENTENCES[0], ada_final[0].text) + words_right(SENTENCES[2], ben_final[0].text)
    total = len(words(SENTENCES[0])) + len(words(SENTENCES[2]))
    print(f"{workers.engine_name}: {right}/{total} words right: {ada_final[0].text!r}, {ben_final[0].text!r}")
    assert right * 2 >= total
    assert workers.status(SPACE).state == "live"


async def test_pocketsphinx_captions_two_speakers_by_name_with_partials_first() -> None:
    async with running(CaptionConfig(engine="pocketsphinx")) as (workers, captions):
        assert (workers.engine_name, workers.languages, workers.partials) == ("pocketsphinx", ("en",), True)
        await two_speakers_take_turns(workers, captions)
        ada = [c for c in captions if c.speaker == "ada"]
        assert not ada[0].final and ada[-1].final  # words while Ada talks, then the final
        assert len({c.utterance for c in ada}) == 1
    costs = np.array(COSTS) * 1e6
    print(f"frame(): {costs.mean():.1f} us on average, p99 {np.percentile(costs, 99):.1f} us (CPU time)")


async def test_whisper_captions_two_speakers_with_one_final_each() -> None:
    async with running(CaptionConfig(engine="whisper", model=tiny_en())) as (workers, captions):
        assert (workers.engine_name, workers.partials) == ("whisper", False)
        await two_speakers_take_turns(workers, captions)
        assert all(c.final for c in captions)
        text = " ".join(c.text for c in finals(captions))
        assert words_right(f"{SENTENCES[0]} {SENTENCES[2]}", text) >= 0.9 * len(words(f"{SENTENCES[0]} {SENTENCES[2]}"))


async def test_an_engine_that_cannot_load_is_refused_at_start_with_its_reason(tmp_path: object) -> None:
    workers = CaptionWorkers(CaptionConfig(engine="whisper", model=f"{tmp_path}/no-model"), lambda _: None)
    with pytest.raises(CaptionsUnavailable, match=r"no model\.bin"):
        await workers.start()
    assert workers.pids == []
    with pytest.raises(CaptionsUnavailable, match="'de'"):
        await CaptionWorkers(CaptionConfig(engine="pocketsphinx", language="de"), lambda _: None).start()


async def test_a_killed_worker_is_restarted_and_later_words_are_captioned() -> None:
    async with running(CaptionConfig(engine="pocketsphinx")) as (workers, captions):
        [pid] = workers.pids
        sentence = np.concatenate([silence(0.5), said(SENTENCES[1]), silence(1.0)])
        at_s = await feed(workers, {"ada": ("Ada", sentence)})
        await eventually(lambda: finals(captions), "Ada's first final")
        os.kill(pid, signal.SIGKILL)
        await eventually(lambda: workers.pids and workers.pids != [pid], "a new worker", timeout_s=15)
        await feed(workers, {"ada": ("Ada", sentence)}, at_s=at_s)
        await eventually(lambda: len(finals(captions)) == 2, "Ada's final after the restart", timeout_s=15)
        later = finals(captions)[1]
        assert later.start_s > at_s and words_right(SENTENCES[1], later.text) * 2 >= len(words(SENTENCES[1]))
        assert workers.restarts == 1


async def test_a_worker_that_keeps_dying_comes_back_later_each_time() -> None:
    clock = FakeClock()
    async with running(CaptionConfig(engine="pocketsphinx"), clock) as (workers, _):
        for delay_s in (1.0, 2.0, 4.0):  # each death within a minute of the last start doubles the wait
            [pid] = workers.pids
            os.kill(pid, signal.SIGKILL)
            assert await eventually(lambda: workers.restart_in_s, "the death noticed") == delay_s
            clock.advance(delay_s)
            await eventually(lambda dead=pid: workers.pids and workers.pids != [dead], "the worker back", timeout_s=15)
        clock.advance(61.0)  # a worker that lived a minute starts the count again
        [pid] = workers.pids
        os.kill(pid, signal.SIGKILL)
        assert await eventually(lambda: workers.restart_in_s, "the death noticed") == 1.0
        assert workers.restarts == 3


async def test_over_the_budget_a_speaker_waits_and_the_host_is_told_who() -> None:
    clock = FakeClock()
    async with running(CaptionConfig(engine="pocketsphinx", max_speakers=1), clock) as (workers, captions):
        talk = np.concatenate([silence(0.5), said(SENTENCES[2])])
        # Ada begins first (by a few frames), Ben while she still talks: Ben is past the budget.
        ben = np.concatenate([silence(0.3), talk])
        at_s = await feed(workers, {"ada": ("Ada", talk), "ben": ("Ben", ben[: len(talk)])})
        status = workers.status(SPACE)
        assert (status.state, status.detail, status.captioned, status.waiting) == (
            "paused",
            "Captions paused for Ben: this server can caption 1 speaker at once.",
            ["ada"],
            ["ben"],
        )
        rest = {"ada": ("Ada", silence(1.0)), "ben": ("Ben", np.concatenate([ben[len(talk) :], silence(1.0)]))}
        at_s = await feed(workers, rest, at_s=at_s)
        await eventually(lambda: finals(captions, "ada"), "Ada's final")
        assert finals(captions, "ben") == [] and workers.skipped == 1
        assert workers.status(SPACE).waiting == ["ben"]  # the notice stays a few seconds after Ben's sentence
        clock.advance(5.0)
        assert workers.status(SPACE).state == "live"
        # Ben alone now: captioned.
        await feed(workers, {"ben": ("Ben", np.concatenate([talk, silence(1.0)]))}, at_s=at_s)
        await eventually(lambda: finals(captions, "ben"), "Ben's final once Ada is quiet")
        assert workers.status(SPACE).state == "live"


async def test_a_flood_of_speakers_never_blocks_the_stage_it_falls_behind_and_catches_up() -> None:
    # A lag limit of 1 s: the queue holds about 4 s of audio; six speakers talk 3 s at once, fed
    # faster than real time: most of it cannot be queued and is dropped, with a notice.
    clock = FakeClock()
    config = CaptionConfig(engine="pocketsphinx", max_speakers=10, max_lag_s=1.0)
    async with running(config, clock) as (workers, captions):
        talk = np.concatenate([silence(0.3), said(SENTENCES[0]), silence(1.0)])
        crowd = {f"s{i}": (f"Speaker {i}", talk) for i in range(6)}
        at_s = await feed(workers, crowd)
        status = workers.status(SPACE)
        assert status.state == "behind" and "cannot keep up" in status.detail, status
        assert workers.dropped > 0
        # Once the worker has caught up (and the notice's hold is over), a new utterance is captioned.
        await eventually(lambda: workers.lag_s < 0.01, "the worker catches up", timeout_s=30)
        clock.advance(5.0)
        assert workers.status(SPACE).state == "live"
        before = len(finals(captions))
        await feed(workers, {"s0": ("Speaker 0", talk)}, at_s=at_s)
        await eventually(lambda: len(finals(captions)) > before, "a final after catching up", timeout_s=15)
        assert workers.status(SPACE).state == "live"


async def test_a_speaker_who_leaves_mid_sentence_still_gets_a_final_caption() -> None:
    async with running(CaptionConfig(engine="pocketsphinx")) as (workers, captions):
        talk = np.concatenate([silence(0.5), said(SENTENCES[1])])
        await feed(workers, {"ada": ("Ada", talk[: len(talk) * 3 // 4])})
        workers.speaker_gone(SPACE, "ada")
        await eventually(lambda: finals(captions, "ada"), "Ada's final after she left")
        workers.end_space(SPACE)
        assert workers.status(SPACE).captioned == []
