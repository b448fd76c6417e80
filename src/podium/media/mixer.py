"""The stage mixer: N speakers in, one program mix and one mix-minus per speaker out, 20 ms a step.

Sans-IO: callers push decoded mono int16 samples as they arrive and call `mix()` once per frame
on the stage's clock. Invariants:
- every `mix()` returns exactly `frame_samples` samples per output, whatever the inputs did;
- an input with nothing buffered contributes silence (the stream never stalls for a speaker);
- an input never holds more than `max_buffer_ms` of audio: a speaker whose clock runs fast is
  trimmed from the oldest end, so latency cannot grow without bound;
- a backlog does not last: an input that has held more than `high_water_ms` (by default: more
  than its steady state after priming) for `settle_frames` frames in a row (a burst of late
  packets, all queued) drops its oldest audio down to the prime level, once, so a network
  hiccup costs one short skip instead of lasting delay;
- a *paced* input (one whose caller pushes exactly one frame before each `mix()`, as a speaker's
  jitter buffer does) is mixed as pushed: no priming and no backlog rule, which would only add
  delay on top of the jitter buffer's own.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 48_000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000  # 960

Samples = npt.NDArray[np.int16]

_INT16_MIN = np.iinfo(np.int16).min
_INT16_MAX = np.iinfo(np.int16).max


@dataclass
class _Input:
    buffer: Samples = field(default_factory=lambda: np.zeros(0, dtype=np.int16))
    # An input starts (and restarts after running dry) only once `prime_samples` are buffered,
    # so network jitter turns into a short delay instead of a stutter of half-empty frames.
    primed: bool = False
    # Frames in a row this input has held more than the high-water mark.
    backlogged_frames: int = 0
    # A muted input keeps being read (so unmuting is not late) but adds nothing to any mix.
    muted: bool = False
    # Fed one frame per mix by its caller (see the module docstring).
    paced: bool = False


@dataclass(frozen=True)
class MixResult:
    program: Samples
    # Everyone but this input: what the speaker hears back.
    minus: dict[Hashable, Samples]
    # Peak level of each input in this frame, 0.0 (silent) to 1.0 (full scale).
    levels: dict[Hashable, float]
    # Each unmuted input's own frame, as it went into the mix (for the captions' tap).
    inputs: dict[Hashable, Samples] = field(default_factory=dict)


class Mixer:
    def __init__(
        self,
        frame_samples: int = FRAME_SAMPLES,
        prime_ms: int = 40,
        max_buffer_ms: int = 200,
        high_water_ms: int = 40,
        settle_frames: int = 25,
    ) -> None:
        self.frame_samples = frame_samples
        self.prime_samples = SAMPLE_RATE * prime_ms // 1000
        self.max_buffer_samples = SAMPLE_RATE * max_buffer_ms // 1000
        self.high_water_samples = SAMPLE_RATE * high_water_ms // 1000
        self.settle_frames = settle_frames
        self._inputs: dict[Hashable, _Input] = {}

    @property
    def inputs(self) -> list[Hashable]:
        return list(self._inputs)

    def add_input(self, key: Hashable, *, paced: bool = False) -> None:
        self._inputs.setdefault(key, _Input(paced=paced))

    def remove_input(self, key: Hashable) -> None:
        """The input leaves the very next frame: nothing it buffered is mixed afterwards."""
        self._inputs.pop(key, None)

    def set_muted(self, key: Hashable, muted: bool) -> None:
        """Takes effect from the next frame."""
        state = self._inputs.get(key)
        if state is not None:
            state.muted = muted

    def set_paced(self, key: Hashable, paced: bool) -> None:
        """Takes effect from the next frame; an input that stops being paced primes again."""
        state = self._inputs.get(key)
        if state is not None:
            state.paced, state.primed = paced, False

    def push(self, key: Hashable, samples: Samples) -> None:
        state = self._inputs.get(key)
        if state is None:
            return  # removed while its audio was in flight: dropped, never mixed
        if samples.dtype != np.int16 or samples.ndim != 1:
            raise ValueError("push() takes one-dimensional int16 samples")
        buffer = np.concatenate((state.buffer, samples))
        if len(buffer) > self.max_buffer_samples:
            buffer = buffer[len(buffer) - self.max_buffer_samples :]
        state.buffer = buffer

    def buffered_samples(self, key: Hashable) -> int:
        state = self._inputs.get(key)
        return 0 if state is None else len(state.buffer)

    def mix(self) -> MixResult:
        n = self.frame_samples
        frames: dict[Hashable, npt.NDArray[np.int32]] = {}
        inputs: dict[Hashable, Samples] = {}
        total = np.zeros(n, dtype=np.int32)
        for key, state in self._inputs.items():
            frame = self._take(state, n)
            if state.muted:
                frame[:] = 0
            else:
                inputs[key] = frame.astype(np.int16)  # taken from int16 samples: exact
            frames[key] = frame
            total += frame
        program = _clip(total)
        minus = {key: _clip(total - frame) for key, frame in frames.items()}
        levels = {key: float(np.abs(frame).max(initial=0)) / 32768.0 for key, frame in frames.items()}
        return MixResult(program=program, minus=minus, levels=levels, inputs=inputs)

    def _take(self, state: _Input, n: int) -> npt.NDArray[np.int32]:
        if state.paced:
            taken = state.buffer[:n].astype(np.int32)
            state.buffer = state.buffer[n:]
            if len(taken) < n:
                taken = np.concatenate((taken, np.zeros(n - len(taken), dtype=np.int32)))
            return taken
        if not state.primed:
            if len(state.buffer) < max(self.prime_samples, n):
                return np.zeros(n, dtype=np.int32)
            state.primed = True
        taken = state.buffer[:n].astype(np.int32)
        state.buffer = state.buffer[n:]
        if len(state.buffer) > self.high_water_samples:
            state.backlogged_frames += 1
            if state.backlogged_frames >= self.settle_frames:
                keep = max(self.prime_samples - n, 0)
                state.buffer = state.buffer[len(state.buffer) - keep :] if keep else state.buffer[:0]
                state.backlogged_frames = 0
        else:
            state.backlogged_frames = 0
        if len(taken) < n:
            # Ran dry mid-frame: pad with silence and wait to be primed again.
            state.primed = False
            taken = np.concatenate((taken, np.zeros(n - len(taken), dtype=np.int32)))
        return taken


def _clip(values: npt.NDArray[np.int32]) -> Samples:
    return np.clip(values, _INT16_MIN, _INT16_MAX).astype(np.int16)


def downmix(interleaved: npt.NDArray[np.int16], channels: int) -> Samples:
    """Interleaved int16 (as aiortc's Opus decoder gives) to mono int16, averaging channels."""
    flat = interleaved.reshape(-1)
    if channels == 1:
        mono: Samples = flat.astype(np.int16, copy=False)
        return mono
    frames = flat[: len(flat) - len(flat) % channels].reshape(-1, channels).astype(np.int32)
    averaged: Samples = (frames.sum(axis=1) // channels).astype(np.int16)
    return averaged
