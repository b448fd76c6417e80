"""The pages' files, gzip-compressed for browsers that take it.

Each file is compressed once per version (its path, size and modification time name the copy) into
the data folder's cache, never per request, and then served like the original by Starlette's
FileResponse (ETag, Range, 304) with the original's type. Only Podium's own files are compressed:
what a request names can pick among them, never add to them, so the cache is bounded by the install.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import os
import tempfile
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

COMPRESSIBLE = frozenset({"text/javascript", "application/javascript", "text/css", "image/svg+xml", "application/json"})
MIN_BYTES = 1024  # below this the headers weigh more than the saving


def compressed_copy(source: Path, cache: Path) -> Path:
    """The gzip copy of `source` in `cache`, made (atomically) if this version has none yet."""
    stat = source.stat()
    key = hashlib.sha256(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:24]
    target = cache / f"{key}-{source.name}.gz"
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache, suffix=".part", delete=False) as partial:
            partial.write(gzip.compress(source.read_bytes(), compresslevel=9, mtime=0))
        os.replace(partial.name, target)  # two requests at once each write a whole copy; one wins
    return target


class CompressedStaticFiles(StaticFiles):
    """StaticFiles whose compressible files go out gzip-compressed (the cache: the data folder's)."""

    def file_response(
        self, full_path: os.PathLike[str] | str, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        return self.respond(Path(full_path), scope)

    def respond(
        self, source: Path, scope: Scope, media_type: str | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        """`source` as an answer: its gzip copy where the request accepts gzip and compressing pays."""
        media_type = media_type or mimetypes.guess_type(source.name)[0] or "application/octet-stream"
        request = Headers(scope=scope)
        merged = {**(headers or {}), "Vary": "Accept-Encoding"}
        compress = (
            "gzip" in request.get("accept-encoding", "")
            and media_type.split(";")[0] in COMPRESSIBLE
            and source.stat().st_size >= MIN_BYTES
        )
        if compress:
            merged["Content-Encoding"] = "gzip"
            source = compressed_copy(source, scope["app"].state.settings.data_dir / "cache" / "gzip")
        response = FileResponse(source, media_type=media_type, headers=merged, stat_result=source.stat())
        if self.is_not_modified(response.headers, request):
            return NotModifiedResponse(response.headers)
        return response


# Files served by handlers of their own (hls.js, from node_modules) go out the same way.
FILES = CompressedStaticFiles(directory=None, check_dir=False)
