"""A WHIP publisher built on aiortc: how tests, benchmarks and `podium rehearse` put audio on a stage."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import httpx
import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from podium.media import ice, sdp
from podium.media.mixer import FRAME_SAMPLES, SAMPLE_RATE, downmix
from podium.media.opus import OpusEncoder

SampleSource = Callable[[int], npt.NDArray[np.int16]]
SPEAKER_BITRATE = 32_000


def tone(frequency_hz: float, amplitude: float = 0.3) -> SampleSource:
    """A sine wave, continuous across frames: frame n holds samples [n*960, (n+1)*960)."""

    def frame(n: int) -> npt.NDArray[np.int16]:
        t = (np.arange(FRAME_SAMPLES) + n * FRAME_SAMPLES) / SAMPLE_RATE
        return (np.sin(2 * np.pi * frequency_hz * t) * amplitude * 32767).astype(np.int16)

    return frame


class SampleTrack(MediaStreamTrack):
    """An audio track producing 20 ms mono frames from `source`, paced in real time, sent as mono
    Opus at 32 kb/s as browsers send a microphone (Chromium: mono unless asked for stereo).

    The frames are encoded here and handed to aiortc as packets: its own encoder would send
    stereo at 96 kb/s, and a process running a dozen test speakers would spend its CPU on that.
    With `encode=False` the track gives aiortc raw frames instead, for codecs other than Opus."""

    kind = "audio"

    def __init__(self, source: SampleSource, encode: bool = True) -> None:
        super().__init__()
        self._source = source
        self._encode = encode
        self._n = 0
        self._start: float | None = None
        self._encoder = OpusEncoder(bitrate=SPEAKER_BITRATE)
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
) -> Publisher:
    """Publish `track`; with `receive`, also take the stage's return audio (the mix-minus)."""
    if loopback_only:
        ice.configure("only")
    pc = RTCPeerConnection(ice.rtc_configuration())
    pc.addTransceiver(track, direction="sendrecv" if receive else "sendonly")
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
    location = str(httpx.URL(whip_url).join(response.headers["location"]))
    deadline = time.monotonic() + timeout_s
    while pc.connectionState != "connected":
        if pc.connectionState in ("failed", "closed") or time.monotonic() > deadline:
            await pc.close()
            raise ConnectionError(f"the WebRTC connection did not come up ({pc.connectionState})")
        await asyncio.sleep(0.05)
    return Publisher(pc, location, token, received, tasks)


async def _collect(track: MediaStreamTrack, into: list[npt.NDArray[np.int16]]) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            frame = await track.recv()
            assert isinstance(frame, av.AudioFrame)
            into.append(downmix(frame.to_ndarray().astype(np.int16, copy=False), len(frame.layout.channels)))
