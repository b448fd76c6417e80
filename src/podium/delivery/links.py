"""Signed listener links for private spaces, checkable without a database: by Podium and by an edge.

A link names a space and a window (`nbf` ≤ now < `exp`, Unix seconds) and travels in the path,
`/hls/{space}/k/{nbf}.{exp}.{mac}.{edge}/{file}`, so that a playlist's relative URIs carry it too.

- `mac`: HMAC-SHA256 of "space:nbf:exp" (generation 0) or "space:nbf:exp:generation" under the
  link key, 128 bits: what Podium relies on. The host moves the space's `link_generation` on to
  withdraw every link given so far; the edge cannot know it and serves what it cached until it expires.
- `edge`: MD5 in nginx's `secure_link_md5` form (base64url) of "{exp}{space}{nbf} {key}", which
  nginx checks with the expiry (Podium checks it too, so both agree). The not-before is Podium's to
  check; nginx caches only what Podium answered, under the link's own path.

Windows are rounded to `ROUND_S`, so that listeners let in within the same few minutes share one
link and the cache serves them all from the same objects.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from podium.errors import Forbidden

ROUND_S = 600
_TOKEN = re.compile(r"(\d{1,12})\.(\d{1,12})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{22})")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def link_key(instance_secret: str) -> str:
    """The key links are signed with, derived from the instance secret (and shared with the edge)."""
    return hmac.new(instance_secret.encode(), b"podium.links.v1", hashlib.sha256).hexdigest()[:40]


@dataclass(frozen=True)
class Window:
    not_before: int
    expires: int


class LinkSigner:
    def __init__(self, key: str) -> None:
        self.key = key

    def token(self, space_id: str, not_before: int, expires: int, generation: int = 0) -> str:
        # Generation 0 signs as links always did, so links given out before generations existed hold.
        signed = f"{space_id}:{not_before}:{expires}" + (f":{generation}" if generation else "")
        mac = _b64(hmac.new(self.key.encode(), signed.encode(), "sha256").digest()[:16])
        edge = _b64(hashlib.md5(f"{expires}{space_id}{not_before} {self.key}".encode()).digest())
        return f"{not_before}.{expires}.{mac}.{edge}"

    def rounded_token(
        self, space_id: str, now: float, valid_for_s: int, not_before: int | None = None, generation: int = 0
    ) -> str:
        """A link good from `not_before` (default: now, rounded down) for about `valid_for_s`."""
        start = not_before if not_before is not None else int(now) // ROUND_S * ROUND_S
        expires = -(-(max(int(now), start) + valid_for_s) // ROUND_S) * ROUND_S
        return self.token(space_id, start, expires, generation)

    def check(self, token: str, space_id: str, now: float, generation: int = 0) -> Window:
        """The window of a valid link of the space's current link generation; else Forbidden with
        what is wrong (signature checks only)."""
        found = _TOKEN.fullmatch(token)
        if found is None:
            raise Forbidden("this listener link is not valid; ask the host for a new one")
        not_before, expires = int(found.group(1)), int(found.group(2))
        # Both parts: a link the edge would refuse is refused here too.
        expected = self.token(space_id, not_before, expires, generation).split(".", 2)[2]
        if not hmac.compare_digest(expected, f"{found.group(3)}.{found.group(4)}"):
            raise Forbidden(
                "this listener link is not valid (or the host has withdrawn it); ask the host for a new one"
            )
        if now < not_before:
            raise Forbidden("this listener link is not valid yet; come back at the time on your ticket")
        if now >= expires:
            raise Forbidden("this listener link has expired; ask the host for a new one")
        return Window(not_before, expires)


def nginx_include(key: str) -> str:
    """The snippet the shipped nginx configuration includes: the key, in a variable."""
    return (
        "# Written by Podium: the key of signed listener links, for nginx's secure_link.\n"
        "# Keep it secret (mode 0600); it changes only with the instance secret.\n"
        f'set $podium_link_key "{key}";\n'
    )
