"""Two speakers on a real stage: the program holds both, each hears the other, demotion takes effect at once."""

from __future__ import annotations

import re
import subprocess

import httpx
import numpy as np
import pytest

from podium.testing import eventually
from podium.testing.whip_client import SampleTrack, publish, tone
from tests.conftest import Server
from tests.test_live_media import listen_with_ffmpeg, wait_for_media

pytestmark = pytest.mark.media


def band_energy(audio: np.ndarray, hz: float, rate: int = 48000) -> float:
    """Share of the signal's energy within ±10 Hz of `hz`."""
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio)))) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / rate)
    total = spectrum[freqs > 50].sum() or 1.0
    return float(spectrum[(freqs > hz - 10) & (freqs < hz + 10)].sum() / total)


def decode(init: bytes, part: bytes) -> np.ndarray:
    pcm = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", "pipe:0", "-f", "s16le", "-ac", "1", "-ar", "48000", "pipe:1"],
        input=init + part,
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(pcm, dtype=np.int16).astype(np.float64)


async def test_two_speakers_mix_minus_and_demotion(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base, timeout=20) as client:
        space = (await client.post("/api/spaces", json={"title": "Two voices"})).json()
        host = await publish(
            server.base + space["urls"]["whip"], space["host_token"], SampleTrack(tone(440)), receive=True
        )
        invite = (
            await client.post(
                f"/api/spaces/{space['id']}/invites",
                json={"role": "speaker"},
                headers={"Authorization": f"Bearer {space['host_token']}"},
            )
        ).json()
        guest = await publish(server.base + invite["whip"], invite["token"], SampleTrack(tone(660)), receive=True)
        await wait_for_media(server, space, 6)

        # 1. A client Podium did not write hears both voices in the program.
        program = await listen_with_ffmpeg(server.base + space["urls"]["hls"], 3)
        assert band_energy(program, 440) > 0.1 and band_energy(program, 660) > 0.1

        # 2. Each speaker hears the other and not themselves.
        host_hears = host.received_audio(1.0).astype(np.float64)
        guest_hears = guest.received_audio(1.0).astype(np.float64)
        assert len(host_hears) >= 24000 and len(guest_hears) >= 24000
        assert band_energy(host_hears, 660) > 0.5 and band_energy(host_hears, 440) < 0.01
        assert band_energy(guest_hears, 440) > 0.5 and band_energy(guest_hears, 660) < 0.01

        # 3. Moved to the audience: 660 Hz leaves the stream within about one part.
        live = space["urls"]["hls"].replace("index.m3u8", "live.m3u8")
        stage = (await client.get(f"/api/spaces/{space['id']}/stage")).json()
        guest_id = next(s["id"] for s in stage["speakers"] if s["role"] == "speaker")
        before = (await client.get(live)).text
        moved = await client.post(
            f"/api/spaces/{space['id']}/members/{guest_id}/audience",
            headers={"Authorization": f"Bearer {space['host_token']}"},
        )
        assert moved.status_code == 200
        last = [tuple(map(int, m)) for m in re.findall(r'URI="p(\d+)-(\d+)\.m4s"', before)][-1]
        # The part being made at the moment of demotion may still hold the guest; the one after may not.
        per_segment = 4
        index = last[0] * per_segment + last[1] + 2
        msn, part = divmod(index, per_segment)
        await client.get(live, params={"_HLS_msn": msn, "_HLS_part": part})
        init = (await client.get(space["urls"]["hls"].replace("index.m3u8", "init.mp4"))).content
        after = decode(init, (await client.get(live.replace("live.m3u8", f"p{msn}-{part}.m4s"))).content)
        earlier = decode(init, (await client.get(live.replace("live.m3u8", f"p{last[0]}-{last[1]}.m4s"))).content)
        assert band_energy(earlier, 660) > 0.05  # present before (the exact share depends on jitter)
        assert band_energy(after, 660) < 0.01 and band_energy(after, 440) > 0.5

        # The demoted guest's session was closed (within half a second) and their token stops working.
        async def host_alone() -> bool:
            stage = (await client.get(f"/api/spaces/{space['id']}/stage")).json()
            return [s["role"] for s in stage["speakers"]] == ["host"]

        await eventually(host_alone, "the demoted guest's session is closed", timeout_s=0.5)
        again = await client.post(
            space["urls"]["whip"],
            content=b"v=0\r\n",
            headers={"Authorization": f"Bearer {invite['token']}", "Content-Type": "application/sdp"},
        )
        assert again.status_code == 403
        await host.close()
        await guest.pc.close()


async def test_the_stage_survives_a_restart(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base, timeout=20) as client:
        space = (await client.post("/api/spaces", json={"title": "Kept"})).json()
        host = {"Authorization": f"Bearer {space['host_token']}"}
        invite = (
            await client.post(f"/api/spaces/{space['id']}/invites", json={"role": "speaker"}, headers=host)
        ).json()
        redeem_url = f"/api/spaces/{space['id']}/invites/redeem"
        invite_auth = {"Authorization": f"Bearer {invite['token']}"}
        speaker = (await client.post(redeem_url, json={"name": "Kept speaker"}, headers=invite_auth)).json()
        muted = await client.post(f"/api/spaces/{space['id']}/members/{speaker['member']['id']}/mute", headers=host)
        assert muted.status_code == 200
    server.stop()
    server.start()
    async with httpx.AsyncClient(base_url=server.base, timeout=20) as client:
        again = await client.post(redeem_url, json={"name": "Someone else"}, headers=invite_auth)
        assert again.status_code == 403 and "used already" in again.json()["error"]
        stage = (await client.get(f"/api/spaces/{space['id']}/stage")).json()
        kept = next(s for s in stage["speakers"] if s["name"] == "Kept speaker")
        assert kept["muted"] is True
        unmute_url = f"/api/spaces/{space['id']}/members/{speaker['member']['id']}/unmute"
        unmuted = await client.post(unmute_url, headers={"Authorization": f"Bearer {speaker['token']}"})
        assert unmuted.status_code == 200 and unmuted.json()["muted"] is False
