"""Cutting one speaker's stage audio into utterances for a speech engine: sans-IO.

The stage hands a speaker's 20 ms frames (48 kHz mono int16, each with its start `at_s` on the
recording's time axis); the cutter keeps only speech and says what to send to an engine:
`Begin`, then `Audio` (48 kHz, in chunks of `CHUNK_FRAMES` frames), then `End`. `Downsampler` takes
the audio to the engines' 16 kHz; it runs in the worker process, not on the stage's loop (a chunk
costs ~0.2 ms of filtering: ten times what the cutter costs for the same frames).

Invariants:
- Silence between utterances is never sent: an utterance begins only after `START_FRAMES` loud frames
  in a row, with up to `PREROLL_FRAMES` frames before them (the soft start of a word); it ends after
  `END_QUIET_FRAMES` quiet frames, keeping `TAIL_FRAMES` of them (engines like a little silence after).
- An utterance lasts at most `HARD_CUT_FRAMES`: past `SOFT_CUT_FRAMES` it ends at the first quiet
  frame, and at the hard limit it ends wherever it is (the next begins with the following frame).
- Between `Begin` and `End` the audio is contiguous: exactly the frames from `start_s` to the end of
  the last frame sent (so a sample count gives the time within the utterance).
- `start_s` is the first frame's `at_s`; `end_s` is the end of the last loud frame.
- A frame costs a few microseconds (one RMS); a chunk one concatenation.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from podium.captions.engine import Pcm

INPUT_RATE = 48_000
OUTPUT_RATE = 16_000
FACTOR = INPUT_RATE // OUTPUT_RATE
FRAME_SAMPLES = 960  # 20 ms at 48 kHz
FRAME_S = FRAME_SAMPLES / INPUT_RATE

START_FRAMES = 3  # 60 ms loud in a row opens an utterance
PREROLL_FRAMES = 10  # 200 ms before it
END_QUIET_FRAMES = 30  # 600 ms of quiet closes it
TAIL_FRAMES = 10  # of which 200 ms are sent
SOFT_CUT_FRAMES = 250  # 5 s: from here, cut at the first quiet frame
HARD_CUT_FRAMES = 350  # 7 s: cut anyway
CHUNK_FRAMES = 8  # 160 ms of audio per `Audio`

# A frame is loud when its RMS is above both a fixed floor (dBFS) and the speaker's own noise floor
# plus a margin. The noise floor is the quietest frame of the last few seconds (minimum statistics:
# speech has quiet frames between sounds, steady noise has nothing quieter than itself).
SPEECH_FLOOR_DBFS = -48.0
NOISE_MARGIN_DB = 12.0
NOISE_BLOCK_FRAMES = 10
NOISE_BLOCKS = 15  # the floor is the minimum over the last 3 s
NOISE_PRIOR_DBFS = -60.0  # the floor until a first block is measured (a speaker may talk from the first frame)
_FULL_SCALE = 32768.0


@dataclass(frozen=True)
class Begin:
    utterance: str
    start_s: float


@dataclass(frozen=True)
class Audio:
    utterance: str
    samples: npt.NDArray[np.int16]  # 48 kHz mono


@dataclass(frozen=True)
class End:
    utterance: str
    end_s: float


Event = Begin | Audio | End


def lowpass_taps(count: int = 63) -> npt.NDArray[np.float32]:
    """A windowed-sinc low-pass for 48 -> 16 kHz: passes speech up to ~7 kHz, stops above 8 kHz."""
    cutoff = 7_400 / INPUT_RATE  # cycles per sample; the stop band begins at 8 kHz (the new Nyquist)
    n = np.arange(count) - (count - 1) / 2
    taps = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(count, 8.0)
    normalised: npt.NDArray[np.float32] = (taps / taps.sum()).astype(np.float32)
    return normalised


_TAPS = lowpass_taps()


class Downsampler:
    """48 kHz to 16 kHz, streaming: the filter's history carries over between chunks, so the output
    of chunks is the output of their concatenation (each input sample is used once)."""

    def __init__(self) -> None:
        self._taps = _TAPS[::-1].copy()  # correlation with the reversed taps is convolution
        self._history = np.zeros(len(_TAPS) - 1, dtype=np.float32)
        self._phase = 0  # input samples to skip before the next kept one

    def reset(self) -> None:
        self._history[:] = 0
        self._phase = 0

    def __call__(self, samples: npt.NDArray[np.int16]) -> Pcm:
        """48 kHz in, 16 kHz out (about a third as many samples; exactly, over a whole stream)."""
        x = np.concatenate([self._history, samples.astype(np.float32)])
        history = len(self._history)
        # Output k (in this chunk) sits at input index history + phase + FACTOR * k.
        first = history + self._phase
        count = max(0, (len(x) - first + FACTOR - 1) // FACTOR)
        windows = np.lib.stride_tricks.sliding_window_view(x, len(self._taps))
        # The window ending at index i starts at i - (taps - 1); every FACTOR-th one, as a view (no copy).
        start = first - (len(self._taps) - 1)
        y = windows[start : start + FACTOR * count : FACTOR] @ self._taps
        self._phase = (first + FACTOR * count) - len(x)
        self._history = x[len(x) - history :].copy()
        return np.clip(np.rint(y), -32768, 32767).astype(np.int16)


@dataclass
class UtteranceCutter:
    """One speaker's frames in, engine events out. `new_id` names each utterance from its start_s."""

    new_id: Callable[[float], str]
    _state: str = "quiet"  # "quiet" | "talking"
    _preroll: deque[tuple[float, npt.NDArray[np.int16]]] = field(default_factory=lambda: deque(maxlen=PREROLL_FRAMES))
    _loud_run: int = 0
    _noise_blocks: deque[float] = field(default_factory=lambda: deque(maxlen=NOISE_BLOCKS))
    _block_min: float = 0.0
    _block_frames: int = 0
    _utterance: str = ""
    _frames: int = 0  # frames in the current utterance (sent or pending)
    _chunk: list[npt.NDArray[np.int16]] = field(default_factory=list)
    _gap: list[npt.NDArray[np.int16]] = field(default_factory=list)  # quiet frames since the last loud one
    _last_loud_end_s: float = 0.0

    @property
    def talking(self) -> bool:
        return self._state == "talking"

    def frame(self, at_s: float, samples: npt.NDArray[np.int16]) -> list[Event]:
        """One 20 ms frame (kept as a copy: the caller may reuse its buffer)."""
        samples = samples.copy()
        loud = self._is_loud(samples)
        if self._state == "quiet":
            return self._quiet_frame(at_s, samples, loud)
        return self._talking_frame(at_s, samples, loud)

    def close(self) -> list[Event]:
        """The speaker left or was muted: end the open utterance (if any) now."""
        if self._state != "talking":
            self._preroll.clear()
            self._loud_run = 0
            return []
        return self._end(tail=min(len(self._gap), TAIL_FRAMES))

    # -- the states ----------------------------------------------------------------------------

    def _quiet_frame(self, at_s: float, samples: npt.NDArray[np.int16], loud: bool) -> list[Event]:
        self._preroll.append((at_s, samples))
        self._loud_run = self._loud_run + 1 if loud else 0
        if self._loud_run < START_FRAMES:
            return []
        # Speech: the utterance starts with the pre-roll (which holds the loud run itself).
        frames = list(self._preroll)
        self._preroll.clear()
        self._loud_run = 0
        self._state = "talking"
        self._utterance = self.new_id(frames[0][0])
        self._frames = 0
        self._gap = []
        self._chunk = []
        events: list[Event] = [Begin(self._utterance, frames[0][0])]
        for _, frame in frames:
            events.extend(self._send(frame))
        self._last_loud_end_s = at_s + FRAME_S
        return events

    def _talking_frame(self, at_s: float, samples: npt.NDArray[np.int16], loud: bool) -> list[Event]:
        events: list[Event] = []
        if loud:
            for quiet in self._gap:
                events.extend(self._send(quiet))
            self._gap = []
            events.extend(self._send(samples))
            self._last_loud_end_s = at_s + FRAME_S
            if self._frames >= HARD_CUT_FRAMES:
                # Cut mid-speech: the next utterance takes over with the next frame, no pre-roll
                # (this frame is already in the one that ends).
                events.extend(self._end(tail=0))
                self._start_at_next_frame()
            return events
        self._gap.append(samples)
        if self._frames + len(self._gap) >= SOFT_CUT_FRAMES or len(self._gap) >= END_QUIET_FRAMES:
            return self._end(tail=min(len(self._gap), TAIL_FRAMES))
        return events

    def _start_at_next_frame(self) -> None:
        """After a hard cut the speaker is still talking: the next frame begins an utterance."""
        self._state = "quiet"
        self._loud_run = START_FRAMES - 1
        self._preroll.clear()

    # -- helpers ------------------------------------------------------------------------------

    def _send(self, samples: npt.NDArray[np.int16]) -> list[Event]:
        self._frames += 1
        self._chunk.append(samples)
        if len(self._chunk) < CHUNK_FRAMES:
            return []
        return self._flush()

    def _flush(self) -> list[Event]:
        if not self._chunk:
            return []
        samples = np.concatenate(self._chunk)
        self._chunk = []
        return [Audio(self._utterance, samples)]

    def _end(self, tail: int) -> list[Event]:
        events: list[Event] = []
        for quiet in self._gap[:tail]:
            events.extend(self._send(quiet))
        events.extend(self._flush())
        events.append(End(self._utterance, self._last_loud_end_s))
        self._gap = []
        self._state = "quiet"
        self._loud_run = 0
        self._preroll.clear()
        return events

    def _is_loud(self, samples: npt.NDArray[np.int16]) -> bool:
        as_float = samples.astype(np.float32)
        power = float(np.dot(as_float, as_float)) / max(1, len(samples))
        dbfs = 10.0 * float(np.log10(power / (_FULL_SCALE * _FULL_SCALE) + 1e-12))
        self._block_min = dbfs if self._block_frames == 0 else min(self._block_min, dbfs)
        self._block_frames += 1
        noise = min(self._block_min, min(self._noise_blocks, default=NOISE_PRIOR_DBFS))
        if self._block_frames == NOISE_BLOCK_FRAMES:
            self._noise_blocks.append(self._block_min)
            self._block_frames = 0
        return dbfs > SPEECH_FLOOR_DBFS and dbfs > noise + NOISE_MARGIN_DB
