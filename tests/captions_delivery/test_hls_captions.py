"""The stream's subtitles rendition: named in the multivariant playlist, one WebVTT segment per
audio segment (same numbers, lengths and dates), listed live only once its words are in, every
cue placed on the audio's own decode time (read from the fMP4), a private space's behind its link."""

from __future__ import annotations

import re
import struct
from datetime import timedelta
from pathlib import Path

import webvtt

from podium.delivery.hls import CAPTIONS_SETTLE_S
from podium.ids import SpaceId
from podium.spaces.schedule import Schedule
from tests.captions_delivery.support import Node, host, node


def segments_of(playlist: str, ext: str) -> list[tuple[int, str, str]]:
    """(number, EXTINF, date) of each segment a playlist lists."""
    lines = playlist.splitlines()
    sequence = int(next(line for line in lines if line.startswith("#EXT-X-MEDIA-SEQUENCE:")).split(":")[1])
    found, date, duration = [], "", ""
    for line in lines:
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            date = line.split(":", 1)[1]
        elif line.startswith("#EXTINF:"):
            duration = line
        elif line.endswith(ext) and not line.startswith("#"):
            number = int(line[1:].split(".")[0])
            found.append((number, duration, date))
    assert [n for n, _, _ in found] == list(range(sequence, sequence + len(found)))
    return found


def decode_time_90k(segment: bytes) -> int:
    """The first fragment's baseMediaDecodeTime (tfdt v1, 48 kHz), at 90 kHz."""
    at = segment.index(b"tfdt")
    assert segment[at + 4] == 1
    (base,) = struct.unpack(">Q", segment[at + 8 : at + 16])
    return int(base * 90_000 // 48_000)


async def check_cues_line_up(n: Node, space: dict, msn: int, cue: tuple[str, str, str, str]) -> None:
    vtt = await n.client.get(f"/hls/{space['id']}/c{msn}.vtt")
    assert vtt.status_code == 200 and vtt.headers["content-type"].startswith("text/vtt")
    audio = await n.client.get(f"/hls/{space['id']}/s{msn}.m4s")
    mapped = re.search(r"X-TIMESTAMP-MAP=MPEGTS:(\d+),LOCAL:(\S+)", vtt.text)
    assert mapped is not None and int(mapped[1]) == decode_time_90k(audio.content)
    cues = [(c.start, c.end, c.voice, c.text) for c in webvtt.from_string(vtt.text)]
    assert cue in cues


async def test_the_rendition_follows_the_audio_and_lists_a_segment_once_its_words_are_in(tmp_path: Path) -> None:
    async with node(tmp_path / "data") as n:
        space = await n.create()
        await n.go_live(space)
        index = (await n.client.get(f"/hls/{space['id']}/index.m3u8")).text
        assert (
            '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="cc",NAME="Captions (en)",LANGUAGE="en",DEFAULT=NO,'
            'AUTOSELECT=YES,URI="captions.m3u8"' in index
        )
        assert re.search(r'#EXT-X-STREAM-INF:.*SUBTITLES="cc"\nlive\.m3u8', index)

        await n.say(space, "host.1", 1.0, 2.5, "Welcome to the show")
        await n.clock.sleep(5.0)
        early = await n.client.get(f"/hls/{space['id']}/captions.m3u8")
        assert early.status_code == 200 and "c0.vtt" not in early.text and "#EXT-X-ENDLIST" not in early.text
        assert (await n.client.get(f"/hls/{space['id']}/c0.vtt")).status_code == 404  # not listed yet

        await n.clock.sleep(6.0)
        audio = segments_of((await n.client.get(f"/hls/{space['id']}/live.m3u8")).text, ".m4s")
        captions = segments_of((await n.client.get(f"/hls/{space['id']}/captions.m3u8")).text, ".vtt")
        assert captions and captions == audio[: len(captions)]
        settled = sum(float(d[8:].rstrip(",")) for _, d, _ in audio[len(captions) :])
        assert settled >= CAPTIONS_SETTLE_S - 2.1  # the newest are held back until their words are in
        await check_cues_line_up(n, space, 0, ("00:00:01.000", "00:00:02.500", "Ada", "Welcome to the show"))
        first = await n.client.get(f"/hls/{space['id']}/c0.vtt")
        assert "immutable" in first.headers["cache-control"]

        await n.end(space)
        ended = (await n.client.get(f"/hls/{space['id']}/captions.m3u8")).text
        assert ended.rstrip().endswith("#EXT-X-ENDLIST")
        replay = segments_of((await n.client.get(f"/hls/{space['id']}/live.m3u8")).text, ".m4s")
        assert segments_of(ended, ".vtt") == replay


async def test_cues_line_up_with_the_audio_after_a_pre_show(tmp_path: Path) -> None:
    async with node(tmp_path / "data") as n:
        starts = n.clock.now() + timedelta(seconds=60)
        space = await n.create(starts_at=starts.isoformat())
        schedule: Schedule = n.app.state.schedule
        await schedule.run()
        stage = n.app.state.stages.stage(SpaceId(space["id"]))
        assert stage is not None and stage.preshow
        await n.clock.sleep(5.0)  # two segments and more of hold audio
        stage.go_live()
        await n.app.state.stages.went_live(await n.app.state.directory.get_space(space["id"]))
        await n.say(space, "host.1", 0.5, 1.25, "We are live")
        await n.say(space, "host.2", 3.0, 3.5, "Second segment")
        await n.clock.sleep(5.0)
        await n.end(space)

        records = await n.app.state.media.records(SpaceId(space["id"]))
        first = next(r.msn for r in records if not r.preshow)
        assert first >= 2
        listed = segments_of((await n.client.get(f"/hls/{space['id']}/captions.m3u8")).text, ".vtt")
        assert listed[0][0] == first  # the replay starts with the recording, as its audio does
        await check_cues_line_up(n, space, first, ("00:00:00.500", "00:00:01.250", "Ada", "We are live"))
        await check_cues_line_up(n, space, first + 1, ("00:00:03.000", "00:00:03.500", "Ada", "Second segment"))


async def test_a_private_spaces_captions_need_the_signed_link(tmp_path: Path) -> None:
    async with node(tmp_path / "data") as n:
        space = await n.create(private=True)
        await n.go_live(space)
        await n.say(space, "host.1", 0.5, 1.5, "members only")
        await n.clock.sleep(12.0)
        for name in ("captions.m3u8", "c0.vtt"):
            refused = await n.client.get(f"/hls/{space['id']}/{name}")
            assert refused.status_code == 403 and "members only" not in refused.text
        links = f"/api/spaces/{space['id']}/listener-links"
        link = (await n.client.post(links, json={}, headers=host(space))).json()
        base = link["hls"].removesuffix("index.m3u8")
        assert 'URI="captions.m3u8"' in (await n.client.get(link["hls"])).text
        assert "c0.vtt" in (await n.client.get(base + "captions.m3u8")).text
        assert "members only" in (await n.client.get(base + "c0.vtt")).text
