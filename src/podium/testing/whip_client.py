"""A WHIP publisher built on aiortc: how tests, benchmarks and `podium rehearse` put audio on a stage."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import av
import httpx
import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from podium.media import ice, libopus, sdp
from podium.media.mixer import FRAME_SAMPLES, SAMPLE_RATE, Samples, downmix
from podium.media.opus import TIME_BASE, OpusEncoder

if TYPE_CHECKING:
    # Only the types: podium.testing is for tests and benchmarks, and `podium rehearse` imports this
    # module; `publish` imports the hook itself when asked to impair.
    from podium.testing.impair import ImpairedPath, Impairment

SampleSource = Callable[[int], npt.NDArray[np.int16]]
SPEAKER_BITRATE = 32_000
# libopus complexity of the FEC track, as Chromium's WebRTC sets it on desktop (9). It matters: at
# 32 kb/s and 5 % expected loss, libopus 1.3.1 adds no FEC at all below complexity 7 (measured:
# every decode_fec of its packets equals plain concealment), so a track at libopus's default of 5
# would claim FEC and send none.
SPEAKER_COMPLEXITY = 9


def tone(frequency_hz: float, amplitude: float = 0.3) -> SampleSource:
    """A sine wave, continuous across frames: frame n holds samples [n*960, (n+1)*960)."""

    def frame(n: int) -> npt.NDArray[np.int16]:
        t = (np.arange(FRAME_SAMPLES) + n * FRAME_SAMPLES) / SAMPLE_RATE
        return (np.sin(2 * np.pi * frequency_hz * t) * amplitude * 32767).astype(np.int16)

    return frame


def from_samples(samples: Samples) -> SampleSource:
    """`samples` (48 kHz mono int16) frame by frame: frame n holds samples [n*960, (n+1)*960), the
    last one padded with zeros; silence after them."""
    padded = np.concatenate([samples.astype(np.int16, copy=False), np.zeros(-len(samples) % FRAME_SAMPLES, np.int16)])
    silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)

    def frame(n: int) -> npt.NDArray[np.int16]:
        chunk = padded[n * FRAME_SAMPLES : (n + 1) * FRAME_SAMPLES]
        return chunk if len(chunk) else silence

    return frame


def fec_encoder(expected_loss_perc: int) -> libopus.Encoder:
    """A `SampleTrack`'s encoder with `fec=True`: libopus voip with in-band FEC, `expected_loss_perc`
    % loss expected (0: no FEC sent). Deterministic: a test can encode the very packets sent again."""
    return libopus.Encoder(
        application="voip",
        bitrate=SPEAKER_BITRATE,
        complexity=SPEAKER_COMPLEXITY,
        inband_fec=True,
        packet_loss_perc=expected_loss_perc,
    )


class SampleTrack(MediaStreamTrack):
    """20 ms mono frames from `source`, paced in real time, sent as mono Opus at 32 kb/s as browsers
    send a microphone. Encoded here (aiortc's encoder would send stereo at 96 kb/s, costly for a
    dozen test speakers); `encode=False` hands aiortc raw frames, for codecs other than Opus.
    With `fec`, `fec_encoder(expected_loss_perc)` encodes, one packet per frame: packet i holds frame i."""

    kind = "audio"

    def __init__(
        self, source: SampleSource, encode: bool = True, *, fec: bool = False, expected_loss_perc: int = 0
    ) -> None:
        super().__init__()
        if fec and not encode:
            raise ValueError("in-band FEC is the track's own Opus encoding: fec needs encode=True")
        self._source = source
        self._encode = encode
        self._n = 0
        self._start: float | None = None
        self._encoder = OpusEncoder(bitrate=SPEAKER_BITRATE)
        self._fec_encoder = fec_encoder(expected_loss_perc) if fec else None
        self._pending: list[av.Packet[Any]] = []
        # Wall-clock time (time.time()) at which each frame was handed to the encoder.
        self.sent_at: dict[int, float] = {}

    async def recv(self) -> av.Packet[Any] | av.AudioFrame:
        while not self._pending:
            if self._start is None:
                self._start = time.monotonic()
            wait = self._start + self._n * FRAME_SAMPLES / SAMPLE_RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self.sent_at[self._n] = time.time()
            samples = self._source(self._n)
            if not self._encode:
                frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
                frame.sample_rate, frame.time_base = SAMPLE_RATE, Fraction(1, SAMPLE_RATE)
                frame.pts = self._n * FRAME_SAMPLES
                self._n += 1
                return frame
            if self._fec_encoder is not None:
                packet = av.Packet(self._fec_encoder.encode(samples))
                packet.pts = self._n * FRAME_SAMPLES
                packet.time_base = TIME_BASE
                self._pending.append(packet)
            else:
                self._pending.extend(self._encoder.encode(samples))
            self._n += 1
        return self._pending.pop(0)


@dataclass
class Publisher:
    pc: RTCPeerConnection
    resource_url: str
    token: str
    # What the stage sent back (the mix-minus), as mono int16 chunks, when asked to receive.
    received: list[npt.NDArray[np.int16]] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # The impaired sending path when published with an `Impairment`: which packets were lost.
    path: ImpairedPath | None = None

    def received_audio(self, last_s: float) -> npt.NDArray[np.int16]:
        audio = np.concatenate(self.received) if self.received else np.zeros(0, dtype=np.int16)
        return audio[-int(last_s * SAMPLE_RATE) :]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        try:
            # Telling the server is a courtesy: a server that is gone has nothing left to end.
            async with httpx.AsyncClient() as client:
                await client.delete(self.resource_url, headers={"Authorization": f"Bearer {self.token}"})
        except httpx.HTTPError:
            pass
        finally:
            await self.pc.close()
            if self.path is not None:
                self.path.close()


class WhipRefused(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"WHIP endpoint answered {status}: {body}")
        self.status = status
        self.body = body


async def publish(
    whip_url: str,
    token: str,
    track: MediaStreamTrack,
    *,
    loopback_only: bool = True,
    timeout_s: float = 20.0,
    receive: bool = False,
    impairment: Impairment | None = None,
) -> Publisher:
    """Publish `track`; with `receive`, also take the stage's return audio (the mix-minus); with
    `impairment`, its RTP media packets are lost and delayed on the way out as that says (RTCP is
    spared), and `Publisher.path` records which."""
    if loopback_only:
        ice.configure("only")
    pc = RTCPeerConnection(ice.rtc_configuration())
    transceiver = pc.addTransceiver(track, direction="sendrecv" if receive else "sendonly")
    path: ImpairedPath | None = None
    if impairment is not None:
        from podium.testing.impair import impair_sender

        path = impair_sender(pc, impairment)
    received: list[npt.NDArray[np.int16]] = []
    tasks: set[asyncio.Task[None]] = set()

    @pc.on("track")
    def _on_track(remote: MediaStreamTrack) -> None:
        tasks.add(asyncio.create_task(_collect(remote, received)))

    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        response = await client.post(
            whip_url,
            content=pc.localDescription.sdp.encode(),
            headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"},
        )
    if response.status_code != 201:
        await pc.close()
        raise WhipRefused(response.status_code, response.text)
    answer = response.text
    if loopback_only:
        answer = sdp.keep_loopback_candidates(answer)
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    if path is not None:
        from podium.testing.impair import hooked_path

        # Negotiation may swap a sender's transport (BUNDLE): an unimpaired path must not pass unseen.
        if hooked_path(transceiver.sender.transport) is not path:
            await pc.close()
            raise RuntimeError("the negotiated transport is not the impaired one")
    location = str(httpx.URL(whip_url).join(response.headers["location"]))
    deadline = time.monotonic() + timeout_s
    while pc.connectionState != "connected":
        if pc.connectionState in ("failed", "closed") or time.monotonic() > deadline:
            await pc.close()
            raise ConnectionError(f"the WebRTC connection did not come up ({pc.connectionState})")
        await asyncio.sleep(0.05)
    return Publisher(pc, location, token, received, tasks, path)


async def _collect(track: MediaStreamTrack, into: list[npt.NDArray[np.int16]]) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            frame = await track.recv()
            assert isinstance(frame, av.AudioFrame)
            into.append(downmix(frame.to_ndarray().astype(np.int16, copy=False), len(frame.layout.channels)))
