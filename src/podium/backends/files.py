"""Media on the local disk: one folder per space, every write durable before it returns."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import datetime
from pathlib import Path

from podium.ids import SpaceId, is_space_id
from podium.media.packager import SegmentRecord

RECORDS_NAME = "segments.jsonl"


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
        temp = folder / f".{name}.tmp"
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, final)
        _fsync_dir(folder)

    async def append_record(self, space_id: SpaceId, record: SegmentRecord) -> None:
        line = json.dumps(
            {
                "msn": record.msn,
                "duration_s": record.duration_s,
                "pdt": record.program_date_time.isoformat(),
                "discontinuity": record.discontinuity,
            }
        )
        await asyncio.to_thread(self._append, self._folder(space_id), line)

    @staticmethod
    def _append(folder: Path, line: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / RECORDS_NAME, "a", encoding="utf-8") as handle:
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

    def local_path(self, space_id: SpaceId, name: str) -> Path | None:
        path = self._folder(space_id) / name
        return path if path.is_file() else None


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
