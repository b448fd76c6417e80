"""Clips and their provenance: sealed, checked, and refused when anything was changed."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from podium.media import clips, m4a
from tests.media.test_m4a import recording

START = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
INIT, SEGMENTS, FRAMES = recording(14.0, 440)
OTHER_INIT, OTHER_SEGMENTS, _ = recording(14.0, 660)


def make_clip(key: Ed25519PrivateKey, init: bytes = INIT, segments: list[bytes] = SEGMENTS) -> bytes:
    samples = m4a.fragment_samples(segments)
    cut = clips.plan_cut(1.0, 10.0, samples, 48000)
    media = clips.cut_media(init, segments, cut, START, "A clip")
    facts = {
        "format": clips.FORMAT,
        "title": "A clip",
        "first_frame": cut.first_frame,
        "frames": cut.frames,
        "timescale": cut.timescale,
        "frame_duration": cut.frame_duration,
        "offset_s": cut.offset_s,
        "duration_s": cut.duration_s,
        "clip_sha256": hashlib.sha256(media).hexdigest(),
        "recording_sha256": clips.recording_digest(init, segments),
        "recording_segments": len(segments),
        "media_created": START.isoformat(),
    }
    return clips.seal(media, facts, key)


def verdict(
    data: bytes, key: Ed25519PrivateKey, init: bytes = INIT, segments: list[bytes] = SEGMENTS
) -> dict[str, bool]:
    media, envelope = clips.open_clip(data)
    checks = clips.check_sealed(media, envelope, key.public_key())
    checks += clips.check_against_recording(media, envelope["facts"], init, segments)
    return {c.name: c.ok for c in checks}


def test_an_untouched_clip_passes_every_check() -> None:
    key = Ed25519PrivateKey.generate()
    data = make_clip(key)
    assert verdict(data, key) == {"signature": True, "clip_sha256": True, "recording_sha256": True, "excerpt": True}
    # The cut lands on whole AAC frames: 10 s is 469 frames of 1024 samples at 48 kHz.
    facts = clips.open_clip(data)[1]["facts"]
    assert facts["frames"] == 469 and facts["first_frame"] == 47


def test_one_changed_byte_of_audio_fails() -> None:
    key = Ed25519PrivateKey.generate()
    data = bytearray(make_clip(key))
    media, _ = clips.open_clip(bytes(data))
    data[len(media) - 100] ^= 0x40
    result = verdict(bytes(data), key)
    assert result["signature"] and not result["clip_sha256"] and not result["excerpt"]


def test_changed_facts_break_the_signature() -> None:
    key = Ed25519PrivateKey.generate()
    data = make_clip(key)
    forged = data.replace(b'"offset_s": 1.0026666666666666', b'"offset_s": 5.0026666666666666')
    assert forged != data
    assert verdict(forged, key)["signature"] is False


def test_a_clip_of_another_recording_or_by_another_key_fails() -> None:
    key, stranger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    other = make_clip(key, OTHER_INIT, OTHER_SEGMENTS)
    # Signed by this instance, but of another recording: the recording at hand does not match.
    result = verdict(other, key)
    assert result["signature"] and result["clip_sha256"]
    assert not result["recording_sha256"] and not result["excerpt"]
    # The other recording's audio under this recording's provenance.
    media_other, _ = clips.open_clip(other)
    media, _ = clips.open_clip(make_clip(key))
    spliced = media_other + make_clip(key)[len(media) :]
    assert verdict(spliced, key)["clip_sha256"] is False
    # A clip sealed by another key does not hold under this instance's key.
    assert verdict(make_clip(stranger), key)["signature"] is False


def test_files_that_are_not_clips_are_named_as_such() -> None:
    with pytest.raises(clips.NotAClip, match="no Podium provenance"):
        clips.open_clip(m4a.remux(INIT, SEGMENTS, START))
    with pytest.raises(clips.NotAClip, match="not an MP4"):
        clips.open_clip(b"hello world, not a box")
    data = make_clip(Ed25519PrivateKey.generate())
    with pytest.raises(clips.NotAClip, match="follows the provenance"):
        clips.open_clip(data + b"\x00\x00\x00\x08free")


@pytest.mark.parametrize(
    ("start", "length", "message"),
    [(0.0, 9.9, "10 to 120"), (0.0, 121.0, "10 to 120"), (-1.0, 10.0, "before"), (5.0, 10.0, "runs past")],
)
def test_cuts_outside_the_rules_are_refused(start: float, length: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        clips.plan_cut(start, length, m4a.fragment_samples(SEGMENTS), 48000)


def test_an_instance_is_compared_by_scheme_host_port_and_path() -> None:
    assert clips.instance_base("HTTPS://Podium.Example:443/") == "https://podium.example"
    assert clips.instance_base("http://[::1]:8000/pod/") == "http://[::1]:8000/pod"
    base = clips.instance_base("https://podium.example")
    assert clips.on_instance("https://podium.example/s/abc?t=1", base)
    assert clips.on_instance("/s/abc?t=1", base)  # root-relative: on whichever instance is read
    for elsewhere in (
        "https://podium.example.evil.org/s/abc",
        "http://podium.example/s/abc",
        "https://podium.example:8443/s/abc",
        "//evil.org/s/abc",
        "javascript:alert(1)",
    ):
        assert not clips.on_instance(elsewhere, base), elsewhere
    with pytest.raises(ValueError):
        clips.instance_base("ftp://podium.example")


def test_a_clip_naming_another_instance_or_another_sites_context_fails_the_instance_check() -> None:
    base = "https://podium.example"
    own = {"instance": base, "context_url": f"{base}/s/abc?t=1.0"}
    assert clips.check_instance(own, base).ok
    assert clips.check_instance({"context_url": "/s/abc?t=1.0"}, base).ok
    assert not clips.check_instance({**own, "instance": "https://evil.org"}, base).ok
    assert not clips.check_instance({**own, "context_url": "https://victim.org/s/abc"}, base).ok
