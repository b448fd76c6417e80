"""Spaces and stages a stranger can open, against a real `podium serve` (issue 17, rows 1, 2, 15
and 18): refused, bounded or harmless, while a real live space plays on."""

from __future__ import annotations

import io
import json
import sqlite3
import time
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest

from podium.domain.stage import StageRules
from podium.testing import eventually
from podium.testing.whip_client import SampleTrack, publish, tone
from tests.conftest import Server, free_port
from tests.test_live_media import wait_for_media

pytestmark = pytest.mark.media

BUDGET = 3


@pytest.fixture
def node(tmp_path: Path) -> object:
    srv = Server(
        tmp_path / "data",
        free_port(),
        tmp_path / "podium.log",
        env={"PODIUM_MAX_STAGES": str(BUDGET), "PODIUM_END_WAIT_S": "2"},
    )
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def one_hertz_wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(1)
        w.writeframes(np.zeros(600, dtype=np.int16).tobytes())
    return out.getvalue()


async def test_a_flood_of_spaces_is_refused_and_bounded_and_the_live_space_plays_on(node: Server) -> None:
    async with httpx.AsyncClient(base_url=node.base, timeout=30) as client:
        real = (await client.post("/api/spaces", json={"title": "The real show"})).json()
        host = {"Authorization": f"Bearer {real['host_token']}"}
        speaker = await publish(node.base + real["urls"]["whip"], real["host_token"], SampleTrack(tone(440)))
        try:
            await wait_for_media(node, real, 3)

            # Row 1: starts in the past (the pre-show would open at once, for ever): refused.
            past = [
                await client.post("/api/spaces", json={"title": "x", "starts_at": "2020-01-01T00:00:00Z"})
                for _ in range(80)
            ]
            assert {r.status_code for r in past} == {400}
            assert "starts_at is in the past" in past[0].json()["error"]
            # A start within the pre-show's lead, from one address: so many, then 429.
            soon = (datetime.now(UTC) + timedelta(minutes=2)).isoformat()
            answers = [await client.post("/api/spaces", json={"title": "x", "starts_at": soon}) for _ in range(40)]
            created = [r.json() for r in answers if r.status_code == 201]
            # (20 an hour by default: the real space, from the same loopback address, was the first.)
            assert len(created) == 19 and {r.status_code for r in answers[19:]} == {429}
            assert all(int(r.headers["retry-after"]) > 0 for r in answers[19:])

            # Row 2: a 1 Hz WAV for a hold: refused before decoding, nothing kept.
            stranger = {"Authorization": f"Bearer {created[0]['host_token']}"}
            hold = await client.put(
                f"/api/spaces/{created[0]['id']}/hold-audio", content=one_hertz_wav(), headers=stranger
            )
            assert hold.status_code == 400 and "sample rate" in hold.json()["error"]
            assert not list((node.data_dir / "media").glob("*/hold.pcm"))

            # The node runs its budget of stages: the live one and BUDGET - 1 pre-shows. One look at
            # the schedule opens them and says, once each, that the others wait: all said, it is done.
            started = time.monotonic()
            waits = len(created) - (BUDGET - 1)

            def every_other_waits() -> bool:
                return node.log_path.read_text().count("pre-show waits") >= waits

            await eventually(every_other_waits, f"{waits} pre-shows wait for a slot", timeout_s=10.0)
            assert node.log_path.read_text().count("pre-show waits") == waits
            states = [(await client.get(f"/api/spaces/{s['id']}")).json() for s in created]
            assert sum(s["preshow"] for s in states) == BUDGET - 1
            # They play beside the live space: a couple of seconds of hold audio each.
            for preshow in (c for c, s in zip(created, states, strict=True) if s["preshow"]):
                await wait_for_media(node, preshow, 2)

            # Row 15: nothing of the stranger's is announced.
            listing = (await client.get("/api/spaces")).json()
            assert [s["id"] for s in listing["live"]] == [real["id"]] and listing["upcoming"] == []
            assert (await client.get("/feed.xml")).text.count("<podcast:liveItem") == 1

            # The live space: not a frame skipped, parts on time; its host's end answers at once.
            board = (await client.get(f"/api/spaces/{real['id']}/board", headers=host)).json()
            assert board["stream"]["frames_skipped"] == 0
            assert board["stream"]["last_part_age_s"] < 1.5
            began = time.monotonic()
            ended = await client.post(f"/api/spaces/{real['id']}/end", headers=host)
            assert ended.status_code == 200 and ended.json()["state"] == "ended"
            assert time.monotonic() - began < 5.0
            assert time.monotonic() - started < 30
        finally:
            await speaker.close()
    log = node.log_path.read_text()
    assert "skipping ahead" not in log
    assert "pre-show waits: the node runs its budget of 3 stages" in log


def end_rules_in_the_database(data_dir: Path, space_id: str) -> None:
    """What the first step of /end leaves when the node dies right after it: the stage rules
    stored as ended, the space not (yet) ended."""
    with sqlite3.connect(data_dir / "podium.db") as db:
        row = db.execute("SELECT state FROM stages WHERE space_id = ?", (space_id,)).fetchone()
        # A host alone on stage has not had its rules stored before: the end stores them first.
        rules = json.loads(row[0]) if row else StageRules().to_dict()
        rules["ended"] = True
        db.execute("DELETE FROM stages WHERE space_id = ?", (space_id,))
        db.execute("INSERT INTO stages (space_id, state) VALUES (?, ?)", (space_id, json.dumps(rules)))
        (space_state,) = db.execute("SELECT state FROM spaces WHERE id = ?", (space_id,)).fetchone()
        assert space_state == "live"


async def test_a_kill_during_the_end_leaves_a_state_the_restart_finishes(node: Server) -> None:
    async with httpx.AsyncClient(base_url=node.base, timeout=30) as client:
        space = (await client.post("/api/spaces", json={"title": "Cut off"})).json()
        host = {"Authorization": f"Bearer {space['host_token']}"}
        speaker = await publish(node.base + space["urls"]["whip"], space["host_token"], SampleTrack(tone(440)))
        try:
            await wait_for_media(node, space, 5)
        finally:
            await speaker.close()
    node.kill()  # kill -9 while live: parts of the open segment on the disk, no end
    end_rules_in_the_database(node.data_dir, space["id"])
    node.start()
    async with httpx.AsyncClient(base_url=node.base, timeout=30) as client:
        state = (await client.get(f"/api/spaces/{space['id']}")).json()
        assert state["state"] == "ended" and state["ended_at"] is not None
        playlist = (await client.get(space["urls"]["hls"].replace("index.m3u8", "live.m3u8"))).text
        assert "#EXT-X-ENDLIST" in playlist
        # Nobody publishes to it any more (the space has ended, said clearly), and ending it again is fine.
        offer = b"v=0\r\n"
        refused = await client.post(
            space["urls"]["whip"], content=offer, headers={**host, "Content-Type": "application/sdp"}
        )
        assert refused.status_code == 409 and "ended" in refused.json()["error"]
        again = await client.post(f"/api/spaces/{space['id']}/end", headers=host)
        assert again.status_code == 200 and again.json()["state"] == "ended"
        download = await client.get(state["urls"]["download"])
        assert download.status_code == 200 and len(download.content) > 10_000
    # After yet another restart it stays ended, and nothing tries to resume its stage.
    node.stop()
    node.start()
    async with httpx.AsyncClient(base_url=node.base, timeout=30) as client:
        assert (await client.get(f"/api/spaces/{space['id']}")).json()["state"] == "ended"
    assert "resumed live space" not in node.log_path.read_text().split("ended now")[-1]
