"""A live space's stage: speakers' audio in, the LL-HLS program out, paced by the clock.

The async shell around the sans-IO mixer, encoder and packager. One task ticks every 20 ms of
the injected clock and moves data (`step()` does one tick's work, for tests that move a stage
frame by frame); one task writes what the packager made to the media store, in order. The packager
answers listeners from memory, so a slow disk delays the recording, never the live stream; what
waits for the disk is bounded (`WriteQueue`): a disk that falls behind costs parts of the
recording (counted, logged), never memory, never a tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import av
from aiortc import MediaStreamTrack

from podium.backends.interfaces import MediaStore
from podium.clock import Clock, SystemClock
from podium.ids import SpaceId
from podium.media import libopus
from podium.media.aac import AacEncoder
from podium.media.fmp4 import init_section
from podium.media.hold import HoldAudio
from podium.media.mixer import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, Mixer, Samples
from podium.media.opus import RETURN_BITRATE, RETURN_FEC_COMPLEXITY, LossAdaptation, OpusEncoder
from podium.media.opus import TIME_BASE as OPUS_TIME_BASE
from podium.media.packager import INIT_NAME, Packager, Part, Segment, SegmentRecord
from podium.media.reception import ReceptionHealth, SpeakerReception
from podium.media.write_queue import WriteQueue

log = logging.getLogger(__name__)

# The program listeners hear: AAC-LC, mono. It follows Opus (the speakers' codec), and a cascade of
# two codecs costs speech more than either alone: PESQ wide band of espeak-ng speech through
# libopus at 32 kb/s and then this encoder measured 3.59 at 64 kb/s, 3.77 at 80, 3.87 at 96
# (Opus alone: 3.99). 80 kb/s, with TNS off (see `media/aac.py`), is where a clean path passes
# 3.7 with a margin, for a quarter more bytes per listener than 64.
BITRATE = 80_000
# Past this many frames behind (the process was stalled), the stage skips ahead instead of
# bursting out seconds of audio in one go.
MAX_CATCH_UP_FRAMES = 50
# Per 20 ms frame: a level falls to a tenth in about 300 ms.
LEVEL_DECAY = 0.86
# Frames a speaker's return track may queue before the oldest go (their connection is slow).
RETURN_QUEUE_FRAMES = 10
# A level (0..1 peak) above about -34 dBFS counts as speaking.
SPEAKING_LEVEL = 0.02
# Who is speaking changes (for the replay's markers) once another input has been the loudest
# speaking one for this many frames in a row (0.6 s): short interjections do not count.
SPEAKER_HOLD_FRAMES = 30
SPEAKERS_NAME = "speakers.jsonl"
# Items that may wait for the disk by default (PODIUM_STAGE_WRITE_QUEUE), and how often a disk
# that keeps falling behind is logged again.
WRITE_QUEUE_ITEMS = 256
DROP_LOG_INTERVAL_S = 10.0


# The captions' tap: once per frame on the air, each unmuted speaker's frame by member id (their
# label), and the frame's start on the recording's axis (seconds).
FrameTap = Callable[[dict[str, Samples], float], None]


@dataclass(frozen=True)
class SpeakerChange:
    at_s: float  # media time in the recording
    member: str


class ReturnTrack(MediaStreamTrack):
    """What a speaker hears back: their mix-minus, 20 ms mono frames, paced by the stage, as Opus
    packets (`recv()`: CELT "lowdelay", or VOIP with in-band FEC while the speaker's receiver reports
    loss, see `LossAdaptation`) or as samples (`next_samples()`, for in-process readers)."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: asyncio.Queue[Samples] = asyncio.Queue(RETURN_QUEUE_FRAMES)
        self._encoder: OpusEncoder | None = None
        self._fec_encoder: libopus.Encoder | None = None
        self._pending: deque[av.Packet[Any]] = deque()
        self.adaptation = LossAdaptation()
        self._pts = 0

    def feed(self, samples: Samples) -> None:
        if self._queue.full():
            self._queue.get_nowait()  # late listener: keep the newest audio, not a growing delay
        self._queue.put_nowait(samples)

    async def next_samples(self) -> Samples:
        return await self._queue.get()

    def report_loss(self, fraction_lost: float, now_s: float) -> None:
        """The loss the speaker's receiver reported for this stream (RTCP), 0..1."""
        if not self.adaptation.report(fraction_lost, now_s):
            return
        if self.adaptation.fec:
            if self._fec_encoder is None:
                self._fec_encoder = libopus.Encoder(
                    application="voip", bitrate=RETURN_BITRATE, complexity=RETURN_FEC_COMPLEXITY, inband_fec=True
                )
            self._fec_encoder.set_packet_loss_perc(self.adaptation.loss_percent)
        elif self._fec_encoder is not None:
            self._fec_encoder.close()
            self._fec_encoder = None

    async def recv(self) -> av.Packet[Any]:
        while not self._pending:
            samples = await self._queue.get()
            if self._fec_encoder is not None:
                packets = [av.Packet(self._fec_encoder.encode(samples))]
            else:
                if self._encoder is None:
                    self._encoder = OpusEncoder()
                packets = self._encoder.encode(samples)
            for packet in packets:
                # One timeline (a packet is a frame) whichever encoder made it: aiortc makes the RTP
                # timestamps of it, which must not jump when the encoding changes.
                packet.pts, packet.time_base = self._pts, OPUS_TIME_BASE
                self._pts += FRAME_SAMPLES
                self._pending.append(packet)
        return self._pending.popleft()


class Stage:
    def __init__(
        self,
        space_id: SpaceId,
        store: MediaStore,
        start: datetime,
        history: list[SegmentRecord],
        hold: HoldAudio | None = None,
        write_queue: int = WRITE_QUEUE_ITEMS,
        clock: Clock | None = None,
        tap: FrameTap | None = None,
    ) -> None:
        self.space_id = space_id
        # Called once per frame on the air (never in the pre-show); it must be cheap, and a
        # failing tap never stops the stage (caught, counted, logged at most every 10 s).
        self.tap = tap
        self.tap_failures = 0
        self._tap_logged_at: float | None = None
        # Paces the ticks and stamps arrivals; packets' arrival and the jitter buffers' pulls are
        # read from this one clock, so they agree with each other.
        self._clock = clock or SystemClock()
        # In the pre-show the program is the hold audio; speakers already connected are backstage
        # (they hear each other, listeners do not hear them) until `go_live`.
        self.hold = hold
        self._store = store
        self.mixer = Mixer()
        self._encoder = AacEncoder(bitrate=BITRATE)
        self.init = init_section(self._encoder.audio_specific_config, SAMPLE_RATE, bitrate=BITRATE)
        self.packager = Packager(start, history=history, preshow=hold is not None)
        self._changed = asyncio.Event()
        self._writes: WriteQueue[Part | Segment | SpeakerChange] = WriteQueue(write_queue, Part)
        self._writes_waiting = asyncio.Event()
        self._writes_closed = False
        self._drop_logged_at: float | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self._write_task: asyncio.Task[None] | None = None
        self.frames_mixed = 0
        self.frames_skipped = 0
        self.parts_made = 0
        self.last_made_at: float | None = None  # clock.monotonic() of the newest part
        # Gaps between a speaker's frames arriving (the last minute or so of all speakers).
        self.input_gaps_ms: deque[float] = deque(maxlen=3000)
        self._last_push: dict[Hashable, float] = {}
        # Speakers whose RTP packets reach the stage as they arrive: their jitter buffers and
        # decoders, pulled once per tick (the others push decoded samples).
        self._receptions: dict[Hashable, SpeakerReception] = {}
        # Per input: peak level with a ~300 ms decay, for speaking indicators.
        self.levels: dict[Hashable, float] = {}
        self._returns: dict[Hashable, ReturnTrack] = {}
        # Who spoke when, in media time since the recording began (continuing after a restart).
        self._labels: dict[Hashable, str] = {}
        self._media_base_s = sum(record.duration_s for record in history if not record.preshow)
        self.speaker: str | None = None
        self._candidate: tuple[str | None, int] = (None, 0)
        self.speaker_changes: list[tuple[float, str]] = []

    @property
    def preshow(self) -> bool:
        return self.hold is not None

    def go_live(self) -> None:
        """The switch from hold audio to the stage, between two ticks: the next 20 ms frame is the
        stage's. The pre-show's last segment closes short here, so the recording starts exactly
        at the switch (up to the AAC encoder's own delay of a frame or two of hold audio)."""
        if self.hold is None:
            return
        self.hold = None
        # Who-spoke-when is in recording time: it starts now.
        self._media_base_s -= self.frames_mixed * FRAME_MS / 1000
        made = self.packager.go_live()
        if made:
            self._publish(made)

    async def start(self, *, paced: bool = True) -> None:
        """Start writing, and (`paced`) ticking every 20 ms of the clock; unpaced, frames are made
        only by `step()`."""
        # The init section reaches the disk before any playlist names it.
        await self._store.write(self.space_id, INIT_NAME, self.init)
        self._write_task = asyncio.create_task(self._write_loop(), name=f"stage-writer-{self.space_id}")
        if paced:
            self._tick_task = asyncio.create_task(self._tick_loop(), name=f"stage-{self.space_id}")

    # -- speakers --------------------------------------------------------------------------

    def add_input(self, key: Hashable, label: str | None = None, reception: SpeakerReception | None = None) -> None:
        """`label` names the speaker in who-spoke-when (a member id); the key is the connection.

        With a `reception`, the speaker's packets come in through `receive()` and the stage pulls one
        frame from it per tick; without, decoded samples come in through `push()`."""
        self.mixer.add_input(key, paced=reception is not None)
        if reception is not None:
            self._receptions[key] = reception
        if label is not None:
            self._labels[key] = label

    def remove_input(self, key: Hashable) -> None:
        self._last_push.pop(key, None)
        self.mixer.remove_input(key)
        reception = self._receptions.pop(key, None)
        if reception is not None:
            reception.close()

    def receive(
        self, key: Hashable, seq: int, timestamp: int, payload: bytes, audio_level: tuple[bool, int] | None
    ) -> None:
        """One RTP Opus packet of `key`'s, as it arrives (on the stage's loop; stamped with the stage's clock)."""
        reception = self._receptions.get(key)
        if reception is None:
            return  # removed while its packets were in flight
        now = self._clock.monotonic()
        self._note_arrival(key, now)
        reception.push(seq, timestamp, payload, now * 1000, audio_level)

    def release_reception(self, key: Hashable) -> None:
        """`key`'s audio comes as decoded samples after all (a codec other than Opus): stop pulling."""
        reception = self._receptions.pop(key, None)
        if reception is not None:
            reception.close()
            self.mixer.set_paced(key, False)

    def reception_health(self, key: Hashable) -> ReceptionHealth | None:
        reception = self._receptions.get(key)
        return None if reception is None else reception.health()

    def push(self, key: Hashable, samples: Samples) -> None:
        self._note_arrival(key, self._clock.monotonic())
        self.mixer.push(key, samples)

    def _note_arrival(self, key: Hashable, now: float) -> None:
        last = self._last_push.get(key)
        if last is not None:
            self.input_gaps_ms.append((now - last) * 1000)
        self._last_push[key] = now

    def input_gaps(self) -> dict[str, float] | None:
        """Time between a speaker's frames as they reach the stage, over the recent ones (ms)."""
        if not self.input_gaps_ms:
            return None
        ordered = sorted(self.input_gaps_ms)

        def pick(p: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 1)

        return {"p50": pick(50), "p99": pick(99), "max": round(ordered[-1], 1), "frames": len(ordered)}

    def set_muted(self, key: Hashable, muted: bool) -> None:
        self.mixer.set_muted(key, muted)

    def add_return(self, key: Hashable) -> ReturnTrack:
        """A track carrying `key`'s mix-minus (everyone but them), one frame per mixer frame."""
        track = self._returns[key] = ReturnTrack()
        return track

    def remove_return(self, key: Hashable) -> None:
        track = self._returns.pop(key, None)
        if track is not None:
            track.stop()

    # -- listeners -------------------------------------------------------------------------

    async def wait_for_change(self, timeout_s: float) -> bool:
        """Wait until the packager publishes something new; False on timeout."""
        event = self._changed
        try:
            await self._clock.wait_for(event.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    # -- life ------------------------------------------------------------------------------

    async def finish(self, wait_s: float | None = None) -> bool:
        """End the program: flush the last part, close the playlist, and wait for the disk, for at
        most `wait_s` (None: until done). True if everything was written by then; if not, the
        writer goes on in the background (`written()` waits for it)."""
        await self._stop_ticking()
        if not self.packager.is_ended:
            self._publish(self.packager.finish())
        return await self._drain_writes(wait_s)

    async def stop(self, wait_s: float | None = None) -> bool:
        """Stop without ending (the process shuts down, a pre-show closes): what reached the disk
        is resumed on restart. Waits for the disk as `finish` does."""
        await self._stop_ticking()
        return await self._drain_writes(wait_s)

    async def written(self) -> None:
        """Once stopped or finished: returns when the writer has written all it still holds."""
        if self._write_task is not None:
            await asyncio.shield(self._write_task)

    @property
    def writes_waiting(self) -> int:
        return len(self._writes)

    @property
    def writes_dropped(self) -> dict[str, int]:
        return dict(self._writes.dropped)

    async def _stop_ticking(self) -> None:
        if self._tick_task is not None:
            self._tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick_task

    async def _drain_writes(self, wait_s: float | None) -> bool:
        if self._write_task is None:
            return True
        self._writes_closed = True
        self._writes_waiting.set()
        # On the real clock: this bounds a wait for a real disk (at shutdown), not a media timer.
        try:
            await asyncio.wait_for(asyncio.shield(self._write_task), wait_s)
        except TimeoutError:
            return False
        return True

    def step(self, frames: int = 1) -> list[Part | Segment]:
        """Make `frames` 20 ms frames at once, as the ticking loop does each tick: pull and mix the
        speakers, feed the mix-minus returns, encode and package the program, publish what that
        made. For a stage started unpaced (`start(paced=False)`): tests move it frame by frame."""
        assert self._tick_task is None or self._tick_task.done(), "the stage ticks by itself"
        made = self._make(frames)
        if made:
            self._publish(made)
        return made

    def _make(self, frames: int) -> list[Part | Segment]:
        made: list[Part | Segment] = []
        for _ in range(frames):
            now_ms = self._clock.monotonic() * 1000
            for key, reception in self._receptions.items():
                self.mixer.push(key, reception.pull(now_ms))
            result = self.mixer.mix()
            if self.tap is not None and self.hold is None:
                self._tap(result.inputs)
            self._update_levels(result.levels)
            for key, track in self._returns.items():
                minus = result.minus.get(key)
                if minus is not None:
                    track.feed(minus)
            program = result.program if self.hold is None else self.hold.next_frame()
            made.extend(self.packager.push(self._encoder.encode(program)))
            self.frames_mixed += 1
        return made

    async def _tick_loop(self) -> None:
        clock = self._clock
        frame_s = FRAME_MS / 1000
        origin = clock.monotonic()
        done = 0
        try:
            while True:
                # A hair of slack: woken exactly at a frame's time, float division must not read it
                # as the frame before (on a clock that jumps to deadlines, that would spin for ever).
                due = int((clock.monotonic() - origin) / frame_s + 1e-6) + 1
                if due - done > MAX_CATCH_UP_FRAMES:
                    log.warning("stage %s fell %d frames behind; skipping ahead", self.space_id, due - done)
                    self.frames_skipped += due - 1 - done
                    done = due - 1
                made = self._make(due - done)
                done = due
                if made:
                    self._publish(made)
                await clock.sleep(max(0.0, origin + done * frame_s - clock.monotonic()))
        except asyncio.CancelledError:
            raise
        except Exception:
            # The boundary of this task: log, end the playlist cleanly, keep what was written.
            log.exception("stage %s failed; ending its program", self.space_id)
            if not self.packager.is_ended:
                self._publish(self.packager.finish())

    def _tap(self, inputs: dict[Hashable, Samples]) -> None:
        assert self.tap is not None
        frames = {self._labels[key]: frame for key, frame in inputs.items() if key in self._labels}
        try:
            self.tap(frames, round(self._media_base_s + self.frames_mixed * FRAME_MS / 1000, 3))
        except Exception:
            self.tap_failures += 1
            now = self._clock.monotonic()
            if self._tap_logged_at is None or now - self._tap_logged_at >= DROP_LOG_INTERVAL_S:
                self._tap_logged_at = now
                log.exception("stage %s: its frame tap failed (%d times so far)", self.space_id, self.tap_failures)

    def _update_levels(self, levels: dict[Hashable, float]) -> None:
        self.levels = {key: max(level, self.levels.get(key, 0.0) * LEVEL_DECAY) for key, level in levels.items()}
        speaking = [
            (level, key) for key, level in self.levels.items() if level >= SPEAKING_LEVEL and key in self._labels
        ]
        if self.hold is not None:
            return  # backstage in the pre-show: nobody is on the air, nothing to note
        loudest = self._labels[max(speaking, key=lambda pair: pair[0])[1]] if speaking else None
        if loudest is None or loudest == self.speaker:
            self._candidate = (None, 0)
            return
        name, frames = self._candidate
        frames = frames + 1 if name == loudest else 1
        self._candidate = (loudest, frames)
        if frames >= SPEAKER_HOLD_FRAMES:
            self.speaker = loudest
            self._candidate = (None, 0)
            at_s = round(self._media_base_s + (self.frames_mixed - SPEAKER_HOLD_FRAMES) * FRAME_MS / 1000, 3)
            self.speaker_changes.append((at_s, loudest))
            self._enqueue(SpeakerChange(at_s, loudest))

    def _publish(self, made: list[Part | Segment]) -> None:
        self.parts_made += sum(1 for item in made if isinstance(item, Part))
        self.last_made_at = self._clock.monotonic()
        for item in made:
            # Parts too reach the disk as they are made: a crash loses at most the part in the making.
            self._enqueue(item)
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    def _enqueue(self, item: Part | Segment | SpeakerChange) -> None:
        dropped = self._writes.offer(item)
        self._writes_waiting.set()
        if dropped is None:
            return
        now = self._clock.monotonic()
        if self._drop_logged_at is None or now - self._drop_logged_at >= DROP_LOG_INTERVAL_S:
            self._drop_logged_at = now
            counts = ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in sorted(self._writes.dropped.items()))
            log.warning(
                "stage %s: the disk is behind (%d writes waiting, the limit); dropped so far: %s"
                " (the live stream is whole; the recording has gaps where segments were dropped)",
                self.space_id,
                len(self._writes),
                counts,
            )

    async def _write_loop(self) -> None:
        while True:
            item = self._writes.take()
            if item is None:
                if self._writes_closed:
                    return
                self._writes_waiting.clear()
                await self._writes_waiting.wait()
                continue
            try:
                if isinstance(item, Part):
                    await self._store.write_part(self.space_id, item)
                elif isinstance(item, Segment):
                    await self._store.write(self.space_id, item.record.name, item.data)
                    await self._store.append_record(self.space_id, item.record)
                    # Only now, with the segment durable, are its parts' files redundant.
                    await self._store.forget_parts(self.space_id, item.record.msn)
                elif isinstance(item, SpeakerChange):
                    line = json.dumps({"at_s": item.at_s, "member": item.member})
                    await self._store.append_line(self.space_id, SPEAKERS_NAME, line)
            except Exception:
                # Never stop recording over one failed write: log it and keep the rest coming.
                log.exception("stage %s could not store %s", self.space_id, item)
