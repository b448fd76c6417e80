"""libopus through ctypes, for what PyAV cannot do: decode in-band FEC (LBRR), conceal a lost frame
of a given length, and encode with OPUS_SET_PACKET_LOSS_PERC. Invariants:
- the sample rate is always 48 kHz and samples are int16; a decoded array holds every sample of
  its packet (2.5-120 ms) for each channel: shape (n,) in mono, (n, channels) otherwise;
- no bad payload crashes the process: libopus parses and bounds-checks every packet, and whatever
  it rejects (a negative return code) becomes `OpusError` with libopus's own text, leaving the
  decoder's state as it was, so the next good packet decodes as if the bad one never came;
- native state is freed exactly once, by `close()` or when the object is collected;
- no buffer is built per call: each codec reads and writes buffers allocated up front and the result
  is copied out with numpy (one allocation: the array or bytes returned).
Neither class is thread-safe; libopus runs with the GIL released.

Which library: the system's libopus (Debian: libopus0), else the copy bundled in PyAV's wheel
(`av.libs/`). Request numbers below come from opus_defines.h.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib.util
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Self

import numpy as np

from podium.errors import InvalidInput
from podium.media.mixer import FRAME_SAMPLES, SAMPLE_RATE, Samples

# opus_defines.h, checked against libopus 1.3.1's header (Debian libopus-dev 1.3.1-3).
OPUS_OK = 0
OPUS_BAD_ARG = -1
OPUS_INVALID_PACKET = -4
OPUS_APPLICATION_VOIP = 2048
OPUS_APPLICATION_AUDIO = 2049
OPUS_APPLICATION_RESTRICTED_LOWDELAY = 2051
OPUS_SET_BITRATE_REQUEST = 4002
OPUS_SET_COMPLEXITY_REQUEST = 4010
OPUS_SET_INBAND_FEC_REQUEST = 4012
OPUS_SET_PACKET_LOSS_PERC_REQUEST = 4014
OPUS_SET_DTX_REQUEST = 4016

Application = Literal["voip", "audio", "lowdelay"]
APPLICATIONS: dict[Application, int] = {
    "voip": OPUS_APPLICATION_VOIP,
    "audio": OPUS_APPLICATION_AUDIO,
    "lowdelay": OPUS_APPLICATION_RESTRICTED_LOWDELAY,
}

# One Opus packet holds at most 120 ms; PLC and FEC lengths must be multiples of 2.5 ms.
MAX_PACKET_SAMPLES = SAMPLE_RATE * 120 // 1000  # 5760
STEP_SAMPLES = SAMPLE_RATE * 25 // 10_000  # 120, 2.5 ms
# The frame sizes opus_encode accepts at 48 kHz: 2.5, 5, 10, 20, 40, 60, 80, 100 and 120 ms.
ENCODE_FRAME_SAMPLES = (120, 240, 480, 960, 1920, 2880, 3840, 4800, 5760)
# libopus's recommended ceiling for one packet (RFC 6716 allows 1275 bytes per frame, 6 frames max
# here at 20 ms; 4000 is what opus_demo and the documentation use).
MAX_PACKET_BYTES = 4000

# Speech for one speaker: 32 kb/s carries wideband voice with room for LBRR when FEC is on.
DEFAULT_BITRATE = 32_000
# Complexity 0-10 trades CPU for quality. Measured on this project's 2-core machine, voip at 32 kb/s
# with FEC, per 20 ms frame of speech: ~75 us at 0, ~150 at 3, ~190 at 5, ~360 at 10. 5 is the middle
# of the scale at about half the cost of 10; the speakers' own encoders (browsers) are not set here.
DEFAULT_COMPLEXITY = 5

SYSTEM_PACKAGE = "libopus0"  # Debian/Ubuntu; the soname is libopus.so.0


class OpusUnavailable(RuntimeError):
    """No libopus could be loaded: neither the system's nor the one in PyAV's wheel."""


class OpusError(InvalidInput, ValueError):
    """libopus refused a packet or an argument; `code` is its (negative) error code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def candidates() -> list[str]:
    """Where to look, best first: the system's libopus, then the copy in PyAV's wheel."""
    names: list[str] = []
    found = ctypes.util.find_library("opus")
    if found:
        names.append(found)
    names.append("libopus.so.0")
    spec = importlib.util.find_spec("av")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent.parent / "av.libs"
        names.extend(str(p) for p in sorted(bundled.glob("libopus-*.so*")))
    return list(dict.fromkeys(names))


def open_library(names: list[str]) -> ctypes.CDLL:
    """Load the first of `names` that dlopen accepts, with every prototype declared."""
    failures: list[str] = []
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            failures.append(f"{name}: {exc}")
            continue
        _declare(lib)
        return lib
    tried = "; ".join(failures) or "no candidate"
    raise OpusUnavailable(
        f"libopus is not installed: install the {SYSTEM_PACKAGE} package (apt-get install {SYSTEM_PACKAGE}) "
        f"or PyAV from its wheels, which bundle it (tried {tried})"
    )


@functools.cache
def _loaded() -> ctypes.CDLL:
    return open_library(candidates())


def _declare(lib: ctypes.CDLL) -> None:
    c_int, c_int32, c_void_p, c_char_p = ctypes.c_int, ctypes.c_int32, ctypes.c_void_p, ctypes.c_char_p
    signatures: dict[str, tuple[list[type], type | None]] = {
        "opus_strerror": ([c_int], c_char_p),
        "opus_decoder_create": ([c_int32, c_int, ctypes.POINTER(c_int)], c_void_p),
        "opus_decoder_destroy": ([c_void_p], None),
        # (st, data or NULL, len, pcm, frame_size, decode_fec) -> samples per channel or error
        "opus_decode": ([c_void_p, c_char_p, c_int32, c_void_p, c_int, c_int], c_int),
        "opus_packet_get_nb_samples": ([c_char_p, c_int32, c_int32], c_int),
        "opus_encoder_create": ([c_int32, c_int, c_int, ctypes.POINTER(c_int)], c_void_p),
        "opus_encoder_destroy": ([c_void_p], None),
        # (st, pcm, frame_size, data, max_data_bytes) -> bytes written or error
        "opus_encode": ([c_void_p, c_void_p, c_int, c_void_p, c_int32], c_int32),
        # Variadic: only the fixed part is declared; each call passes its extra argument as an explicit
        # ctypes object (c_int for a SET, a pointer to c_int for a GET), as the C ABI expects.
        "opus_encoder_ctl": ([c_void_p, c_int], c_int),
    }
    for name, (argtypes, restype) in signatures.items():
        function = getattr(lib, name)
        function.argtypes = argtypes
        function.restype = restype


def _error(lib: ctypes.CDLL, code: int, doing: str) -> OpusError:
    text = lib.opus_strerror(code).decode("ascii", "replace")
    return OpusError(f"libopus {doing}: {text} ({code})", code)


def _check_length(frame_samples: int) -> None:
    if not (STEP_SAMPLES <= frame_samples <= MAX_PACKET_SAMPLES and frame_samples % STEP_SAMPLES == 0):
        raise ValueError(
            f"a lost frame is a multiple of 2.5 ms ({STEP_SAMPLES} samples) up to 120 ms, not {frame_samples}"
        )


class _NativeState:
    """libopus state owned by a Python object: freed exactly once, by `close()` or when collected."""

    _what = "codec"

    def __init__(self, state: int, destroy: Callable[[int], None]) -> None:
        self._state: int | None = state
        self._finalizer = weakref.finalize(self, destroy, state)

    def close(self) -> None:
        """Free the native state now (idempotent); the object is unusable afterwards."""
        self._finalizer()
        self._state = None

    @property
    def closed(self) -> bool:
        return self._state is None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _live(self) -> int:
        if self._state is None:
            raise ValueError(f"this Opus {self._what} is closed")
        return self._state


class Decoder(_NativeState):
    """One Opus stream to 48 kHz int16 samples; libopus folds a stereo stream to `channels_out=1`.

    A lost packet is rebuilt by `recover(next_payload)` when the next packet has arrived (in-band FEC),
    else by `conceal()`; either must be called with the exact length that is missing, in order, before
    the next packet is decoded, so the decoder's state follows the stream."""

    _what = "decoder"

    def __init__(self, channels_out: int = 1) -> None:
        if channels_out not in (1, 2):
            raise ValueError(f"Opus decodes to 1 or 2 channels, not {channels_out}")
        self._lib = _loaded()
        error = ctypes.c_int(OPUS_OK)
        state = self._lib.opus_decoder_create(SAMPLE_RATE, channels_out, ctypes.byref(error))
        if error.value != OPUS_OK or not state:
            raise _error(self._lib, error.value, "could not create a decoder")
        super().__init__(state, self._lib.opus_decoder_destroy)
        self.channels = channels_out
        # 120 ms for every channel: room for any packet. libopus writes, numpy copies out.
        self._pcm = np.zeros(MAX_PACKET_SAMPLES * channels_out, dtype=np.int16)
        self._pcm_address = self._pcm.ctypes.data

    def decode(self, payload: bytes) -> Samples:
        """Every sample of one packet (2.5-120 ms). Raises `OpusError` for what is not an Opus packet,
        an empty payload included (a lost packet is `conceal()`, never an empty decode)."""
        state = self._live()
        data = bytes(payload)
        if not data:
            raise OpusError("libopus decode: an empty payload is not an Opus packet", OPUS_BAD_ARG)
        samples = self._lib.opus_packet_get_nb_samples(data, len(data), SAMPLE_RATE)
        if samples <= 0:  # 0: a code-3 packet that declares no frame, which is invalid too
            raise _error(self._lib, samples or OPUS_INVALID_PACKET, "could not read the packet")
        return self._run(state, data, samples, 0, "could not decode the packet")

    def recover(self, next_payload: bytes, frame_samples: int = FRAME_SAMPLES) -> Samples:
        """The `frame_samples` lost just before `next_payload`, from the FEC (LBRR) data it carries
        (decode `next_payload` itself afterwards). A packet without FEC gives `conceal()`'s audio."""
        _check_length(frame_samples)
        state = self._live()
        data = bytes(next_payload)
        if not data:
            raise OpusError("libopus recover: an empty payload is not an Opus packet", OPUS_BAD_ARG)
        return self._run(state, data, frame_samples, 1, "could not recover from the next packet")

    def conceal(self, frame_samples: int = FRAME_SAMPLES) -> Samples:
        """Packet-loss concealment for `frame_samples` lost: speech extrapolated from what came before,
        fading towards silence over consecutive calls."""
        _check_length(frame_samples)
        return self._run(self._live(), None, frame_samples, 0, "could not conceal")

    def _run(self, state: int, data: bytes | None, frame_samples: int, fec: int, doing: str) -> Samples:
        # `data` None (NULL) asks for concealment; `frame_samples` bounds what libopus may write.
        length = len(data) if data is not None else 0
        count = self._lib.opus_decode(state, data, length, self._pcm_address, frame_samples, fec)
        if count < 0:
            raise _error(self._lib, count, doing)
        out = self._pcm[: count * self.channels].copy()
        return out if self.channels == 1 else out.reshape(count, self.channels)


class Encoder(_NativeState):
    """48 kHz mono int16 frames to Opus packets, one packet per `encode()`.

    In-band FEC exists only in SILK and hybrid packets ("voip" or "audio" at speech bitrates), never
    in "lowdelay" (CELT) ones, and libopus adds it only when told to expect loss (`packet_loss_perc`)."""

    _what = "encoder"

    def __init__(
        self,
        application: Application = "voip",
        bitrate: int = DEFAULT_BITRATE,
        complexity: int = DEFAULT_COMPLEXITY,
        inband_fec: bool = False,
        packet_loss_perc: int = 0,
        dtx: bool = False,
    ) -> None:
        if application not in APPLICATIONS:
            raise ValueError(f"an Opus application is one of {sorted(APPLICATIONS)}, not {application!r}")
        self._lib = _loaded()
        error = ctypes.c_int(OPUS_OK)
        state = self._lib.opus_encoder_create(SAMPLE_RATE, 1, APPLICATIONS[application], ctypes.byref(error))
        if error.value != OPUS_OK or not state:
            raise _error(self._lib, error.value, "could not create an encoder")
        super().__init__(state, self._lib.opus_encoder_destroy)
        self.application = application
        # Input copied into a buffer of its own (any layout the caller has), output written to another.
        self._pcm = np.zeros(MAX_PACKET_SAMPLES, dtype=np.int16)
        self._pcm_address = self._pcm.ctypes.data
        self._out = np.zeros(MAX_PACKET_BYTES, dtype=np.uint8)
        self._out_address = self._out.ctypes.data
        self.set_bitrate(bitrate)
        self._set(OPUS_SET_COMPLEXITY_REQUEST, complexity, "complexity")
        self.set_inband_fec(inband_fec)
        self.set_packet_loss_perc(packet_loss_perc)
        self._set(OPUS_SET_DTX_REQUEST, int(dtx), "DTX")

    def encode(self, samples: Samples) -> bytes:
        """One packet for one frame: 1-D int16, 2.5 to 120 ms (960 samples is the stage's 20 ms)."""
        state = self._live()
        if samples.ndim != 1 or samples.dtype != np.int16 or samples.shape[0] not in ENCODE_FRAME_SAMPLES:
            raise ValueError(
                f"an Opus frame is 1-D int16 of {ENCODE_FRAME_SAMPLES} samples, not {samples.shape} {samples.dtype}"
            )
        frame_samples = samples.shape[0]
        self._pcm[:frame_samples] = samples
        count = self._lib.opus_encode(state, self._pcm_address, frame_samples, self._out_address, MAX_PACKET_BYTES)
        if count < 0:
            raise _error(self._lib, count, "could not encode")
        return self._out[:count].tobytes()

    def set_bitrate(self, bitrate: int) -> None:
        """Target in bits per second (libopus clamps it to 500-512000)."""
        self._set(OPUS_SET_BITRATE_REQUEST, bitrate, "bitrate")

    def set_inband_fec(self, enabled: bool) -> None:
        self._set(OPUS_SET_INBAND_FEC_REQUEST, int(enabled), "in-band FEC")

    def set_packet_loss_perc(self, percent: int) -> None:
        """Expected loss, 0-100 %: more makes the FEC stronger and the primary coding leaner."""
        self._set(OPUS_SET_PACKET_LOSS_PERC_REQUEST, percent, "packet loss percentage")

    def _set(self, request: int, value: int, what: str) -> None:
        code = self._lib.opus_encoder_ctl(self._live(), request, ctypes.c_int(int(value)))
        if code != OPUS_OK:
            raise _error(self._lib, code, f"refused {what} {value}")
