"""libopus through ctypes, on real speech (espeak-ng): round trip, in-band FEC against concealment,
concealment fading, bad packets, encoder controls, native state freed, and which library loaded."""

from __future__ import annotations

import gc
import itertools
import os

import numpy as np
import pytest

from podium.errors import InvalidInput
from podium.media import libopus
from podium.media.libopus import Decoder, Encoder, OpusError, OpusUnavailable
from podium.media.mixer import FRAME_SAMPLES, SAMPLE_RATE
from podium.testing.speech import speak

SENTENCES = (
    "The quick brown fox jumps over the lazy dog. Every word arrives, even when the network "
    "loses a packet now and then. Podium mixes the speakers every twenty milliseconds."
)

# Opus packets libopus must refuse (RFC 6716 section 3): a code 3 packet declaring 63 frames of
# 20 ms (past 120 ms), a code 1 packet whose two equal frames cannot split an odd length, a code 3
# packet of no frame, a code 2 packet whose first length byte announces a second byte that is missing.
INVALID_PACKETS = (b"\xff\xff", b"\x01\x00\x00\x00", b"\x03\x00", b"\x02\xff")


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """About 12 s of synthetic English speech, 48 kHz mono int16, whole 20 ms frames."""
    return speak(SENTENCES)


def frames(samples: np.ndarray) -> np.ndarray:
    return samples.reshape(-1, FRAME_SAMPLES)


def energy(samples: np.ndarray) -> float:
    return float(np.mean(samples.astype(np.float64) ** 2))


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    ref = reference.astype(np.float64)
    noise = float(np.sum((ref - estimate.astype(np.float64)) ** 2))
    return 10 * float(np.log10(float(np.sum(ref**2)) / max(noise, 1e-9)))


def encode_all(encoder: Encoder, samples: np.ndarray) -> list[bytes]:
    return [encoder.encode(frame) for frame in frames(samples)]


def best_lag(reference: np.ndarray, delayed: np.ndarray, max_lag: int) -> int:
    """The delay of `delayed` behind `reference`, in samples, by FFT cross-correlation."""
    a, b = reference.astype(np.float64), delayed.astype(np.float64)
    size = 1 << int(np.ceil(np.log2(len(a) + len(b))))
    correlation = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)
    return int(np.argmax(correlation[: max_lag + 1]))


# 1. Round trip.


def test_speech_survives_a_round_trip_at_32_kbps(speech: np.ndarray) -> None:
    encoder, decoder = Encoder("voip", bitrate=32_000), Decoder()
    packets = encode_all(encoder, speech)
    assert 60 < np.mean([len(p) for p in packets]) < 100  # ~80 bytes: 32 kb/s in 20 ms packets
    decoded = [decoder.decode(packet) for packet in packets]
    assert all(d.shape == (FRAME_SAMPLES,) and d.dtype == np.int16 for d in decoded)
    output = np.concatenate(decoded)
    lag = best_lag(speech, output, max_lag=2 * FRAME_SAMPLES)
    # The codec delays by its lookahead (312 samples in voip, 6.5 ms); resampling inside SILK moves
    # the waveform's best match by a few samples.
    assert abs(lag - 312) < 48
    correlation = np.corrcoef(speech[: len(output) - lag], output[lag:])[0, 1]
    assert correlation > 0.9


@pytest.mark.parametrize("frame_samples", libopus.ENCODE_FRAME_SAMPLES)
def test_every_packet_length_decodes_to_all_its_samples(speech: np.ndarray, frame_samples: int) -> None:
    encoder, decoder = Encoder("audio"), Decoder()
    start = 2 * SAMPLE_RATE  # inside the first sentence
    for index in range(3):
        chunk = speech[start + index * frame_samples : start + (index + 1) * frame_samples]
        assert decoder.decode(encoder.encode(chunk)).shape == (frame_samples,)


def test_stereo_output_carries_the_mono_stream_on_both_channels(speech: np.ndarray) -> None:
    encoder, decoder = Encoder(), Decoder(channels_out=2)
    out = [decoder.decode(packet) for packet in encode_all(encoder, speech[: 50 * FRAME_SAMPLES])]
    assert all(o.shape == (FRAME_SAMPLES, 2) for o in out)
    stereo = np.concatenate(out)
    assert energy(stereo) > 0 and np.array_equal(stereo[:, 0], stereo[:, 1])


# 2. In-band FEC against concealment.


def loss_snrs(speech: np.ndarray, encoder: Encoder) -> tuple[float, float]:
    """Mean SNR (dB) against the clean decode of lone lost frames in voiced speech: rebuilt by
    `recover(next packet)`, and by `conceal()`."""
    packets = encode_all(encoder, speech)
    clean_decoder = Decoder()
    clean = [clean_decoder.decode(packet) for packet in packets]
    energies = np.array([energy(c) for c in clean])
    voiced = float(np.median(energies))
    # Single losses in the middle of voiced speech (the frame and both neighbours loud), spaced so the
    # decoder has settled again before the next one.
    lost = [k for k in range(5, len(packets) - 5) if energies[k - 1 : k + 2].min() > voiced][::6]
    assert len(lost) >= 20
    results = []
    for rebuild in ("recover", "conceal"):
        decoder, snrs = Decoder(), []
        for k, packet in enumerate(packets):
            if k in lost:
                estimate = decoder.recover(packets[k + 1]) if rebuild == "recover" else decoder.conceal()
                assert estimate.shape == (FRAME_SAMPLES,)
                snrs.append(snr_db(clean[k], estimate))
            else:
                decoder.decode(packet)
        results.append(float(np.mean(snrs)))
    return results[0], results[1]


def fec_encoder(how: str) -> Encoder:
    if how == "at-creation":
        return Encoder("voip", inband_fec=True, packet_loss_perc=10)
    encoder = Encoder("voip")
    encoder.set_inband_fec(True)
    encoder.set_packet_loss_perc(10)
    return encoder


@pytest.mark.parametrize("how", ["at-creation", "by-setters"])
def test_fec_rebuilds_a_lost_frame_far_better_than_concealment(speech: np.ndarray, how: str) -> None:
    recovered, concealed = loss_snrs(speech, fec_encoder(how))
    # Measured: ~13 dB from FEC against ~2-4 dB from PLC (libopus 1.3.1 and 1.6.1).
    assert recovered > concealed + 6
    assert recovered > 8


@pytest.mark.parametrize(
    ("application", "fec"),
    [("voip", False), ("lowdelay", True)],
    ids=["voip-without-fec", "lowdelay-is-celt-only"],
)
def test_without_fec_data_recover_is_no_better_than_conceal(
    speech: np.ndarray, application: libopus.Application, fec: bool
) -> None:
    recovered, concealed = loss_snrs(speech, Encoder(application, inband_fec=fec, packet_loss_perc=10))
    assert recovered < concealed + 1


# 3. Concealment.


def test_concealment_continues_speech_then_fades(speech: np.ndarray) -> None:
    encoder = Encoder("voip")
    packets = encode_all(encoder, speech)
    clean_decoder = Decoder()
    energies = np.array([energy(clean_decoder.decode(p)) for p in packets])
    loud = float(np.percentile(energies, 60))
    onsets = [k for k in range(5, len(packets)) if energies[k - 3 : k].min() > loud][::15][:5]
    assert len(onsets) == 5
    for k in onsets:
        decoder = Decoder()
        for packet in packets[:k]:
            decoder.decode(packet)
        concealed = [decoder.conceal() for _ in range(5)]  # 100 ms lost
        assert all(c.shape == (FRAME_SAMPLES,) for c in concealed)
        assert concealed[0].any()
        levels = [energy(c) for c in concealed]
        assert all(later < earlier for earlier, later in itertools.pairwise(levels)), levels
        assert levels[-1] < levels[0] / 4, levels


def test_concealment_lengths_must_be_whole_steps_of_2_5_ms() -> None:
    decoder = Decoder()
    assert decoder.conceal(480).shape == (480,)
    for bad in (0, 100, 961, 5880):
        with pytest.raises(ValueError, match=r"2\.5 ms"):
            decoder.conceal(bad)
        with pytest.raises(ValueError, match=r"2\.5 ms"):
            decoder.recover(b"\x78\x00", bad)


# 4. Bad input.


@pytest.mark.parametrize("payload", [*INVALID_PACKETS, b""])
def test_invalid_packets_raise_the_domain_error(payload: bytes) -> None:
    decoder = Decoder()
    with pytest.raises(OpusError) as caught:
        decoder.decode(payload)
    error = caught.value
    assert error.code < 0 and error.message.startswith("libopus")
    assert isinstance(error, InvalidInput) and isinstance(error, ValueError)  # a 400, and a plain ValueError


def test_a_refused_packet_leaves_the_decoder_as_it_was(speech: np.ndarray) -> None:
    packets = encode_all(Encoder("voip"), speech[: 40 * FRAME_SAMPLES])
    clean_decoder, decoder = Decoder(), Decoder()
    for packet in packets:
        for bad in [*INVALID_PACKETS, b""]:
            with pytest.raises(OpusError):
                decoder.decode(bad)
            with pytest.raises(OpusError):
                decoder.recover(bad)
        assert np.array_equal(decoder.decode(packet), clean_decoder.decode(packet))


def test_random_and_damaged_packets_never_crash(speech: np.ndarray) -> None:
    rng = np.random.default_rng(20)
    packets = encode_all(Encoder("voip", inband_fec=True, packet_loss_perc=10), speech[: 100 * FRAME_SAMPLES])
    decoder = Decoder()
    refused = 0
    for index in range(1500):
        if index % 2:
            garbage = rng.integers(0, 256, size=int(rng.integers(1, 300)), dtype=np.uint8).tobytes()
        else:  # a real packet with bytes flipped or cut short
            damaged = bytearray(packets[index % len(packets)])
            for position in rng.integers(0, len(damaged), size=3):
                damaged[position] ^= int(rng.integers(1, 256))
            garbage = bytes(damaged[: int(rng.integers(1, len(damaged) + 1))])
        try:
            out = decoder.recover(garbage) if index % 5 == 0 else decoder.decode(garbage)
            assert 0 < out.shape[0] <= libopus.MAX_PACKET_SAMPLES
        except OpusError:
            refused += 1
    assert refused > 0  # some of it really was refused, and the process is still here
    assert decoder.decode(packets[0]).shape == (FRAME_SAMPLES,)


@pytest.mark.parametrize(
    "samples",
    [
        np.zeros(959, np.int16),
        np.zeros(1000, np.int16),
        np.zeros(0, np.int16),
        np.zeros(960, np.float32),
        np.zeros(960, np.int32),
        np.zeros((960, 1), np.int16),
    ],
    ids=["959", "1000", "empty", "float32", "int32", "2-d"],
)
def test_encode_refuses_what_is_not_one_int16_frame(samples: np.ndarray) -> None:
    with pytest.raises(ValueError, match="int16"):
        Encoder().encode(samples)


# Encoder controls.


def test_bitrate_and_loss_settings_reach_libopus(speech: np.ndarray) -> None:
    chunk = speech[: 100 * FRAME_SAMPLES]
    encoder = Encoder("voip", bitrate=16_000)
    low = np.mean([len(p) for p in encode_all(encoder, chunk)])
    encoder.set_bitrate(64_000)
    high = np.mean([len(p) for p in encode_all(encoder, chunk)])
    assert high > 2.5 * low  # 40 against 160 bytes a packet, roughly
    with pytest.raises(OpusError, match="packet loss"):
        encoder.set_packet_loss_perc(101)
    with pytest.raises(OpusError, match="bitrate"):
        encoder.set_bitrate(0)
    with pytest.raises(ValueError, match="application"):
        Encoder("music")  # type: ignore[arg-type]


def test_dtx_sends_silence_as_tiny_packets() -> None:
    encoder = Encoder("voip", dtx=True)
    sizes = [len(encoder.encode(np.zeros(FRAME_SAMPLES, np.int16))) for _ in range(30)]
    assert sizes[-1] <= 2
    assert len(Encoder("voip").encode(np.zeros(FRAME_SAMPLES, np.int16))) > 2


# Native state.


def test_closed_codecs_refuse_calls_and_close_twice() -> None:
    with Decoder() as decoder, Encoder() as encoder:
        pass
    assert decoder.closed and encoder.closed
    decoder.close()
    encoder.close()
    with pytest.raises(ValueError, match="closed"):
        decoder.conceal()
    with pytest.raises(ValueError, match="closed"):
        encoder.encode(np.zeros(FRAME_SAMPLES, np.int16))


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_dropped_codecs_free_their_native_state() -> None:
    frame = np.zeros(FRAME_SAMPLES, np.int16)
    for _ in range(200):  # warm up the allocator
        Encoder().encode(frame)
        Decoder().conceal()
    gc.collect()
    before = resident_bytes()
    for _ in range(4000):  # ~45 kB of libopus state each: ~180 MB if any leaked
        Encoder().encode(frame)
        Decoder().conceal()
    gc.collect()
    assert resident_bytes() - before < 20 * 2**20


# 5. The library.


def test_a_missing_library_names_what_to_install() -> None:
    with pytest.raises(OpusUnavailable, match="libopus0"):
        libopus.open_library(["/nonexistent/libopus.so.0"])


def test_the_copy_in_pyavs_wheel_is_the_fallback() -> None:
    bundled = [name for name in libopus.candidates() if "av.libs" in name]
    assert bundled, "PyAV's wheel bundles libopus in av.libs/"
    assert libopus.candidates().index(bundled[0]) > 0  # after the system's
    lib = libopus.open_library(["/nonexistent/libopus.so.0", *bundled])
    assert lib.opus_packet_get_nb_samples(b"\x78\x00", 2, SAMPLE_RATE) == FRAME_SAMPLES
