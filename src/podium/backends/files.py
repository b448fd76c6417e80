"""Media on the local disk: one folder per space, every write durable before it returns."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from datetime import datetime
from pathlib import Path

from podium.backends.mending import OPEN_SEGMENT_NAME, Mending
from podium.ids import SpaceId, is_space_id
from podium.media.packager import INIT_NAME, SegmentRecord

RECORDS_NAME = "segments.jsonl"
# What a recording is made of (audio, its records, who spoke when, downloads and clips); the
# timeline objects (text) are not part of it.
RECORDING_FILES = ("*.m4s", "*.m4a", INIT_NAME, RECORDS_NAME, OPEN_SEGMENT_NAME, "speakers.jsonl", ".*.tmp")


class FileMediaStore(Mending):
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
        directory = os.open(folder, os.O_RDONLY)  # and the rename made durable
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    async def forget_parts(self, space_id: SpaceId, msn: int) -> None:
        folder = self._folder(space_id)

        def remove() -> None:
            for path in folder.glob(f"p{msn}-*.m4s"):
                path.unlink(missing_ok=True)

        await asyncio.to_thread(remove)

    async def append_record(self, space_id: SpaceId, record: SegmentRecord) -> None:
        await asyncio.to_thread(self._append, self._folder(space_id), RECORDS_NAME, record_line(record))

    async def append_line(self, space_id: SpaceId, name: str, line: str) -> None:
        await asyncio.to_thread(self._append, self._folder(space_id), name, line)

    async def lines(self, space_id: SpaceId, name: str) -> list[str]:
        """The whole lines of an appended file (a torn last line after a crash is left out)."""
        path = self._folder(space_id) / name

        def read() -> list[str]:
            return path.read_text(encoding="utf-8").split("\n")[:-1] if path.exists() else []

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


def record_line(record: SegmentRecord) -> str:
    """A segment record as its JSON line (`preshow` only when true)."""
    line: dict[str, object] = {
        "msn": record.msn,
        "duration_s": record.duration_s,
        "pdt": record.program_date_time.isoformat(),
        "discontinuity": record.discontinuity,
    }
    if record.preshow:
        line["preshow"] = True
    return json.dumps(line)
