"""Fragmented MP4 (ISO BMFF / CMAF) for one AAC audio track: the init section and fragments.

Pure functions over bytes. A fragment is `moof` + `mdat` holding whole AAC frames; an HLS
partial segment is one fragment and a full segment is its parts concatenated, so the bytes
a player gets are the same whether it reads parts or segments.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

TRACK_ID = 1
_UNITY_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def _descriptor(tag: int, body: bytes) -> bytes:
    # ISO 14496-1 expandable length, written in the 4-byte form every parser accepts.
    n = len(body)
    size = bytes([0x80 | ((n >> 21) & 0x7F), 0x80 | ((n >> 14) & 0x7F), 0x80 | ((n >> 7) & 0x7F), n & 0x7F])
    return bytes([tag]) + size + body


def _esds(audio_specific_config: bytes, bitrate: int) -> bytes:
    decoder_specific = _descriptor(0x05, audio_specific_config)
    decoder_config = _descriptor(
        0x04,
        bytes([0x40, 0x15])  # MPEG-4 audio; audio stream
        + (0).to_bytes(3, "big")  # bufferSizeDB
        + struct.pack(">II", bitrate, bitrate)
        + decoder_specific,
    )
    sl_config = _descriptor(0x06, b"\x02")
    es = _descriptor(0x03, struct.pack(">HB", 0, 0) + decoder_config + sl_config)
    return full_box(b"esds", 0, 0, es)


def movie_header(version: int, times: bytes) -> bytes:
    """`mvhd`; `times`: creation, modification, timescale and duration, 32-bit (version 0) or 64-bit (1)."""
    return full_box(
        b"mvhd",
        version,
        0,
        times,
        struct.pack(">IH", 0x00010000, 0x0100),  # rate 1.0, volume 1.0
        b"\x00" * 10,
        _UNITY_MATRIX,
        b"\x00" * 24,
        struct.pack(">I", TRACK_ID + 1),
    )


def track_header(version: int, times: bytes, alternate_group: int = 0) -> bytes:
    """`tkhd` of the audio track; `times`: creation, modification, track id, reserved, duration."""
    return full_box(
        b"tkhd",
        version,
        0x3,  # enabled, in movie
        times,
        b"\x00" * 8,
        struct.pack(">hhhH", 0, alternate_group, 0x0100, 0),  # layer, alternate group, volume, reserved
        _UNITY_MATRIX,
        struct.pack(">II", 0, 0),
    )


SOUND_HANDLER = full_box(b"hdlr", 0, 0, struct.pack(">I", 0), b"soun", b"\x00" * 12, b"Podium audio\x00")


def media_information(stbl: bytes) -> bytes:
    """`minf` of a sound track: its header, data in the same file, and the sample table."""
    return box(
        b"minf",
        full_box(b"smhd", 0, 0, struct.pack(">hH", 0, 0)),
        box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1))),
        stbl,
    )


def init_section(audio_specific_config: bytes, sample_rate: int, channels: int = 1, bitrate: int = 64_000) -> bytes:
    """`ftyp` + `moov` describing one AAC track with timescale = sample rate."""
    ftyp = box(b"ftyp", b"iso6", struct.pack(">I", 0), b"iso6", b"cmfc", b"mp41", b"isom")
    mvhd = movie_header(0, struct.pack(">IIII", 0, 0, 1000, 0))
    tkhd = track_header(0, struct.pack(">IIIII", 0, 0, TRACK_ID, 0, 0), alternate_group=1)
    mdhd = full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, sample_rate, 0, 0x55C4, 0))  # 'und'
    mp4a = box(
        b"mp4a",
        b"\x00" * 6,
        struct.pack(">H", 1),  # data reference index
        b"\x00" * 8,
        struct.pack(">HHHH", channels, 16, 0, 0),
        struct.pack(">I", sample_rate << 16),
        _esds(audio_specific_config, bitrate),
    )
    stbl = box(
        b"stbl",
        full_box(b"stsd", 0, 0, struct.pack(">I", 1), mp4a),
        full_box(b"stts", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsc", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
        full_box(b"stco", 0, 0, struct.pack(">I", 0)),
    )
    trak = box(b"trak", tkhd, box(b"mdia", mdhd, SOUND_HANDLER, media_information(stbl)))
    trex = full_box(b"trex", 0, 0, struct.pack(">IIIII", TRACK_ID, 1, 1024, 0, 0))
    moov = box(b"moov", mvhd, trak, box(b"mvex", trex))
    return ftyp + moov


def fragment(sequence_number: int, base_decode_time: int, frames: Sequence[bytes], frame_duration: int) -> bytes:
    """One `moof` + `mdat` holding `frames` (raw AAC access units), starting at `base_decode_time`
    in track timescale units. `sequence_number` must grow by one per fragment of a track."""
    sample_count = len(frames)
    # box header + version/flags + sample_count + data_offset, then duration and size per sample
    trun_size = 8 + 4 + 4 + 4 + 8 * sample_count
    tfhd = full_box(b"tfhd", 0, 0x020000, struct.pack(">I", TRACK_ID))  # default-base-is-moof
    tfdt = full_box(b"tfdt", 1, 0, struct.pack(">Q", base_decode_time))
    mfhd = full_box(b"mfhd", 0, 0, struct.pack(">I", sequence_number))
    moof_size = 8 + len(mfhd) + 8 + len(tfhd) + len(tfdt) + trun_size
    data_offset = moof_size + 8  # from the start of moof to the first byte of mdat's payload
    samples = b"".join(struct.pack(">II", frame_duration, len(f)) for f in frames)
    trun = full_box(b"trun", 0, 0x000001 | 0x000100 | 0x000200, struct.pack(">Ii", sample_count, data_offset), samples)
    assert len(trun) == trun_size
    moof = box(b"moof", mfhd, box(b"traf", tfhd, tfdt, trun))
    assert len(moof) == moof_size
    return moof + box(b"mdat", *frames)


def iter_boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    """Top-level boxes as (type, payload); for tests and tools reading what Podium wrote."""
    out: list[tuple[bytes, bytes]] = []
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, offset)
        if size < 8 or offset + size > len(data):
            raise ValueError(f"truncated or malformed box at byte {offset}")
        out.append((kind, data[offset + 8 : offset + size]))
        offset += size
    if offset != len(data):
        raise ValueError(f"{len(data) - offset} trailing bytes after the last box")
    return out
