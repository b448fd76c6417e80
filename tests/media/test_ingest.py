"""WHIP ingest in-process: a real aiortc speaker, `open_session`, and what reaches the mixer.

Decoding happens on the event loop (`InlineDecoding`) in place of aiortc's decoder thread; these
tests hold that it is really in use, that the speaker's tone reaches the mixer at its frequency,
and that the two fallbacks (aiortc's thread, a codec other than Opus) deliver the same audio.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from podium.backends.files import FileMediaStore
from podium.ids import MemberId, SpaceId
from podium.media import ice, ingest, sdp
from podium.media.ingest import IngestSession, InlineDecoding
from podium.media.mixer import SAMPLE_RATE
from podium.media.opus import OpusDecoder, OpusEncoder
from podium.media.stage import Stage
from podium.whip_client import SampleTrack, tone

pytestmark = pytest.mark.media


def dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)[int(np.argmax(spectrum))])


class Collecting(Stage):
    """A stage that also keeps what each speaker pushed, to look at what ingest delivered."""

    def __init__(self, root: Path) -> None:
        super().__init__(SpaceId("s-ingest"), FileMediaStore(root), datetime.datetime.now(datetime.UTC), [])
        self.pushed: list[np.ndarray] = []

    def push(self, key: object, samples: np.ndarray) -> None:
        self.pushed.append(samples)
        super().push(key, samples)


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
    session, answer = await ingest.open_session(
        SpaceId("s-ingest"), MemberId("m-1"), 1, offer, stage, loopback_only=True, on_closed=closed.append
    )
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp.keep_loopback_candidates(answer), "answer"))
        yield session, answer
    finally:
        await pc.close()
        await session.close()
        ice.configure("0")


async def wait_for_audio(stage: Collecting, seconds: float) -> np.ndarray:
    deadline = time.monotonic() + 20
    while sum(len(s) for s in stage.pushed) < seconds * SAMPLE_RATE:
        assert time.monotonic() < deadline, "no audio reached the mixer within 20 s"
        await asyncio.sleep(0.05)
    return np.concatenate(stage.pushed)


async def test_opus_is_decoded_on_the_loop_and_the_tone_reaches_the_mixer(tmp_path: Path) -> None:
    stage = Collecting(tmp_path)
    async with speaker_on(stage) as (session, _):
        audio = await wait_for_audio(stage, 1.0)
        assert session.inline_decoding
    assert audio.dtype == np.int16 and audio.ndim == 1
    assert abs(dominant_hz(audio[-SAMPLE_RATE // 2 :]) - 440) < 5
    # 0.3 of full scale sent; a lossy codec keeps the level within a few dB.
    assert 0.2 < np.abs(audio[-SAMPLE_RATE // 2 :]).max() / 32767 < 0.4


async def test_without_the_private_queue_aiortcs_thread_delivers_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if a future aiortc kept its decoder queue under another name.
    monkeypatch.setattr(InlineDecoding, "_ATTRIBUTE", "_not_there")
    stage = Collecting(tmp_path)
    async with speaker_on(stage) as (session, _):
        audio = await wait_for_audio(stage, 1.0)
        assert not session.inline_decoding
    assert abs(dominant_hz(audio[-SAMPLE_RATE // 2 :]) - 440) < 5


async def test_a_codec_other_than_opus_goes_through_aiortcs_thread(tmp_path: Path) -> None:
    stage = Collecting(tmp_path)
    async with speaker_on(stage, codecs=["audio/pcmu", "audio/opus"]) as (session, answer):
        audio = await wait_for_audio(stage, 1.0)
        assert session.inline_decoding  # installed, but G.711 is handed on
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
