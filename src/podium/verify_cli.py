"""`podium verify CLIP`: is this clip an unaltered excerpt of the official recording?

Reads the provenance inside the clip, fetches the instance's public key and the recording's
segments the clip names (over HTTP, as any listener can), and checks: the signature, the clip's
own SHA-256, the recording's SHA-256, and that cutting the recording again at the signed place
gives the clip's audio byte for byte.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from podium.media import clips
from podium.media.packager import INIT_NAME, segment_name


class VerifyError(Exception):
    """The check could not be made (no such file, instance unreachable): neither valid nor invalid."""


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty() or total > 1:
        width = 30
        filled = width * done // max(total, 1)
        print(
            f"\r  recording: [{'#' * filled}{'.' * (width - filled)}] {done}/{total} segments", end="", file=sys.stderr
        )
        if done == total:
            print(file=sys.stderr)


def verify_clip(
    path: Path, instance: str | None = None, timeout_s: float = 20.0
) -> tuple[bool, list[clips.Check], dict[str, Any]]:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise VerifyError(f"cannot read {path}: {error.strerror}") from None
    try:
        media, envelope = clips.open_clip(data)
    except clips.NotAClip as error:
        return False, [clips.Check("provenance", False, str(error))], {}
    facts = envelope["facts"]
    base = (instance or str(facts.get("instance", ""))).rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise VerifyError("the clip names no instance; give one with --instance URL")
    with httpx.Client(timeout=timeout_s) as client:
        try:
            key_doc = client.get(f"{base}/.well-known/podium-clip-key").raise_for_status().json()
            public_key = Ed25519PublicKey.from_public_bytes(base64.b64decode(key_doc["public_key"]))
        except (httpx.HTTPError, KeyError, ValueError) as error:
            raise VerifyError(f"could not fetch the public key of {base}: {error}") from None
        checks = clips.check_sealed(media, envelope, public_key)
        space = str(facts.get("space", ""))
        try:
            count = int(facts["recording_segments"])
            init = client.get(f"{base}/hls/{space}/{INIT_NAME}").raise_for_status().content
            segments = []
            for msn in range(count):
                segments.append(client.get(f"{base}/hls/{space}/{segment_name(msn)}").raise_for_status().content)
                _progress(msn + 1, count)
        except (httpx.HTTPError, KeyError, ValueError, TypeError) as error:
            checks.append(
                clips.Check("recording", False, f"the recording the clip names could not be fetched: {error}")
            )
            return False, checks, facts
    checks += clips.check_against_recording(media, facts, init, segments)
    return all(c.ok for c in checks), checks, facts


def run(path: Path, instance: str | None) -> int:
    try:
        valid, checks, facts = verify_clip(path, instance)
    except VerifyError as error:
        print(f"podium verify: {error}", file=sys.stderr)
        return 2
    for check in checks:
        print(f"  {'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    if valid:
        print(
            f"VALID: an unaltered excerpt of “{facts.get('title')}”, {facts.get('offset_s')} s into the recording, "
            f"{facts.get('duration_s')} s long; in context: {facts.get('context_url')}"
        )
        return 0
    print("NOT VALID: this file is not an unaltered excerpt of the recording it names.")
    return 1
