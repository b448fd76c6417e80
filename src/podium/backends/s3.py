"""Media on S3-compatible object storage (AWS S3, SeaweedFS, MinIO, R2, ...), through obstore.

    PODIUM_STORAGE_URL=s3://bucket/optional/prefix?endpoint=http://127.0.0.1:8333&region=us-east-1

`endpoint` is left out for AWS itself; an `http://` endpoint is allowed (a store on the same host or
network). `region` defaults to us-east-1. The credentials come from the environment, as for every AWS
client: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN when there is one). The
bucket must exist; Podium never creates one.

Layout: a space's objects live under `{prefix}/{space_id}/`.
- `{name}`: what is written whole (init.mp4, s12.m4s, p12-0.m4s, recording.m4a, t5.json, ...). A PUT
  is atomic (the object appears whole or not at all; large ones go up in parts and appear only once
  complete) and durable once answered: the guarantee FileMediaStore gets from fsync and rename.
- `segments.jsonl/{msn:010d}_{duration_s}_{pdt}_{flags}`: one object per segment record, its facts in
  its key, so that one listing reads every record (and sees which segments exist) without a GET each.
- `{log}/{ns:020d}-{nonce}`: one object per appended line, since S3 has no append. Concurrent appends
  each make their own object, so none is lost; keys sort in append order (within a process strictly:
  see `_next_line_key`; between nodes as far as their clocks agree).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import obstore
from obstore.exceptions import NotFoundError
from obstore.store import S3Store

from podium.backends.files import RECORDING_FILES, RECORDS_NAME, record_line
from podium.backends.mending import MAX_PARTS, Mending
from podium.errors import InvalidInput
from podium.ids import SpaceId, is_space_id
from podium.media.packager import SegmentRecord, part_name

if TYPE_CHECKING:
    from obstore.store import S3Config

# GETs in flight at once for one call (a recording of two hours is about 3,500 segments).
READ_CONCURRENCY = 16
DEFAULT_REGION = "us-east-1"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PDT_FORMAT = "%Y%m%dT%H%M%S.%fZ"
# obstore raises the builtin for a missing object on GET; its own NotFoundError elsewhere.
_MISSING = (FileNotFoundError, NotFoundError)


class S3MediaStore(Mending):
    """A MediaStore in an S3 bucket; the module docstring gives the layout and its guarantees."""

    def __init__(self, store: S3Store) -> None:
        self._store = store
        self._last_line_ns = 0

    @classmethod
    def from_url(cls, url: str, environ: Mapping[str, str] | None = None) -> S3MediaStore:
        """`s3://bucket/prefix?endpoint=...&region=...`, with the credentials from `environ` (os.environ)."""
        env = os.environ if environ is None else environ
        bucket, prefix, endpoint, region = parse_url(url)
        key_id, secret = env.get("AWS_ACCESS_KEY_ID", ""), env.get("AWS_SECRET_ACCESS_KEY", "")
        if not key_id or not secret:
            raise InvalidInput(
                "PODIUM_STORAGE_URL is an s3:// address: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        config: S3Config = {"access_key_id": key_id, "secret_access_key": secret, "region": region}
        if endpoint:
            config["endpoint"] = endpoint
        if env.get("AWS_SESSION_TOKEN"):
            config["session_token"] = env["AWS_SESSION_TOKEN"]
        store = S3Store(
            bucket,
            prefix=prefix or None,
            config=config,
            client_options={"allow_http": endpoint.startswith("http://"), "connect_timeout": "5s", "timeout": "60s"},
            # A stage writes every half second: a store that is down fails a write in seconds, not minutes.
            retry_config={"max_retries": 3, "retry_timeout": timedelta(seconds=20)},
        )
        return cls(store)

    # -- whole objects ------------------------------------------------------------------------
    async def write(self, space_id: SpaceId, name: str, data: bytes) -> None:
        await obstore.put_async(self._store, _key(space_id, name), data)

    async def read(self, space_id: SpaceId, name: str) -> bytes | None:
        return await self._get(_key(space_id, name))

    async def read_many(self, space_id: SpaceId, names: list[str]) -> list[bytes]:
        found = await self._get_many([_key(space_id, name) for name in names])
        if None in found:  # the first missing one is named
            raise FileNotFoundError(f"no object {names[found.index(None)]!r} for space {space_id}")
        return [data for data in found if data is not None]

    async def remove(self, space_id: SpaceId, name: str) -> None:
        # S3 answers a delete of a missing key as done.
        await obstore.delete_async(self._store, [_key(space_id, name)])

    def local_path(self, space_id: SpaceId, name: str) -> Path | None:
        return None  # nothing is on the local disk: callers read the bytes instead

    # -- parts and their recovery -------------------------------------------------------------
    async def forget_parts(self, space_id: SpaceId, msn: int) -> None:
        # By name, in one bulk delete (S3 answers OK for a name that is not there): no listing,
        # which would grow with the space while this runs every segment.
        keys = [_key(space_id, part_name(msn, index)) for index in range(MAX_PARTS)]
        await obstore.delete_async(self._store, keys)

    # -- records and logs ---------------------------------------------------------------------
    async def append_record(self, space_id: SpaceId, record: SegmentRecord) -> None:
        # The body is the file store's line, for a person looking at the bucket: reading uses the key.
        key = _key(space_id, f"{RECORDS_NAME}/{record_token(record)}")
        await obstore.put_async(self._store, key, record_line(record).encode())

    async def records(self, space_id: SpaceId) -> list[SegmentRecord]:
        return _whole_records(await self._names(space_id))

    async def append_line(self, space_id: SpaceId, name: str, line: str) -> None:
        key = _key(space_id, f"{_check_name(name)}/{self._next_line_key()}")
        await obstore.put_async(self._store, key, line.encode())

    async def lines(self, space_id: SpaceId, name: str) -> list[str]:
        log = _key(space_id, _check_name(name))
        keys = sorted(await self._list(log))
        # A line removed between the listing and its GET (remove_recording) is simply not there.
        return [data.decode() for data in await self._get_many(keys) if data is not None]

    def _next_line_key(self) -> str:
        # Taken before the PUT is awaited, so appends made one after another (or started in an
        # order) sort in that order; the nonce keeps two nodes' lines of the same nanosecond apart.
        self._last_line_ns = max(time.time_ns(), self._last_line_ns + 1)
        return f"{self._last_line_ns:020d}-{secrets.token_hex(4)}"

    # -- removal ------------------------------------------------------------------------------
    async def remove_recording(self, space_id: SpaceId) -> None:
        # What makes a recording is named as for the local disk; a log's lines are under its name.
        doomed = [
            _key(space_id, name)
            for name in await self._names(space_id)
            if any(fnmatchcase(name.split("/", 1)[0], pattern) for pattern in RECORDING_FILES)
        ]
        if doomed:
            await obstore.delete_async(self._store, doomed)

    # -- plumbing -----------------------------------------------------------------------------
    async def _get(self, key: str) -> bytes | None:
        try:
            result = await obstore.get_async(self._store, key)
            return bytes(await result.bytes_async())
        except _MISSING:
            return None

    async def _get_many(self, keys: list[str]) -> list[bytes | None]:
        gate = asyncio.Semaphore(READ_CONCURRENCY)

        async def one(key: str) -> bytes | None:
            async with gate:
                return await self._get(key)

        return list(await asyncio.gather(*(one(key) for key in keys)))

    async def _list(self, folder: str) -> list[str]:
        """The keys under `folder` (whole path segments: `a/b` holds `a/b/c`, not `a/bc`)."""
        metas = await obstore.list(self._store, prefix=folder, chunk_size=1000).collect_async()
        return [meta["path"] for meta in metas]

    async def _names(self, space_id: SpaceId) -> list[str]:
        """Every object of a space, named relative to its folder (`s3.m4s`, `segments.jsonl/...`)."""
        folder = _folder(space_id)
        return [key[len(folder) + 1 :] for key in await self._list(folder)]


# -- URLs, keys and records: pure functions ------------------------------------------------------
def parse_url(url: str) -> tuple[str, str, str, str]:
    """`s3://bucket/prefix?endpoint=...&region=...` → (bucket, prefix, endpoint, region)."""
    example = "s3://bucket/prefix?endpoint=http://127.0.0.1:8333&region=us-east-1"
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise InvalidInput(f"PODIUM_STORAGE_URL: not an s3:// address; write it as {example}")
    bucket = parts.netloc
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise InvalidInput(
            f"PODIUM_STORAGE_URL: {bucket!r} is not a bucket name (3 to 63 lowercase letters, digits, dots"
            f" and hyphens; credentials go in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); e.g. {example}"
        )
    prefix = parts.path.strip("/")
    if prefix and any(piece in ("", ".", "..") for piece in prefix.split("/")):
        raise InvalidInput(f"PODIUM_STORAGE_URL: the prefix {prefix!r} has an empty, '.' or '..' folder")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"endpoint", "region"})
    if unknown:
        raise InvalidInput(f"PODIUM_STORAGE_URL: unknown parameter {', '.join(unknown)}; only endpoint and region")
    if any(len(values) > 1 for values in query.values()):
        raise InvalidInput("PODIUM_STORAGE_URL: endpoint and region may each be given once")
    endpoint = query.get("endpoint", [""])[0].rstrip("/")
    if endpoint:
        target = urlsplit(endpoint)
        try:
            port_ok = target.port is None or target.port > 0
        except ValueError:
            port_ok = False
        if target.scheme not in ("http", "https") or not target.hostname or not port_ok or "@" in target.netloc:
            raise InvalidInput(f"PODIUM_STORAGE_URL: endpoint {endpoint!r} must read http(s)://host[:port]")
        if target.path or target.query or target.fragment:
            raise InvalidInput(f"PODIUM_STORAGE_URL: endpoint {endpoint!r} must be the server alone, no path")
    region = query.get("region", [DEFAULT_REGION])[0] or DEFAULT_REGION
    return bucket, prefix, endpoint, region


def _folder(space_id: SpaceId) -> str:
    # Names come from Podium, never from a request, but check anyway: no key escapes its space.
    if not is_space_id(space_id):
        raise ValueError(f"not a space id: {space_id!r}")
    return str(space_id)


def _check_name(name: str) -> str:
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"not a media name: {name!r}")
    return name


def _key(space_id: SpaceId, name: str) -> str:
    # `name` may be a record or line key below a name (`segments.jsonl/...`): each piece is checked.
    return "/".join([_folder(space_id), *(_check_name(piece) for piece in name.split("/"))])


def record_token(record: SegmentRecord) -> str:
    """A record as one key: `0000000012_2.048_20261124T200024.576000Z_--` (flags: d discontinuity, p preshow).
    The number first, zero-padded, so that keys sort as the segments follow each other."""
    pdt = record.program_date_time.astimezone(UTC).strftime(_PDT_FORMAT)
    flags = ("d" if record.discontinuity else "-") + ("p" if record.preshow else "-")
    return f"{record.msn:010d}_{float(record.duration_s)!r}_{pdt}_{flags}"


def parse_record_token(token: str) -> SegmentRecord | None:
    try:
        msn, duration, pdt, flags = token.split("_")
        if len(flags) != 2:
            return None
        start = datetime.strptime(pdt, _PDT_FORMAT).replace(tzinfo=UTC)
        return SegmentRecord(int(msn), float(duration), start, flags[0] == "d", flags[1] == "p")
    except ValueError:
        return None


def _whole_records(names: Iterable[str]) -> list[SegmentRecord]:
    """The records in order, up to the first that cannot be read or whose segment is not stored
    (FileMediaStore's rule: a record counts only if its segment exists, and a gap ends the list)."""
    present = set(names)
    folder = RECORDS_NAME + "/"
    out: list[SegmentRecord] = []
    for name in sorted(n for n in present if n.startswith(folder)):
        record = parse_record_token(name[len(folder) :])
        if record is None or record.name not in present:
            break
        out.append(record)
    return out
