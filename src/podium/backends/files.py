"""Media on the local disk: one folder per space, every write durable before it returns."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from datetime import datetime
from pathlib import Path

from podium.backends.mending import MAX_PARTS, head_of, mended_record, parse_head
from podium.ids import SpaceId, is_space_id
from podium.media.packager import INIT_NAME, Part, SegmentRecord, part_name

RECORDS_NAME = "segments.jsonl"
# The head of the segment being made (its number, start time, discontinuity), written with its
# first part: with the parts on disk, enough to make the segment whole after a crash.
OPEN_SEGMENT_NAME = "open-segment.json"
# What a recording is made of (audio, its records, who spoke when, downloads and clips); the
# timeline objects (text) are not part of it.
RECORDING_FILES = ("*.m4s", "*.m4a", INIT_NAME, RECORDS_NAME, OPEN_SEGMENT_NAME, "speakers.jsonl", ".*.tmp")


class FileMediaStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _folder(self, space_id: SpaceId) -> Path:
        # Names come from Podium, never from a request, but check anyway: no path escapes root.
        if not is_space_id(space_id):
            raise ValueError(f"not a space id: {space_id!r}")
        return self.root / space_id

    async def write(self, space_id: SpaceId, name: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, self._folder(space_id), name, data)

    @staticmethod
    def _write(folder: Path, name: str, data: bytes) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / name
        # A temporary name of its own: two writers of one name never rename each other's file.
        temp = folder / f".{name}.{secrets.token_hex(4)}.tmp"
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, final)
        _fsync_dir(folder)

    async def write_part(self, space_id: SpaceId, part: Part) -> None:
        folder = self._folder(space_id)
        head = head_of(part)
        if head is not None:
            await asyncio.to_thread(self._write, folder, OPEN_SEGMENT_NAME, head)
        await asyncio.to_thread(self._write, folder, part.name, part.data)

    async def forget_parts(self, space_id: SpaceId, msn: int) -> None:
        folder = self._folder(space_id)

        def remove() -> None:
            for path in folder.glob(f"p{msn}-*.m4s"):
                path.unlink(missing_ok=True)

        await asyncio.to_thread(remove)

    async def recover(self, space_id: SpaceId) -> SegmentRecord | None:
        """After a crash: the parts of the segment that was being made become that segment (short),
        durable and recorded like any other, so at most the part in the making was lost."""
        return await asyncio.to_thread(self._recover, self._folder(space_id))

    def _recover(self, folder: Path) -> SegmentRecord | None:
        head_path = folder / OPEN_SEGMENT_NAME
        init_path = folder / INIT_NAME
        if not head_path.exists() or not init_path.exists():
            return None
        records = self._records(folder)
        head = parse_head(head_path.read_bytes())
        if head is None or head.msn != (records[-1].msn + 1 if records else 0):
            return None  # unreadable, or the segment it names was completed (or is older)
        parts = []
        for index in range(MAX_PARTS):
            path = folder / part_name(head.msn, index)
            if not path.exists():
                break
            parts.append(path.read_bytes())
        if not parts:
            return None
        data = b"".join(parts)
        record = mended_record(head, init_path.read_bytes(), data)
        if record is None:
            return None  # not ours to mend: leave the files as they are
        self._write(folder, record.name, data)
        self._append(folder, RECORDS_NAME, _record_line(record))
        for index in range(len(parts)):
            (folder / part_name(head.msn, index)).unlink(missing_ok=True)
        return record

    async def append_record(self, space_id: SpaceId, record: SegmentRecord) -> None:
        await asyncio.to_thread(self._append, self._folder(space_id), RECORDS_NAME, _record_line(record))

    async def append_line(self, space_id: SpaceId, name: str, line: str) -> None:
        await asyncio.to_thread(self._append, self._folder(space_id), name, line)

    async def lines(self, space_id: SpaceId, name: str) -> list[str]:
        """The whole lines of an appended file (a torn last line after a crash is left out)."""
        path = self._folder(space_id) / name

        def read() -> list[str]:
            if not path.exists():
                return []
            text = path.read_text(encoding="utf-8")
            return text.split("\n")[:-1]

        return await asyncio.to_thread(read)

    @staticmethod
    def _append(folder: Path, name: str, line: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / name, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    async def records(self, space_id: SpaceId) -> list[SegmentRecord]:
        return await asyncio.to_thread(self._records, self._folder(space_id))

    @staticmethod
    def _records(folder: Path) -> list[SegmentRecord]:
        path = folder / RECORDS_NAME
        if not path.exists():
            return []
        out: list[SegmentRecord] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                item = json.loads(line)
                record = SegmentRecord(
                    int(item["msn"]),
                    float(item["duration_s"]),
                    datetime.fromisoformat(item["pdt"]),
                    bool(item["discontinuity"]),
                    bool(item.get("preshow", False)),
                )
            except (ValueError, KeyError, TypeError):
                break  # a torn last line after a crash: everything before it is whole
            # A record counts only if its segment reached the disk (it is written first).
            if not (folder / record.name).exists():
                break
            out.append(record)
        return out

    async def read(self, space_id: SpaceId, name: str) -> bytes | None:
        path = self.local_path(space_id, name)
        if path is None:
            return None
        return await asyncio.to_thread(path.read_bytes)

    async def read_many(self, space_id: SpaceId, names: list[str]) -> list[bytes]:
        folder = self._folder(space_id)
        return await asyncio.to_thread(lambda: [(folder / name).read_bytes() for name in names])

    async def remove(self, space_id: SpaceId, name: str) -> None:
        await asyncio.to_thread((self._folder(space_id) / name).unlink, missing_ok=True)

    async def remove_recording(self, space_id: SpaceId) -> None:
        folder = self._folder(space_id)

        def remove() -> None:
            for pattern in RECORDING_FILES:
                for path in folder.glob(pattern):
                    path.unlink(missing_ok=True)

        await asyncio.to_thread(remove)

    def local_path(self, space_id: SpaceId, name: str) -> Path | None:
        path = self._folder(space_id) / name
        return path if path.is_file() else None


def _record_line(record: SegmentRecord) -> str:
    line: dict[str, object] = {
        "msn": record.msn,
        "duration_s": record.duration_s,
        "pdt": record.program_date_time.isoformat(),
        "discontinuity": record.discontinuity,
    }
    if record.preshow:
        line["preshow"] = True
    return json.dumps(line)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
