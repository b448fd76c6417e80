"""Every word arrives (DESIGN.md, bet 6): a speaker's lost packets cost listeners no words.

A real `podium serve`, an aiortc speaker over WHIP saying synthetic speech, its outgoing RTP media
impaired with a fixed, known pattern of lost packets (RTCP untouched), and the listener's side read
back from the replay of the ended space: everything a listener heard, through Opus, the stage and
AAC. What is asserted is what a listener notices:
- no hole: no stretch of speech longer than 40 ms that the speaker said and the listener did not
  hear (a lost 20 ms frame must be filled: recovered from FEC or concealed, never silence);
- no stretch: the speech lasts as long for the listener as it did for the speaker, within one
  20 ms frame (a stage that waits for a lost packet, or pads with silence, delays every later word);
- FEC is used: where the speaker sent in-band FEC, a lost frame sounds like the frame itself, much
  closer to a clean path than concealment gets.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import numpy as np
import pytest

from podium.media.mixer import FRAME_SAMPLES, SAMPLE_RATE, Samples
from podium.testing import eventually
from podium.testing.impair import BurstLoss, FixedLoss, ImpairedPath, Impairment
from podium.testing.speech import (
    SENTENCES,
    align,
    align_part,
    aligned,
    opus_round_trip,
    read_hls,
    silences_inside,
    snr_db,
    speak,
    speech_length_change,
    speech_spans,
)
from podium.testing.whip_client import SampleTrack, from_samples, publish
from tests.conftest import Server

pytestmark = pytest.mark.media

# Silence before the speech, so that it starts on a stage already running, and after it, so that
# its last word is in a segment before the space ends.
LEAD_IN_S = 0.5
TAIL_S = 1.5
# Losses begin here (2 s in): the first packets set up the stream, no network loses them alone.
FIRST_LOSS = 100
# 2 % loss, spread: one packet in 50.
LOSS_PERIOD = 50
MAX_HOLE_MS = 40.0
# One 20 ms frame (a jitter buffer may grow by one frame when it learns the path is lossy), plus
# 1 ms for how exactly the two ends of the speech align through Opus and AAC (to a sample or two).
MAX_LENGTH_CHANGE_MS = 21.0
# What the FEC speaker tells its encoder to expect (a browser sets it from its receiver reports).
FEC_EXPECTED_LOSS_PERC = 5
# Frames of a 2 %-lossy path before FEC is judged: 4 s, 4 losses (see the FEC test).
LEARNING_FRAMES = 200
# Around a lost frame, heard with FEC against heard on a clean path: at most this far below what
# libopus itself rebuilds from the FEC (calibrated: the two hearings of a clean path agree to
# about 30 dB there, so the stage and AAC cost well under 1 dB at the 12-18 dB FEC gives)...
FEC_MARGIN_DB = 3.0
# ... and this far above concealment (which libopus measures at about 0-8 dB on these frames).
FEC_GAIN_DB = 6.0


@pytest.fixture(scope="module")
def speech() -> Iterator[Samples]:
    lead_in = np.zeros(int(LEAD_IN_S * SAMPLE_RATE), dtype=np.int16)
    yield np.concatenate([lead_in, speak(SENTENCES)])


@dataclass
class Heard:
    audio: Samples  # the whole replay, 48 kHz mono
    path: ImpairedPath | None


async def say_through_podium(
    server: Server, speech: Samples, track: SampleTrack, impairment: Impairment | None, title: str
) -> Heard:
    """Publish `track` (which plays `speech`) in a new space, end the space after the speech and
    its tail, and read the replay."""
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
        response = await client.post("/api/spaces", json={"title": title})
        assert response.status_code == 201, response.text
        space = response.json()
        publisher = await publish(
            server.base + space["urls"]["whip"], space["host_token"], track, impairment=impairment
        )
        try:
            await said(track, len(speech))
            response = await client.post(
                f"/api/spaces/{space['id']}/end", headers={"Authorization": f"Bearer {space['host_token']}"}
            )
            assert response.status_code == 200, response.text
        finally:
            await publisher.close()
    audio = await asyncio.to_thread(read_hls, server.base + space["urls"]["hls"])
    return Heard(audio, publisher.path)


async def said(track: SampleTrack, samples: int) -> None:
    """Wait until `track` has sent `samples` of audio and the tail after them (bounded)."""
    frames = samples // FRAME_SAMPLES + int(TAIL_S * SAMPLE_RATE) // FRAME_SAMPLES
    await eventually(
        lambda: len(track.sent_at) >= frames,
        f"the speaker sent {frames} frames",
        timeout_s=samples / SAMPLE_RATE + TAIL_S + 30,
        poll_s=0.1,
    )


def holes_in(speech: Samples, heard: Samples) -> list[tuple[int, float]]:
    """Holes in each phrase of `speech` as heard, each phrase aligned on its own (so that a stage
    that delayed the speech at one place is judged on holes, not on the delay)."""
    lag = align(speech, heard)
    holes: list[tuple[int, float]] = []
    for start, stop in speech_spans(speech):
        span_lag = align_part(speech, heard, start, stop, lag=lag, search_ms=500)
        heard_here = aligned(heard, span_lag, len(speech))
        holes += silences_inside(heard_here, [(start, stop)], min_ms=MAX_HOLE_MS, reference=speech)
    return holes


async def test_two_percent_loss_leaves_no_hole_in_speech_and_does_not_stretch_it(
    server: Server, speech: Samples
) -> None:
    frames = len(speech) // FRAME_SAMPLES
    loss = FixedLoss.every(LOSS_PERIOD, start=FIRST_LOSS, stop=frames)
    heard = await say_through_podium(
        server, speech, SampleTrack(from_samples(speech)), Impairment(loss), "Two percent loss"
    )
    assert heard.path is not None
    # The path lost exactly the packets asked, and nothing else.
    assert heard.path.dropped_indices == sorted(loss.indices)
    holes = holes_in(speech, heard.audio)
    change_ms = speech_length_change(speech, heard.audio) / SAMPLE_RATE * 1000
    found = ", ".join(f"{ms:.1f} ms at {start / SAMPLE_RATE:.2f} s" for start, ms in holes)
    assert not holes, (
        f"holes in speech longer than {MAX_HOLE_MS} ms: {found}; the speech lasted {change_ms:+.1f} ms longer"
    )
    assert abs(change_ms) <= MAX_LENGTH_CHANGE_MS, f"the speech lasted {change_ms:+.1f} ms longer for the listener"


def voiced_losses(speech: Samples, *, start: int, spacing: int) -> list[int]:
    """Frames in voiced speech, at least `spacing` apart from `start` on: each has two loud frames
    on either side, so that the 60 ms measured around it is speech throughout."""
    frames = speech[: len(speech) // FRAME_SAMPLES * FRAME_SAMPLES].astype(np.float64).reshape(-1, FRAME_SAMPLES)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    loud = rms > rms.max() * 10 ** (-15 / 20)
    chosen: list[int] = []
    for k in range(start, len(frames) - 3):
        if loud[k - 2 : k + 3].all() and (not chosen or k - chosen[-1] >= spacing):
            chosen.append(k)
    return chosen


def snrs_around(speech: Samples, clean: Samples, lossy: Samples, frames: list[int]) -> list[float]:
    """SNR of `lossy` against `clean` (two hearings of `speech`) over the 60 ms around each of
    `frames`: the frame and one on either side. Each place is found in both by aligning the 300 ms of
    speech just before it, as the listener heard it until then."""
    clean_lag, lossy_lag = align(speech, clean), align(speech, lossy)
    snrs: list[float] = []
    for k in frames:
        before = (k - 16) * FRAME_SAMPLES, (k - 1) * FRAME_SAMPLES
        at_clean = (k - 1) * FRAME_SAMPLES + align_part(speech, clean, *before, lag=clean_lag, search_ms=200)
        at_lossy = (k - 1) * FRAME_SAMPLES + align_part(speech, lossy, *before, lag=lossy_lag, search_ms=200)
        window = 3 * FRAME_SAMPLES
        snrs.append(snr_db(clean[at_clean : at_clean + window], lossy[at_lossy : at_lossy + window]))
    return snrs


async def test_fec_rebuilds_lost_frames_as_well_as_the_codec_can(server: Server, speech: Samples) -> None:
    losses = voiced_losses(speech, start=FIRST_LOSS, spacing=LOSS_PERIOD)
    impairment = Impairment(FixedLoss(frozenset(losses)))
    # Judged once the path has shown it is lossy: a jitter buffer holds about one frame on a clean
    # path (DESIGN.md), too little for the next packet, which carries the FEC, to be there in time;
    # it holds more once it has seen the loss.
    measured = [k for k in losses if k >= FIRST_LOSS + LEARNING_FRAMES]
    assert len(measured) >= 4, measured

    def track(expected_loss_perc: int) -> SampleTrack:
        return SampleTrack(from_samples(speech), fec=True, expected_loss_perc=expected_loss_perc)

    # Four spaces at once: the same speech sent with FEC and without (the same encoder told to
    # expect no loss sends none), each over a clean path and over the lossy one.
    fec_clean, fec_lossy, plain_clean, plain_lossy = await asyncio.gather(
        say_through_podium(server, speech, track(FEC_EXPECTED_LOSS_PERC), None, "FEC, clean path"),
        say_through_podium(server, speech, track(FEC_EXPECTED_LOSS_PERC), impairment, "FEC, lossy path"),
        say_through_podium(server, speech, track(0), None, "No FEC, clean path"),
        say_through_podium(server, speech, track(0), impairment, "No FEC, lossy path"),
    )
    for run in (fec_lossy, plain_lossy):
        assert run.path is not None and run.path.dropped_indices == losses
    fec = snrs_around(speech, fec_clean.audio, fec_lossy.audio, measured)
    plain = snrs_around(speech, plain_clean.audio, plain_lossy.audio, measured)
    # The codec's own limit: libopus decoding the same packets with the same losses, FEC used.
    codec_clean = opus_round_trip(speech, [], expected_loss_perc=FEC_EXPECTED_LOSS_PERC)
    codec_fec = opus_round_trip(speech, losses, expected_loss_perc=FEC_EXPECTED_LOSS_PERC)
    limit = snrs_around(speech, codec_clean, codec_fec, measured)
    report = (
        f"SNR around the lost frames {measured}, in dB: with FEC {_rounded(fec)}, without {_rounded(plain)}, "
        f"the codec's limit {_rounded(limit)}"
    )
    assert statistics.median(fec) >= statistics.median(limit) - FEC_MARGIN_DB, report
    assert statistics.median(fec) >= statistics.median(plain) + FEC_GAIN_DB, report


async def test_one_speakers_bad_network_leaves_the_other_and_the_program_intact(
    server: Server, speech: Samples
) -> None:
    """Speaker A talks over a clean path; speaker B, with an open microphone in a quiet room, is on a
    path that loses 10 % in bursts and delays packets by up to 80 ms. Neither what B hears of A (B's
    mix-minus) nor what listeners hear (the program) has a hole or a stretch in A's speech."""
    bad_path = Impairment(BurstLoss(0.10, 3), jitter_ms=80, seed=7)
    quiet_room = np.zeros(len(speech), dtype=np.int16)
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
        space = (await client.post("/api/spaces", json={"title": "One bad network"})).json()
        whip = server.base + space["urls"]["whip"]
        invite = await client.post(
            f"/api/spaces/{space['id']}/invites",
            json={"role": "speaker"},
            headers={"Authorization": f"Bearer {space['host_token']}"},
        )
        assert invite.status_code == 201, invite.text
        redeemed = await client.post(
            f"/api/spaces/{space['id']}/invites/redeem",
            json={"name": "B"},
            headers={"Authorization": f"Bearer {invite.json()['token']}"},
        )
        assert redeemed.status_code in (200, 201), redeemed.text
        b_token = redeemed.json()["token"]
        # A (the host) goes live first; its speech starts after its lead-in, with B connected by then.
        a_track = SampleTrack(from_samples(np.concatenate([np.zeros(SAMPLE_RATE, dtype=np.int16), speech])))
        a = await publish(whip, space["host_token"], a_track)
        b_track = SampleTrack(from_samples(quiet_room))
        b = await publish(whip, b_token, b_track, impairment=bad_path, receive=True)
        try:
            await said(a_track, SAMPLE_RATE + len(speech))
            board = await client.get(
                f"/api/spaces/{space['id']}/board", headers={"Authorization": f"Bearer {space['host_token']}"}
            )
            # The stage's receiver reports told B's sender of its losses (so that a browser adapts).
            b_stats = await b.pc.getSenders()[0].getStats()
            reported = [stat for stat in b_stats.values() if stat.type == "remote-inbound-rtp"]
            ended = await client.post(
                f"/api/spaces/{space['id']}/end", headers={"Authorization": f"Bearer {space['host_token']}"}
            )
            assert ended.status_code == 200, ended.text
            b_heard = np.concatenate(b.received) if b.received else np.zeros(0, dtype=np.int16)
        finally:
            await a.close()
            await b.close()
    program = await asyncio.to_thread(read_hls, server.base + space["urls"]["hls"])
    assert b.path is not None and len(b.path.dropped) > 0.05 * len(b.path.sent)  # B's path really was bad
    assert reported and reported[0].packetsLost > 0, "the stage never reported B's losses to B"
    for name, heard in (("B's mix-minus", b_heard), ("the program", program)):
        holes = holes_in(speech, heard)
        change_ms = speech_length_change(speech, heard) / SAMPLE_RATE * 1000
        assert not holes, f"holes in A's speech in {name}: {holes}"
        assert abs(change_ms) <= MAX_LENGTH_CHANGE_MS, f"A's speech lasted {change_ms:+.1f} ms longer in {name}"
    # The host's board names B's connection as the poor one, and only B's.
    connections = {c["name"]: c for c in board.json()["stream"]["connections"]}
    assert connections["B"]["poor"] and connections["B"]["loss_percent"] >= 3, connections
    assert not any(c["poor"] for name, c in connections.items() if name != "B"), connections


def _rounded(values: list[float]) -> list[float]:
    return [round(value, 1) for value in values]
