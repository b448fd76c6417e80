"""Where media lives, chosen from one setting: the data folder, a shared folder, or S3."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from podium.backends.interfaces import MediaStore
from podium.errors import InvalidInput


def media_store_for(url: str, data_dir: Path) -> MediaStore:
    """ "" → `data_dir/media`; `file:///path` → that folder (shared between nodes);
    `s3://bucket/prefix?endpoint=…` → S3-compatible object storage."""
    from podium.backends.files import FileMediaStore

    if not url:
        return FileMediaStore(data_dir / "media")
    scheme = urlsplit(url).scheme
    if scheme == "file":
        path = unquote(urlsplit(url).path)
        if not path.startswith("/"):
            raise InvalidInput("PODIUM_STORAGE_URL: a file:// address needs an absolute path (file:///srv/podium)")
        return FileMediaStore(Path(path))
    if scheme == "s3":
        from podium.backends.s3 import S3MediaStore

        return S3MediaStore.from_url(url)
    raise InvalidInput(f"PODIUM_STORAGE_URL: {scheme or 'no'} scheme; use file:///path or s3://bucket/prefix")
