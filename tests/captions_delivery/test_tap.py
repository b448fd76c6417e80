"""The stage's tap for captions: each unmuted speaker's frame, once per frame on the air (never
in the pre-show), on the recording's time axis; a failing tap never stops the stage."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from podium.backends.files import FileMediaStore
from podium.ids import SpaceId
from podium.media.hold import HoldAudio, tone_bed
from podium.media.mixer import Samples
from podium.media.stage import Stage
from podium.testing.whip_client import tone
from tests.captions_delivery.support import host, node

T0 = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)


async def test_the_tap_sees_unmuted_speakers_on_the_air_in_recording_time(tmp_path: Path) -> None:
    seen: list[tuple[dict[str, Samples], float]] = []
    stage = Stage(SpaceId("tapped000001"), FileMediaStore(tmp_path), T0, [], HoldAudio(tone_bed()))
    stage.tap = lambda frames, at_s: seen.append((frames, at_s))
    stage.add_input("a", label="ada")
    stage.add_input("b", label="ben")
    await stage.start(paced=False)
    ada, ben = tone(440, 0.3), tone(660, 0.3)
    for n in range(10):  # backstage in the pre-show: nothing goes to captions
        stage.push("a", ada(n))
        stage.step()
    assert seen == []
    stage.go_live()
    stage.set_muted("b", True)
    for n in range(10, 20):
        stage.push("a", ada(n))
        stage.push("b", ben(n))
        stage.step()
    await stage.stop()
    assert [sorted(frames) for frames, _ in seen] == [["ada"]] * 10  # ben is muted
    assert [at_s for _, at_s in seen] == [round(0.02 * n, 3) for n in range(10)]  # from the switch on
    # Ada's own audio (primed first: the mixer waits for 40 ms before it plays a pushed input).
    heard = np.concatenate([frames["ada"] for frames, _ in seen])
    assert heard.dtype == np.int16 and len(heard) == 9600 and np.abs(heard).max() > 3000


async def test_a_failing_tap_never_stops_the_stage(tmp_path: Path) -> None:
    def broken(frames: dict[str, Samples], at_s: float) -> None:
        raise RuntimeError("the captions are broken")

    stage = Stage(SpaceId("tapped000002"), FileMediaStore(tmp_path), T0, [], tap=broken)
    stage.add_input("a", label="ada")
    await stage.start(paced=False)
    made = [item for _ in range(300) for item in stage.step()]
    await stage.stop()
    assert stage.tap_failures == 300 and stage.frames_mixed == 300
    assert len([item for item in made if type(item).__name__ == "Segment"]) >= 2  # the program went on


async def test_a_live_stage_feeds_the_caption_workers_with_names_and_language(tmp_path: Path) -> None:
    async with node(tmp_path / "data") as n:
        space = await n.create()
        await n.client.put(
            f"/api/spaces/{space['id']}/captions", json={"enabled": True, "language": "de"}, headers=host(space)
        )
        await n.go_live(space)
        stage = n.app.state.stages.stage(SpaceId(space["id"]))
        stage.add_input("session", label="host")  # the host's connection, as a WHIP session adds it
        voice = tone(440, 0.3)
        for k in range(50):
            stage.push("session", voice(k))
        await n.clock.sleep(1.0)
        assert n.recorder is not None
        fed = [f for f in n.recorder.frames if f[0] == space["id"]]
        assert fed and {(f[1], f[2], f[3], f[5]) for f in fed} == {("host", "Host", "de", 960)}
        times = [f[4] for f in fed]
        assert times == sorted(times) and times[0] >= 0
        # The host leaves the stage: their utterance is closed once.
        stage.remove_input("session")
        await n.clock.sleep(0.2)
        assert n.recorder.gone == [(space["id"], "host")]
        await n.end(space)
        assert n.recorder.ended == [space["id"]]
