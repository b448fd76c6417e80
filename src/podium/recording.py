"""Replay, download and clips: what is kept of a space once (and while) it is live.

The recording is the HLS recording itself (bet 4): the init section and the durable segments the
stage wrote. This module turns it into the downloadable `.m4a` the moment the space ends (a remux:
about 0.3 s for an hour, 0.5-0.8 s for two, on a 2-core machine; see bench/RESULTS.md), cuts signed
clips from it, checks clips, and lays out the replay's who-spoke-when, posts and reactions on the
recording's own time axis.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, load_pem_private_key

from podium import urls
from podium.admission.limits import Policy, RateLimits
from podium.audience.feed import REACTIONS_NAME
from podium.backends.interfaces import MediaStore
from podium.domain.space import Space, SpaceState
from podium.errors import Conflict, InvalidInput, NotFound, PodiumError
from podium.events import RecordingReady
from podium.ids import SpaceId
from podium.media import clips, m4a
from podium.media.packager import INIT_NAME, SegmentRecord, program_records
from podium.media.stage import SPEAKERS_NAME
from podium.spaces.directory import SpaceDirectory

log = logging.getLogger(__name__)

DOWNLOAD_NAME = "recording.m4a"
KEY_NAME = "clip-signing-key.pem"
CLIP_PER_ADDRESS = Policy("clip-address", "10/minute", "too many clips from your network")
FINGERPRINTS_KEPT = 256
VERIFY_PER_ADDRESS = Policy("verify-address", "30/minute", "too many clips checked from your network")


def load_or_create_signing_key(data_dir: Path, shared_secret: str = "") -> Ed25519PrivateKey:
    """The instance's Ed25519 key for clip provenance: generated on first start, kept (0600).
    Nodes given the instance's shared secret derive the same key from it (HKDF-SHA256), so a clip
    made on one node verifies on every other."""
    if shared_secret:
        seed = HKDF(algorithm=SHA256(), length=32, salt=None, info=b"podium clip signing key").derive(
            shared_secret.encode()
        )
        return Ed25519PrivateKey.from_private_bytes(seed)
    path = data_dir / KEY_NAME
    if path.exists():
        key = load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise PodiumError(f"{path} is not an Ed25519 key; remove it to have a new one generated")
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    return key


@dataclass(frozen=True)
class Verdict:
    valid: bool
    checks: list[clips.Check]
    facts: dict[str, Any]

    def view(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "facts": self.facts,
        }


def media_offset(records: list[SegmentRecord], moment: datetime) -> float:
    """Where a wall-clock moment falls in the recording's media time (segments laid end to end).
    A moment in a gap (the server was down) maps to the start of the next segment."""
    at = 0.0
    for record in records:
        start = record.program_date_time
        if moment < start:
            return at
        if moment < start + timedelta(seconds=record.duration_s):
            return at + (moment - start).total_seconds()
        at += record.duration_s
    return at


@dataclass(eq=False)
class Recordings:
    directory: SpaceDirectory
    media: MediaStore
    key: Ed25519PrivateKey
    limits: RateLimits

    def __post_init__(self) -> None:
        self.public_key: Ed25519PublicKey = self.key.public_key()
        self._builds: dict[SpaceId, asyncio.Task[None]] = {}
        # Fingerprints of ended recordings, oldest first (bounded: FINGERPRINTS_KEPT).
        self._fingerprints: dict[SpaceId, dict[str, Any]] = {}

    @property
    def key_id(self) -> str:
        return clips.key_id(self.public_key)

    def key_view(self) -> dict[str, str]:
        return {
            "algorithm": "Ed25519",
            "key_id": self.key_id,
            "public_key": base64.b64encode(clips.public_raw(self.public_key)).decode("ascii"),
            "instance": self.directory.settings.base_url,
        }

    # -- life -------------------------------------------------------------------------------

    async def stop(self) -> None:
        for task in list(self._builds.values()):
            task.cancel()

    async def finish(self, space: Space) -> None:
        """At the end: the download is made now (not on the first request), or, for a space that
        was not to be recorded, its audio goes (what listeners wrote stays, as for any space)."""
        if not space.record or space.started_at is None:
            # Not to be recorded, or ended before it went live (only a pre-show's hold audio).
            await self.media.remove_recording(space.id)
            return
        await self._build(space)
        # Webhooks (and anyone else on the bus) learn that the download is there.
        await self.directory.bus.publish(RecordingReady(space.id, self.directory.node_id))

    # -- download ---------------------------------------------------------------------------

    def _ready(self, space: Space) -> None:
        if not space.record or (space.state is SpaceState.ENDED and space.started_at is None):
            raise NotFound("this space was not recorded")
        if space.state is not SpaceState.ENDED:
            raise Conflict("the download is made when the space ends; while live, listen or rewind instead")

    async def download(self, space: Space) -> Path | bytes:
        """The `.m4a`: its local file when the store has one (streamed, with ranges), else its bytes."""
        self._ready(space)
        found = await self._stored(space.id, DOWNLOAD_NAME)
        if found is None:
            await self._build(space)
            found = await self._stored(space.id, DOWNLOAD_NAME)
        if found is None:
            raise NotFound("the recording could not be made; see the server's log")
        return found

    async def _stored(self, space_id: SpaceId, name: str) -> Path | bytes | None:
        # An object store has no local path: read the object itself.
        path = self.media.local_path(space_id, name)
        return path if path is not None else await self.media.read(space_id, name)

    async def _build(self, space: Space) -> None:
        """One build per space at a time; callers arriving meanwhile wait for the same one."""
        task = self._builds.get(space.id)
        if task is None:
            task = self._builds[space.id] = asyncio.create_task(self._make_download(space))
            task.add_done_callback(lambda _t: self._builds.pop(space.id, None))
        await asyncio.shield(task)

    async def _make_download(self, space: Space) -> None:
        if await self._stored(space.id, DOWNLOAD_NAME) is not None:
            return
        records = program_records(await self.media.records(space.id))
        files = await self.media.read_many(space.id, [INIT_NAME] + [r.name for r in records])
        created = space.started_at or space.created_at
        data = await asyncio.to_thread(m4a.remux, files[0], files[1:], created, space.title)
        await self.media.write(space.id, DOWNLOAD_NAME, data)
        log.info("space %s: download ready (%d bytes, %d segments)", space.id, len(data), len(records))

    # -- the recording ------------------------------------------------------------------------

    async def _recording(self, space: Space) -> tuple[list[SegmentRecord], bytes, list[bytes]]:
        if not space.record:
            raise NotFound("this space is not recorded")
        if space.state is SpaceState.SCHEDULED:
            raise Conflict("this space has not started yet")
        records = program_records(await self.media.records(space.id))
        if not records:
            raise Conflict("nothing is recorded yet; try again in a few seconds")
        files = await self.media.read_many(space.id, [INIT_NAME] + [r.name for r in records])
        return records, files[0], files[1:]

    async def fingerprint(self, space: Space) -> dict[str, Any]:
        """The recording's SHA-256 so far. Hashing an hour is tens of milliseconds: it runs in a
        thread, never on the loop; an ended recording never changes, so its answer is kept."""
        kept = self._fingerprints.get(space.id)
        if kept is not None:
            return kept
        records, init, segments = await self._recording(space)
        view = {
            "sha256": await asyncio.to_thread(clips.recording_digest, init, segments),
            "segments": len(records),
            "duration_s": round(sum(r.duration_s for r in records), 3),
            "complete": space.state is SpaceState.ENDED,
        }
        if space.state is SpaceState.ENDED:
            self._fingerprints[space.id] = view
            while len(self._fingerprints) > FINGERPRINTS_KEPT:
                self._fingerprints.pop(next(iter(self._fingerprints)))
        return view

    async def replay(self, space: Space) -> dict[str, Any]:
        """Who spoke when and every shown post, on the recording's time axis (seconds from its start)."""
        records = program_records(await self.media.records(space.id)) if space.record else []
        rules = self.directory.rules(space)
        speakers = []
        for line in await self.media.lines(space.id, SPEAKERS_NAME):
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            member = rules.members.get(item.get("member"))
            name = member.name if member is not None else "A former speaker"
            speakers.append({"at_s": item["at_s"], "member": item.get("member"), "name": name})
        reactions = []
        for line in await self.media.lines(space.id, REACTIONS_NAME):
            try:
                item = json.loads(line)
                at = datetime.fromisoformat(item["at"].replace("Z", "+00:00"))
            except (json.JSONDecodeError, KeyError, ValueError, AttributeError):
                continue
            reactions.append({"at_s": self.offset_of(records, at), "counts": item.get("reactions", {})})
        return {
            "duration_s": round(sum(r.duration_s for r in records), 3),
            "ended": space.state is SpaceState.ENDED,
            "speakers": speakers,
            "reactions": reactions,
            "first_program_date_time": records[0].program_date_time.isoformat() if records else None,
        }

    def offset_of(self, records: list[SegmentRecord], moment: datetime) -> float:
        return round(media_offset(records, moment), 3)

    # -- clips ------------------------------------------------------------------------------

    async def create_clip(self, space: Space, start_s: float, duration_s: float, address: str) -> dict[str, Any]:
        """A signed clip. Its facts name this instance only when the operator said what it is
        (PODIUM_PUBLIC_URL): an address taken from a request (its Host header) is the sender's
        word, and signing it would let anyone have this instance vouch for another's name. Without
        it the facts carry no `instance` and a root-relative `context_url`; such a clip is checked
        against an instance its reader names (`podium verify --trust URL`)."""
        if not clips.MIN_CLIP_S <= duration_s <= clips.MAX_CLIP_S:
            raise InvalidInput(f"a clip lasts {clips.MIN_CLIP_S:.0f} to {clips.MAX_CLIP_S:.0f} seconds")
        await self.limits.hit(CLIP_PER_ADDRESS, address)
        records, init, segments = await self._recording(space)
        stsd, timescale = m4a.sample_description(init)
        samples = m4a.fragment_samples(segments)  # parsed once: planned, counted and cut from this
        try:
            cut = clips.plan_cut(start_s, duration_s, samples, timescale)
        except ValueError as error:
            raise InvalidInput(str(error)) from None
        # Only the segments the clip needs are named in its recording hash, so a clip of a live
        # space can be checked against the recording as it grows. A record's duration is a whole
        # number of frames, so the records alone say where each segment ends.
        ends = np.cumsum([round(r.duration_s * timescale / cut.frame_duration) for r in records])
        needed = int(np.searchsorted(ends, cut.first_frame + cut.frames)) + 1
        segments = segments[:needed]
        created = records[0].program_date_time
        title = f"{space.title} (clip)"
        media = clips.cut_samples(stsd, timescale, samples, cut, created, title)
        clip_id = "c" + secrets.token_hex(6)
        recording_sha256 = await asyncio.to_thread(clips.recording_digest, init, segments)
        base = self.directory.settings.base_url
        facts: dict[str, Any] = {
            "format": clips.FORMAT,
            "key_id": self.key_id,
            "space": space.id,
            "title": title,
            "clip": clip_id,
            "first_frame": cut.first_frame,
            "frames": cut.frames,
            "timescale": cut.timescale,
            "frame_duration": cut.frame_duration,
            "offset_s": round(cut.offset_s, 3),
            "duration_s": round(cut.duration_s, 3),
            "clip_sha256": hashlib.sha256(media).hexdigest(),
            "recording_sha256": recording_sha256,
            "recording_segments": len(segments),
            "media_created": created.isoformat(),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "context_url": f"{base}{urls.fill(urls.LISTEN_PAGE, space_id=space.id)}?t={cut.offset_s:.1f}",
        }
        if base:
            facts["instance"] = base
        data = clips.seal(media, facts, self.key)
        await self.media.write(space.id, f"{clip_id}.m4a", data)
        return self.clip_view(space.id, clips.open_clip(data)[1])

    def clip_view(self, space_id: SpaceId, envelope: dict[str, Any]) -> dict[str, Any]:
        facts = envelope["facts"]
        # Root-relative when the clip names no instance (made without PODIUM_PUBLIC_URL).
        base = str(facts.get("instance") or "")
        clip_id = facts["clip"]
        return {
            "id": clip_id,
            "facts": facts,
            "key_id": envelope.get("key_id"),
            "signature": envelope.get("signature"),
            "urls": {
                "page": base + urls.fill(urls.CLIP_PAGE, space_id=space_id, clip_id=clip_id),
                "file": base + urls.fill(urls.CLIP_FILE, space_id=space_id, clip_id=clip_id),
                "context": facts["context_url"],
                "verify": base + urls.VERIFY_PAGE,
            },
        }

    async def clip(self, space: Space, clip_id: str) -> tuple[dict[str, Any], Path | bytes]:
        """The clip's view, and its file: a local path when the store has one, else its bytes."""
        if not (clip_id.startswith("c") and len(clip_id) == 13 and all(c in "0123456789abcdef" for c in clip_id[1:])):
            raise NotFound("no such clip")
        found = await self._stored(space.id, f"{clip_id}.m4a")
        if found is None:
            raise NotFound("no such clip")
        data = await asyncio.to_thread(found.read_bytes) if isinstance(found, Path) else found
        _media, envelope = clips.open_clip(data)
        return self.clip_view(space.id, envelope), found

    async def verify(self, data: bytes, address: str) -> Verdict:
        """Checks a clip file against this instance: its key, and its own copy of the recording.
        Reading and hashing the recording is work: limited per address, like cutting clips."""
        await self.limits.hit(VERIFY_PER_ADDRESS, address)
        try:
            media, envelope = clips.open_clip(data)
        except clips.NotAClip as error:
            return Verdict(False, [clips.Check("provenance", False, str(error))], {})
        facts = envelope["facts"]
        checks = clips.check_sealed(media, envelope, self.public_key)
        if not checks[0].ok:
            # Not signed by this instance: nothing of its recording is read or hashed for it.
            return Verdict(False, checks, facts)
        space_id = str(facts.get("space", ""))
        try:
            space = await self.directory.get_space(space_id)
            if not space.record or space.state is SpaceState.SCHEDULED:
                raise NotFound("this space has no recording")
            records = program_records(await self.media.records(space.id))
            wanted = int(facts.get("recording_segments", -1))
            if not 0 < wanted <= len(records):
                raise NotFound("the clip names more of the recording than this instance holds")
            # Only the part of the recording the clip names is read and hashed.
            files = await self.media.read_many(space.id, [INIT_NAME] + [r.name for r in records[:wanted]])
            checks += await asyncio.to_thread(clips.check_against_recording, media, facts, files[0], files[1:])
        except (NotFound, Conflict, ValueError, TypeError) as error:
            checks.append(clips.Check("recording", False, f"the recording the clip names is not here: {error}"))
        return Verdict(all(c.ok for c in checks), checks, facts)
