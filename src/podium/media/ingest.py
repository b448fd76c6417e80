"""WHIP ingest (RFC 9725): a speaker's SDP offer becomes an aiortc peer feeding the stage mixer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket

from podium.errors import InvalidOffer
from podium.ids import MemberId, SessionId, SpaceId, new_session_id
from podium.media import ice, sdp
from podium.media.mixer import SAMPLE_RATE, Samples, downmix
from podium.media.opus import OpusDecoder
from podium.media.reception import SpeakerReception
from podium.media.stage import ReturnTrack, Stage

log = logging.getLogger(__name__)

# ICE and DTLS must complete within this time after the answer, or the session is dropped.
CONNECT_TIMEOUT_S = 30.0
# How often the speaker's receiver reports (RTCP, sent every 0.5-1.5 s) are looked at.
REPORT_POLL_S = 1.0


@dataclass
class IngestSession:
    id: SessionId
    space_id: SpaceId
    member_id: MemberId
    # The generation of the token the session was opened with: when the member's generation
    # moves on (a right taken away), the session is closed.
    generation: int
    pc: RTCPeerConnection
    stage: Stage
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    closed: bool = False
    # Whether the speaker's Opus packets reach the stage's own jitter buffer (see `RtpTap`); if not,
    # whether they are decoded on the loop behind aiortc's jitter buffer (`InlineDecoding`) or by
    # aiortc's thread.
    tapped: bool = False
    inline_decoding: bool = False

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.stage.remove_input(self.id)
        self.stage.remove_return(self.id)
        for task in self.tasks:
            task.cancel()
        await self.pc.close()


async def open_session(
    space_id: SpaceId,
    member_id: MemberId,
    generation: int,
    offer: sdp.Offer,
    stage: Stage,
    *,
    loopback_only: bool,
    on_closed: Callable[[IngestSession], None],
    allow_loopback: bool = False,
    max_candidates: int = sdp.MAX_REMOTE_CANDIDATES,
) -> tuple[IngestSession, str]:
    """Answer an offer; the speaker's audio goes into `stage` once the connection is up. The
    stage sends ICE checks only to the offer's candidates a speaker could have (see
    `sdp.is_speaker_address`; loopback with `allow_loopback`, nothing else with `loopback_only`),
    and to at most `max_candidates` of them."""
    offer_text = offer.audio_only()
    if loopback_only:
        offer_text = sdp.keep_loopback_candidates(offer_text)
    offer_text = sdp.filter_remote_candidates(offer_text, allow_loopback or loopback_only, max_candidates)
    pc = RTCPeerConnection(ice.rtc_configuration())
    session = IngestSession(new_session_id(), space_id, member_id, generation, pc, stage)

    @pc.on("track")
    def _on_track(track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            receiver = next((r for r in pc.getReceivers() if r.track is track), None)
            reception = SpeakerReception()
            if receiver is not None and RtpTap.install(
                receiver,
                lambda packet: stage.receive(session.id, *packet),
                lambda: stage.release_reception(session.id),
                str(session.id),
            ):
                session.tapped = True
                stage.add_input(session.id, label=str(member_id), reception=reception)
            else:
                reception.close()
                stage.add_input(session.id, label=str(member_id))
                if receiver is not None:
                    session.inline_decoding = InlineDecoding.install(
                        receiver, lambda samples: stage.push(session.id, samples), str(session.id)
                    )
            task = asyncio.create_task(_pump(track, session), name=f"ingest-{session.id}")
            session.tasks.add(task)

    @pc.on("connectionstatechange")
    async def _on_state() -> None:
        if pc.connectionState in ("failed", "closed"):
            on_closed(session)
            await session.close()

    try:
        await pc.setRemoteDescription(RTCSessionDescription(offer_text, "offer"))
        if offer.wants_return_audio:
            # The speaker hears everyone but themselves over the same connection.
            returned = stage.add_return(session.id)
            sender = pc.addTrack(returned)
            reports = asyncio.create_task(_follow_loss_reports(sender, returned), name=f"reports-{session.id}")
            session.tasks.add(reports)
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
    except (ValueError, TypeError, KeyError, IndexError) as error:
        await pc.close()
        raise InvalidOffer(f"the SDP offer could not be used: {error}") from None
    watchdog = asyncio.create_task(_expire_if_unconnected(session, on_closed))
    session.tasks.add(watchdog)
    return session, sdp.answer_with_declined(sdp.ask_for_fec(pc.localDescription.sdp), offer)


RtpFields = tuple[int, int, bytes, tuple[bool, int] | None]


class RtpTap:
    """Takes a speaker's Opus RTP packets as they arrive, for the stage's own jitter buffer.

    aiortc's own jitter buffer has no concealment and no FEC: this object takes its place (a private
    attribute). Opus packets go to `on_packet`; any other codec goes to aiortc's buffer and decoder
    as before, the first such packet calling `on_other_codec`. aiortc's receiver reports are untouched.
    If a future aiortc keeps its buffer elsewhere, `install` says so (then `InlineDecoding`)."""

    _ATTRIBUTE = "_RTCRtpReceiver__jitter_buffer"
    _CODECS = "_RTCRtpReceiver__codecs"

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        original: Any,
        on_packet: Callable[[RtpFields], None],
        on_other_codec: Callable[[], None],
    ) -> None:
        self._receiver = receiver
        self._original = original
        self._on_packet = on_packet
        self._on_other_codec: Callable[[], None] | None = on_other_codec
        self._opus: dict[int, bool] = {}

    @classmethod
    def install(
        cls,
        receiver: RTCRtpReceiver,
        on_packet: Callable[[RtpFields], None],
        on_other_codec: Callable[[], None],
        name: str,
    ) -> bool:
        original = getattr(receiver, cls._ATTRIBUTE, None)
        if original is None or not callable(getattr(original, "add", None)):
            log.warning("aiortc's receiver keeps no jitter buffer where expected; ingest %s cannot conceal loss", name)
            return False
        setattr(receiver, cls._ATTRIBUTE, cls(receiver, original, on_packet, on_other_codec))
        return True

    @property
    def capacity(self) -> int:
        return int(self._original.capacity)

    def add(self, packet: RtpPacket) -> tuple[bool, Any]:
        if not self._is_opus(packet.payload_type):
            if self._on_other_codec is not None:
                self._on_other_codec()
                self._on_other_codec = None
            pli, frame = self._original.add(packet)
            return pli, frame
        self._on_packet((packet.sequence_number, packet.timestamp, packet.payload, packet.extensions.audio_level))
        return False, None

    def _is_opus(self, payload_type: int) -> bool:
        known = self._opus.get(payload_type)
        if known is None:
            # The negotiated codecs, by payload type, as aiortc's receiver keeps them once receiving.
            codec = getattr(self._receiver, self._CODECS, {}).get(payload_type)
            if codec is None:
                return False  # not negotiated (yet): aiortc's buffer sees it, as it would have
            known = self._opus[payload_type] = str(codec.mimeType).lower() == "audio/opus"
        return known


class InlineDecoding:
    """Decodes a speaker's Opus on the event loop, as each frame leaves aiortc's jitter buffer.

    aiortc's decoder thread costs a thread hand-off per 20 ms per speaker, more CPU than decoding
    (about 0.1 ms a frame). This object takes the place of its decoder queue (a private attribute)
    and pushes mono samples straight into the mixer; the end of the stream and other codecs go on
    to aiortc's thread as before. If a future aiortc keeps its queue elsewhere, `install` says so."""

    _ATTRIBUTE = "_RTCRtpReceiver__decoder_queue"

    def __init__(self, original: queue.Queue[Any], on_samples: Callable[[Samples], None], name: str) -> None:
        self._original = original
        self._on_samples = on_samples
        self._name = name
        self._decoder = OpusDecoder()
        self.errors = 0

    @classmethod
    def install(cls, receiver: RTCRtpReceiver, on_samples: Callable[[Samples], None], name: str) -> bool:
        original = getattr(receiver, cls._ATTRIBUTE, None)
        if not isinstance(original, queue.Queue):
            log.warning("aiortc's receiver has no decoder queue here; ingest %s decodes on its thread", name)
            return False
        setattr(receiver, cls._ATTRIBUTE, cls(original, on_samples, name))
        return True

    def get(self) -> Any:
        """aiortc's thread, when started after `install`, waits here: on the original queue."""
        return self._original.get()

    def put(self, item: tuple[Any, Any] | None) -> None:
        if item is None:
            self._original.put(None)  # the receiver stops: aiortc's thread ends the track
            return
        codec, encoded_frame = item
        if codec.name.lower() != "opus":
            self._original.put(item)  # G.711 and the like: aiortc's thread decodes, the track delivers
            return
        try:
            decoded = self._decoder.decode(encoded_frame.data)
        except av.FFmpegError as error:
            self.errors += 1
            if self.errors == 1 or self.errors % 500 == 0:
                log.warning("ingest %s: %d Opus frame(s) could not be decoded: %s", self._name, self.errors, error)
            return
        for samples in decoded:
            self._on_samples(samples)


async def _pump(track: MediaStreamTrack, session: IngestSession) -> None:
    """Feeds the mixer what the speaker's track delivers, as 48 kHz mono s16 (G.711's 8 kHz is
    resampled: pushed as it is, it would play six times too fast); ends with the track."""
    resampler: av.AudioResampler | None = None
    try:
        while True:
            frame = await track.recv()
            assert isinstance(frame, av.AudioFrame)
            if frame.sample_rate == SAMPLE_RATE and frame.format.name == "s16":
                channels = len(frame.layout.channels)
                interleaved = np.frombuffer(memoryview(frame.planes[0]), dtype=np.int16, count=frame.samples * channels)
                session.stage.push(session.id, downmix(interleaved, channels))
                continue
            if resampler is None:
                resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            for converted in resampler.resample(frame):
                mono = np.frombuffer(memoryview(converted.planes[0]), dtype=np.int16, count=converted.samples).copy()
                session.stage.push(session.id, mono)
    except MediaStreamError:
        pass  # the speaker hung up
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("ingest %s failed", session.id)
    finally:
        session.stage.remove_input(session.id)


async def _follow_loss_reports(sender: RTCRtpSender, track: ReturnTrack) -> None:
    """Passes each receiver report about the speaker's mix-minus on to its encoder. On the loop's
    real clock: a real peer connection's RTCP arrives in real time whatever a test's clock says."""
    loop = asyncio.get_running_loop()
    seen: object = None
    while True:
        await asyncio.sleep(REPORT_POLL_S)
        try:
            report = await sender.getStats()
        except Exception:  # the connection is going away; the session's close cancels this task
            continue
        for stats in report.values():
            if getattr(stats, "type", None) != "remote-inbound-rtp" or stats.timestamp == seen:
                continue
            seen = stats.timestamp
            # RFC 3550: the fraction lost since the last report, in 256ths.
            track.report_loss(min(1.0, float(stats.fractionLost) / 256), loop.time())


async def _expire_if_unconnected(session: IngestSession, on_closed: Callable[[IngestSession], None]) -> None:
    # A real network deadline (ICE and DTLS over real sockets), so on the real clock.
    await asyncio.sleep(CONNECT_TIMEOUT_S)
    if session.pc.connectionState != "connected":
        log.info("ingest %s never connected; dropping it", session.id)
        on_closed(session)
        with contextlib.suppress(Exception):
            await session.pc.close()
