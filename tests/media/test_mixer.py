import numpy as np
import pytest

from podium.media.mixer import FRAME_SAMPLES, Mixer, downmix


def frames(value: int, count: int = 3) -> np.ndarray:
    return np.full(FRAME_SAMPLES * count, value, dtype=np.int16)


def test_silence_when_nobody_speaks() -> None:
    mixer = Mixer()
    for _ in range(5):
        result = mixer.mix()
        assert result.program.shape == (FRAME_SAMPLES,)
        assert not result.program.any()


def test_sums_n_inputs_and_gives_each_everyone_but_themselves() -> None:
    mixer = Mixer(prime_ms=0)
    for key, value in (("a", 100), ("b", 2000), ("c", -300)):
        mixer.add_input(key)
        mixer.push(key, frames(value))
    result = mixer.mix()
    assert (result.program == 1800).all()
    assert (result.minus["a"] == 1700).all()
    assert (result.minus["b"] == -200).all()
    assert (result.minus["c"] == 2100).all()


def test_clips_instead_of_wrapping_around() -> None:
    mixer = Mixer(prime_ms=0)
    for key in ("a", "b", "c"):
        mixer.add_input(key)
        mixer.push(key, frames(20000))
    mixer.add_input("d")
    mixer.push("d", frames(-32768))
    result = mixer.mix()
    assert (result.program == 27232).all()  # 3 * 20000 - 32768: the sum fits, nothing clips
    assert (result.minus["d"] == 32767).all()  # 60000 does not fit: clipped at full scale
    assert (result.minus["a"] == 7232).all()
    quiet = Mixer(prime_ms=0)
    for key in ("x", "y"):
        quiet.add_input(key)
        quiet.push(key, frames(-30000))
    assert (quiet.mix().program == -32768).all()


def test_program_is_exact_sum_without_overflow() -> None:
    mixer = Mixer(prime_ms=0)
    rng = np.random.default_rng(1)
    inputs = {k: rng.integers(-3000, 3000, FRAME_SAMPLES, dtype=np.int16) for k in range(13)}
    for key, samples in inputs.items():
        mixer.add_input(key)
        mixer.push(key, samples)
    result = mixer.mix()
    expected = np.sum([s.astype(np.int32) for s in inputs.values()], axis=0)
    assert (result.program.astype(np.int32) == expected).all()


def test_a_removed_input_leaves_the_very_next_frame() -> None:
    mixer = Mixer(prime_ms=0)
    mixer.add_input("a")
    mixer.add_input("b")
    mixer.push("a", frames(1000, 5))
    mixer.push("b", frames(10, 5))
    assert (mixer.mix().program == 1010).all()
    mixer.remove_input("a")
    mixer.push("a", frames(1000))  # audio still in flight after removal is dropped
    assert (mixer.mix().program == 10).all()


def test_waits_for_the_priming_buffer_then_plays_in_order() -> None:
    mixer = Mixer(prime_ms=40)
    mixer.add_input("a")
    mixer.push("a", np.arange(FRAME_SAMPLES, dtype=np.int16))
    assert not mixer.mix().program.any()  # 20 ms buffered < 40 ms prime: silence
    mixer.push("a", np.arange(FRAME_SAMPLES, 2 * FRAME_SAMPLES, dtype=np.int16))
    first = mixer.mix().program
    second = mixer.mix().program
    assert (first == np.arange(FRAME_SAMPLES)).all()
    assert (second == np.arange(FRAME_SAMPLES, 2 * FRAME_SAMPLES)).all()


def test_a_speaker_running_dry_is_padded_with_silence() -> None:
    mixer = Mixer(prime_ms=0)
    mixer.add_input("a")
    mixer.push("a", np.full(FRAME_SAMPLES * 3 // 2, 500, dtype=np.int16))
    assert (mixer.mix().program == 500).all()
    out = mixer.mix().program
    assert (out[: FRAME_SAMPLES // 2] == 500).all()
    assert not out[FRAME_SAMPLES // 2 :].any()


def test_buffer_is_bounded_so_latency_cannot_grow() -> None:
    mixer = Mixer(prime_ms=0, max_buffer_ms=100)
    mixer.add_input("a")
    for i in range(50):
        mixer.push("a", np.full(FRAME_SAMPLES, i, dtype=np.int16))
    assert mixer.buffered_samples("a") == 4800
    assert (mixer.mix().program == 45).all()  # the oldest audio was dropped, the newest kept


def test_levels_follow_the_loudest_sample() -> None:
    mixer = Mixer(prime_ms=0)
    mixer.add_input("loud")
    mixer.add_input("quiet")
    mixer.push("loud", frames(16384))
    result = mixer.mix()
    assert result.levels["loud"] == pytest.approx(0.5)
    assert result.levels["quiet"] == 0.0


def test_push_refuses_wrong_sample_types() -> None:
    mixer = Mixer()
    mixer.add_input("a")
    with pytest.raises(ValueError):
        mixer.push("a", np.zeros(10, dtype=np.float32))  # type: ignore[arg-type]


def test_downmix_averages_interleaved_channels() -> None:
    stereo = np.array([[100, 300, -200, 200, 32767, 32767]], dtype=np.int16)
    assert list(downmix(stereo, 2)) == [200, 0, 32767]
    assert list(downmix(np.array([[1, 2, 3]], dtype=np.int16), 1)) == [1, 2, 3]


def test_a_muted_input_is_silent_from_the_next_frame_and_back_when_unmuted() -> None:
    mixer = Mixer(prime_ms=0)
    mixer.add_input("a")
    mixer.add_input("b")
    mixer.push("a", frames(100, 5))
    mixer.push("b", frames(7, 5))
    mixer.set_muted("a", True)
    result = mixer.mix()
    assert (result.program == 7).all() and result.levels["a"] == 0.0
    assert (result.minus["b"] == 0).all()
    mixer.set_muted("a", False)
    assert (mixer.mix().program == 107).all()


def test_a_burst_of_late_audio_does_not_leave_lasting_delay() -> None:
    mixer = Mixer(prime_ms=40, high_water_ms=80, settle_frames=25)
    mixer.add_input("a")
    counter = 0

    def push_frames(count: int) -> None:
        nonlocal counter
        for _ in range(count):
            mixer.push("a", np.full(FRAME_SAMPLES, counter % 30000, dtype=np.int16))
            counter += 1

    push_frames(2)  # primed with 40 ms
    for _ in range(10):
        mixer.mix()
        push_frames(1)
    assert mixer.buffered_samples("a") == 2 * FRAME_SAMPLES  # steady: the 40 ms prime
    push_frames(8)  # 160 ms arrive at once after a hiccup
    backlog = [mixer.buffered_samples("a")]
    for _ in range(40):
        mixer.mix()
        push_frames(1)
        backlog.append(mixer.buffered_samples("a"))
    assert max(backlog) > 4 * FRAME_SAMPLES  # the burst was queued, not lost at once
    assert backlog[-1] <= 2 * FRAME_SAMPLES  # and the delay came back down by itself
    assert (mixer.mix().program == (counter - 2) % 30000).all()  # playing the newest audio again


def test_a_paced_input_plays_each_frame_in_the_mix_it_was_pushed_for() -> None:
    # A jitter buffer hands the mixer one frame per tick: no priming delay, no backlog skips.
    mixer = Mixer(prime_ms=40)
    mixer.add_input("paced", paced=True)
    mixer.add_input("pushed")
    for n in range(60):
        mixer.push("paced", np.full(FRAME_SAMPLES, n + 1, dtype=np.int16))
        mixer.push("pushed", np.full(FRAME_SAMPLES, 1000, dtype=np.int16))
        result = mixer.mix()
        assert (result.minus["pushed"] == n + 1).all()  # the paced frame, in its own mix
    # A tick the caller skipped is silence, and the next frame is not held back.
    assert not mixer.mix().minus["pushed"].any()
    mixer.push("paced", np.full(FRAME_SAMPLES, 7, dtype=np.int16))
    assert (mixer.mix().minus["pushed"] == 7).all()
