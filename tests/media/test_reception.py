"""A speaker's reception: packets in as they arrive, a whole frame out per tick, every gap filled."""

from __future__ import annotations

import numpy as np
import pytest

from podium.media.jitter import JitterBuffer
from podium.media.libopus import Encoder
from podium.media.mixer import FRAME_SAMPLES, SAMPLE_RATE
from podium.media.reception import SpeakerReception, opus_packet_has_fec, packet_voice
from podium.testing.speech import speak


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return speak("Every word arrives, even when the network loses a packet now and then.")


def packets(samples: np.ndarray, *, fec: bool) -> list[bytes]:
    # A speaker's encoder as browsers run it on a lossy path: SILK or hybrid, FEC when asked.
    encoder = Encoder(application="voip", inband_fec=fec, packet_loss_perc=10 if fec else 0)
    return [encoder.encode(frame) for frame in samples.reshape(-1, FRAME_SAMPLES)]


def run(
    payloads: list[bytes], lost: set[int], *, start_seq: int = 65_500, min_delay_ms: int = 20
) -> tuple[np.ndarray, SpeakerReception]:
    """Each packet arrives on time, 20 ms apart, but the lost ones; one pull per tick after it."""
    reception = SpeakerReception(JitterBuffer(min_delay_ms=min_delay_ms))
    out = []
    for n, payload in enumerate(payloads):
        now_ms = 1000.0 + n * 20
        if n not in lost:
            seq, timestamp = (start_seq + n) % 65_536, (2**32 - 10 * FRAME_SAMPLES + n * FRAME_SAMPLES) % 2**32
            reception.push(seq, timestamp, payload, now_ms)
        out.append(reception.pull(now_ms + 1))
    return np.concatenate(out), reception


def frame_rms(audio: np.ndarray) -> np.ndarray:
    frames = audio[: len(audio) // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES).astype(np.float64)
    return np.asarray(np.sqrt((frames**2).mean(axis=1)))


def voiced_frames(samples: np.ndarray, count: int) -> list[int]:
    """`count` packet indices inside loud speech, spread out, each with loud neighbours."""
    level = frame_rms(samples)
    loud = [n for n in range(2, len(level) - 2) if (level[n - 2 : n + 3] > 0.3 * level.max()).all()]
    picked: list[int] = []
    for n in loud:
        if not picked or n - picked[-1] >= 8:
            picked.append(n)
    assert len(picked) >= count, "the speech has too few loud stretches"
    return picked[:count]


@pytest.mark.parametrize("fec", [True, False], ids=["fec", "no-fec"])
def test_lost_packets_in_speech_leave_no_silent_frame(speech: np.ndarray, fec: bool) -> None:
    payloads = packets(speech, fec=fec)
    first, second, third = voiced_frames(speech, 3)
    lost = {first, first + 1, second, third}  # a pair, then singles; sequence numbers and timestamps wrap
    audio, reception = run(payloads, lost)
    clean, _ = run(payloads, set())
    assert len(audio) == len(payloads) * FRAME_SAMPLES
    # Where the clean run is loud, the lossy one never has a silent frame (each loss may shift
    # what follows by a frame: the buffer waits for late packets before it gives them up).
    loud = frame_rms(clean) > 0.3 * frame_rms(clean).max()
    heard = frame_rms(audio)
    silent = [n for n in range(len(heard)) if loud[max(0, n - 3) : n + 1].all() and heard[n] < 0.02 * heard.max()]
    assert not silent, f"silent frames inside speech at {silent} (losses at {sorted(lost)})"
    health = reception.health()
    assert health.recovered_ms + health.concealed_ms >= 20 * len(lost)
    assert all(opus_packet_has_fec(p) == fec for p in payloads[first - 1 : first + 3])
    assert (health.recovered_ms > 0) == fec  # FEC rebuilds frames only when the sender sent it
    assert health.decode_errors == 0 and health.late == 0


def test_a_recovered_frame_is_closer_to_the_speech_than_a_concealed_one(speech: np.ndarray) -> None:
    # Two frames of delay, as the buffer holds on a lossy path: the packet after a lost one is
    # there in time to give its FEC. (At one frame, on a clean path, a single loss is concealed.)
    errors = {}
    for fec in (True, False):
        payloads = packets(speech, fec=fec)
        clean, _ = run(payloads, set(), min_delay_ms=40)
        total = 0.0
        for n in voiced_frames(speech, 6):
            lossy, reception = run(payloads, {n}, min_delay_ms=40)
            assert reception.health().recovered_ms == (20 if fec else 0)
            around = slice((n - 1) * FRAME_SAMPLES, (n + 4) * FRAME_SAMPLES)  # the loss, two frames behind
            total += float(np.mean((lossy[around].astype(np.float64) - clean[around]) ** 2))
        errors[fec] = total
    assert errors[True] < 0.5 * errors[False], errors


def test_a_packet_libopus_refuses_is_concealed_and_counted(speech: np.ndarray) -> None:
    payloads = packets(speech[: 20 * FRAME_SAMPLES], fec=False)
    payloads[10] = b"\x03\x00"  # a code-3 packet of no frame: invalid
    audio, reception = run(payloads, set())
    assert len(audio) == 20 * FRAME_SAMPLES
    assert reception.health().decode_errors == 1
    assert len(audio) == 20 * FRAME_SAMPLES  # the bad packet's slot was filled


def test_voice_is_told_only_when_sure() -> None:
    assert packet_voice(b"\x08", None) is False  # a TOC byte alone: DTX
    assert packet_voice(b"\x08" + bytes(60), None) is None  # no level sent: unknown
    assert packet_voice(b"\x08" + bytes(60), (True, 30)) is True
    assert packet_voice(b"\x08" + bytes(60), (False, 90)) is False  # quiet, flag clear
    assert packet_voice(b"\x08" + bytes(60), (False, 20)) is None  # loud without the flag (aiortc)


def test_nothing_pushed_is_silence_of_a_whole_frame() -> None:
    reception = SpeakerReception()
    frame = reception.pull(0.0)
    assert frame.shape == (FRAME_SAMPLES,) and not frame.any()
    assert SAMPLE_RATE // FRAME_SAMPLES == 50


def test_delay_a_late_burst_added_goes_away_in_the_next_pause_without_cutting_speech() -> None:
    # A sender that sends no RFC 6464 level (aiortc, OBS): only the decoded audio shows the pauses.
    speech = speak("We start. And after a pause we go on talking for a while.")
    payloads = packets(speech, fec=False)
    level = frame_rms(speech)
    start = next(n for n in range(len(level)) if level[n] > 0.3 * level.max())

    def arrive(burst: range) -> tuple[np.ndarray, list[int], SpeakerReception]:
        """Packets on time but `burst`, held 120 ms in the network and then all at once."""
        events: list[tuple[float, int, int]] = []  # (time, order: pushes first, packet or tick)
        for n in range(len(payloads)):
            events.append((1000.0 + n * 20 + (120 if n in burst else 0), 0, n))
            events.append((1001.0 + n * 20, 1, n))
        reception = SpeakerReception()
        out, held = [], []
        for at, kind, n in sorted(events):
            if kind == 0:
                reception.push((40_000 + n) % 65_536, n * FRAME_SAMPLES, payloads[n], at)
            else:
                out.append(reception.pull(at))
                held.append(reception.jitter.buffered_ms())
        return np.concatenate(out), held, reception

    clean, clean_held, clean_reception = arrive(range(0))
    late, held, reception = arrive(range(start + 3, start + 9))
    assert clean_reception.skipped_pauses <= 1  # a clean path has nothing to shed but the start's frame
    assert max(held) >= 100  # the burst left the buffer holding more
    # The pauses took all of it back: the buffer ends where a clean path's does.
    assert reception.skipped_pauses >= clean_reception.skipped_pauses + 5 and held[-1] == clean_held[-1]
    voiced = 0.3 * frame_rms(clean).max()
    # Nothing loud is missing: the frames skipped were pauses (concealment may add some).
    assert (frame_rms(late) > voiced).sum() >= (frame_rms(clean) > voiced).sum()
