"""Replay after the end: from the host's "end" to a replay playlist and a download, for 1 and 2 hours.

Goals (the issue): after `POST /api/spaces/{id}/end` of a 1-hour space, the replay playlist answers
200 within 1 s and the download (`recording.m4a`) within 2 s.

Per run, on a fresh data dir: `podium serve` (free loopback port, as in `harness.podium_server`, but on
a data dir that outlives the process), `POST /api/spaces`, stop. Then the recording is written into the
data dir as the stage writes it, with Podium's own code: about 2 s of a tone encoded once by
`AacEncoder` and its frames reused in a loop, `init_section`, a `Packager` whose program date-times put
the whole recording in the past, and `FileMediaStore.write` / `append_record` for `init.mp4` and every
segment (durable: fsync'ed as the server does). The space's row in `podium.db` is set live, with
`started_at` = the recording's start. `podium serve` again: it resumes the space as a live space, its
stage going on from the stored segment records. Once a few segments past the resume are out, the host
ends the space; from the moment the end request is sent, these requests run side by side:

- the end request itself (its answer waits for the download to be made: an end hook);
- `GET /hls/{id}/live.m3u8` every 20 ms until it answers 200 with `#EXT-X-ENDLIST`;
- `GET /media/{id}/recording.m4a` every 20 ms (409 while the space is live) until it answers 200, the
  whole body received;
- a listener reloading the delta playlist (`live.m3u8?_HLS_skip=YES`) every 5 ms until ENDLIST: what a
  listener gets while the space ends (its answers are counted, not timed).

The download is checked with ffprobe against the ended playlist's duration. The peer: ffmpeg remuxing
the same recording (`-c copy -f mp4`), once from a local index of the segment files on disk (like for
like: Podium's remux reads them too) and once from the replay's HLS URL, over HTTP from Podium.

Usage: python bench/replay.py [--quick] [--repeats N] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import harness
import httpx
import numpy as np

from podium.backends.files import FileMediaStore
from podium.domain.space import SpaceState
from podium.ids import SpaceId
from podium.media import m4a
from podium.media.aac import AacEncoder
from podium.media.fmp4 import init_section
from podium.media.mixer import SAMPLE_RATE
from podium.media.packager import INIT_NAME, Packager, Segment, SegmentRecord
from podium.media.stage import BITRATE

GOAL_PLAYLIST_S = 1.0
GOAL_DOWNLOAD_S = 2.0
SIZES_S = (3600, 7200)
QUICK_SIZE_S = 300
TONE_S = 2.0  # encoded once; its frames are reused in a loop
TONE_HZ = 440.0
POLL_S = 0.02  # between polls of the playlist and of the download
LISTENER_POLL_S = 0.005  # between a listener's reloads of the delta playlist while the space ends
RESUMED_SEGMENTS = 2  # whole segments the resumed stage makes before the end
END_TIMEOUT_S = 120.0  # bound on every wait after the end request
FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"

_STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[replay +{time.monotonic() - _STARTED:.0f} s] {message}", flush=True)


# -- a server on a data dir that outlives it ------------------------------------------------------


def log_complaints(log_path: Path) -> list[str]:
    lines = log_path.read_text(errors="replace").splitlines()
    return [line for line in lines if re.search(r"WARNING|ERROR|Traceback", line)]


# -- the synthetic recording ------------------------------------------------------------------------


@dataclass
class Written:
    segments: int
    duration_s: float
    size_bytes: int
    seconds: float  # wall time to write it
    init: bytes


def tone_frames() -> tuple[list[bytes], bytes]:
    """About TONE_S of a tone as AAC frames, and the init section the stage writes for them."""
    encoder = AacEncoder(bitrate=BITRATE)
    t = np.arange(int(TONE_S * SAMPLE_RATE)) / SAMPLE_RATE
    frames = encoder.encode((np.sin(2 * np.pi * TONE_HZ * t) * 0.3 * 32767).astype(np.int16))
    return frames, init_section(encoder.audio_specific_config, SAMPLE_RATE, bitrate=BITRATE)


async def write_recording(
    media_root: Path, space_id: SpaceId, duration_s: float, progress: Callable[[str], None]
) -> Written:
    """Whole segments covering `duration_s`, ending now, stored as the stage stores them."""
    started = time.monotonic()
    frames, init = tone_frames()
    store = FileMediaStore(media_root)
    layout = Packager(datetime.now(UTC)).layout
    segments = math.ceil(duration_s / layout.segment_s)
    total_s = segments * layout.segment_s
    packager = Packager(datetime.now(UTC) - timedelta(seconds=total_s))
    await store.write(space_id, INIT_NAME, init)
    written = 0
    size = len(init)
    next_frame = 0
    step = max(1, segments // 5)
    while written < segments:
        batch = [frames[(next_frame + k) % len(frames)] for k in range(layout.frames_per_part)]
        next_frame += layout.frames_per_part
        for item in packager.push(batch):
            # Parts only reach the disk while their segment is being made; the stage forgets them once
            # the segment is durable, so a stored recording is the segments and their records.
            if isinstance(item, Segment):
                await store.write(space_id, item.record.name, item.data)
                await store.append_record(space_id, item.record)
                written += 1
                size += len(item.data)
                if written % step == 0 and written < segments:
                    progress(f"  {written}/{segments} segments written ({time.monotonic() - started:.1f} s)")
    return Written(segments, total_s, size, time.monotonic() - started, init)


def mark_live(db_path: Path, space_id: SpaceId, started_at: datetime) -> None:
    """What going live leaves in the database (state, started_at as the SQL store writes it)."""
    with contextlib.closing(sqlite3.connect(db_path)) as db, db:
        cursor = db.execute(
            "UPDATE spaces SET state = ?, started_at = ? WHERE id = ?",
            (SpaceState.LIVE.value, started_at.astimezone(UTC).isoformat(), space_id),
        )
        if cursor.rowcount != 1:
            raise RuntimeError(f"space {space_id} is not in {db_path}")


# -- after the end ------------------------------------------------------------------------------------


@dataclass
class Run:
    size_s: int
    written: Written
    end_s: float = math.nan
    end_status: int = 0
    playlist_s: float = math.nan
    download_s: float = math.nan
    download_bytes: int = 0
    expected_s: float = math.nan  # the ended playlist's duration (the recording plus the resumed run)
    probed_s: float = math.nan
    ffmpeg_local_s: float = math.nan
    ffmpeg_http_s: float = math.nan
    ffmpeg_probed_s: float = math.nan
    remux_s: float = math.nan  # `m4a.remux` of the same files in this process
    init_same: bool = True
    playlist_statuses: Counter[str] = field(default_factory=Counter)
    download_statuses: Counter[str] = field(default_factory=Counter)
    # Answers other than 200 (and the download's 409 while live): seconds from the end request, status, body.
    playlist_errors: list[tuple[float, int, str]] = field(default_factory=list)
    listener_statuses: Counter[str] = field(default_factory=Counter)
    listener_errors: list[tuple[float, int, str]] = field(default_factory=list)
    download_errors: list[tuple[float, int, str]] = field(default_factory=list)
    complaints: list[str] = field(default_factory=list)


def playlist_duration_s(text: str) -> float:
    return sum(float(m) for m in re.findall(r"^#EXTINF:([0-9.]+),", text, re.MULTILINE))


async def poll(
    client: httpx.AsyncClient,
    url: str,
    t0: float,
    done: Callable[[httpx.Response], bool],
    seen: Counter[str],
    errors: list[tuple[float, int, str]],
    interval_s: float = POLL_S,
) -> tuple[float, httpx.Response]:
    """GET `url` every `interval_s` until `done`; seconds from t0 to that answer's last byte, and the answer."""
    deadline = t0 + END_TIMEOUT_S
    while time.perf_counter() < deadline:
        response = await client.get(url)  # the body is read whole before this returns
        at = time.perf_counter() - t0
        seen[str(response.status_code) + (" ENDLIST" if b"#EXT-X-ENDLIST" in response.content[-64:] else "")] += 1
        if response.status_code not in (200, 409):
            errors.append((at, response.status_code, response.text[:200]))
        if done(response):
            return at, response
        await asyncio.sleep(interval_s)
    raise RuntimeError(f"{url} did not answer as expected within {END_TIMEOUT_S:.0f} s: {dict(seen)}")


async def end_and_measure(server: harness.Server, space: dict[str, str], run: Run, folder: Path) -> str:
    """End the space and time the three requests from the moment the end is sent; the ended playlist."""
    space_id = space["id"]
    playlist_url = f"{server.base}/hls/{space_id}/live.m3u8"
    download_url = f"{server.base}/media/{space_id}/recording.m4a"
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
    async with httpx.AsyncClient(timeout=END_TIMEOUT_S, limits=limits) as client:
        await harness.wait_for_segments(client, playlist_url, run.written.segments + RESUMED_SEGMENTS, 60.0)
        for _ in range(2):  # warm a connection per poller, so none is opened in the measured window
            await asyncio.gather(
                client.get(playlist_url),
                client.get(playlist_url),
                client.get(download_url),
                client.get(server.base + "/"),
            )

        async def end() -> tuple[float, int]:
            response = await client.post(
                f"{server.base}/api/spaces/{space_id}/end", headers={"Authorization": f"Bearer {space['host_token']}"}
            )
            return time.perf_counter() - t0, response.status_code

        t0 = time.perf_counter()
        ended, (playlist_s, playlist), (download_s, download), _ = await asyncio.gather(
            end(),
            poll(
                client,
                playlist_url,
                t0,
                lambda r: r.status_code == 200 and b"#EXT-X-ENDLIST" in r.content,
                run.playlist_statuses,
                run.playlist_errors,
            ),
            poll(client, download_url, t0, lambda r: r.status_code == 200, run.download_statuses, run.download_errors),
            # A listener reloading the delta playlist (as hls.js does, without blocking), only to see what
            # a listener gets while the space ends: its answers are counted, not timed.
            poll(
                client,
                playlist_url + "?_HLS_skip=YES",
                t0,
                lambda r: r.status_code == 200 and b"#EXT-X-ENDLIST" in r.content,
                run.listener_statuses,
                run.listener_errors,
                LISTENER_POLL_S,
            ),
        )
    run.end_s, run.end_status = ended
    run.playlist_s, run.download_s = playlist_s, download_s
    run.download_bytes = len(download.content)
    (folder / "download.m4a").write_bytes(download.content)
    text = playlist.text
    run.expected_s = playlist_duration_s(text)
    return text


def probe_duration_s(path: Path) -> float:
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    try:
        return float(out.stdout.strip())
    except ValueError:
        return math.nan


def ffmpeg_remux_s(source: str, out: Path, extra: list[str] | None = None) -> float:
    """Wall time of `ffmpeg -v error -i SOURCE -c copy -f mp4 OUT`, process start to exit."""
    command = [FFMPEG, "-nostdin", "-v", "error", "-y", *(extra or []), "-i", source, "-c", "copy", "-f", "mp4"]
    started = time.perf_counter()
    done = subprocess.run([*command, str(out)], capture_output=True, text=True, timeout=600)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return took


def local_index(playlist: str, media: Path, path: Path) -> None:
    """The ended playlist with its URIs pointing at the segment files on disk."""
    text = playlist.replace(f'URI="{INIT_NAME}"', f'URI="{media / INIT_NAME}"')
    lines = [line if line.startswith("#") or not line else str(media / line) for line in text.splitlines()]
    # LL-HLS part lines name parts the stage has forgotten; ffmpeg reads segments only, but drop them anyway.
    path.write_text("\n".join(line for line in lines if not line.startswith("#EXT-X-PART:")) + "\n")


def remux_in_process(media: Path) -> float:
    """Podium's own remux of the stored recording, timed in this process (reads included)."""
    records = FileMediaStore._records(media)
    started = time.perf_counter()
    init = (media / INIT_NAME).read_bytes()
    segments = [(media / record.name).read_bytes() for record in records]
    m4a.remux(init, segments, records[0].program_date_time if records else datetime.now(UTC))
    return time.perf_counter() - started


async def one_run(size_s: int, index: int, work: Path, with_http: bool) -> Run:
    folder = work / f"{size_s}s-{index}"
    data_dir = folder / "data"
    log_path = folder / "podium.log"
    folder.mkdir(parents=True)
    with harness.serve(data_dir, log_path, 60.0) as server:
        async with httpx.AsyncClient(timeout=30.0) as client:
            space = await harness.create_space(client, server.base, f"Replay bench {size_s} s #{index}")
    space_id = SpaceId(space["id"])
    say(f"{_label(size_s)}, run {index}: space {space_id} created; writing {size_s} s of recording")
    written = await write_recording(data_dir / "media", space_id, size_s, say)
    media = data_dir / "media" / space_id
    first: list[SegmentRecord] = FileMediaStore._records(media)[:1]
    mark_live(data_dir / "podium.db", space_id, first[0].program_date_time)
    say(
        f"  {written.segments} segments, {written.duration_s:.1f} s, {written.size_bytes / 1e6:.1f} MB written in "
        f"{written.seconds:.1f} s (fsync per file, as the server); restarting podium serve"
    )
    run = Run(size_s, written)
    with harness.serve(data_dir, log_path, 60.0) as server:
        playlist = await end_and_measure(server, space, run, folder)
        run.init_same = (media / INIT_NAME).read_bytes() == written.init
        say(
            f"  ended: end request {run.end_s:.3f} s (HTTP {run.end_status}), playlist with ENDLIST "
            f"{run.playlist_s:.3f} s, download {run.download_s:.3f} s ({run.download_bytes / 1e6:.1f} MB)"
        )
        run.probed_s = probe_duration_s(folder / "download.m4a")
        index_path = folder / "index.m3u8"
        local_index(playlist, media, index_path)
        run.ffmpeg_local_s = ffmpeg_remux_s(str(index_path), folder / "ffmpeg-local.m4a")
        run.ffmpeg_probed_s = probe_duration_s(folder / "ffmpeg-local.m4a")
        if with_http:
            run.ffmpeg_http_s = ffmpeg_remux_s(f"{server.base}/hls/{space_id}/live.m3u8", folder / "ffmpeg-http.m4a")
    run.remux_s = remux_in_process(media)
    run.complaints = log_complaints(log_path)
    http = f", over HTTP {run.ffmpeg_http_s:.3f} s" if with_http else ""
    say(
        f"  ffprobe {run.probed_s:.3f} s (playlist {run.expected_s:.3f} s); ffmpeg remux from the files "
        f"{run.ffmpeg_local_s:.3f} s{http}; m4a.remux in-process {run.remux_s:.3f} s"
    )
    for name in ("download.m4a", "ffmpeg-local.m4a", "ffmpeg-http.m4a"):
        (folder / name).unlink(missing_ok=True)
    return run


# -- report -------------------------------------------------------------------------------------------


def _median_max(values: list[float], digits: int = 3) -> str:
    clean = [v for v in values if not math.isnan(v)]
    if not clean:
        return "-"
    if len(clean) == 1:
        return f"{clean[0]:.{digits}f}"
    return f"{statistics.median(clean):.{digits}f} / {max(clean):.{digits}f}"


def _label(size_s: int) -> str:
    return f"{size_s / 3600:g} h" if size_s % 1800 == 0 else f"{size_s / 60:g} min"


def report(runs: list[Run], args: argparse.Namespace, elapsed_s: float, load: tuple[str, str]) -> str:
    sizes = sorted({r.size_s for r in runs})
    repeats = max(sum(1 for r in runs if r.size_s == s) for s in sizes)
    segment_s = Packager(datetime.now(UTC)).layout.segment_s
    lines = [
        "## Replay: from the end to the replay playlist and the download",
        "",
        *harness.header_lines(),
        f"- Load average (1 min) before → after: {load[0]} → {load[1]}; the whole run took {elapsed_s:.0f} s",
        f"- ffmpeg: {ffmpeg_version()}",
        "",
        f"Per row, {repeats} run(s), each on a fresh data dir and a fresh space: a synthetic recording written "
        "with Podium's own packager and media store, the space resumed live by a restarted `podium serve`, "
        "then ended by its host. Times are seconds from sending `POST /api/spaces/{id}/end`; a cell with two "
        f"figures is median / max. **Goals: replay playlist 200 ≤ {GOAL_PLAYLIST_S:.0f} s, download 200 ≤ "
        f"{GOAL_DOWNLOAD_S:.0f} s, for 1 hour** (judged on the max).",
        "",
        "| recording | segments | end request answered (s) | replay playlist 200 + ENDLIST (s) | download 200, "
        "whole body (s) | file (MB) | ffprobe duration vs playlist (s) | ffmpeg remux from the files (s) "
        "| ffmpeg remux over HTTP (s) | Podium download / ffmpeg from the files | goals |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for size in sizes:
        rows = [r for r in runs if r.size_s == size]
        ratios = [r.download_s / r.ffmpeg_local_s for r in rows]
        worst_playlist = max(r.playlist_s for r in rows)
        worst_download = max(r.download_s for r in rows)
        probe_off = max(abs(r.probed_s - r.expected_s) for r in rows)
        probe = (
            f"{statistics.median(r.probed_s for r in rows):.3f} vs {statistics.median(r.expected_s for r in rows):.3f}"
            f" ({'within' if probe_off <= segment_s else '**off by**'} {probe_off:.3f})"
        )
        goals = (
            f"playlist {'met' if worst_playlist <= GOAL_PLAYLIST_S else '**not met**'}, "
            f"download {'met' if worst_download <= GOAL_DOWNLOAD_S else '**not met**'}"
        )
        lines.append(
            f"| {_label(size)} | {rows[0].written.segments} | {_median_max([r.end_s for r in rows])} "
            f"| {_median_max([r.playlist_s for r in rows])} | {_median_max([r.download_s for r in rows])} "
            f"| {statistics.median(r.download_bytes for r in rows) / 1e6:.1f} | {probe} "
            f"| {_median_max([r.ffmpeg_local_s for r in rows])} | {_median_max([r.ffmpeg_http_s for r in rows])} "
            f"| {_median_max(ratios, 2)} | {goals} |"
        )
    lines += [
        "",
        "Every run:",
        "",
        "| recording | run | end (s) | playlist (s) | download (s) | `m4a.remux` in-process (s) "
        "| ffmpeg from files (s) | ffprobe of ffmpeg's file (s) | writing the recording (s) "
        "| playlist answers seen | download answers seen | listener's answers (reloads every "
        f"{LISTENER_POLL_S * 1000:.0f} ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for size in sizes:
        for n, r in enumerate((r for r in runs if r.size_s == size), 1):
            lines.append(
                f"| {_label(size)} | {n} | {r.end_s:.3f} | {r.playlist_s:.3f} | {r.download_s:.3f} | {r.remux_s:.3f} "
                f"| {r.ffmpeg_local_s:.3f} | {r.ffmpeg_probed_s:.3f} | {r.written.seconds:.1f} "
                f"| {_statuses(r.playlist_statuses)} | {_statuses(r.download_statuses)} "
                f"| {_statuses(r.listener_statuses)}{_window(r.playlist_errors + r.listener_errors)} |"
            )
    lines += ["", "Notes:", "", *(f"- {note}" for note in notes(runs))]
    return "\n".join(lines) + "\n"


def _window(errors: list[tuple[float, int, str]]) -> str:
    if not errors:
        return ""
    times = [at for at, _status, _body in errors]
    return f" (not 200 from {min(times):.3f} to {max(times):.3f} s)"


def _statuses(seen: Counter[str]) -> str:
    return ", ".join(f"{status}: {n}" for status, n in sorted(seen.items()))


def notes(runs: list[Run]) -> list[str]:
    out = [
        "The recording: a 440 Hz tone, about 2 s encoded once by `AacEncoder` (64 kb/s, the stage's bitrate) and "
        "its frames reused in a loop, packaged by `Packager` into whole 2.048 s segments ending when the data was "
        "written, stored with `FileMediaStore.write` (init section, segments) and `append_record` (segment "
        "records), fsync'ed per file as the stage does; no part files (the stage forgets a segment's parts once the "
        "segment is durable) and no `open-segment.json` (as after a stop on a segment boundary). The space's row "
        "in `podium.db` is then set to `live` with `started_at` = the recording's first program date-time",
        "The restarted server resumes the space (its stage goes on after the stored records, as a discontinuity) "
        f"and runs until {RESUMED_SEGMENTS} more segments are out, so the ended recording is the synthetic hours "
        "plus a few seconds; 'playlist' in the ffprobe column is the ended playlist's EXTINF sum. The init "
        "section the resumed stage wrote was "
        + ("byte for byte the one written here" if all(r.init_same for r in runs) else "**not** the one written here"),
        f"Timing: the end request, a poll of `live.m3u8` and a poll of `recording.m4a` start together; each poll "
        f"sends its next request {POLL_S * 1000:.0f} ms after the previous answer, so the playlist and download "
        "figures are late by up to one interval plus a request. A time is taken when the answer's whole body "
        "has arrived. Connections are opened beforehand (keep-alive). Alongside, a listener reloads the delta "
        f"playlist (`_HLS_skip=YES`) every {LISTENER_POLL_S * 1000:.0f} ms until ENDLIST, to see what listeners "
        "get while the space ends",
        "The download answers 409 while the space is live; once the space is ended, a request waits for the "
        "download being made (the end request makes it, as an end hook, before it answers), so 'download' ≈ "
        "'end request' + the transfer",
        "ffmpeg (the peer) remuxes the same ended recording with `ffmpeg -v error -i SOURCE -c copy -f mp4 out.m4a`: "
        "from the files, SOURCE is the ended playlist with its URIs rewritten to the segment files on disk; over "
        "HTTP, it is the replay's `live.m3u8` on the same server. ffmpeg's times are its process's wall time, "
        "start-up included; ffmpeg writes `moov` at the end, Podium's `.m4a` has it first (fast start). The ratio "
        "compares Podium's whole path (end → download received) with ffmpeg's remux from the files",
        "`m4a.remux` in-process: Podium's remux of the same stored files, timed in the benchmark's process "
        "(reading the files included): the part of the download's time that is the remux itself",
        "Everything runs on one machine; the files were just written, so they are read from the page cache "
        "(as a live server's recent segments would be); the benchmark does not drop caches",
    ]
    failing = [r for r in runs if r.playlist_errors or r.listener_errors]
    if failing:
        errors = [e for r in failing for e in r.playlist_errors + r.listener_errors]
        statuses = ", ".join(sorted({str(status) for _at, status, _body in errors}))
        times = [at for at, _status, _body in errors]
        body = errors[0][2].strip()[:100]
        note = (
            f"In {len(failing)} of {len(runs)} runs `live.m3u8` answered **{statuses}** while the space was ending "
            f"({len(errors)} such answer(s), {min(times):.3f} to {max(times):.3f} s after the end request was sent; "
            "see the every-run table), saying "
            f"`{body}`: a listener reloading the playlist then gets an error instead of the last segments and ENDLIST"
        )
        if "not running on this node" in body:
            note += (
                ". `Podium.end_space` takes the stage out of `_stages` before `await stage.finish()` and caches the "
                "ended space only after saving it; in between, the HLS routes find the space live with no stage "
                "(`_packager` in `delivery/hls.py`), which parts and blocking reloads go through too"
            )
        out.append(note)
    for r in runs:
        for at, status, body in r.download_errors[:1]:
            out.append(f"The download answered {status} at {at:.3f} s: `{body.strip()[:100]}`")
    other = {s for r in runs for s in [*r.playlist_statuses, *r.download_statuses, *r.listener_statuses]}
    other -= {"200", "200 ENDLIST", "409", "404"}
    if other:
        out.append(f"Other answers seen while ending: {', '.join(sorted(other))}")
    if any(r.end_status != 200 for r in runs):
        out.append(f"The end request answered {sorted({r.end_status for r in runs})}")
    complaints = [line for r in runs for line in r.complaints]
    if complaints:
        out.append(f"The podium log had {len(complaints)} warning/error line(s), first: `{complaints[0].strip()}`")
    return out


def ffmpeg_version() -> str:
    try:
        out = subprocess.run([FFMPEG, "-version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    first = out.splitlines()[0] if out else ""
    return first.split(" Copyright")[0].removeprefix("ffmpeg version ").strip() or "unknown"


async def measure(args: argparse.Namespace) -> list[Run]:
    sizes = (QUICK_SIZE_S,) if args.quick else SIZES_S
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="podium-replay-") as tmp:
        for size in sizes:
            for index in range(1, args.repeats + 1):
                runs.append(await one_run(size, index, Path(tmp), with_http=not args.no_http))
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a CI smoke run: one 5-minute space, under a minute")
    parser.add_argument("--repeats", type=int, help="runs per size (default 3, quick 1)")
    parser.add_argument("--no-http", action="store_true", help="skip ffmpeg's remux over HTTP")
    parser.add_argument("--no-write", action="store_true", help="print the results, leave RESULTS.md alone")
    args = parser.parse_args()
    args.repeats = args.repeats or (1 if args.quick else 3)
    if not 1 <= args.repeats <= 10:
        parser.error("keep it bounded: 1 ≤ --repeats ≤ 10")
    started = time.monotonic()
    load_before = f"{os.getloadavg()[0]:.2f}"
    runs = asyncio.run(measure(args))
    text = report(runs, args, time.monotonic() - started, (load_before, f"{os.getloadavg()[0]:.2f}"))
    print(text)
    if not args.no_write:
        harness.write_section("replay", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
