"""The raw log's binary frame format (version 1).

One frame holds one observed turn, losslessly. Layout, little-endian:

    offset size  field
    0      4     magic b"MPLF"
    4      1     format version (1)
    5      1     flags: bit 0 = payload is an LZ4 block
    6      2     int16 UTC offset of the turn's timestamp, in minutes
    8      8     uint64 seq: the turn id, global and increasing
    16     8     float64 timestamp, POSIX seconds
    24     16    prev hash: BLAKE2b-128 of the previous frame of the same user
                 (all zeros for a user's first frame): the hash chain
    40     4     uint32 stored payload length
    44     4     uint32 raw payload length
    48     4     uint32 CRC32 of bytes 0..47 and the stored payload
    52     ...   payload

Payload (before compression): six fields, each a LEB128 length then UTF-8
bytes (``surrogatepass``, so any Python str round-trips): role, speaker,
user_id, session_id, text, metadata as JSON. For the optional fields (speaker,
session_id, metadata) the length is stored plus one, zero meaning None.

Fixed-size header first so a reader can check length and CRC before touching
the payload; the hash covers the whole frame, so any flipped bit breaks the
chain at that frame.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import struct
import zlib
from typing import Any

import lz4.block

from .errors import CorruptionError

__all__ = ["FRAME_VERSION", "HASH_SIZE", "ZERO_HASH", "Turn", "decode_frame", "encode_frame",
           "frame_hash", "get_varint", "put_varint"]

MAGIC = b"MPLF"
FRAME_VERSION = 1
HASH_SIZE = 16
ZERO_HASH = bytes(HASH_SIZE)
_HEADER = struct.Struct("<4sBBhQd16sIII")
HEADER_SIZE = _HEADER.size  # 52
_FLAG_LZ4 = 1
_COMPRESS_MIN = 96  # below this LZ4 rarely wins and costs time


@dataclasses.dataclass(frozen=True, slots=True)
class Turn:
    """One observed turn, exactly as it was given to ``observe``."""

    id: int
    user_id: str
    session_id: str | None
    role: str
    speaker: str | None
    text: str
    timestamp: float  # POSIX seconds
    utc_offset_minutes: int = 0
    metadata: dict[str, Any] | None = None

    @property
    def datetime(self) -> dt.datetime:
        """The timestamp as an aware datetime in the offset it was given with."""
        tz = dt.timezone(dt.timedelta(minutes=self.utc_offset_minutes))
        return dt.datetime.fromtimestamp(self.timestamp, tz)


def frame_hash(frame: bytes) -> bytes:
    return hashlib.blake2b(frame, digest_size=HASH_SIZE).digest()


def put_varint(out: bytearray, n: int) -> None:
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def get_varint(buf: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _enc(s: str) -> bytes:
    return s.encode("utf-8", "surrogatepass")


def encode_frame(turn: Turn, prev_hash: bytes) -> bytes:
    fields: list[bytes | None] = [
        _enc(turn.role),
        None if turn.speaker is None else _enc(turn.speaker),
        _enc(turn.user_id),
        None if turn.session_id is None else _enc(turn.session_id),
        _enc(turn.text),
        None
        if turn.metadata is None
        else json.dumps(turn.metadata, ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8", "surrogatepass"
        ),
    ]
    raw = bytearray()
    for i, f in enumerate(fields):
        optional = i in (1, 3, 5)
        if f is None:
            put_varint(raw, 0)
            continue
        put_varint(raw, len(f) + 1 if optional else len(f))
        raw += f
    payload = bytes(raw)
    flags = 0
    if len(payload) >= _COMPRESS_MIN:
        packed = lz4.block.compress(payload, store_size=False)
        if len(packed) < len(payload):
            payload, flags = packed, _FLAG_LZ4
    head = _HEADER.pack(MAGIC, FRAME_VERSION, flags, turn.utc_offset_minutes, turn.id,
                        turn.timestamp, prev_hash, len(payload), len(raw), 0)
    crc = zlib.crc32(payload, zlib.crc32(head[:48]))
    return head[:48] + struct.pack("<I", crc) + payload


def read_header(frame: bytes) -> tuple[int, bytes]:
    """(seq, prev_hash) after checking magic, version, length and CRC."""
    if len(frame) < HEADER_SIZE:
        raise CorruptionError(f"frame shorter than its {HEADER_SIZE}-byte header")
    magic, version, _flags, _off, seq, _ts, prev, plen, _rlen, crc = _HEADER.unpack_from(frame)
    if magic != MAGIC:
        raise CorruptionError("frame has a bad magic number", seq=seq)
    if version != FRAME_VERSION:
        raise CorruptionError(
            f"frame format version {version} is not supported by this release "
            f"(it reads version {FRAME_VERSION}); upgrade memory-plugins", seq=seq)
    if len(frame) != HEADER_SIZE + plen:
        raise CorruptionError("frame length does not match its header", seq=seq)
    if zlib.crc32(frame[HEADER_SIZE:], zlib.crc32(frame[:48])) != crc:
        raise CorruptionError(f"frame {seq} fails its CRC32 check", seq=seq)
    return seq, prev


def decode_frame(frame: bytes) -> Turn:
    """Decode a frame, raising CorruptionError on any inconsistency."""
    seq, _prev = read_header(frame)
    _m, _v, flags, offset, _s, ts, _p, _plen, rlen, _c = _HEADER.unpack_from(frame)
    payload = frame[HEADER_SIZE:]
    try:
        if flags & _FLAG_LZ4:
            payload = lz4.block.decompress(payload, uncompressed_size=rlen)
        if len(payload) != rlen:
            raise ValueError("payload length mismatch")
        vals: list[str | None] = []
        pos = 0
        for i in range(6):
            n, pos = get_varint(payload, pos)
            if i in (1, 3, 5):
                if n == 0:
                    vals.append(None)
                    continue
                n -= 1
            if pos + n > len(payload):
                raise ValueError("field runs past the payload")
            vals.append(payload[pos : pos + n].decode("utf-8", "surrogatepass"))
            pos += n
        if pos != len(payload):
            raise ValueError("trailing bytes after the last field")
        meta = None if vals[5] is None else json.loads(vals[5])
    except (ValueError, lz4.block.LZ4BlockError) as exc:
        raise CorruptionError(f"frame {seq} payload cannot be decoded: {exc}", seq=seq) from exc
    role, speaker, user_id, session_id, text = vals[:5]
    assert role is not None and user_id is not None and text is not None
    return Turn(id=seq, user_id=user_id, session_id=session_id, role=role, speaker=speaker,
                text=text, timestamp=ts, utc_offset_minutes=offset, metadata=meta)

