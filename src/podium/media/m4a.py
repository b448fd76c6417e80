"""One-file `.m4a` from the recording's fragments: a remux, never a re-encode.

Pure functions over bytes: the fragments' AAC access units go once into one `mdat`, described by a
sample table in a `moov` placed first ("fast start"), with the init section's `stsd` byte for byte.

Deterministic: the same fragments and times give the same bytes, which is what lets anyone cut
a clip again from the official recording and compare (see `podium.media.clips`).
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from podium.media.fmp4 import SOUND_HANDLER, TRACK_ID, box, full_box, media_information, movie_header, track_header

_MP4_EPOCH = datetime(1904, 1, 1, tzinfo=UTC)
# Samples per chunk in the output: one chunk per 0.5 s or so, as muxers commonly write audio.
CHUNK_SAMPLES = 24


@dataclass(frozen=True)
class Samples:
    """AAC access units in decode order: their sizes, durations (in the track's timescale) and bytes."""

    sizes: np.ndarray  # uint32
    durations: np.ndarray  # uint32
    data: bytes

    def __len__(self) -> int:
        return len(self.sizes)

    @property
    def total_duration(self) -> int:
        return int(self.durations.sum())

    def slice(self, first: int, count: int) -> Samples:
        """Access units [first, first + count)."""
        offsets = np.concatenate(([0], np.cumsum(self.sizes, dtype=np.uint64)))
        start, end = int(offsets[first]), int(offsets[first + count])
        return Samples(self.sizes[first : first + count], self.durations[first : first + count], self.data[start:end])


class NotAFragment(ValueError):
    pass


def _boxes(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """Each box in `data`, in order: (type, its first byte, the byte after it)."""
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, offset)
        if size < 8 or offset + size > len(data):
            raise NotAFragment(f"malformed box at byte {offset}")
        yield kind, offset, offset + size
        offset += size


def _children(payload: bytes) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for kind, start, end in _boxes(payload):
        out.setdefault(kind, payload[start + 8 : end])
    return out


def sample_description(init: bytes) -> tuple[bytes, int]:
    """The `stsd` box (whole, header included) and the timescale, from an init section."""
    moov = _children(init).get(b"moov")
    if moov is None:
        raise NotAFragment("the init section has no moov")
    mdia = _children(_children(moov)[b"trak"])[b"mdia"]
    mdhd = _children(mdia)[b"mdhd"]
    version = mdhd[0]
    timescale = struct.unpack_from(">I", mdhd, 4 + (16 if version == 1 else 8))[0]
    stbl = _children(_children(mdia)[b"minf"])[b"stbl"]
    stsd = _children(stbl)[b"stsd"]
    return box(b"stsd", stsd), int(timescale)


def fragment_samples(fragments: Iterable[bytes]) -> Samples:
    """The access units of concatenated `moof` + `mdat` pairs (segments or parts), in order."""
    sizes: list[np.ndarray] = []
    durations: list[np.ndarray] = []
    payloads: list[bytes] = []
    for data in fragments:
        for moof_start, moof_end in ((start, end) for kind, start, end in _boxes(data) if kind == b"moof"):
            frame_sizes, frame_durations, data_offset = _read_traf(_children(data[moof_start + 8 : moof_end])[b"traf"])
            start = moof_start + data_offset
            end = start + int(frame_sizes.sum())
            if end > len(data):
                raise NotAFragment("a fragment's samples run past its end")
            sizes.append(frame_sizes)
            durations.append(frame_durations)
            payloads.append(data[start:end])
    if not sizes:
        return Samples(np.zeros(0, np.uint32), np.zeros(0, np.uint32), b"")
    return Samples(np.concatenate(sizes), np.concatenate(durations), b"".join(payloads))


def _read_traf(traf: bytes) -> tuple[np.ndarray, np.ndarray, int]:
    boxes = _children(traf)
    tfhd, trun = boxes[b"tfhd"], boxes[b"trun"]
    tf_flags = int.from_bytes(tfhd[1:4], "big")
    pos = 8  # version/flags + track id
    pos += 8 if tf_flags & 0x01 else 0  # base data offset
    pos += 4 if tf_flags & 0x02 else 0  # sample description index
    default_duration = default_size = 0
    if tf_flags & 0x08:
        default_duration = struct.unpack_from(">I", tfhd, pos)[0]
        pos += 4
    if tf_flags & 0x10:
        default_size = struct.unpack_from(">I", tfhd, pos)[0]
    flags = int.from_bytes(trun[1:4], "big")
    count = struct.unpack_from(">I", trun, 4)[0]
    pos = 8
    data_offset = 0
    if flags & 0x001:
        data_offset = struct.unpack_from(">i", trun, pos)[0]
        pos += 4
    pos += 4 if flags & 0x004 else 0  # first sample flags
    fields = [bit for bit in (0x100, 0x200, 0x400, 0x800) if flags & bit]
    table = np.frombuffer(trun, dtype=">u4", count=count * len(fields), offset=pos).reshape(count, len(fields))
    column = {bit: i for i, bit in enumerate(fields)}
    durations = table[:, column[0x100]] if 0x100 in column else np.full(count, default_duration)
    sizes = table[:, column[0x200]] if 0x200 in column else np.full(count, default_size)
    return sizes.astype(np.uint32), durations.astype(np.uint32), data_offset


def _mp4_time(moment: datetime) -> int:
    return int((moment - _MP4_EPOCH).total_seconds())


def progressive(stsd: bytes, timescale: int, samples: Samples, created: datetime, title: str = "") -> bytes:
    """`ftyp` + `moov` + `mdat`: the `.m4a` of `samples`, playable from its first bytes."""
    ftyp = box(b"ftyp", b"M4A ", struct.pack(">I", 0), b"M4A ", b"mp42", b"isom")
    # The moov's size does not depend on the offsets' values, so build it once to measure it.
    moov = _moov(stsd, timescale, samples, created, title, mdat_payload_at=0)
    mdat_header = 16 if len(samples.data) + 8 > 0xFFFFFFFF else 8
    first = len(ftyp) + len(moov) + mdat_header
    moov = _moov(stsd, timescale, samples, created, title, mdat_payload_at=first)
    if mdat_header == 16:
        mdat = struct.pack(">I4sQ", 1, b"mdat", 16 + len(samples.data))
    else:
        mdat = struct.pack(">I4s", 8 + len(samples.data), b"mdat")
    return ftyp + moov + mdat + samples.data


def _moov(stsd: bytes, timescale: int, samples: Samples, created: datetime, title: str, mdat_payload_at: int) -> bytes:
    when = _mp4_time(created)
    media_duration = samples.total_duration
    movie_duration = media_duration * 1000 // max(timescale, 1)
    mvhd = movie_header(1, struct.pack(">QQIQ", when, when, 1000, movie_duration))
    tkhd = track_header(1, struct.pack(">QQIIQ", when, when, TRACK_ID, 0, movie_duration))
    mdhd = full_box(b"mdhd", 1, 0, struct.pack(">QQIQHH", when, when, timescale, media_duration, 0x55C4, 0))
    # Time to sample: runs of equal durations.
    runs = [(len(list(run)), duration) for duration, run in itertools.groupby(samples.durations.tolist())]
    stts = full_box(b"stts", 0, 0, struct.pack(">I", len(runs)), b"".join(struct.pack(">II", n, d) for n, d in runs))
    # Sample to chunk: all chunks hold CHUNK_SAMPLES but perhaps the last (first chunk, samples in it).
    full, rest = divmod(len(samples), CHUNK_SAMPLES)
    chunks = ([(1, CHUNK_SAMPLES)] if full else []) + ([(full + 1, rest)] if rest else [])
    stsc_table = b"".join(struct.pack(">III", first, n, 1) for first, n in chunks)
    stsc = full_box(b"stsc", 0, 0, struct.pack(">I", len(chunks)), stsc_table)
    stsz = full_box(b"stsz", 0, 0, struct.pack(">II", 0, len(samples)), samples.sizes.astype(">u4").tobytes())
    starts = np.concatenate((np.zeros(1, np.uint64), np.cumsum(samples.sizes, dtype=np.uint64)))
    offsets = starts[: len(samples) : CHUNK_SAMPLES] + np.uint64(mdat_payload_at)
    kind, dtype = (b"co64", ">u8") if len(offsets) and int(offsets[-1]) > 0xFFFFFFFF else (b"stco", ">u4")
    stco = full_box(kind, 0, 0, struct.pack(">I", len(offsets)), offsets.astype(dtype).tobytes())
    stbl = box(b"stbl", stsd, stts, stsc, stsz, stco)
    trak = box(b"trak", tkhd, box(b"mdia", mdhd, SOUND_HANDLER, media_information(stbl)))
    return box(b"moov", mvhd, trak, _udta_title(title) if title else b"")


def _udta_title(title: str) -> bytes:
    """iTunes-style metadata (`udta/meta/ilst/©nam`), which players show as the title."""
    text = title.encode("utf-8")[:1000]
    data = box(b"data", struct.pack(">II", 1, 0), text)  # type 1: UTF-8
    ilst = box(b"ilst", box(b"\xa9nam", data))
    hdlr = full_box(b"hdlr", 0, 0, struct.pack(">I", 0), b"mdir", b"appl", b"\x00" * 8, b"\x00")
    return box(b"udta", full_box(b"meta", 0, 0, hdlr, ilst))


def remux(init: bytes, fragments: Iterable[bytes], created: datetime, title: str = "") -> bytes:
    """The whole recording as one `.m4a`."""
    stsd, timescale = sample_description(init)
    return progressive(stsd, timescale, fragment_samples(fragments), created, title)
