"""What strangers' spaces can cost a node, in process with a fake clock: a budget of stages that a
running stage never pays for, pre-shows nobody comes to close for good, a disk that falls behind
costs the recording (counted), never memory or a tick, and an end that is cut off is finished."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from podium.app import create_app
from podium.backends.files import FileMediaStore
from podium.errors import AtCapacity
from podium.ids import SpaceId
from podium.media.packager import Part
from podium.media.stage import Stage
from podium.settings import Settings
from podium.spaces.directory import SpaceDirectory
from podium.spaces.schedule import Schedule
from podium.spaces.stages import HOLD_NAME, StageManager
from podium.testing import FakeClock, eventually
from podium.web.http import error_response
from tests.listeners import beat
from tests.media.test_hold import wav
from tests.test_preshow import wav_bytes


@dataclass
class Node:
    app: Starlette
    client: httpx.AsyncClient
    clock: FakeClock

    @property
    def stages(self) -> StageManager:
        stages: StageManager = self.app.state.stages
        return stages

    @property
    def directory(self) -> SpaceDirectory:
        directory: SpaceDirectory = self.app.state.directory
        return directory

    @property
    def schedule_service(self) -> Schedule:
        schedule: Schedule = self.app.state.schedule
        return schedule

    async def create(self, starts_in_s: float | None = 60.0) -> dict[str, Any]:
        body: dict[str, Any] = {"title": "A talk"}
        if starts_in_s is not None:
            body["starts_at"] = (self.clock.now() + timedelta(seconds=starts_in_s)).isoformat()
        response = await self.client.post("/api/spaces", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def state(self, space: dict[str, Any]) -> dict[str, Any]:
        return dict((await self.client.get(f"/api/spaces/{space['id']}")).json())

    async def schedule(self, advance_s: float = 0.0) -> None:
        """Time moves on, and the schedule looks (as it does every quarter second)."""
        self.clock.advance(advance_s)
        await self.schedule_service.run()

    async def beat(self, space: dict[str, Any], listener: str = "listener-0001") -> None:
        response = await beat(self.client, space["id"], listener)  # joined first, as a page does
        assert response.status_code == 200, response.text


@asynccontextmanager
async def node(data_dir: Path, clock: FakeClock, **settings: Any) -> AsyncIterator[Node]:
    app = create_app(Settings.load({}, data_dir=data_dir, **settings), clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://podium.test") as client:
            yield Node(app, client, clock)


def host(space: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {space['host_token']}"}


async def test_pre_shows_past_the_budget_wait_for_a_slot_and_the_soonest_start_gets_it(tmp_path: Path) -> None:
    clock = FakeClock(datetime.now(UTC))
    async with node(tmp_path / "data", clock, max_stages=2) as n:
        later = await n.create(starts_in_s=600)
        first, second = await n.create(starts_in_s=60), await n.create(starts_in_s=120)
        await n.schedule()
        assert [(await n.state(s))["preshow"] for s in (first, second, later)] == [True, True, False]
        assert len(n.stages.live_space_ids()) == 2
        # One ends: the waiting pre-show opens in its place.
        assert (await n.client.post(f"/api/spaces/{first['id']}/end", headers=host(first))).status_code == 200
        await n.schedule()
        assert (await n.state(later))["preshow"] and len(n.stages.live_space_ids()) == 2


async def test_a_speaker_takes_an_idle_pre_shows_slot_never_one_somebody_hears(tmp_path: Path) -> None:
    clock = FakeClock(datetime.now(UTC))
    async with node(tmp_path / "data", clock, max_stages=1) as n:
        idle = await n.create(starts_in_s=300)
        await n.schedule()
        assert (await n.state(idle))["preshow"]
        live = await n.create(starts_in_s=None)
        # A host's microphone (what a WHIP publish does first): the idle pre-show gives way.
        await n.stages.start_stage(await n.directory.get_space(live["id"]))
        assert n.stages.live_space_ids() == [SpaceId(live["id"])]
        assert not (await n.state(idle))["preshow"]
        await n.schedule()  # it waits now, it does not push back in
        assert n.stages.live_space_ids() == [SpaceId(live["id"])]

    async with node(tmp_path / "other", clock, max_stages=1) as n:
        heard = await n.create(starts_in_s=300)
        await n.schedule()
        await n.beat(heard)  # a listener: this pre-show keeps its slot
        live = await n.create(starts_in_s=None)
        try:
            await n.stages.start_stage(await n.directory.get_space(live["id"]))
            raise AssertionError("a second stage started past the budget")
        except AtCapacity as refused:
            answer = error_response(refused)
        assert answer.status_code == 503 and int(answer.headers["retry-after"]) > 0
        assert b"as many stages as it can keep in real time (1)" in answer.body
        assert n.stages.live_space_ids() == [SpaceId(heard["id"])]


async def test_a_pre_show_nobody_comes_to_closes_for_good(tmp_path: Path) -> None:
    clock = FakeClock(datetime.now(UTC))
    data = tmp_path / "data"
    async with node(data, clock, preshow_idle_close_s=600) as n:
        space = await n.create(starts_in_s=60)
        hold = await n.client.put(
            f"/api/spaces/{space['id']}/hold-audio", content=wav_bytes(300, 2.0), headers=host(space)
        )
        assert hold.status_code == 200
        await n.schedule()
        assert (await n.state(space))["preshow"]
        # Before the start nobody needs to be there; from the start, idle time counts. A listener
        # at 590 s past the start sets it back.
        await n.schedule(60 + 590)
        await n.beat(space)
        await n.schedule()
        await n.schedule(20)  # the listener has stopped beating: idle from now
        await n.schedule(599)
        assert (await n.state(space))["preshow"]
        await n.schedule(2)
        state = await n.state(space)
        assert not state["preshow"] and state["state"] == "scheduled"
        assert n.stages.live_space_ids() == []
        assert await n.stages.media.read(SpaceId(space["id"]), HOLD_NAME) is None
    # Stored: a restart does not open it again.
    async with node(data, clock, preshow_idle_close_s=600) as n:
        await n.schedule(1)
        assert not (await n.state(space))["preshow"] and n.stages.live_space_ids() == []
        refused = await n.client.put(
            f"/api/spaces/{space['id']}/hold-audio", content=wav_bytes(300, 2.0), headers=host(space)
        )
        assert refused.status_code == 409 and "pre-show was closed" in refused.json()["error"]


class StuckDisk(FileMediaStore):
    """A disk that takes parts, segments and records only when `flowing` is set."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.flowing = asyncio.Event()

    async def write_part(self, space_id: SpaceId, part: Part) -> None:
        await self.flowing.wait()
        await super().write_part(space_id, part)

    async def write(self, space_id: SpaceId, name: str, data: bytes) -> None:
        if name != "init.mp4":
            await self.flowing.wait()
        await super().write(space_id, name, data)


async def test_a_disk_that_falls_behind_costs_the_recording_never_memory_nor_a_tick(tmp_path: Path) -> None:
    disk = StuckDisk(tmp_path / "media")
    clock = FakeClock(datetime.now(UTC), autojump=True)
    stage = Stage(SpaceId("stuckdisk001"), disk, clock.now(), [], write_queue=8, clock=clock)
    await stage.start()
    await clock.sleep(6.0)  # about 12 parts and 3 segments made; the disk takes none
    assert stage.writes_waiting <= 8
    assert stage.writes_dropped.get("part", 0) >= 4
    assert stage.frames_skipped == 0 and stage.parts_made >= 10
    # The end does not wait on the backlog: it answers within its wait, the writer goes on.
    started = clock.monotonic()
    assert await stage.finish(wait_s=0.2) is False
    assert clock.monotonic() - started < 1.0
    disk.flowing.set()
    await asyncio.wait_for(stage.written(), 10)
    records = await disk.records(SpaceId("stuckdisk001"))
    assert records and all(isinstance(r.msn, int) for r in records)  # the segments that were kept
    assert stage.packager.is_ended


async def test_an_end_cut_off_by_a_stop_is_finished_by_the_next_start(tmp_path: Path) -> None:
    clock = FakeClock(datetime.now(UTC), autojump=True)
    data = tmp_path / "data"
    async with node(data, clock) as n:
        space = await n.create(starts_in_s=None)
        directory = n.directory
        live = await directory.get_space(space["id"])
        await n.stages.start_stage(live)
        await n.stages.went_live(live)
        await clock.sleep(3.0)  # a few segments on the disk
        # The first step of an end, and then the node stops (as a kill would cut it off there).
        directory.rules(live).end(directory.authorize(live, space["host_token"]).id)
        await directory.save_rules(live.id)
    async with node(data, clock) as n:
        state = await n.state(space)
        assert state["state"] == "ended" and n.stages.live_space_ids() == []
        stored = await n.directory.store.get(SpaceId(space["id"]))
        assert stored is not None and stored.state.value == "ended" and stored.ended_at is not None
        # Its end is the end of its recording, not the time of the restart.
        records = await n.stages.media.records(SpaceId(space["id"]))
        last = records[-1]
        assert stored.ended_at == last.program_date_time + timedelta(seconds=last.duration_s)
        playlist = await n.client.get(space["urls"]["hls"].replace("index.m3u8", "live.m3u8"))
        assert playlist.status_code == 200 and "#EXT-X-ENDLIST" in playlist.text
        again = await n.client.post(f"/api/spaces/{space['id']}/end", headers=host(space))
        assert again.status_code == 200 and again.json()["state"] == "ended"


async def test_end_answers_within_its_wait_and_commits_when_the_disk_catches_up(tmp_path: Path) -> None:
    clock = FakeClock(datetime.now(UTC), autojump=True)
    async with node(tmp_path / "data", clock, end_wait_s=0.3) as n:
        stages = n.stages
        disk = StuckDisk(tmp_path / "stuck")
        disk.flowing.set()
        stages.media = disk
        space = await n.create(starts_in_s=None)
        live = await n.directory.get_space(space["id"])
        await stages.start_stage(live)
        await stages.went_live(live)
        await clock.sleep(1.0)
        disk.flowing.clear()  # the disk stops taking writes
        await clock.sleep(2.5)
        started = asyncio.get_running_loop().time()
        ended = await n.client.post(f"/api/spaces/{space['id']}/end", headers=host(space))
        assert asyncio.get_running_loop().time() - started < 2.0
        assert ended.status_code == 200 and ended.json()["state"] == "ended"
        assert stages.live_space_ids() == []  # its slot is free at once
        stored = await n.directory.store.get(SpaceId(space["id"]))
        assert stored is not None and stored.state.value == "live"  # not committed: writes wait
        disk.flowing.set()

        async def committed() -> bool:
            stored = await n.directory.store.get(SpaceId(space["id"]))
            return stored is not None and stored.state.value == "ended"

        await eventually(committed, "the end committed once the disk caught up", timeout_s=5)


async def test_hold_audio_is_refused_when_it_would_amplify_and_goes_with_the_end(tmp_path: Path) -> None:
    clock = FakeClock(datetime.now(UTC))
    async with node(tmp_path / "data", clock, hold_audio_max_s=60) as n:
        space = await n.create(starts_in_s=300)
        url = f"/api/spaces/{space['id']}/hold-audio"
        tiny = await n.client.put(url, content=wav(1, 600), headers=host(space))
        assert tiny.status_code == 400 and "sample rate is 1 Hz" in tiny.json()["error"]
        too_long = await n.client.put(url, content=wav(8000, 61), headers=host(space))
        assert too_long.status_code == 400 and "up to 1 minute" in too_long.json()["error"]
        assert await n.stages.media.read(SpaceId(space["id"]), HOLD_NAME) is None
        assert (await n.client.put(url, content=wav_bytes(300, 2.0), headers=host(space))).status_code == 200
        assert await n.stages.media.read(SpaceId(space["id"]), HOLD_NAME) is not None
        assert (await n.client.post(f"/api/spaces/{space['id']}/end", headers=host(space))).status_code == 200
        assert await n.stages.media.read(SpaceId(space["id"]), HOLD_NAME) is None
