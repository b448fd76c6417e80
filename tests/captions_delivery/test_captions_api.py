"""Captions through the HTTP API: the host's switch and language, the transcript in three forms,
the timeline's captions, and a private space's transcript as private as its audio."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import feedparser
import webvtt

from podium.captions.engine import Caption
from podium.captions.service import MAX_CAPTION_CHARS, MAX_WAITING
from podium.captions.transcript import CAPTIONS_NAME
from podium.ids import SpaceId
from tests.captions_delivery.support import Node, host, node


async def timeline_captions(n: Node, space: dict[str, Any]) -> list[dict[str, Any]]:
    """Every caption the timeline objects carry so far (one interval closed now)."""
    await n.app.state.feed.tick(SpaceId(space["id"]))
    index = (await n.client.get(f"/timeline/{space['id']}/index.json")).json()
    found = []
    for seq in range(index["latest"] + 1):
        item = json.loads((await n.client.get(index["item_url"].format(seq=seq))).content)
        found += item.get("captions", [])
    return found


async def test_the_host_chooses_captions_and_listeners_cannot(tmp_path: Path) -> None:
    async with node(tmp_path / "data") as n:
        space = await n.create()
        url = f"/api/spaces/{space['id']}/captions"
        assert space["captions"] == {"enabled": True, "language": "en"}
        status = (await n.client.get(url, headers=host(space))).json()
        assert status["enabled"] and status["available"] and status["languages"] == ["en", "de"]
        assert status["engine"] == "recorder" and status["state"] == "live" and status["reason"] is None

        wrong = await n.client.put(url, json={"enabled": True, "language": "fr"}, headers=host(space))
        assert wrong.status_code == 400 and "en, de" in wrong.json()["error"]
        german = await n.client.put(url, json={"enabled": True, "language": "de"}, headers=host(space))
        assert german.status_code == 200 and german.json()["language"] == "de"

        anonymous = await n.client.put(url, json={"enabled": False})
        assert anonymous.status_code == 401 and "token" in anonymous.json()["error"]
        guest = (await n.client.post(f"/api/spaces/{space['id']}/guests", json={"name": "Listener"})).json()
        refused = await n.client.put(
            url, json={"enabled": False}, headers={"Authorization": f"Bearer {guest['token']}"}
        )
        assert refused.status_code == 403 and "host or a co-host" in refused.json()["error"]
        assert (await n.client.get(url, headers={"Authorization": f"Bearer {guest['token']}"})).status_code == 403

        off = await n.client.put(url, json={"enabled": False}, headers=host(space))
        assert off.json()["state"] == "off" and off.json()["language"] == "de"
        view = (await n.client.get(f"/api/spaces/{space['id']}")).json()
        assert view["captions"] == {"enabled": False, "language": "de"}
        bad = await n.client.put(url, json={"enabled": "yes"}, headers=host(space))
        assert bad.status_code == 400 and "enabled must be true or false" in bad.json()["error"]


async def test_a_node_without_an_engine_says_why_and_runs_without_captions(tmp_path: Path) -> None:
    async with node(tmp_path / "data", workers=False) as n:
        space = await n.create()
        assert space["captions"]["enabled"] is False
        status = (await n.client.get(f"/api/spaces/{space['id']}/captions", headers=host(space))).json()
        assert status["state"] == "unavailable" and "PODIUM_CAPTIONS_ENGINE=off" in status["detail"]
        on = await n.client.put(
            f"/api/spaces/{space['id']}/captions", json={"enabled": True, "language": "en"}, headers=host(space)
        )
        assert on.status_code == 409 and "not available on this node" in on.json()["error"]
        await n.go_live(space)
        await n.say(space, "host.1", 0.5, 1.5, "nobody hears this")
        assert (await n.client.get(f"/api/spaces/{space['id']}/transcript")).json()["segments"] == []
        index = (await n.client.get(f"/hls/{space['id']}/index.m3u8")).text
        assert "SUBTITLES" not in index


async def test_captions_reach_the_timeline_and_the_transcript_in_order(tmp_path: Path) -> None:
    async with node(tmp_path / "data") as n:
        space = await n.create()
        await n.say(space, "host.0", 0.0, 1.0, "before the start")  # not live yet: dropped
        await n.go_live(space)
        await n.say(space, "ben.1", 2.5, 4.0, "and I am Ben", speaker="ben", name="Ben")
        await n.say(space, "host.1", 0.2, 2.0, "I am", final=False)
        await n.say(space, "host.1", 0.2, 2.1, "I am Ada & <friends>")
        await n.say(space, "host.2", 5.0, 5.5, "   ")  # nothing said after all
        await n.say(space, "host.3", 6.0, 30.0, "la " * 400)

        captions = await timeline_captions(n, space)
        # One state per utterance in an interval: the final replaced its partial.
        assert [(c["id"], c["final"], c["name"]) for c in captions] == [
            ("ben.1", True, "Ben"),
            ("host.1", True, "Ada"),
            ("host.3", True, "Ada"),
        ]
        assert captions[1] == {
            "id": "host.1",
            "speaker": "host",
            "name": "Ada",
            "start_s": 0.2,
            "end_s": 2.1,
            "text": "I am Ada & <friends>",
            "final": True,
        }
        response = await n.client.get(f"/api/spaces/{space['id']}/transcript")
        assert response.status_code == 200 and response.headers["cache-control"] == "public, max-age=2"
        body = response.json()
        assert body["language"] == "en" and body["engine"] == "recorder" and body["complete"] is False
        segments = body["segments"]
        assert [(s["speaker"], s["speaker_id"], s["text"][:12]) for s in segments] == [
            ("Ada", "host", "I am Ada & <"),
            ("Ben", "ben", "and I am Ben"),
            ("Ada", "host", "la la la la "),
        ]
        assert len(segments[2]["text"]) == MAX_CAPTION_CHARS
        # The captions are stored durably, one line per final.
        lines = await n.app.state.media.lines(SpaceId(space["id"]), CAPTIONS_NAME)
        assert len(lines) == 3

        await n.end(space)
        assert n.recorder is not None and n.recorder.ended == [space["id"]]
        # The workers flush the last words after the end: they are still taken.
        await n.say(space, "ben.2", 31.0, 32.0, "goodbye", speaker="ben", name="Ben")
        assert (await n.client.get(f"/api/spaces/{space['id']}/transcript")).json()["segments"][-1]["text"] == "goodbye"
        await n.clock.sleep(30)
        await n.say(space, "ben.3", 33.0, 34.0, "too late", speaker="ben", name="Ben")
        done = await n.client.get(f"/api/spaces/{space['id']}/transcript")
        assert done.json()["complete"] is True and done.headers["cache-control"] == "public, max-age=60"
        assert "too late" not in done.text


async def test_the_transcript_files_parse_with_voices_and_escapes(tmp_path: Path) -> None:
    async with node(tmp_path / "data") as n:
        space = await n.create()
        await n.go_live(space)
        await n.say(space, "host.1", 0.25, 2.0, "Fish & <chips> -->\nplease")
        await n.say(space, "ben.1", 2.5, 3.75, "Coming up", speaker="ben", name="Ben <the> Builder")
        vtt = await n.client.get(f"/api/spaces/{space['id']}/transcript.vtt")
        assert vtt.status_code == 200 and vtt.headers["content-type"].startswith("text/vtt")
        cues = list(webvtt.from_string(vtt.text))
        assert [(c.start, c.end, c.voice) for c in cues] == [
            ("00:00:00.250", "00:00:02.000", "Ada"),
            ("00:00:02.500", "00:00:03.750", "Ben &lt;the&gt; Builder"),
        ]
        assert cues[0].text == "Fish &amp; &lt;chips&gt; --&gt; please"
        srt = await n.client.get(f"/api/spaces/{space['id']}/transcript.srt")
        assert srt.status_code == 200 and srt.headers["content-type"].startswith("application/x-subrip")
        path = tmp_path / "t.srt"
        path.write_text(srt.text, encoding="utf-8")
        parsed = list(webvtt.from_srt(str(path)))
        assert [(c.start, c.end, c.text) for c in parsed] == [
            ("00:00:00.250", "00:00:02.000", "Ada: Fish & \u2039chips\u203a --\u203a please"),
            ("00:00:02.500", "00:00:03.750", "Ben \u2039the\u203a Builder: Coming up"),
        ]


async def test_a_private_spaces_transcript_needs_its_listener_link(tmp_path: Path) -> None:
    async with node(tmp_path / "data") as n:
        space = await n.create(private=True)
        await n.go_live(space)
        await n.say(space, "host.1", 0.5, 1.5, "members only")
        for suffix in ("", ".vtt", ".srt"):
            url = f"/api/spaces/{space['id']}/transcript{suffix}"
            refused = await n.client.get(url)
            assert refused.status_code == 403 and "private" in refused.json()["error"]
            assert "members only" not in refused.text
            forged = await n.client.get(url, params={"key": "x" * 40})
            assert forged.status_code == 403
        links = f"/api/spaces/{space['id']}/listener-links"
        link = (await n.client.post(links, json={}, headers=host(space))).json()
        allowed = await n.client.get(f"/api/spaces/{space['id']}/transcript", params={"key": link["token"]})
        assert allowed.status_code == 200 and allowed.json()["segments"][0]["text"] == "members only"
        assert allowed.headers["cache-control"].startswith("private")
        # Links withdrawn: the transcript goes with the audio.
        assert (await n.client.delete(links, headers=host(space))).status_code == 200
        again = await n.client.get(f"/api/spaces/{space['id']}/transcript.vtt", params={"key": link["token"]})
        assert again.status_code == 403


async def test_captions_off_are_not_kept(tmp_path: Path) -> None:
    async with node(tmp_path / "data") as n:
        space = await n.create()
        await n.go_live(space)
        url = f"/api/spaces/{space['id']}/captions"
        assert (await n.client.put(url, json={"enabled": False}, headers=host(space))).status_code == 200
        await n.say(space, "host.1", 0.5, 1.5, "off the record")
        assert await timeline_captions(n, space) == []
        assert (await n.client.get(f"/api/spaces/{space['id']}/transcript")).json()["segments"] == []


async def test_the_feed_names_each_episodes_transcript(tmp_path: Path) -> None:
    async with node(tmp_path / "data", public_url="https://podium.example") as n:
        captioned, silent = await n.create(title="Captioned"), await n.create(title="Silent")
        for space in (captioned, silent):
            await n.go_live(space)
        await n.clock.sleep(3)
        await n.say(captioned, "host.1", 0.5, 1.5, "hello listeners")
        for space in (captioned, silent):
            await n.end(space)
        feed = feedparser.parse((await n.client.get("/feed.xml")).text)
        assert not feed.bozo, feed.bozo_exception
        episodes = {entry.title: entry for entry in feed.entries}
        transcript = episodes["Captioned"]["podcast_transcript"]
        assert transcript == {
            "url": f"https://podium.example/api/spaces/{captioned['id']}/transcript.vtt",
            "type": "text/vtt",
            "language": "en",
        }
        assert "podcast_transcript" not in episodes["Silent"]


async def test_a_clip_carries_its_words_on_its_own_time_axis(tmp_path: Path) -> None:
    async with node(tmp_path / "data") as n:
        space = await n.create()
        await n.go_live(space)
        await n.say(space, "host.1", 1.0, 3.0, "before and into the clip")
        await n.say(space, "ben.1", 5.0, 6.5, "inside it", speaker="ben", name="Ben")
        await n.say(space, "host.2", 13.5, 14.0, "after it")
        await n.clock.sleep(16.0)
        made = await n.client.post(f"/api/spaces/{space['id']}/clips", json={"start_s": 2.0, "duration_s": 10})
        assert made.status_code == 201, made.text
        offset = made.json()["facts"]["offset_s"]
        assert abs(offset - 2.0) < 0.05  # cut on an audio frame

        def expected(start: float, end: float) -> tuple[float, float]:
            return round(max(0.0, start - offset), 3), round(min(made.json()["facts"]["duration_s"], end - offset), 3)

        words = [(w["speaker"], w["text"], w["start_s"], w["end_s"]) for w in made.json()["words"]]
        assert words == [
            ("Ada", "before and into the clip", *expected(1.0, 3.0)),
            ("Ben", "inside it", *expected(5.0, 6.5)),
        ]
        again = await n.client.get(f"/api/spaces/{space['id']}/clips/{made.json()['id']}")
        assert again.status_code == 200 and again.json()["words"] == made.json()["words"]


async def test_the_host_sees_captions_fall_behind_on_the_board_and_in_the_status(tmp_path: Path) -> None:
    async with node(tmp_path / "data") as n:
        space = await n.create()
        await n.go_live(space)
        assert n.recorder is not None
        n.recorder.state, n.recorder.detail = (
            "behind",
            "captions are 6 s behind: more people speak than this node keeps up with",
        )
        status = (await n.client.get(f"/api/spaces/{space['id']}/captions", headers=host(space))).json()
        assert status["state"] == "behind" and status["detail"].startswith("captions are 6 s behind")
        board = (await n.client.get(f"/api/spaces/{space['id']}/board", headers=host(space))).json()
        assert board["captions"] == {"state": "behind", "detail": n.recorder.detail}
        await n.client.put(f"/api/spaces/{space['id']}/captions", json={"enabled": False}, headers=host(space))
        board = (await n.client.get(f"/api/spaces/{space['id']}/board", headers=host(space))).json()
        assert board["captions"]["state"] == "off"


async def test_a_flood_of_captions_costs_captions_never_memory(tmp_path: Path) -> None:
    async with node(tmp_path / "data") as n:
        space = await n.create()
        await n.go_live(space)
        for k in range(MAX_WAITING + 500):  # all at once: nothing is stored meanwhile
            n.captioning.on_caption(Caption(space["id"], "host", "Ada", f"host.{k}", k, k + 0.5, f"word {k}", True))
        assert n.captioning.dropped == 500
        await n.captioning.stored()
        segments = (await n.client.get(f"/api/spaces/{space['id']}/transcript")).json()["segments"]
        assert len(segments) == MAX_WAITING and segments[-1]["text"] == f"word {MAX_WAITING - 1}"


async def test_a_cohost_chooses_the_captions_too(tmp_path: Path) -> None:
    async with node(tmp_path / "data") as n:
        space = await n.create()
        invite = await n.client.post(f"/api/spaces/{space['id']}/invites", json={"role": "cohost"}, headers=host(space))
        redeemed = await n.client.post(
            f"/api/spaces/{space['id']}/invites/redeem",
            json={"name": "Cleo"},
            headers={"Authorization": f"Bearer {invite.json()['token']}"},
        )
        cohost = {"Authorization": f"Bearer {redeemed.json()['token']}"}
        changed = await n.client.put(
            f"/api/spaces/{space['id']}/captions", json={"enabled": True, "language": "de"}, headers=cohost
        )
        assert changed.status_code == 200 and changed.json()["language"] == "de"
