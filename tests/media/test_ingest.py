"""WHIP ingest in-process: a real aiortc speaker, `open_session`, and what reaches the mixer.

A speaker's Opus packets go to the stage's own jitter buffer (`RtpTap` in place of aiortc's) and
are decoded on the stage's tick; these tests hold that it is really in use, that the speaker's tone
reaches the mixer at its frequency and level, and that the fallbacks (decoding behind aiortc's
jitter buffer on the loop, aiortc's thread, a codec other than Opus) deliver the same audio.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from podium.backends.files import FileMediaStore
from podium.ids import MemberId, new_space_id
from podium.media import ice, ingest, sdp
from podium.media.ingest import IngestSession, InlineDecoding, RtpTap
from podium.media.mixer import SAMPLE_RATE, Mixer
from podium.media.opus import OpusDecoder, OpusEncoder
from podium.media.stage import Stage
from podium.testing import eventually
from podium.testing.whip_client import SampleTrack, tone

pytestmark = pytest.mark.media

SPACE = new_space_id()


def dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)[int(np.argmax(spectrum))])


class RecordingMixer(Mixer):
    """A mixer that also keeps what reached it, from the jitter buffer or from a decoder's push."""

    def __init__(self) -> None:
        super().__init__()
        self.pushed: list[np.ndarray] = []

    def push(self, key: Hashable, samples: np.ndarray) -> None:
        if self.buffered_samples(key) or samples.any() or self.pushed:  # from the first sound on
            self.pushed.append(samples)
        super().push(key, samples)


class Collecting(Stage):
    """A running stage that keeps what reached its mixer, to look at what ingest delivered."""

    def __init__(self, root: Path) -> None:
        super().__init__(SPACE, FileMediaStore(root), datetime.datetime.now(datetime.UTC), [])
        self.mixer = self.recording = RecordingMixer()

    @property
    def pushed(self) -> list[np.ndarray]:
        return self.recording.pushed


@asynccontextmanager
async def speaker_on(stage: Stage, codecs: list[str] | None = None) -> AsyncIterator[tuple[IngestSession, str]]:
    """An aiortc speaker sending 440 Hz, connected over loopback to an ingest session on `stage`."""
    ice.configure("only")
    pc = RTCPeerConnection(ice.rtc_configuration())
    track = SampleTrack(tone(440), encode=codecs is None)  # raw frames when another codec may be chosen
    transceiver = pc.addTransceiver(track, direction="sendonly")
    if codecs is not None:
        available = RTCRtpSender.getCapabilities("audio").codecs
        transceiver.setCodecPreferences([c for name in codecs for c in available if c.mimeType.lower() == name])
    await pc.setLocalDescription(await pc.createOffer())
    offer = sdp.parse_offer(pc.localDescription.sdp.encode(), 64_000)
    closed: list[IngestSession] = []
    await stage.start()
    session, answer = await ingest.open_session(
        SPACE, MemberId("m-1"), 1, offer, stage, loopback_only=True, on_closed=closed.append
    )
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp.keep_loopback_candidates(answer), "answer"))
        yield session, answer
    finally:
        await pc.close()
        await session.close()
        await stage.stop()
        ice.configure("0")


async def wait_for_audio(stage: Collecting, seconds: float) -> np.ndarray:
    # Real time: the audio comes from a real peer over loopback.
    await eventually(
        lambda: sum(len(s) for s in stage.pushed) >= seconds * SAMPLE_RATE, "audio reached the mixer", timeout_s=20
    )
    return np.concatenate(stage.pushed)


async def test_opus_goes_through_the_stages_jitter_buffer_and_the_tone_reaches_the_mixer(tmp_path: Path) -> None:
    stage = Collecting(tmp_path)
    async with speaker_on(stage) as (session, answer):
        audio = await wait_for_audio(stage, 1.0)
        assert session.tapped and not session.inline_decoding
        health = stage.reception_health(session.id)
        assert health is not None and health.packets >= 50 and health.concealed_ms == 0
    assert "useinbandfec=1" in answer  # the speaker is asked for FEC
    assert audio.dtype == np.int16 and audio.ndim == 1
    assert abs(dominant_hz(audio[-SAMPLE_RATE // 2 :]) - 440) < 5
    # 0.3 of full scale sent; a lossy codec keeps the level within a few dB.
    assert 0.2 < np.abs(audio[-SAMPLE_RATE // 2 :]).max() / 32767 < 0.4


async def test_without_aiortcs_jitter_buffer_opus_is_decoded_behind_it_on_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if a future aiortc kept its jitter buffer under another name.
    monkeypatch.setattr(RtpTap, "_ATTRIBUTE", "_not_there")
    stage = Collecting(tmp_path)
    async with speaker_on(stage) as (session, _):
        audio = await wait_for_audio(stage, 1.0)
        assert session.inline_decoding and not session.tapped
    assert abs(dominant_hz(audio[-SAMPLE_RATE // 2 :]) - 440) < 5


async def test_without_either_private_attribute_aiortcs_thread_delivers_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if a future aiortc kept its jitter buffer and its decoder queue under other names.
    monkeypatch.setattr(RtpTap, "_ATTRIBUTE", "_not_there")
    monkeypatch.setattr(InlineDecoding, "_ATTRIBUTE", "_not_there")
    stage = Collecting(tmp_path)
    async with speaker_on(stage) as (session, _):
        audio = await wait_for_audio(stage, 1.0)
        assert not session.inline_decoding and not session.tapped
    assert abs(dominant_hz(audio[-SAMPLE_RATE // 2 :]) - 440) < 5


async def test_a_codec_other_than_opus_goes_through_aiortcs_thread(tmp_path: Path) -> None:
    stage = Collecting(tmp_path)
    async with speaker_on(stage, codecs=["audio/pcmu", "audio/opus"]) as (session, answer):
        audio = await wait_for_audio(stage, 1.0)
        assert session.tapped  # installed, but G.711 is handed on to aiortc's thread
        assert stage.reception_health(session.id) is None
    audio_line = next(line for line in answer.splitlines() if line.startswith("m=audio"))
    assert audio_line.split()[3] == "0"  # PCMU was negotiated first
    assert abs(dominant_hz(audio[-SAMPLE_RATE // 2 :]) - 440) < 5


def test_the_opus_codec_pair_keeps_a_tone_and_refuses_odd_frames() -> None:
    encoder, decoder = OpusEncoder(), OpusDecoder()
    source = tone(660, 0.5)
    out = [s for n in range(50) for packet in encoder.encode(source(n)) for s in decoder.decode(bytes(packet))]
    audio = np.concatenate(out)
    assert len(audio) == 50 * 960
    assert abs(dominant_hz(audio[-24_000:]) - 660) < 5
    with pytest.raises(ValueError, match="960"):
        encoder.encode(np.zeros(480, dtype=np.int16))
    with pytest.raises(ValueError):
        encoder.encode(np.zeros(960, dtype=np.float32))


def test_a_packet_that_is_not_opus_is_counted_not_fatal(tmp_path: Path) -> None:
    import queue

    pushed: list[np.ndarray] = []
    inline = InlineDecoding(queue.Queue(), pushed.append, "test")

    class Codec:
        name = "opus"

    class Frame:
        data = b"\xff" * 3  # a code-3 TOC byte with a frame count of 0: invalid

    inline.put((Codec(), Frame()))
    assert inline.errors == 1 and pushed == []
