"""Speech for tests and benchmarks: synthesise it, hear it back from HLS, and score what was heard.

Every array here is mono int16 at 48 kHz (`SAMPLE_RATE`), the stage's own format; lengths and
positions are in samples unless a name says `_ms` or `_s`. A *lag* is how many samples `heard` runs
behind `reference`: `heard[i + lag]` is where `reference[i]` was heard (negative: heard early).
"""

from __future__ import annotations

import io
import itertools
import shutil
import subprocess
from collections.abc import Collection, Iterable

import av
import numpy as np
import numpy.typing as npt

from podium.media.mixer import FRAME_SAMPLES, Samples

SAMPLE_RATE = 48_000
PESQ_RATE = 16_000  # ITU-T P.862.2 (wide band) is defined at 16 kHz
FULL_SCALE = 32768.0

# About 10 s at espeak-ng's 150 words a minute, in three sentences with a pause of about 0.4 s
# between them: voiced vowels, fricatives and stops, so a lost frame can land on any kind of sound.
SENTENCES = (
    "Every word should arrive. "
    "The speaker talks on a busy network, and a few packets are lost. "
    "Listeners should still hear each sentence, without gaps."
)

# Energy frames for finding speech, and windows for finding holes in it (both in samples).
_SPAN_FRAME = SAMPLE_RATE // 100  # 10 ms
_HOLE_WINDOW_MS = 2.5


def speak(text: str, *, voice: str = "en", words_per_minute: int = 150) -> Samples:
    """`text` spoken by espeak-ng, as 48 kHz mono int16 padded with zeros to whole 20 ms frames.
    Deterministic. Raises RuntimeError when espeak-ng is not installed."""
    program = _program("espeak-ng")
    # The text goes through stdin, so a text starting with "-" is never read as an option.
    result = subprocess.run(
        [program, "--stdin", "-v", voice, "-s", str(words_per_minute), "--stdout"],
        input=text.encode(),
        capture_output=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0 or not result.stdout:
        raise RuntimeError(f"espeak-ng failed ({result.returncode}): {result.stderr.decode(errors='replace')}")
    # espeak-ng writes 22.05 kHz WAV.
    with av.open(io.BytesIO(result.stdout), mode="r") as container:
        samples = _resampled(container.decode(audio=0), SAMPLE_RATE)
    padding = -len(samples) % FRAME_SAMPLES
    return np.concatenate([samples, np.zeros(padding, dtype=np.int16)])


def _resampled(frames: Iterable[av.AudioFrame], rate: int) -> Samples:
    """`frames` as mono int16 at `rate` Hz, with FFmpeg's resampler (the same one the stage uses)."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    # None last: the resampler holds its last few samples until flushed.
    chunks = [out.to_ndarray().reshape(-1) for frame in [*frames, None] for out in resampler.resample(frame)]
    return np.concatenate(chunks).astype(np.int16, copy=False) if chunks else np.zeros(0, dtype=np.int16)


def resample(samples: Samples, rate: int) -> Samples:
    """48 kHz mono int16 to `rate` Hz."""
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = SAMPLE_RATE
    return _resampled([frame], rate)


def _best_lag(reference: npt.NDArray[np.float64], heard: npt.NDArray[np.float64], low: int, high: int) -> int:
    """The lag in [low, high] that maximises the cross-correlation of `heard` with `reference`."""
    size = 1 << int(len(reference) + len(heard)).bit_length()
    # corr[k] = sum_i heard[i + k] * reference[i]; negative lags wrap to the end of the array.
    corr = np.fft.irfft(np.fft.rfft(heard, size) * np.conj(np.fft.rfft(reference, size)), size)
    low, high = max(low, -(len(reference) - 1)), min(high, len(heard) - 1)
    if low > high:
        raise ValueError("the arrays do not overlap at any lag asked for")
    lags = np.arange(low, high + 1)
    return int(lags[int(np.argmax(corr[lags % size]))])


def align(reference: Samples, heard: Samples, max_lag_s: float = 10.0) -> int:
    """The delay of `heard` behind `reference`, in samples (FFT cross-correlation, within ±max_lag_s).

    The correlation peak does not move with gain, so a quieter or louder copy aligns the same; a
    copy with holes or a different codec aligns on what the two still share."""
    max_lag = round(max_lag_s * SAMPLE_RATE)
    return _best_lag(_centred(reference), _centred(heard), -max_lag, max_lag)


def align_part(reference: Samples, heard: Samples, start: int, stop: int, *, lag: int, search_ms: float = 100) -> int:
    """The delay of `reference[start:stop]` alone in `heard`, searched within `lag` ± `search_ms`.

    Where the stage added or removed audio, a single `align()` is right on one side only; aligning
    the first and the last words apart measures how much the speech was stretched."""
    part = np.zeros(len(reference), dtype=np.float64)
    part[start:stop] = _centred(reference[start:stop])
    search = round(search_ms * SAMPLE_RATE / 1000)
    return _best_lag(part, _centred(heard), lag - search, lag + search)


def aligned(heard: Samples, lag: int, length: int) -> Samples:
    """`heard` moved back by `lag` and cut or zero-padded to `length`: index i is reference index i."""
    out = np.zeros(length, dtype=np.int16)
    src_start = max(lag, 0)
    dst_start = max(-lag, 0)
    count = max(0, min(length - dst_start, len(heard) - src_start))
    out[dst_start : dst_start + count] = heard[src_start : src_start + count]
    return out


def snr_db(reference: Samples, heard: Samples) -> float:
    """Signal to noise ratio of `heard` against `reference` (same length, already aligned), in dB."""
    if reference.shape != heard.shape:
        raise ValueError(f"compare arrays of one shape, not {reference.shape} and {heard.shape}")
    signal = np.sum(reference.astype(np.float64) ** 2)
    noise = np.sum((reference.astype(np.float64) - heard.astype(np.float64)) ** 2)
    if noise == 0:
        return float("inf")
    return float(10 * np.log10(max(signal, 1e-12) / noise))


def pesq_wb(reference: Samples, heard: Samples) -> float:
    """PESQ wide band (ITU-T P.862.2, MOS-LQO 1.0-4.64) of `heard` against `reference`.

    Both are aligned and cut to the span they share, then resampled to 16 kHz as P.862.2 requires."""
    from pesq import pesq  # imported here: only the scoring needs it

    lag = align(reference, heard)
    ref = reference[max(-lag, 0) :]
    deg = heard[max(lag, 0) :]
    length = min(len(ref), len(deg))
    score = pesq(PESQ_RATE, resample(ref[:length], PESQ_RATE), resample(deg[:length], PESQ_RATE), "wb")
    return float(score)


def _window_rms(samples: Samples, window: int) -> npt.NDArray[np.float64]:
    whole = len(samples) // window * window
    frames = samples[:whole].astype(np.float64).reshape(-1, window)
    return np.asarray(np.sqrt(np.mean(frames**2, axis=1)), dtype=np.float64)


def speech_spans(reference: Samples, threshold_db: float = -40, min_gap_ms: float = 200) -> list[tuple[int, int]]:
    """Sample ranges [start, stop) where `reference` is speech: 10 ms frames whose RMS is within
    `threshold_db` of the loudest frame's, joined across pauses shorter than `min_gap_ms` (so a span
    is a phrase, and may hold short quiet stretches: stop closures, breaths between words)."""
    rms = _window_rms(reference, _SPAN_FRAME)
    if len(rms) == 0 or rms.max() == 0:
        return []
    loud = rms > rms.max() * 10 ** (threshold_db / 20)
    spans: list[tuple[int, int]] = []
    min_gap = min_gap_ms * SAMPLE_RATE / 1000
    for index in np.flatnonzero(loud):
        start, stop = int(index) * _SPAN_FRAME, (int(index) + 1) * _SPAN_FRAME
        if spans and start - spans[-1][1] < min_gap:
            spans[-1] = (spans[-1][0], stop)
        else:
            spans.append((start, stop))
    return spans


def silences_inside(
    heard_aligned: Samples,
    spans: list[tuple[int, int]],
    min_ms: float = 40,
    threshold_db: float = -50,
    *,
    reference: Samples | None = None,
    reference_margin_db: float = 10,
) -> list[tuple[int, float]]:
    """Holes in what was heard inside speech: (start sample, missing ms) for each longer than `min_ms`.

    `heard_aligned` is indexed like the reference (see `aligned`); past its end counts as silent.
    A 2.5 ms window is *silent* below `threshold_db` dBFS: a lost frame filled with zeros or faded
    concealment comes through Opus and AAC as (nearly) digital silence, even quiet speech stays above.
    A hole is a run of silent windows inside one span, from its first to its last window where
    `reference` is audible (`reference_margin_db` above the floor), so the speech's own pauses never
    count. Without `reference`, every window of a span counts."""
    window = round(_HOLE_WINDOW_MS * SAMPLE_RATE / 1000)
    floor = FULL_SCALE * 10 ** (threshold_db / 20)
    audible_floor = floor * 10 ** (reference_margin_db / 20)
    holes: list[tuple[int, float]] = []
    for span_start, span_stop in spans:
        stop = span_start + (span_stop - span_start) // window * window
        heard = np.zeros(stop - span_start, dtype=np.int16)
        available = heard_aligned[span_start:stop]
        heard[: len(available)] = available
        silent = _window_rms(heard, window) < floor
        if reference is not None:
            audible = _window_rms(reference[span_start:stop], window) >= audible_floor
        else:
            audible = np.ones(len(silent), dtype=bool)
        run_start = 0
        for is_silent, run in itertools.groupby(silent.tolist()):
            run_stop = run_start + len(list(run))
            # From the first to the last window where the reference is audible: the speech's own
            # silence at either end of the run is no hole, inside it the hole spans it.
            if is_silent:
                where = np.flatnonzero(audible[run_start:run_stop])
                if len(where) and (missing_ms := float(where[-1] - where[0] + 1) * _HOLE_WINDOW_MS) > min_ms:
                    holes.append((span_start + (run_start + int(where[0])) * window, missing_ms))
            run_start = run_stop
    return holes


def speech_length_change(reference: Samples, heard: Samples, *, part_ms: float = 1000) -> int:
    """How many samples longer the speech lasts in `heard` than in `reference` (negative: shorter).

    The first and the last `part_ms` of speech are aligned apart; the difference of their lags is
    what the stage added (waiting, silence put in) or removed (skipped audio) between them, exact to
    the sample whatever the codecs did to the waveform."""
    spans = speech_spans(reference)
    if not spans:
        raise ValueError("the reference holds no speech")
    first, last = spans[0][0], spans[-1][1]
    part = round(part_ms * SAMPLE_RATE / 1000)
    lag = align(reference, heard)
    # A generous search: the whole point is that the two ends may have moved apart.
    lag_first = align_part(reference, heard, first, min(first + part, last), lag=lag, search_ms=1000)
    lag_last = align_part(reference, heard, max(last - part, first), last, lag=lag, search_ms=1000)
    return lag_last - lag_first


def opus_round_trip(samples: Samples, lost: Collection[int], *, expected_loss_perc: int, fec: bool = True) -> Samples:
    """`samples` through a `SampleTrack(fec=True, ...)`'s Opus and `decode_with_losses`: the codec's
    own limit on those losses; the result lags `samples` by the encoder's look-ahead (312 samples)."""
    return decode_with_losses(speaker_packets(samples, expected_loss_perc), lost, fec=fec)


def speaker_packets(samples: Samples, expected_loss_perc: int) -> list[bytes]:
    """The Opus packets a `SampleTrack(fec=True, expected_loss_perc=...)` sends for `samples`."""
    from podium.testing.whip_client import fec_encoder  # aiortc behind it: imported only when needed

    count = len(samples) // FRAME_SAMPLES
    with fec_encoder(expected_loss_perc) as encoder:
        return [encoder.encode(samples[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]) for i in range(count)]


def decode_with_losses(packets: list[bytes], lost: Collection[int], *, fec: bool = True) -> Samples:
    """An ideal libopus receiver of `packets` that loses those at `lost` (frame indices): each lost frame
    rebuilt from the next packet's in-band FEC when that one arrived (and `fec`), else concealed."""
    from podium.media.libopus import Decoder

    missing = set(lost)
    out: list[Samples] = []
    with Decoder() as decoder:
        for index, packet in enumerate(packets):
            if index not in missing:
                out.append(decoder.decode(packet))
            elif fec and index + 1 < len(packets) and index + 1 not in missing:
                out.append(decoder.recover(packets[index + 1]))
            else:
                out.append(decoder.conceal())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int16)


def read_hls(url: str, timeout_s: float = 120) -> Samples:
    """All of an ended space's replay (a playlist with EXT-X-ENDLIST): everything a listener heard.

    Blocking; ffmpeg reads the segments as fast as the server sends them."""
    program = _program("ffmpeg")
    command = [program, "-nostdin", "-v", "error", "-i", url, "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "-"]
    result = subprocess.run(command, capture_output=True, check=False, timeout=timeout_s)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg could not read the stream ({result.returncode}): {result.stderr.decode()[-2000:]}")
    return np.frombuffer(result.stdout, dtype=np.int16).copy()


def _program(name: str) -> str:
    """Where the program is; RuntimeError naming its Debian package (of the same name) if nowhere."""
    program = shutil.which(name)
    if program is None:
        raise RuntimeError(f"{name} is not installed: install the Debian package {name} (apt-get install {name})")
    return program


def _centred(samples: Samples) -> npt.NDArray[np.float64]:
    values = samples.astype(np.float64)
    return np.asarray(values - values.mean(), dtype=np.float64) if len(values) else values
