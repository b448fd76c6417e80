"""The recording on a real `podium serve`: replay and download at the end, clips that verify,
the podcast feed, a space that is not recorded, and a kill -9 in the middle of a space."""

from __future__ import annotations

import asyncio
import io
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import feedparser
import httpx
import numpy as np
import pytest

from podium.media import clips
from podium.testing import eventually
from podium.testing.whip_client import SampleTrack, publish, tone
from tests.conftest import Server
from tests.test_live_media import create_space, dominant_hz, listed_seconds, wait_for_media
from tests.web.test_schedule_api import signed_in

pytestmark = pytest.mark.media

SEGMENT_S = 2.048
LATER = (
    (datetime.now(UTC) + timedelta(days=30))
    .replace(hour=20, minute=0, second=0, microsecond=0)
    .strftime("%Y-%m-%dT%H:%M:%SZ")
)


def decode_m4a(data: bytes) -> tuple[np.ndarray, float]:
    """Samples (mono, float) as PyAV decodes them, and the container's duration in seconds."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac"
        duration = float(stream.duration * stream.time_base) if stream.duration else 0.0
        pcm = np.concatenate([frame.to_ndarray().reshape(-1) for frame in container.decode(stream)])
    return pcm.astype(np.float64), duration


def ffprobe_duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "default=nw=1:nk=1", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip())


async def end(client: httpx.AsyncClient, space: dict) -> float:
    """End the space; returns the time (monotonic) the end was answered."""
    response = await client.post(
        f"/api/spaces/{space['id']}/end", headers={"Authorization": f"Bearer {space['host_token']}"}
    )
    assert response.status_code == 200, response.text
    return time.monotonic()


async def test_the_end_publishes_replay_and_download_at_once(server: Server, tmp_path: Path) -> None:
    space = await create_space(server, "Replay check")
    assert space["record"] is True and "download" not in space["urls"]
    speaker = await publish(server.base + space["urls"]["whip"], space["host_token"], SampleTrack(tone(440)))
    async with httpx.AsyncClient(base_url=server.base, timeout=20) as client:
        await wait_for_media(server, space, 1)
        await wait_for_media(server, space, 9)
        for _ in range(3):
            assert (await client.post(f"/api/spaces/{space['id']}/reactions", json={"emoji": "👏"})).status_code < 300
        # The timeline closes one interval a second: the reactions are in a closed one once the
        # interval open when they were all in (after the newest closed one then) has closed too.
        timeline = f"/timeline/{space['id']}/index.json"
        open_then = (await client.get(timeline)).json()["latest"] + 1

        async def closed() -> bool:
            return bool((await client.get(timeline)).json()["latest"] >= open_then)

        await eventually(closed, "the timeline closed the reactions' interval", timeout_s=10.0, poll_s=0.1)
        # While live, the download is not there yet, and says why.
        early = await client.get(f"/media/{space['id']}/recording.m4a")
        assert early.status_code == 409 and "ends" in early.json()["error"]
        await speaker.close()
        await end(client, space)

        view = (await client.get(f"/api/spaces/{space['id']}")).json()
        # Live from the host's first audio to the end, as the server stamped them.
        live_s = (datetime.fromisoformat(view["ended_at"]) - datetime.fromisoformat(view["started_at"])).total_seconds()
        playlist = await client.get(view["urls"]["replay"].replace("index.m3u8", "live.m3u8"))
        download = await client.get(view["urls"]["download"])
        replay = (await client.get(f"/api/spaces/{space['id']}/replay")).json()
    # The reactions come back in the replay, at the moment of the recording they were sent.
    assert sum(r["counts"].get("👏", 0) for r in replay["reactions"]) == 3
    assert all(0 < r["at_s"] <= replay["duration_s"] for r in replay["reactions"])
    assert playlist.status_code == 200 and playlist.text.rstrip().endswith("#EXT-X-ENDLIST")
    assert download.status_code == 200 and download.headers["content-type"] == "audio/mp4"
    # Both answered the first request made after the end was answered: nothing to wait for, no retry.
    # (How fast, for an hour or two of recording, is measured in bench/replay.py, not asserted here.)

    path = tmp_path / "replay.m4a"
    path.write_bytes(download.content)
    pcm, duration = decode_m4a(download.content)
    probed = ffprobe_duration(path)
    # The download lasts as long as the space was live (it went live with its first audio), ± a segment.
    assert abs(probed - live_s) <= SEGMENT_S, (probed, live_s)
    assert abs(duration - probed) < 0.1
    assert abs(len(pcm) / 48000 - probed) < 0.1
    assert abs(dominant_hz(pcm[48000:96000]) - 440) < 5
    # A remux, not a re-encode: the same AAC bytes as the replay's segments.
    segments = re.findall(r"^(s\d+\.m4s)$", playlist.text, re.M)
    async with httpx.AsyncClient(base_url=server.base, timeout=20) as client:
        first = (await client.get(f"/hls/{space['id']}/{segments[0]}")).content
    mdat = first[first.index(b"mdat") + 4 :]
    assert mdat[:64] in download.content


async def test_a_clip_verifies_and_a_changed_or_foreign_one_does_not(server: Server, tmp_path: Path) -> None:
    # Clips name their instance only when it is configured (never from a request's Host header).
    server.stop()
    server.env = {"PODIUM_PUBLIC_URL": server.base}
    server.start()
    spaces = [await create_space(server, "Clip source"), await create_space(server, "Another space")]
    speakers = [
        await publish(s["urls"]["whip"], s["host_token"], SampleTrack(tone(hz)))  # absolute: PODIUM_PUBLIC_URL
        for s, hz in zip(spaces, (440, 660), strict=True)
    ]
    for s in spaces:
        await wait_for_media(server, s, 13)
    async with httpx.AsyncClient(base_url=server.base, timeout=20) as client:
        made = []
        for s in spaces:
            response = await client.post(f"/api/spaces/{s['id']}/clips", json={"start_s": 1.0, "duration_s": 10})
            assert response.status_code == 201, response.text
            made.append(response.json())
        # Refusals say what is wrong.
        for body, needle in (
            ({"start_s": 0, "duration_s": 5}, "10 to 120"),
            ({"start_s": 0, "duration_s": 200}, "10 to 120"),
            ({"start_s": 500, "duration_s": 10}, "runs past"),
            ({"start_s": "soon", "duration_s": 10}, "start_s"),
        ):
            refused = await client.post(f"/api/spaces/{spaces[0]['id']}/clips", json=body)
            assert refused.status_code == 400 and needle in refused.json()["error"], refused.text
        clip = made[0]
        file = (await client.get(clip["urls"]["file"])).content
        page = await client.get(clip["urls"]["page"])
        assert page.status_code == 200
        facts = clip["facts"]
        assert facts["duration_s"] == pytest.approx(10, abs=0.03) and facts["offset_s"] == pytest.approx(1, abs=0.03)
        assert facts["instance"] == server.base and facts["context_url"].startswith(f"{server.base}/s/")

        async def verdict(data: bytes) -> dict:
            response = await client.post("/api/verify", content=data)
            assert response.status_code == 200
            return response.json()

        assert (await verdict(file))["valid"] is True
        tampered = bytearray(file)
        tampered[len(tampered) // 2] ^= 0x01  # one byte of audio
        result = await verdict(bytes(tampered))
        assert result["valid"] is False
        assert [c["name"] for c in result["checks"] if not c["ok"]] == ["clip_sha256", "excerpt"]
        # The other space's audio under this clip's provenance: not an excerpt of this recording.
        other_media, _ = clips.open_clip((await client.get(made[1]["urls"]["file"])).content)
        _, _envelope = clips.open_clip(file)
        forged = other_media + file[len(clips.open_clip(file)[0]) :]
        result = await verdict(forged)
        assert result["valid"] is False and not any(c["ok"] for c in result["checks"] if c["name"] == "excerpt")
        assert (await verdict(b"not an mp4 at all"))["valid"] is False
        too_big = await client.post("/api/verify", content=b"\0" * (clips.MAX_CLIP_BYTES + 1))
        assert too_big.status_code == 413
    for speaker in speakers:
        await speaker.close()

    # The same checks from the command line, as a reader of a quoted clip would run them.
    good, bad = tmp_path / "clip.m4a", tmp_path / "tampered.m4a"
    good.write_bytes(file)
    bad.write_bytes(bytes(tampered))
    for path, code, word in ((good, 0, "VALID"), (bad, 1, "NOT VALID")):
        run = subprocess.run(
            [sys.executable, "-m", "podium", "verify", str(path)], capture_output=True, text=True, timeout=60
        )
        assert run.returncode == code, run.stdout + run.stderr
        assert word in run.stdout
    # A clip decodes like any audio file, and holds the speaker's tone.
    pcm, duration = decode_m4a(file)
    assert duration == pytest.approx(10, abs=0.05) and abs(dominant_hz(pcm) - 440) < 5


async def test_the_podcast_feed_lists_live_items_and_replays(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base, timeout=20) as client:
        # A scheduled space is announced when an account created it (anonymous ones are not).
        ada = await signed_in(client)
        later = {"title": "Later <today> & more", "starts_at": LATER}
        assert (await client.post("/api/spaces", json=later, headers=ada)).status_code == 201
        await client.post("/api/spaces", json={"title": "Anonymous, later", "starts_at": LATER})
        live = await create_space(server, "On air")
        ended = await create_space(server, "Finished")
        speakers = [
            await publish(server.base + s["urls"]["whip"], s["host_token"], SampleTrack(tone(440)))
            for s in (live, ended)
        ]
        await wait_for_media(server, ended, 3)
        await speakers[1].close()
        await end(client, ended)
        response = await client.get("/feed.xml")
        listing = (await client.get("/api/spaces")).json()
        await speakers[0].close()
    # What is on: the live one, and the account's scheduled one; the ended one is in the feed only.
    assert [s["title"] for s in listing["live"]] == ["On air"]
    assert [s["title"] for s in listing["upcoming"]] == ["Later <today> & more"]
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/rss+xml")
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "rss20" and feed.namespaces.get("podcast") == "https://podcastindex.org/namespace/1.0"
    # The ended space is an episode with its download as the enclosure.
    (episode,) = feed.entries
    assert episode.title == "Finished"
    (enclosure,) = episode.enclosures
    assert enclosure.href.endswith(f"/media/{ended['id']}/recording.m4a") and enclosure.type == "audio/mp4"
    assert int(enclosure.length) > 10_000
    # Live items: feedparser does not read them, so the XML is read as XML.
    import xml.etree.ElementTree as ET

    root = ET.fromstring(response.content)
    ns = {"podcast": "https://podcastindex.org/namespace/1.0"}
    items = {i.findtext("title"): i for i in root.iter(f"{{{ns['podcast']}}}liveItem")}
    assert {t: i.get("status") for t, i in items.items()} == {
        "Later <today> & more": "pending",
        "On air": "live",
        "Finished": "ended",
    }
    for item in items.values():
        assert item.get("start") and item.get("end") and item.find("enclosure") is not None
        assert item.find("guid") is not None and item.find("podcast:contentLink", ns) is not None
    assert items["Later <today> & more"].get("start") == LATER
    assert root.find("channel/podcast:guid", ns) is not None


async def test_a_space_not_recorded_keeps_nothing(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base, timeout=20) as client:
        space = (await client.post("/api/spaces", json={"title": "Off the record"})).json()
        auth = {"Authorization": f"Bearer {space['host_token']}"}
        assert (
            await client.patch(f"/api/spaces/{space['id']}", json={"record": "no"}, headers=auth)
        ).status_code == 400
        assert (await client.patch(f"/api/spaces/{space['id']}", json={"record": False})).status_code == 401
        switched = await client.patch(f"/api/spaces/{space['id']}", json={"record": False}, headers=auth)
        assert switched.status_code == 200 and switched.json()["record"] is False
        speaker = await publish(server.base + space["urls"]["whip"], space["host_token"], SampleTrack(tone(440)))
        await wait_for_media(server, space, 3)
        # Live now: the choice is made.
        late = await client.patch(f"/api/spaces/{space['id']}", json={"record": True}, headers=auth)
        assert late.status_code == 409 and "before" in late.json()["error"]
        await speaker.close()
        await end(client, space)
        view = (await client.get(f"/api/spaces/{space['id']}")).json()
        assert "replay" not in view["urls"] and "download" not in view["urls"]
        assert (await client.get(f"/media/{space['id']}/recording.m4a")).status_code == 404
        # The audio went before the end was answered; the timeline's text (posts) stays.
        folder = server.data_dir / "media" / space["id"]
        left = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
        assert not [n for n in left if n.endswith((".m4s", ".m4a", ".mp4")) or n == "segments.jsonl"], left


async def test_kill_9_in_the_middle_loses_at_most_a_part_and_the_replay_plays_through(server: Server) -> None:
    space = await create_space(server, "Crash check")
    speaker = await publish(server.base + space["urls"]["whip"], space["host_token"], SampleTrack(tone(440)))
    before = await wait_for_media(server, space, 7)
    async with httpx.AsyncClient(base_url=server.base, timeout=20) as client:

        async def mid_segment() -> str | None:
            # Into the middle of a segment: parts of the one being made are listed already.
            text = (await client.get(space["urls"]["hls"].replace("index.m3u8", "live.m3u8"))).text
            open_segment = text.rsplit("#EXTINF", 1)[-1].split("\n", 2)[-1]
            return text if text != before and len(re.findall(r"#EXT-X-PART:", open_segment)) >= 2 else None

        made_s = listed_seconds(await eventually(mid_segment, "a segment half made", timeout_s=10.0, poll_s=0.05))
    server.kill()  # SIGKILL: no shutdown code runs
    await speaker.pc.close()
    assert made_s >= listed_seconds(before)
    server.start()
    async with httpx.AsyncClient(base_url=server.base, timeout=20) as client:
        resumed = await client.get(space["urls"]["hls"].replace("index.m3u8", "live.m3u8"))
        assert resumed.status_code == 200
        # What was made before the kill is still listed, up to the part being made (≤ 0.512 s).
        first_run = resumed.text.split("#EXT-X-DISCONTINUITY")[0]
        kept_s = sum(float(d) for d in re.findall(r"#EXTINF:([\d.]+),", first_run))
        assert made_s - kept_s <= 0.52, (made_s, kept_s)
        # The host goes on, then ends.
        speaker = await publish(server.base + space["urls"]["whip"], space["host_token"], SampleTrack(tone(660)))
        await wait_for_media(server, space, kept_s + 4)
        await speaker.close()
        await end(client, space)
        replay = (await client.get(space["urls"]["hls"].replace("index.m3u8", "live.m3u8"))).text
        download = await client.get(f"/media/{space['id']}/recording.m4a")
    assert "#EXT-X-DISCONTINUITY" in replay and replay.rstrip().endswith("#EXT-X-ENDLIST")
    # A player of the field plays the replay from start to end across the gap.
    process = await asyncio.create_subprocess_exec(
        "ffmpeg",
        "-v",
        "error",
        "-i",
        server.base + space["urls"]["hls"],
        "-f",
        "s16le",
        "-ac",
        "1",
        "-ar",
        "48000",
        "-",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    played = np.frombuffer(out, dtype=np.int16).astype(np.float64)
    listed = sum(float(d) for d in re.findall(r"#EXTINF:([\d.]+),", replay))
    assert abs(len(played) / 48000 - listed) < 0.2
    assert abs(dominant_hz(played[48000:96000]) - 440) < 5 and abs(dominant_hz(played[-72000:-24000]) - 660) < 5
    pcm, _ = decode_m4a(download.content)
    assert abs(len(pcm) / 48000 - listed) < 0.2
