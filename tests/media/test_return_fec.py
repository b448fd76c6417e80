"""A speaker's mix-minus carries FEC while their receiver reports loss, and low delay otherwise."""

from __future__ import annotations

import numpy as np

from podium.media.libopus import Decoder
from podium.media.mixer import FRAME_SAMPLES
from podium.media.opus import CLEAN_SPELL_S, LossAdaptation
from podium.media.reception import opus_packet_has_fec
from podium.media.stage import ReturnTrack
from podium.testing.speech import speak


def test_fec_from_the_first_lossy_report_and_back_only_after_a_clean_spell() -> None:
    policy = LossAdaptation()
    assert not policy.report(0.0, 0.0) and not policy.fec
    assert not policy.report(0.004, 1.0) and not policy.fec  # a stray loss is no lossy path
    assert policy.report(0.05, 2.0) and policy.fec and policy.loss_percent == 5
    assert not policy.report(0.05, 3.0)  # the same: nothing to change
    assert policy.report(0.12, 4.0) and policy.loss_percent == 12  # FEC sized for the loss reported
    # Clean reports: FEC stays for a spell, which a lossy report starts again.
    assert not policy.report(0.0, 5.0) and policy.fec
    assert policy.report(0.02, 5.0 + CLEAN_SPELL_S - 1) and policy.fec and policy.loss_percent == 2
    assert not policy.report(0.0, 6.0 + CLEAN_SPELL_S) and policy.fec
    assert policy.report(0.0, 6.0 + 2 * CLEAN_SPELL_S) and not policy.fec and policy.loss_percent == 0


async def test_the_return_track_switches_to_fec_on_reported_loss_and_keeps_one_timeline() -> None:
    speech = speak("Can you hear me well over this network?")
    frames = speech.reshape(-1, FRAME_SAMPLES)
    track = ReturnTrack()
    sent = []
    for n, frame in enumerate(frames[:60]):
        if n == 30:
            track.report_loss(0.05, 10.0)  # the speaker's receiver: 5 % of the mix-minus lost
        track.feed(frame)
        packet = await track.recv()
        sent.append((n, int(packet.pts), bytes(packet)))
    # One packet per frame, timestamps a frame apart across the switch.
    assert [pts for _, pts, _ in sent] == [n * FRAME_SAMPLES for n in range(len(sent))]
    before = [opus_packet_has_fec(data) for n, _, data in sent if n < 30]
    after = [opus_packet_has_fec(data) for n, _, data in sent if n >= 31]
    assert not any(before)  # CELT low delay: no FEC on a clean path
    assert all(data[0] >> 3 >= 16 for n, _, data in sent if n < 30)  # CELT-only TOCs
    assert sum(after) >= 0.5 * len(after)  # FEC in the packets of speech (not in pauses, nor the first)
    # A speaker's decoder plays the whole stream, through the switch, without a refused packet.
    decoder = Decoder()
    decoded = [decoder.decode(data) for _, _, data in sent]
    assert all(len(frame) == FRAME_SAMPLES for frame in decoded)
    # And the FEC is real: a frame rebuilt from the next packet is close to the frame itself.
    error = []
    for n in range(40, 55):
        rebuilt = Decoder()
        for _, _, data in sent[:n]:
            rebuilt.decode(data)
        recovered = rebuilt.recover(sent[n + 1][2]).astype(np.float64)
        error.append(np.mean((recovered - decoded[n]) ** 2) / max(np.mean(decoded[n].astype(np.float64) ** 2), 1.0))
    assert float(np.median(error)) < 0.3, error
    track.stop()
