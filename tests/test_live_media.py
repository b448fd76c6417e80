"""End to end on a real `podium serve`: aiortc speakers over WHIP, ffmpeg and raw HTTP as listeners."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import VideoStreamTrack

from podium.media import ice
from podium.testing import eventually
from podium.testing.whip_client import SampleTrack, WhipRefused, publish, tone
from tests.conftest import Server

pytestmark = pytest.mark.media


async def create_space(server: Server, title: str = "Tone check") -> dict:
    async with httpx.AsyncClient(base_url=server.base) as client:
        response = await client.post("/api/spaces", json={"title": title})
    assert response.status_code == 201
    return response.json()


async def listen_with_ffmpeg(url: str, seconds: float) -> np.ndarray:
    process = await asyncio.create_subprocess_exec(
        "ffmpeg",
        "-v",
        "error",
        "-i",
        url,
        "-t",
        str(seconds),
        "-ac",
        "1",
        "-ar",
        "48000",
        "-f",
        "s16le",
        "-",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=seconds + 30)
    assert process.returncode == 0, err.decode()
    return np.frombuffer(out, dtype=np.int16).astype(np.float64)


def dominant_hz(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    spectrum[: int(50 * len(audio) / 48000)] = 0  # ignore DC and rumble
    return float(np.argmax(spectrum) * 48000 / len(audio))


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(audio**2))) if len(audio) else 0.0


def listed_seconds(playlist: str) -> float:
    """Seconds of media a playlist lists: whole segments, plus the parts of the one being made."""
    whole = sum(float(d) for d in re.findall(r"#EXTINF:([\d.]+),", playlist))
    tail = playlist.rsplit("#EXTINF", 1)[-1]
    return whole + sum(float(d) for d in re.findall(r"#EXT-X-PART:DURATION=([\d.]+)", tail.split("\n", 2)[-1]))


async def wait_for_media(server: Server, space: dict, seconds: float) -> str:
    """Wait until the stream has made `seconds` of audio since it started (bounded: 60 s)."""
    async with httpx.AsyncClient(base_url=server.base, timeout=20) as client:

        async def advanced() -> str | None:
            text = (await client.get(space["urls"]["hls"].replace("index.m3u8", "live.m3u8"))).text
            return text if listed_seconds(text) >= seconds else None

        found: str = await eventually(advanced, f"the stream made {seconds} s", timeout_s=60, poll_s=0.1)
        return found


async def test_a_speakers_tone_reaches_ffmpeg_at_its_frequency(server: Server) -> None:
    space = await create_space(server)
    publisher = await publish(server.base + space["urls"]["whip"], space["host_token"], SampleTrack(tone(440)))
    try:
        await wait_for_media(server, space, 3)
        audio = await listen_with_ffmpeg(server.base + space["urls"]["hls"], 4)
        assert len(audio) >= 48000 * 3.5
        assert abs(dominant_hz(audio) - 440) <= 5
        assert rms(audio) > 1000  # heard, not a whisper
        async with httpx.AsyncClient(base_url=server.base) as client:
            public = (await client.get(f"/api/spaces/{space['id']}")).json()
        assert public["state"] == "live" and public["started_at"] and public["speakers"] == 1
    finally:
        await publisher.close()


async def test_refusals_on_the_running_server(server: Server) -> None:
    space = await create_space(server)
    other = await create_space(server, "Other")
    with pytest.raises(WhipRefused) as refused:
        await publish(server.base + space["urls"]["whip"], other["host_token"], SampleTrack(tone(440)))
    assert refused.value.status == 403
    with pytest.raises(WhipRefused) as refused:
        await publish(server.base + space["urls"]["whip"], "forged-token", SampleTrack(tone(440)))
    assert refused.value.status == 401
    async with httpx.AsyncClient(base_url=server.base) as client:
        response = await client.post(
            space["urls"]["whip"],
            content=b"v=0\r\nthis is not sdp",
            headers={"Authorization": f"Bearer {space['host_token']}", "Content-Type": "application/sdp"},
        )
        assert response.status_code == 400 and "malformed" in response.json()["error"]
        assert (await client.get(f"/api/spaces/{space['id']}")).json()["state"] == "scheduled"


async def test_video_is_declined_and_audio_still_flows(server: Server) -> None:
    space = await create_space(server)
    ice.configure("only")
    pc = RTCPeerConnection(ice.rtc_configuration())
    pc.addTransceiver(SampleTrack(tone(440)), direction="sendonly")
    pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient(base_url=server.base) as client:
        response = await client.post(
            space["urls"]["whip"],
            content=pc.localDescription.sdp.encode(),
            headers={"Authorization": f"Bearer {space['host_token']}", "Content-Type": "application/sdp"},
        )
    await pc.close()
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/sdp")
    media_lines = re.findall(r"^m=(\w+) (\d+)", response.text, re.M)
    assert media_lines[0][0] == "audio" and media_lines[0][1] != "0"
    assert media_lines[1] == ("video", "0")
    assert response.headers["location"].startswith(f"/whip/{space['id']}/")


async def test_silence_keeps_flowing_after_the_speaker_leaves_and_blocking_reload_waits(server: Server) -> None:
    space = await create_space(server)
    publisher = await publish(server.base + space["urls"]["whip"], space["host_token"], SampleTrack(tone(440)))
    await wait_for_media(server, space, 1)
    await publisher.close()
    live = server.base + space["urls"]["hls"].replace("index.m3u8", "live.m3u8")
    async with httpx.AsyncClient(timeout=20) as client:
        text = (await client.get(live)).text
        hint = re.search(r'PRELOAD-HINT:TYPE=PART,URI="p(\d+)-(\d+)\.m4s"', text)
        assert hint
        msn, part = int(hint.group(1)), int(hint.group(2))
        # Ask for the part that does not exist yet: the answer comes when it does, and lists it.
        blocked = await client.get(live, params={"_HLS_msn": msn, "_HLS_part": part})
        assert blocked.status_code == 200
        assert f'URI="p{msn}-{part}.m4s"' in blocked.text
        part_url = live.replace("live.m3u8", f"p{msn}-{part}.m4s")
        part_response = await client.get(part_url)
        assert part_response.status_code == 200
        assert "immutable" in part_response.headers["cache-control"]
        # The hot path (no query) and the full application (any query) answer alike.
        routed = await client.get(part_url, params={"via": "router"})
        assert routed.content == part_response.content
        for header in ("content-type", "cache-control", "access-control-allow-origin", "content-length"):
            assert routed.headers[header] == part_response.headers[header], header
        too_far = await client.get(live, params={"_HLS_msn": msn + 5})
        assert too_far.status_code == 400
    await wait_for_media(server, space, 12)  # seconds pass with nobody on stage
    audio = await listen_with_ffmpeg(server.base + space["urls"]["hls"], 3)
    assert len(audio) >= 48000 * 2.5  # the stream did not stall: ffmpeg got its seconds
    tail = audio[-48000:]
    assert rms(tail) < 50  # and it is silence now


async def test_end_turns_the_playlist_into_a_finished_recording(server: Server) -> None:
    space = await create_space(server)
    publisher = await publish(server.base + space["urls"]["whip"], space["host_token"], SampleTrack(tone(440)))
    await wait_for_media(server, space, 3)
    async with httpx.AsyncClient(base_url=server.base, timeout=20) as client:
        response = await client.post(
            f"/api/spaces/{space['id']}/end", headers={"Authorization": f"Bearer {space['host_token']}"}
        )
        assert response.status_code == 200 and response.json()["state"] == "ended"
        playlist = await client.get(space["urls"]["hls"].replace("index.m3u8", "live.m3u8"))
        assert playlist.text.rstrip().endswith("#EXT-X-ENDLIST")
        segment = await client.get(space["urls"]["hls"].replace("index.m3u8", "s0.m4s"))
        assert segment.content[4:8] == b"moof"
        # httpx asks for gzip: audio would not shrink and playlists are the hot path, so neither is.
        assert "content-encoding" not in playlist.headers and "content-encoding" not in segment.headers
    await publisher.pc.close()
    audio = await listen_with_ffmpeg(server.base + space["urls"]["hls"], 30)
    assert abs(dominant_hz(audio) - 440) <= 5


async def test_restart_keeps_spaces_the_secret_and_the_stream(server: Server, tmp_path: Path) -> None:
    space = await create_space(server)
    publisher = await publish(server.base + space["urls"]["whip"], space["host_token"], SampleTrack(tone(440)))
    await wait_for_media(server, space, 5)
    await publisher.pc.close()
    secret = (server.data_dir / "secret").read_text()
    assert (server.data_dir / "secret").stat().st_mode & 0o077 == 0  # readable by its owner only
    server.stop()
    server.start()
    assert (server.data_dir / "secret").read_text() == secret
    async with httpx.AsyncClient(base_url=server.base, timeout=20) as client:
        public = (await client.get(f"/api/spaces/{space['id']}")).json()
        assert public["title"] == "Tone check" and public["state"] == "live"
        text = await wait_for_media(server, space, 8)
        assert "#EXT-X-DISCONTINUITY" in text  # the stage resumed after the restart
        # The old host token still works: the secret was kept.
        publisher = await publish(server.base + space["urls"]["whip"], space["host_token"], SampleTrack(tone(440)))
        await publisher.close()
        response = await client.post(
            f"/api/spaces/{space['id']}/end", headers={"Authorization": f"Bearer {space['host_token']}"}
        )
        assert response.status_code == 200
