"""The stage moved frame by frame (`Stage.step`): what comes out after N frames, without waiting."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from podium.backends.files import FileMediaStore
from podium.ids import SpaceId
from podium.media.mixer import FRAME_SAMPLES, Mixer
from podium.media.packager import INIT_NAME, Part
from podium.media.stage import Stage
from podium.testing import FakeClock
from podium.testing.whip_client import tone

SPACE = SpaceId("abcdefghij12")
T0 = datetime(2026, 1, 1, 20, 0, tzinfo=UTC)
# A part is 24 AAC frames of 1024 samples: 25.6 stage frames of 960, and the encoder holds one back.
FRAMES_TO_FIRST_PART = 27
PRIME_FRAMES = Mixer().prime_samples // FRAME_SAMPLES  # 40 ms: 2 frames


async def test_a_mixed_frame_comes_out_after_n_steps(tmp_path: Path) -> None:
    store = FileMediaStore(tmp_path)
    clock = FakeClock()  # never advanced: nothing here waits for time
    stage = Stage(SPACE, store, T0, [], clock=clock)
    await stage.start(paced=False)  # no ticking loop: frames are made by step() only
    stage.add_input("alice", label="alice")
    stage.add_input("bob", label="bob")
    to_bob = stage.add_return("bob")
    voice = tone(440, 0.3)
    silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
    changed = asyncio.ensure_future(stage.wait_for_change(60))
    await clock.sleep(0)  # a turn of the loop: the listener is now holding

    # Alice's audio comes as decoded samples, so the mixer primes her input first (a short
    # buffer against jitter): her first frame is mixed at step PRIME_FRAMES (when that much is buffered), not before.
    heard = []
    for n in range(PRIME_FRAMES):
        stage.push("alice", voice(n))
        stage.push("bob", silence)
        assert stage.step() == []
        heard.append(await to_bob.next_samples())
    assert stage.frames_mixed == PRIME_FRAMES
    assert all(not frame.any() for frame in heard[: PRIME_FRAMES - 1])
    # Bob hears alice's first frame, mixed, sample for sample: his mix-minus is everyone but him.
    np.testing.assert_array_equal(heard[PRIME_FRAMES - 1], voice(0))
    assert stage.levels["alice"] > 0.2 and stage.levels["bob"] == 0

    for n in range(PRIME_FRAMES, FRAMES_TO_FIRST_PART - 1):
        stage.push("alice", voice(n))
        stage.push("bob", silence)
        assert stage.step() == [], f"no part yet after {n + 1} frames"
    assert not changed.done()
    stage.push("alice", voice(FRAMES_TO_FIRST_PART - 1))
    made = stage.step()
    assert [type(item) for item in made] == [Part] and stage.frames_mixed == FRAMES_TO_FIRST_PART
    assert await changed, "a listener holding for the next part is woken by it"
    assert stage.packager.part(0, 0) == made[0]
    await stage.stop()
    assert await store.read(SPACE, INIT_NAME) == stage.init
    assert await store.read(SPACE, made[0].name) == made[0].data, "the part reached the disk"


async def test_stepping_is_deterministic(tmp_path: Path) -> None:
    outputs = []
    for run in range(2):
        stage = Stage(SPACE, FileMediaStore(tmp_path / str(run)), T0, [], clock=FakeClock())
        await stage.start(paced=False)
        stage.add_input("alice")
        voice = tone(660, 0.3)
        made = []
        for n in range(3 * FRAMES_TO_FIRST_PART):
            stage.push("alice", voice(n))
            made += stage.step()
        await stage.stop()
        outputs.append([item.data for item in made if isinstance(item, Part)])
    assert len(outputs[0]) == 3 and outputs[0] == outputs[1]


async def test_step_refuses_a_stage_that_ticks_by_itself(tmp_path: Path) -> None:
    clock = FakeClock()
    stage = Stage(SPACE, FileMediaStore(tmp_path), T0, [], clock=clock)
    await stage.start()
    with pytest.raises(AssertionError):
        stage.step()
    await stage.stop()
