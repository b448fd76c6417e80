"""Where things are: the paths that more than the web layer builds (pages, the stream, files, the
timeline). The route table (`podium.web.routes`) serves them under these very templates; every
other path is said in the table alone, and the web layer builds it by name (`web.urls.url_path`)."""

from __future__ import annotations

import re

LISTEN_PAGE = "/s/{space_id}"
HOST_PAGE = "/host/{space_id}"
SPEAKER_PAGE = "/join/{space_id}"
EMBED_PAGE = "/embed/{space_id}"
CLIP_PAGE = "/c/{space_id}/{clip_id}"
WHIP = "/whip/{space_id}"
WHIP_SESSION = "/whip/{space_id}/{session_id}"
HLS = "/hls/{space_id}/"  # the stream's folder: index.m3u8, live.m3u8, init, parts, segments
SIGNED_HLS = "/hls/{space_id}/k/{key}/"  # the same, behind a private space's signed link
TIMELINE = "/timeline/{space_id}/"
DOWNLOAD = "/media/{space_id}/recording.m4a"
CLIP_FILE = "/media/{space_id}/clips/{clip_id}.m4a"
VERIFY_PAGE = "/verify"
CLIP_KEY = "/.well-known/podium-clip-key"  # the instance's public key, for clips' provenance

_PARAMETER = re.compile(r"\{([a-z_]+)(?::[a-z]+)?\}")


def fill(template: str, **params: str) -> str:
    """A template with its parameters filled in; leaving one out is a mistake, not a broken link."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in params:
            raise KeyError(f"{template}: no value for {name}")
        return params[name]

    return _PARAMETER.sub(value, template)
