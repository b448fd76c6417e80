"""The pre-show on a real `podium serve`: hold audio before the start, the switch to the stage, and a
recording that starts at the switch."""

from __future__ import annotations

import asyncio
import io
import wave
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest

from podium.media.hold import BED_HZ
from podium.testing import eventually
from podium.testing.whip_client import SampleTrack, publish, tone
from tests.conftest import Server
from tests.test_live_media import listed_seconds, listen_with_ffmpeg, rms, wait_for_media
from tests.test_replay import decode_m4a

pytestmark = pytest.mark.media


async def wait_for_preshow(client: httpx.AsyncClient, space_id: str) -> dict:
    """The space's state once its pre-show is open (the schedule looks every quarter second)."""

    async def opened() -> dict | None:
        state = (await client.get(f"/api/spaces/{space_id}")).json()
        return dict(state) if state["preshow"] else None

    found: dict = await eventually(opened, "the pre-show opened", timeout_s=4.0, poll_s=0.1)
    return found


async def stream_moves_on(client: httpx.AsyncClient, space: dict, seconds: float) -> None:
    """Until the space's stream has made `seconds` more of audio than it lists now (bounded: 30 s)."""
    playlist = space["urls"]["hls"].replace("index.m3u8", "live.m3u8")
    start = listed_seconds((await client.get(playlist)).text)

    async def moved_on() -> bool:
        return listed_seconds((await client.get(playlist)).text) >= start + seconds

    await eventually(moved_on, f"the stream made {seconds} s more", timeout_s=30, poll_s=0.1)


def band_energy(audio: np.ndarray, hz: float, width_hz: float = 8.0) -> float:
    """The share of the signal's energy within `width_hz` of `hz`."""
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio)))) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / 48000)
    return float(spectrum[np.abs(freqs - hz) < width_hz].sum() / max(spectrum.sum(), 1e-9))


async def listen_now(url: str, seconds: float) -> np.ndarray:
    """ffmpeg from the newest segment (its default starts three segments back)."""
    process = await asyncio.create_subprocess_exec(
        *("ffmpeg", "-v", "error", "-live_start_index", "-1", "-i", url, "-t", str(seconds)),
        *("-ac", "1", "-ar", "48000", "-f", "s16le", "-"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=seconds + 30)
    assert process.returncode == 0, err.decode()
    return np.frombuffer(out, dtype=np.int16).astype(np.float64)


def wav_bytes(hz: float, seconds: float) -> bytes:
    t = np.arange(int(seconds * 48000)) / 48000
    samples = (0.3 * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(samples.tobytes())
    return out.getvalue()


async def test_hold_audio_then_the_hosts_switch_and_a_recording_without_the_preshow(server: Server) -> None:
    starts = (datetime.now(UTC) + timedelta(minutes=10)).replace(microsecond=0)
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
        space = (await client.post("/api/spaces", json={"title": "Pre-show", "starts_at": starts.isoformat()})).json()
        host = {"Authorization": f"Bearer {space['host_token']}"}
        state = await wait_for_preshow(client, space["id"])
        assert state["state"] == "scheduled"
        hls = server.base + space["urls"]["hls"]

        # Listeners hear the tone bed before the start.
        bed = await listen_with_ffmpeg(hls, 3.0)
        assert rms(bed) > 300
        assert sum(band_energy(bed, hz) for hz in BED_HZ) > 0.8

        # Going live needs the host's microphone; connecting it is not going live (backstage).
        refused = await client.post(f"/api/spaces/{space['id']}/go-live", headers=host)
        assert refused.status_code == 409 and "microphone" in refused.json()["error"]
        speaker = await publish(server.base + space["urls"]["whip"], space["host_token"], SampleTrack(tone(660.0)))
        try:

            async def on_stage() -> bool:
                board = (await client.get(f"/api/spaces/{space['id']}/board", headers=host)).json()
                return bool(board["stream"]["speakers"] == 1)

            # The host is connected, and the stage makes more of the stream while their audio comes in.
            await eventually(on_stage, "the host's microphone is connected", timeout_s=10.0, poll_s=0.1)
            await stream_moves_on(client, space, 1.5)
            assert (await client.get(f"/api/spaces/{space['id']}")).json()["state"] == "scheduled"
            backstage = await listen_now(hls, 2.0)
            assert band_energy(backstage, 660.0) < 0.01, "the host is backstage: listeners do not hear them"

            # The host's own hold audio replaces the bed at once; a file that is not audio is refused.
            bad = await client.put(f"/api/spaces/{space['id']}/hold-audio", content=b"not audio", headers=host)
            assert bad.status_code == 400 and "could not be read" in bad.json()["error"]
            stranger = await client.put(f"/api/spaces/{space['id']}/hold-audio", content=wav_bytes(500, 2))
            assert stranger.status_code == 401
            uploaded = await client.put(
                f"/api/spaces/{space['id']}/hold-audio", content=wav_bytes(500, 2), headers=host
            )
            assert uploaded.status_code == 200 and uploaded.json()["hold_audio_s"] == pytest.approx(2.0, abs=0.01)
            await stream_moves_on(client, space, 2.5)
            assert band_energy(await listen_now(hls, 2.0), 500.0) > 0.8

            live = await client.post(f"/api/spaces/{space['id']}/go-live", headers=host)
            assert live.status_code == 200 and live.json()["state"] == "live" and not live.json()["preshow"]
            await stream_moves_on(client, space, 3.0)
            on_air = await listen_now(hls, 2.0)
            assert band_energy(on_air, 660.0) > 0.8, "after the switch listeners hear the stage"
            again = await client.post(f"/api/spaces/{space['id']}/go-live", headers=host)
            assert again.status_code == 409
            await stream_moves_on(client, space, 2.0)
        finally:
            await speaker.close()
        ended = await client.post(f"/api/spaces/{space['id']}/end", headers=host)
        assert ended.status_code == 200
        ended_view = ended.json()
        download = await client.get(ended_view["urls"]["download"])
        replay = (await client.get(hls.replace("index.m3u8", "live.m3u8"))).text

    assert download.status_code == 200
    audio, duration_s = decode_m4a(download.content)
    live_s = datetime.fromisoformat(ended_view["ended_at"]) - datetime.fromisoformat(ended_view["started_at"])
    # The recording is the show: from the switch to the end, without the pre-show's minutes of hold audio.
    assert duration_s == pytest.approx(live_s.total_seconds(), abs=1.2)
    assert band_energy(audio[48000:], 660.0) > 0.5
    assert band_energy(audio, 500.0) < 0.01 and sum(band_energy(audio, hz) for hz in BED_HZ) < 0.01
    assert "#EXT-X-ENDLIST" in replay and "#EXT-X-MEDIA-SEQUENCE:0" not in replay


async def test_a_space_ended_in_its_preshow_keeps_no_recording(server: Server) -> None:
    starts = (datetime.now(UTC) + timedelta(minutes=5)).replace(microsecond=0)
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
        space = (await client.post("/api/spaces", json={"title": "Called off", "starts_at": starts.isoformat()})).json()
        await wait_for_preshow(client, space["id"])
        await wait_for_media(server, space, 2.5)  # a segment or so of hold audio
        ended = await client.post(
            f"/api/spaces/{space['id']}/end", headers={"Authorization": f"Bearer {space['host_token']}"}
        )
        assert ended.status_code == 200 and ended.json()["state"] == "ended"
        assert "download" not in ended.json()["urls"] and ended.json()["started_at"] is None
        download = await client.get(f"/media/{space['id']}/recording.m4a")
        assert download.status_code == 404 and "not recorded" in download.json()["error"]
    assert not list((server.data_dir / "media" / space["id"]).glob("*.m4s"))
