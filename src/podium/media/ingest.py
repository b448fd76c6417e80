"""WHIP ingest (RFC 9725): a speaker's SDP offer becomes an aiortc peer feeding the stage mixer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from podium.errors import InvalidOffer
from podium.ids import MemberId, SessionId, SpaceId, new_session_id
from podium.media import ice, sdp
from podium.media.mixer import downmix
from podium.media.stage import Stage

log = logging.getLogger(__name__)

# ICE and DTLS must complete within this time after the answer, or the session is dropped.
CONNECT_TIMEOUT_S = 30.0


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
) -> tuple[IngestSession, str]:
    """Answer an offer; the speaker's audio goes into `stage` once the connection is up."""
    offer_text = offer.audio_only()
    if loopback_only:
        offer_text = sdp.keep_loopback_candidates(offer_text)
    pc = RTCPeerConnection(ice.rtc_configuration())
    session = IngestSession(new_session_id(), space_id, member_id, generation, pc, stage)

    @pc.on("track")
    def _on_track(track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            stage.add_input(session.id)
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
            pc.addTrack(stage.add_return(session.id))
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
    except (ValueError, TypeError, KeyError, IndexError) as error:
        await pc.close()
        raise InvalidOffer(f"the SDP offer could not be used: {error}") from None
    watchdog = asyncio.create_task(_expire_if_unconnected(session, on_closed))
    session.tasks.add(watchdog)
    return session, sdp.answer_with_declined(pc.localDescription.sdp, offer)


async def _pump(track: MediaStreamTrack, session: IngestSession) -> None:
    """Decoded Opus frames (48 kHz, interleaved s16) → mono samples → the speaker's mixer input."""
    try:
        while True:
            frame = await track.recv()
            samples = downmix(frame.to_ndarray(), len(frame.layout.channels))  # type: ignore[union-attr]
            session.stage.push(session.id, samples)
    except MediaStreamError:
        pass  # the speaker hung up
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("ingest %s failed", session.id)
    finally:
        session.stage.remove_input(session.id)


async def _expire_if_unconnected(session: IngestSession, on_closed: Callable[[IngestSession], None]) -> None:
    await asyncio.sleep(CONNECT_TIMEOUT_S)
    if session.pc.connectionState != "connected":
        log.info("ingest %s never connected; dropping it", session.id)
        on_closed(session)
        with contextlib.suppress(Exception):
            await session.pc.close()
