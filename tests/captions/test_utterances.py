"""Cutting a speaker's frames into utterances: only speech is sent, at the right times, never too long."""

from __future__ import annotations

import itertools
import time

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.captions.utterances import (
    FRAME_S,
    FRAME_SAMPLES,
    HARD_CUT_FRAMES,
    Audio,
    Begin,
    Downsampler,
    Event,
    UtteranceCutter,
)
from tests.captions.speech import said, silence

Samples = npt.NDArray[np.int16]


def cut(audio: Samples, *, close: bool = True) -> list[Event]:
    cutter = UtteranceCutter(lambda start_s: f"ada.{round(start_s * 50)}")
    events: list[Event] = []
    for start in range(0, len(audio) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        events += cutter.frame(start / 48_000, audio[start : start + FRAME_SAMPLES])
    return events + (cutter.close() if close else [])


def utterances(events: list[Event]) -> list[tuple[float, float, float]]:
    """(start_s, end_s, seconds of audio sent) per utterance, checking the events are well formed."""
    found, current, sent = [], None, 0
    for event in events:
        if isinstance(event, Begin):
            assert current is None, "an utterance began inside another"
            current, sent = event, 0
        elif isinstance(event, Audio):
            assert current is not None and event.utterance == current.utterance
            sent += len(event.samples)
        else:
            assert current is not None and event.utterance == current.utterance
            found.append((current.start_s, event.end_s, sent / 48_000))
            current = None
    assert current is None, "an utterance never ended"
    return found


def speech_span(audio: Samples, offset_s: float) -> tuple[float, float]:
    loud = np.flatnonzero(np.abs(audio.astype(np.int32)) > 300)
    return offset_s + loud[0] / 48_000, offset_s + (loud[-1] + 1) / 48_000


def test_two_sentences_with_a_pause_are_two_utterances_at_their_times() -> None:
    first, second = said("we need more time to finish the work"), said("what do you want to do this weekend")
    audio = np.concatenate([silence(1.0), first, silence(1.0), second, silence(1.5)])
    spans = [speech_span(first, 1.0), speech_span(second, 1.0 + len(first) / 48_000 + 1.0)]
    found = utterances(cut(audio))
    assert len(found) == 2, found
    for (start_s, end_s, sent_s), (said_from, said_to) in zip(found, spans, strict=True):
        assert said_from - 0.25 <= start_s <= said_from  # the pre-roll: the soft start of the first word
        assert said_to - 0.1 <= end_s <= said_to + 0.04
        # What was sent is the utterance and a short tail of quiet, no more.
        assert end_s - start_s <= sent_s <= end_s - start_s + 0.22


def test_silence_sends_nothing_and_steady_noise_nothing_once_the_room_is_heard() -> None:
    assert cut(silence(5.0)) == []
    hum = (2000 * np.sin(2 * np.pi * 50 * np.arange(10 * 48_000) / 48_000)).astype(np.int16)  # -27 dBFS
    noise = np.random.default_rng(7).normal(0, 300, 10 * 48_000).astype(np.int16)  # -41 dBFS
    for steady in (hum, noise):
        # Before its first 200 ms the cutter cannot tell noise from a speaker who talks at once.
        found = utterances(cut(steady))
        assert len(found) <= 1 and all(end <= 0.25 for _, end, _ in found), found


def test_speech_from_the_first_frame_is_found() -> None:
    sentence = said("thank you very much for coming here today")
    onset = np.flatnonzero(np.abs(sentence.astype(np.int32)) > 300)[0]
    found = utterances(cut(np.concatenate([sentence[onset:], silence(1.0)])))
    assert len(found) == 1 and found[0][0] == 0.0


def test_speech_over_steady_noise_is_still_found() -> None:
    sentence = said("thank you very much for coming here today")
    audio = np.concatenate([silence(3.0), sentence, silence(1.0)]).astype(np.int32)
    audio += np.random.default_rng(8).normal(0, 150, len(audio)).astype(np.int32)
    found = [u for u in utterances(cut(np.clip(audio, -32768, 32767).astype(np.int16))) if u[1] > 0.25]
    assert len(found) == 1
    said_from, _ = speech_span(sentence, 3.0)
    assert said_from - 0.25 <= found[0][0] <= said_from + 0.1


def test_a_long_talk_is_cut_into_utterances_of_seven_seconds_at_most_with_nothing_lost() -> None:
    talk = said(
        "we need more time to finish the work, and then what do you want to do this weekend, "
        "because I think we should talk about it tomorrow, and the president said the economy is growing"
    )
    audio = np.concatenate([silence(0.5), talk, silence(1.0)])
    found = utterances(cut(audio))
    assert len(found) >= 2
    assert all(end - start <= HARD_CUT_FRAMES * FRAME_S + 1e-9 for start, end, _ in found), found
    said_from, said_to = speech_span(talk, 0.5)
    assert found[0][0] <= said_from and found[-1][1] >= said_to - 0.1
    # Every loud moment is inside an utterance: the gaps between them are quiet (the talk's pauses).
    for (_, end, _), (start, _, _) in itertools.pairwise(found):
        gap = audio[round(end * 48_000) : round(start * 48_000)]
        assert len(gap) == 0 or np.abs(gap.astype(np.int32)).max() < 3000, (end, start)


def test_a_frame_costs_microseconds() -> None:
    audio = np.concatenate([silence(0.5), said("we need more time to finish the work"), silence(1.0)])
    cutter = UtteranceCutter(lambda start_s: f"ada.{round(start_s * 50)}")
    costs = []
    for start in range(0, len(audio) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        began = time.thread_time()
        cutter.frame(start / 48_000, audio[start : start + FRAME_SAMPLES])
        costs.append(time.thread_time() - began)
    micros = np.array(costs) * 1e6
    print(f"cutter: a frame costs {micros.mean():.1f} us on average, p99 {np.percentile(micros, 99):.1f} us")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 100), st.integers(1, 60)), min_size=1, max_size=20))
def test_any_talk_gives_well_formed_utterances_covering_every_loud_stretch(turns: list[tuple[int, int]]) -> None:
    """Runs of loud (a -20 dBFS tone) and silent frames after a quiet frame: events are well formed,
    no utterance is longer than the hard cut, utterances do not overlap, and every run of 3+ loud
    frames is captioned. (Loud for at most 2 s at a time: a tone steady for 3 s counts as noise.)"""
    tone = (4000 * np.sin(2 * np.pi * 440 * np.arange(FRAME_SAMPLES) / 48_000)).astype(np.int16)
    quiet = np.zeros(FRAME_SAMPLES, dtype=np.int16)
    runs = [(False, 1), *[run for loud, quiet in turns for run in ((True, loud), (False, quiet))]]
    audio = np.concatenate([np.tile(tone if loud else quiet, n) for loud, n in runs])
    found = utterances(cut(audio))
    for start, end, sent in found:
        assert end - start <= HARD_CUT_FRAMES * FRAME_S + 1e-9
        assert end - start - 1e-9 <= sent <= end - start + 0.2 + 1e-9
    for (_, end, _), (start, _, _) in itertools.pairwise(found):
        assert end <= start + 1e-9
    at = 0
    for loud, n in runs:
        if loud and n >= 3:
            first, last = at * FRAME_S, (at + n) * FRAME_S
            covered = sum(max(0.0, min(end, last) - max(start, first)) for start, end, _ in found)
            assert covered >= (n - 2) * FRAME_S - 1e-6, (first, last, found)
        at += n
    if not any(loud for loud, _ in runs):
        assert found == []


def test_downsampling_is_the_same_in_chunks_and_keeps_speech_but_not_what_would_alias() -> None:
    noise = np.random.default_rng(3).normal(0, 3000, 48_000).astype(np.int16)
    whole = Downsampler()(noise)
    chunked = Downsampler()
    assert np.array_equal(whole, np.concatenate([chunked(noise[i : i + 777]) for i in range(0, len(noise), 777)]))
    assert len(whole) == 16_000
    t = np.arange(48_000) / 48_000

    def kept(hz: float) -> float:
        out = Downsampler()((10_000 * np.sin(2 * np.pi * hz * t)).astype(np.int16))[100:].astype(np.float64)
        return float(np.sqrt(np.mean(out**2)) / (10_000 / np.sqrt(2)))

    assert kept(1000) > 0.98 and kept(4000) > 0.98  # speech passes
    assert kept(12_000) < 0.01 and kept(20_000) < 0.01  # would fold back into speech at 16 kHz
