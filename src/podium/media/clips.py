"""Verifiable clips: an excerpt of the recording, remuxed, with signed provenance inside the file.

Pure functions over bytes. A clip is a `.m4a` (see `podium.media.m4a`) followed by one top-level
`uuid` box that players skip: Podium's provenance, a JSON object

    {"facts": {...}, "key_id": "...", "signature": "<base64 Ed25519 over the canonical facts>"}

The facts say which instance and space it comes from, where it sits in the recording (first
AAC frame and count, and the same in seconds), the SHA-256 of the clip's media (every byte before
the provenance box) and of the recording it was cut from (the init section and the first
`recording_segments` segments, concatenated in order, as served over HLS).

Cutting is deterministic, so a clip is checked three ways: the signature holds under the
instance's public key; the media's hash is the one signed; and (with the recording at hand) the
recording's hash matches and cutting it again at the same place gives the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from podium.media import m4a

FORMAT = "podium-clip/1"
PROVENANCE_UUID = uuid.UUID("6b1f3c2e-6f64-4a9e-9a2d-706f6469756d").bytes
MIN_CLIP_S = 10.0
MAX_CLIP_S = 120.0
# A clip file is at most 120 s of 80 kb/s AAC plus tables: far below this.
MAX_CLIP_BYTES = 4 * 1024 * 1024


class NotAClip(ValueError):
    """The bytes are not a Podium clip (no provenance box, or one that cannot be read)."""


def canonical(facts: dict[str, Any]) -> bytes:
    return json.dumps(facts, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def key_id(public_key: Ed25519PublicKey) -> str:
    return hashlib.sha256(public_raw(public_key)).hexdigest()[:16]


def public_raw(public_key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def recording_digest(init: bytes, segments: Sequence[bytes]) -> str:
    digest = hashlib.sha256(init)
    for segment in segments:
        digest.update(segment)
    return digest.hexdigest()


@dataclass(frozen=True)
class Cut:
    first_frame: int
    frames: int
    timescale: int
    frame_duration: int

    @property
    def offset_s(self) -> float:
        return self.first_frame * self.frame_duration / self.timescale

    @property
    def duration_s(self) -> float:
        return self.frames * self.frame_duration / self.timescale


def plan_cut(start_s: float, duration_s: float, available: m4a.Samples, timescale: int) -> Cut:
    """Whole AAC frames covering [start_s, start_s + duration_s) of the recording's media time."""
    if not MIN_CLIP_S <= duration_s <= MAX_CLIP_S:
        raise ValueError(f"a clip lasts {MIN_CLIP_S:.0f} to {MAX_CLIP_S:.0f} seconds, not {duration_s:g}")
    if start_s < 0:
        raise ValueError("a clip cannot start before the recording")
    frame_duration = int(available.durations[0]) if len(available) else 1024
    first = round(start_s * timescale / frame_duration)
    count = round(duration_s * timescale / frame_duration)
    if first + count > len(available):
        have = len(available) * frame_duration / timescale
        raise ValueError(
            f"the recording holds {have:.1f} s so far; a clip of {duration_s:g} s from {start_s:g} s runs past it"
        )
    return Cut(first, count, timescale, frame_duration)


def cut_media(init: bytes, segments: Sequence[bytes], cut: Cut, created: datetime, title: str) -> bytes:
    """The clip's media bytes: the same arguments always give the same bytes."""
    stsd, timescale = m4a.sample_description(init)
    return cut_samples(stsd, timescale, m4a.fragment_samples(segments), cut, created, title)


def cut_samples(stsd: bytes, timescale: int, recording: m4a.Samples, cut: Cut, created: datetime, title: str) -> bytes:
    """`cut_media` over a recording already read: its frames from the first on."""
    return m4a.progressive(stsd, timescale, recording.slice(cut.first_frame, cut.frames), created, title)


def seal(media: bytes, facts: dict[str, Any], private_key: Ed25519PrivateKey) -> bytes:
    """The clip file: media, then the provenance box. `facts` must already hold `clip_sha256`."""
    if facts.get("clip_sha256") != hashlib.sha256(media).hexdigest():
        raise ValueError("the facts do not name this media's SHA-256")
    envelope = {
        "facts": facts,
        "key_id": key_id(private_key.public_key()),
        "signature": base64.b64encode(private_key.sign(canonical(facts))).decode("ascii"),
    }
    payload = PROVENANCE_UUID + json.dumps(envelope, sort_keys=True).encode("utf-8")
    return media + struct.pack(">I4s", 8 + len(payload), b"uuid") + payload


def open_clip(data: bytes) -> tuple[bytes, dict[str, Any]]:
    """Split a clip file into its media and its provenance envelope."""
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, offset)
        if size == 1 and offset + 16 <= len(data):
            size = struct.unpack_from(">Q", data, offset + 8)[0]
        if size < 8 or offset + size > len(data):
            raise NotAClip("the file is not an MP4 file, or it is cut short")
        if kind == b"uuid" and data[offset + 8 : offset + 24] == PROVENANCE_UUID:
            if offset + size != len(data):
                raise NotAClip("something follows the provenance in this file")
            try:
                envelope = json.loads(data[offset + 24 : offset + size])
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise NotAClip("the provenance in this file cannot be read") from None
            if not isinstance(envelope, dict) or not isinstance(envelope.get("facts"), dict):
                raise NotAClip("the provenance in this file cannot be read")
            return data[:offset], envelope
        offset += size
    raise NotAClip("this file holds no Podium provenance (it is not a Podium clip, or it was re-encoded)")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def check_sealed(media: bytes, envelope: dict[str, Any], public_key: Ed25519PublicKey) -> list[Check]:
    """What can be checked from the file and the instance's public key alone."""
    facts = envelope["facts"]
    checks = []
    signature_ok = False
    try:
        signature = base64.b64decode(str(envelope.get("signature", "")), validate=True)
        public_key.verify(signature, canonical(facts))
        signature_ok = True
    except (InvalidSignature, ValueError):
        pass
    checks.append(
        Check(
            "signature",
            signature_ok,
            f"signed by the instance's key {key_id(public_key)}"
            if signature_ok
            else f"the signature does not hold under the instance's key {key_id(public_key)}",
        )
    )
    actual = hashlib.sha256(media).hexdigest()
    signed = str(facts.get("clip_sha256"))
    same = actual == signed
    checks.append(
        Check(
            "clip_sha256",
            same,
            f"the audio's SHA-256 is the one signed ({actual[:16]}…)"
            if same
            else f"the audio was changed: its SHA-256 is {actual[:16]}…, the signed one {signed[:16]}…",
        )
    )
    return checks


def instance_base(url: str) -> str:
    """An instance's address as compared: scheme and host lower-cased, default port dropped, no
    trailing slash, nothing after the path. ValueError for anything but an absolute http(s) URL."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s):// address")
    port = parts.port  # ValueError for a port out of range
    default = {"http": 80, "https": 443}[parts.scheme.lower()]
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = host if port in (None, default) else f"{host}:{port}"
    return f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}"


def on_instance(url: str, base: str) -> bool:
    """Whether `url` is an address on the instance at `base` (an `instance_base`); a root-relative
    URL is on whichever instance it is read from."""
    if url.startswith("/") and not url.startswith("//"):
        return True
    try:
        there = instance_base(url)
    except ValueError:
        return False
    return there == base or there.startswith(base + "/")


def check_instance(facts: dict[str, Any], trusted: str) -> Check:
    """The facts name the trusted instance (or none) and a context on it: a clip signed elsewhere
    must not send its reader to this instance's pages as if this instance had made it."""
    named = str(facts.get("instance") or "")
    context = str(facts.get("context_url") or "")
    if named and not on_instance(named, trusted):
        return Check(
            "instance", False, f"the clip says it comes from {named}, not from {trusted}, the instance trusted"
        )
    if context and not on_instance(context, trusted):
        return Check("instance", False, f"the clip's context {context} is not on {trusted}, the instance trusted")
    return Check(
        "instance", True, f"the clip names {trusted}" if named else f"the clip names no instance; {trusted} trusted"
    )


def check_against_recording(media: bytes, facts: dict[str, Any], init: bytes, segments: Sequence[bytes]) -> list[Check]:
    """With the recording's first `recording_segments` segments: same recording, same excerpt."""
    digest = recording_digest(init, segments)
    same_recording = digest == facts.get("recording_sha256")
    checks = [
        Check(
            "recording_sha256",
            same_recording,
            f"the recording's SHA-256 over {len(segments)} segments is the one signed ({digest[:16]}…)"
            if same_recording
            else "the recording at hand is not the one the clip names",
        )
    ]
    try:
        cut = Cut(
            int(facts["first_frame"]), int(facts["frames"]), int(facts["timescale"]), int(facts["frame_duration"])
        )
        created = datetime.fromisoformat(str(facts["media_created"]))
        again = cut_media(init, segments, cut, created, str(facts.get("title", "")))
        excerpt = again == media
    except (KeyError, TypeError, ValueError, IndexError, m4a.NotAFragment):
        excerpt = False
    checks.append(
        Check(
            "excerpt",
            excerpt,
            f"cutting the recording again at {facts.get('offset_s')} s for {facts.get('duration_s')} s gives this audio"
            if excerpt
            else "cutting the recording again at the signed place does not give this audio",
        )
    )
    return checks
