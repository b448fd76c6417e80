"""`podium verify CLIP [--trust URL]`: is this clip an unaltered excerpt of the official recording?

Checks, over HTTP as any listener could: that the clip names the trusted instance and a context on
it, the signature, the clip's and the recording's SHA-256, and that cutting the recording again at
the signed place gives the clip's audio byte for byte.

The reader chooses the instance trusted (`--trust URL`); without it, the one the clip names, but only
if the clip's context is on it: else anyone could sign with their own key, serve their own
"recording" and name a victim's page as the context. The verdict says which instance and key.
"""

from __future__ import annotations

import base64
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from podium import urls
from podium.ids import is_space_id
from podium.media import clips
from podium.media.packager import INIT_NAME, segment_name
from podium.ops.cli import progress_bar


class VerifyError(Exception):
    """The check could not be made (no such file, instance unreachable): neither valid nor invalid."""


@dataclass
class Outcome:
    valid: bool
    checks: list[clips.Check]
    facts: dict[str, Any]
    trusted: str = ""  # the instance whose key and recording were used
    key_id: str = ""  # that instance's key, as fetched
    notes: list[str] = field(default_factory=list)


def trusted_instance(facts: dict[str, Any], trust: str | None) -> str:
    """The instance to check against: `trust` when given, else the one the clip names, if its
    context is on it (VerifyError otherwise, before anything is fetched)."""
    if trust:
        try:
            return clips.instance_base(trust)
        except ValueError:
            raise VerifyError(f"--trust {trust!r}: give the instance's address, e.g. https://podium.example") from None
    named = str(facts.get("instance") or "")
    if not named:
        raise VerifyError(
            "the clip names no instance (it was made without PODIUM_PUBLIC_URL); give one with --trust URL"
        )
    try:
        base = clips.instance_base(named)
    except ValueError:
        raise VerifyError(f"the clip names {named!r}, which is not an instance's address; use --trust URL") from None
    context = str(facts.get("context_url") or "")
    if context and not clips.on_instance(context, base):
        raise VerifyError(
            f"the clip says it comes from {named} but sends its reader to {context}, on another site; "
            "it proves nothing about that site. To check it against an instance, name the one you trust: "
            "--trust URL"
        )
    return base


def verify_clip(path: Path, trust: str | None = None, timeout_s: float = 20.0) -> Outcome:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise VerifyError(f"cannot read {path}: {error.strerror}") from None
    try:
        media, envelope = clips.open_clip(data)
    except clips.NotAClip as error:
        return Outcome(False, [clips.Check("provenance", False, str(error))], {})
    facts = envelope["facts"]
    base = trusted_instance(facts, trust)
    checks = [clips.check_instance(facts, base)]
    space = str(facts.get("space", ""))
    with httpx.Client(timeout=timeout_s, follow_redirects=False) as client:
        try:
            key_doc = client.get(base + urls.CLIP_KEY).raise_for_status().json()
            public_key = Ed25519PublicKey.from_public_bytes(base64.b64decode(key_doc["public_key"]))
        except (httpx.HTTPError, KeyError, ValueError, TypeError) as error:
            raise VerifyError(f"could not fetch the public key of {base}: {error}") from None
        outcome = Outcome(False, checks, facts, base, clips.key_id(public_key))
        checks += clips.check_sealed(media, envelope, public_key)
        if not all(c.ok for c in checks):
            return outcome  # the recording is not fetched for a clip that already failed
        if not is_space_id(space):
            checks.append(clips.Check("recording", False, f"the clip names no space of {base} ({space!r})"))
            return outcome
        try:
            count = int(facts["recording_segments"])
            folder = base + urls.fill(urls.HLS, space_id=space)
            init = client.get(folder + INIT_NAME).raise_for_status().content
            segments = []
            for msn in range(count):
                segments.append(client.get(folder + segment_name(msn)).raise_for_status().content)
                if sys.stderr.isatty() or count > 1:
                    bar = progress_bar(msn + 1, count)
                    print(f"\r  recording: {bar} segments", end="" if msn + 1 < count else "\n", file=sys.stderr)
        except (httpx.HTTPError, KeyError, ValueError, TypeError) as error:
            checks.append(
                clips.Check("recording", False, f"the recording the clip names could not be fetched: {error}")
            )
            return outcome
    checks += clips.check_against_recording(media, facts, init, segments)
    outcome.valid = all(c.ok for c in checks)
    return outcome


def run(args: Any) -> int:
    try:
        outcome = verify_clip(args.clip, args.trust)
    except VerifyError as error:
        print(f"podium verify: {error}", file=sys.stderr)
        return 2
    facts = outcome.facts
    if outcome.trusted:
        print(f"  trusted: {outcome.trusted}, its key {outcome.key_id}")
    for check in outcome.checks:
        print(f"  {'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    if outcome.valid:
        context = str(facts.get("context_url") or "")
        if context.startswith("/"):
            context = outcome.trusted + context
        print(
            f"VALID: an unaltered excerpt of “{facts.get('title')}”, {facts.get('offset_s')} s into the recording, "
            f"{facts.get('duration_s')} s long, signed by {outcome.trusted} (key {outcome.key_id}); "
            f"in context: {context}"
        )
        return 0
    print("NOT VALID: this file is not an unaltered excerpt of the recording it names, on the instance trusted.")
    return 1
