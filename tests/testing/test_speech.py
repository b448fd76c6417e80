"""The speech helpers: synthesis, alignment, holes in what was heard, PESQ, the codec's own limit,
and reading HLS back with ffmpeg."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from podium.media.mixer import FRAME_SAMPLES, SAMPLE_RATE, Samples
from podium.testing import speech as speech_module
from podium.testing.speech import (
    SENTENCES,
    align,
    align_part,
    aligned,
    opus_round_trip,
    pesq_wb,
    read_hls,
    silences_inside,
    snr_db,
    speak,
    speech_length_change,
    speech_spans,
)

MS = SAMPLE_RATE // 1000


@pytest.fixture(scope="module")
def speech() -> Samples:
    return speak(SENTENCES)


def loudest_frame(speech: Samples, start_s: float, stop_s: float) -> int:
    """The sample where the loudest 20 ms frame between two times starts: voiced speech."""
    first, last = int(start_s * SAMPLE_RATE) // FRAME_SAMPLES, int(stop_s * SAMPLE_RATE) // FRAME_SAMPLES
    frames = speech[first * FRAME_SAMPLES : last * FRAME_SAMPLES].astype(np.float64).reshape(-1, FRAME_SAMPLES)
    return (first + int(np.argmax(np.sum(frames**2, axis=1)))) * FRAME_SAMPLES


def with_gap(speech: Samples, at: int, ms: float, fade_ms: float = 0) -> Samples:
    """A copy with `ms` of silence at `at`, reached by a linear fade of `fade_ms` (as concealment fades)."""
    out = speech.astype(np.float64)
    fade = int(fade_ms * MS)
    out[at - fade : at] *= np.linspace(1, 0, fade, endpoint=False)
    out[at : at + int(ms * MS)] = 0
    return out.astype(np.int16)


def test_speech_is_deterministic_48k_whole_frames_and_about_ten_seconds(speech: Samples) -> None:
    assert speech.dtype == np.int16 and speech.ndim == 1
    assert len(speech) % FRAME_SAMPLES == 0
    assert 8 <= len(speech) / SAMPLE_RATE <= 12
    assert np.array_equal(speech, speak(SENTENCES))
    assert np.abs(speech).max() > 10_000  # spoken, not whispered
    # Its energy is where speech is: a 3-4 kHz formant region, not just a tone.
    spectrum = np.abs(np.fft.rfft(speech.astype(np.float64)))
    freqs = np.fft.rfftfreq(len(speech), 1 / SAMPLE_RATE)
    assert spectrum[(freqs > 100) & (freqs < 4000)].sum() > 0.8 * spectrum[freqs > 100].sum()


def test_speak_names_the_package_when_espeak_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speech_module.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install espeak-ng"):
        speak("hello")
    with pytest.raises(RuntimeError, match="apt-get install ffmpeg"):
        read_hls("http://127.0.0.1:9/index.m3u8")


def test_speech_spans_are_the_sentences(speech: Samples) -> None:
    spans = speech_spans(speech)
    assert len(spans) == 3  # three sentences, a pause of about 0.4 s between them
    for start, stop in spans:
        assert speech[start : start + 10 * MS].any() and stop - start > SAMPLE_RATE
    # Joined across short pauses: with a short enough gap allowed, the words come apart.
    assert len(speech_spans(speech, min_gap_ms=20)) > 10


@pytest.mark.parametrize("lag", [12_345, -700, 0])
def test_align_finds_a_known_lag_whatever_the_gain(speech: Samples, lag: int) -> None:
    rng = np.random.default_rng(1)
    quieter = (speech * 0.2 + rng.normal(0, 30, len(speech))).astype(np.int16)
    heard = np.concatenate([np.zeros(lag, np.int16), quieter]) if lag >= 0 else quieter[-lag:]
    assert align(speech, heard) == lag
    assert np.array_equal(aligned(heard, lag, len(speech))[5000:6000], quieter[5000:6000])


def test_a_stretch_of_speech_is_measured_from_its_two_ends(speech: Samples) -> None:
    at = speech_spans(speech)[1][0] + SAMPLE_RATE  # inside the second sentence
    stretched = np.concatenate([np.zeros(500, np.int16), speech[:at], np.zeros(100 * MS, np.int16), speech[at:]])
    assert speech_length_change(speech, stretched) == 100 * MS
    assert speech_length_change(speech, np.concatenate([np.zeros(500, np.int16), speech])) == 0
    first = speech_spans(speech)[0]
    assert align_part(speech, stretched, first[0], first[1], lag=600, search_ms=50) == 500


def test_an_inserted_60_ms_gap_in_speech_is_a_hole_and_clean_speech_has_none(speech: Samples) -> None:
    spans = speech_spans(speech)
    assert silences_inside(speech, spans, reference=speech) == []
    at = loudest_frame(speech, 2.0, 5.0)
    holes = silences_inside(with_gap(speech, at, 60), spans, reference=speech)
    assert len(holes) == 1
    start, ms = holes[0]
    assert abs(start - at) <= 3 * MS and 55 <= ms <= 60
    # Concealment fading to zero before the gap counts where it is silent.
    faded = silences_inside(with_gap(speech, at, 60, fade_ms=20), spans, reference=speech)
    assert len(faded) == 1 and faded[0][1] >= 60
    # One lost frame filled with nothing is 20 ms: no hole at 40 ms, a hole at 10 ms.
    assert silences_inside(with_gap(speech, at, 20), spans, reference=speech) == []
    assert len(silences_inside(with_gap(speech, at, 20), spans, min_ms=10, reference=speech)) == 1


def test_holes_count_only_where_the_speech_was_audible(speech: Samples) -> None:
    spans = speech_spans(speech)
    # Without the reference, the speech's own short pauses and stop closures look like holes...
    assert silences_inside(speech, spans)
    # ... and with it, speech heard late by 15 ms (a pause moved) makes none.
    late = aligned(np.concatenate([np.zeros(15 * MS, np.int16), speech]), 0, len(speech))
    assert silences_inside(late, spans, reference=speech) == []
    # Audio missing at the end of what was heard is a hole too.
    cut = speech[: spans[-1][0] + SAMPLE_RATE]
    assert silences_inside(cut, spans, reference=speech)


def test_pesq_of_speech_against_itself_is_high_and_a_gapped_copy_scores_clearly_lower(speech: Samples) -> None:
    assert pesq_wb(speech, speech) > 4.0
    gapped = speech
    for at in range(SAMPLE_RATE, len(speech) - SAMPLE_RATE, SAMPLE_RATE // 2):
        gapped = with_gap(gapped, at, 60)
    delayed = np.concatenate([np.zeros(777, np.int16), gapped])  # aligned first
    assert pesq_wb(speech, delayed) < pesq_wb(speech, speech) - 1.0


def test_snr() -> None:
    signal = (np.sin(np.arange(4800) / 7) * 10_000).astype(np.int16)
    assert snr_db(signal, signal) == float("inf")
    assert snr_db(signal, (signal * 0.9).astype(np.int16)) == pytest.approx(20, abs=0.1)
    with pytest.raises(ValueError):
        snr_db(signal, signal[:-1])


def voiced_frames(speech: Samples, spacing: int) -> list[int]:
    """Frames of loud speech (with loud neighbours), at least `spacing` frames apart."""
    frames = speech.astype(np.float64).reshape(-1, FRAME_SAMPLES)
    loud = np.sqrt(np.mean(frames**2, axis=1)) > 1500
    chosen: list[int] = []
    for k in range(1, len(frames) - 2):
        if loud[k - 1 : k + 2].all() and (not chosen or k - chosen[-1] >= spacing):
            chosen.append(k)
    return chosen


def test_the_fec_track_really_sends_fec(speech: Samples) -> None:
    """libopus adds FEC only in some settings (none at complexity 5 with 5 % expected loss): the
    frames it rebuilds from FEC must be much closer to the clean decoding than concealment gets."""
    voiced = voiced_frames(speech, spacing=25)
    assert len(voiced) >= 10

    def median_snr(clean: Samples, lossy: Samples) -> float:
        frames = [slice(k * FRAME_SAMPLES, (k + 1) * FRAME_SAMPLES) for k in voiced]
        return float(np.median([snr_db(clean[frame], lossy[frame]) for frame in frames]))

    clean = opus_round_trip(speech, [], expected_loss_perc=5)
    assert len(clean) == len(speech)
    recovered = median_snr(clean, opus_round_trip(speech, voiced, expected_loss_perc=5))
    concealed = median_snr(clean, opus_round_trip(speech, voiced, expected_loss_perc=5, fec=False))
    assert recovered > concealed + 6, (recovered, concealed)
    # Told to expect no loss, the same encoder sends no FEC: decoding "with FEC" only conceals.
    clean_without = opus_round_trip(speech, [], expected_loss_perc=0)
    assert median_snr(clean_without, opus_round_trip(speech, voiced, expected_loss_perc=0)) < recovered - 6


def test_read_hls_gives_back_a_whole_vod_playlist(speech: Samples, tmp_path: Path) -> None:
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg is not None
    playlist = tmp_path / "index.m3u8"
    encode = ["-v", "error", "-f", "s16le", "-ar", "48000", "-ac", "1", "-i", "-", "-c:a", "aac", "-b:a", "64k"]
    package = ["-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4"]
    subprocess.run([ffmpeg, *encode, *package, str(playlist)], input=speech.tobytes(), check=True, capture_output=True)
    assert "#EXT-X-ENDLIST" in playlist.read_text()
    heard = read_hls(str(playlist))
    lag = align(speech, heard)
    assert abs(lag) < 3000 and abs(len(heard) - lag - len(speech)) < 3000
    assert silences_inside(aligned(heard, lag, len(speech)), speech_spans(speech), reference=speech) == []
    assert pesq_wb(speech, heard) > 3.5
    with pytest.raises(RuntimeError, match="ffmpeg could not read"):
        read_hls(str(tmp_path / "missing.m3u8"))
