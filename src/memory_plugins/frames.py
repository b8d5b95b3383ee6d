"""The raw log's binary frame format: version 2 is written, version 1 still read.

One frame holds one observed turn, losslessly.

Version 2 (written since store format 2). A fixed 24-byte head, then LEB128
varints, then the payload:

    offset size  field
    0      2     magic b"MP"
    2      1     format version (2)
    3      1     flags: bit 0 = payload is an LZ4 block; bit 1 = the timestamp is a
                 whole number of seconds, stored as a zigzag varint; bit 2 = the LZ4
                 block was compressed against the frame dictionary
    4      4     uint32 CRC32 of bytes 0..3 and 8..end (little-endian)
    8      16    prev hash: BLAKE2b-128 of the previous frame of the same user
                 (all zeros for a user's first frame): the hash chain
    24     var   seq: the turn id, global and increasing
           var   UTC offset of the turn's timestamp in minutes, zigzag
           8|var timestamp, POSIX seconds: float64 (little-endian), or zigzag varint
           var   raw payload length (only when the payload is LZ4)
           ...   payload

Payload (before compression): the role as one byte (1 user, 2 assistant, 3 system,
4 memory, 5 tool; 0: a LEB128 length and the UTF-8 role follow), then five
fields, each a LEB128 length then UTF-8 bytes (``surrogatepass``, so any Python
str round-trips): speaker, user_id, session_id, text, metadata as JSON. For the
optional fields (speaker, session_id, metadata) the length is stored plus one,
zero meaning None. The payload is an LZ4 block, compressed against a fixed
dictionary of common English words (``_frame_dictionary.py``: short turns give
LZ4 too little to match within themselves), when that makes it smaller; else it
is stored raw, and flags say which.

Version 1 (store format 1; read, never written): a fixed 52-byte header,
little-endian: magic b"MPLF", version (1), flags (bit 0 LZ4), int16 UTC offset
(minutes), uint64 seq, float64 timestamp, 16-byte prev hash, uint32 stored
payload length, uint32 raw payload length, uint32 CRC32 of bytes 0..47 and the
stored payload; then the payload, as in version 2 but with the role a
length-prefixed string like the other fields.

The CRC sits at a fixed offset and covers the whole frame, so a reader checks it
before touching the payload; the hash covers the whole frame too, so any flipped
bit breaks the chain at that frame.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import struct
import zlib
from typing import Any

import lz4.block

from ._frame_dictionary import DICTIONARY
from .errors import CorruptionError
from .validation import clamp_offset, clamp_timestamp

__all__ = ["FRAME_VERSION", "HASH_SIZE", "ZERO_HASH", "Turn", "decode_frame", "encode_frame",
           "frame_hash", "get_varint", "is_whole", "put_varint", "read_header", "unzigzag",
           "zigzag"]

MAGIC = b"MP"
FRAME_VERSION = 2
HASH_SIZE = 16
ZERO_HASH = bytes(HASH_SIZE)
HEAD_SIZE = 24  # version 2: magic, version, flags, CRC32, prev hash; varints follow
_F64 = struct.Struct("<d")
_U32 = struct.Struct("<I")
_FLAG_LZ4 = 1
_FLAG_WHOLE_TS = 2
_FLAG_DICTIONARY = 4
_COMPRESS_MIN = 32  # below this LZ4 never wins, even with the dictionary
_ROLES = ("", "user", "assistant", "system", "memory", "tool")  # code 0: spelled out
_ROLE_CODES = {role: i for i, role in enumerate(_ROLES) if role}
_WHOLE_LIMIT = float(1 << 53)
# Version 1, read only.
MAGIC_V1 = b"MPLF"
_HEADER_V1 = struct.Struct("<4sBBhQd16sIII")
HEADER_SIZE_V1 = _HEADER_V1.size  # 52


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
        tz = dt.timezone(dt.timedelta(minutes=clamp_offset(self.utc_offset_minutes)))
        return dt.datetime.fromtimestamp(clamp_timestamp(self.timestamp), tz)


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


def zigzag(n: int) -> int:
    return n << 1 if n >= 0 else (-n << 1) - 1


def unzigzag(n: int) -> int:
    return n >> 1 if not n & 1 else -((n + 1) >> 1)


def is_whole(ts: float) -> bool:
    """A float a zigzag varint holds exactly (-0.0 is not: its sign would go)."""
    ts = float(ts)
    return ts.is_integer() and abs(ts) < _WHOLE_LIMIT and not (
        ts == 0.0 and math.copysign(1.0, ts) < 0)


def encode_frame(turn: Turn, prev_hash: bytes) -> bytes:
    """A version-2 frame of ``turn``, linked to the previous frame by ``prev_hash``."""
    raw = bytearray()
    code = _ROLE_CODES.get(turn.role, 0)
    raw.append(code)
    if not code:
        role = _enc(turn.role)
        put_varint(raw, len(role))
        raw += role
    metadata = None if turn.metadata is None else json.dumps(
        turn.metadata, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
    for optional, value in ((True, turn.speaker), (False, turn.user_id), (True, turn.session_id),
                            (False, turn.text)):
        if value is None:
            put_varint(raw, 0)
            continue
        field = _enc(value)
        put_varint(raw, len(field) + optional)
        raw += field
    if metadata is None:
        put_varint(raw, 0)
    else:
        put_varint(raw, len(metadata) + 1)
        raw += metadata
    payload = bytes(raw)
    flags = 0
    if len(payload) >= _COMPRESS_MIN:
        packed = lz4.block.compress(payload, store_size=False, dict=DICTIONARY)
        if len(packed) < len(payload):
            payload, flags = packed, _FLAG_LZ4 | _FLAG_DICTIONARY
    rest = bytearray(prev_hash)
    put_varint(rest, turn.id)
    put_varint(rest, zigzag(turn.utc_offset_minutes))
    if is_whole(turn.timestamp):
        flags |= _FLAG_WHOLE_TS
        put_varint(rest, zigzag(int(turn.timestamp)))
    else:
        rest += _F64.pack(turn.timestamp)
    if flags & _FLAG_LZ4:
        put_varint(rest, len(raw))
    rest += payload
    head = MAGIC + bytes((FRAME_VERSION, flags))
    crc = zlib.crc32(rest, zlib.crc32(head))
    return head + _U32.pack(crc) + rest


@dataclasses.dataclass(frozen=True, slots=True)
class _Head:
    version: int
    flags: int
    seq: int
    prev: bytes
    utc_offset: int
    timestamp: float
    raw_length: int  # of the payload before compression (-1: not compressed, v2)
    start: int  # where the payload begins


def _parse_head(frame: bytes) -> _Head:
    """The frame's header fields after checking magic, version, length and CRC."""
    if frame[:4] == MAGIC_V1:
        return _parse_head_v1(frame)
    if len(frame) < HEAD_SIZE + 3:
        raise CorruptionError(f"frame shorter than its {HEAD_SIZE + 3}-byte minimum")
    if frame[:2] != MAGIC:
        raise CorruptionError("frame has a bad magic number")
    version, flags = frame[2], frame[3]
    if version != FRAME_VERSION:
        raise CorruptionError(
            f"frame format version {version} is not supported by this release "
            f"(it reads versions 1 and {FRAME_VERSION}); upgrade memory-plugins")
    if zlib.crc32(memoryview(frame)[8:], zlib.crc32(frame[:4])) != _U32.unpack_from(frame, 4)[0]:
        seq = _seq_hint(frame)
        raise CorruptionError(f"frame {seq} fails its CRC32 check", seq=seq)
    try:
        seq, pos = get_varint(frame, HEAD_SIZE)
        offset, pos = get_varint(frame, pos)
        if flags & _FLAG_WHOLE_TS:
            whole, pos = get_varint(frame, pos)
            ts = float(unzigzag(whole))
        else:
            ts = float(_F64.unpack_from(frame, pos)[0])
            pos += 8
        rlen = -1
        if flags & _FLAG_LZ4:
            rlen, pos = get_varint(frame, pos)
    except (ValueError, struct.error) as exc:
        raise CorruptionError(f"frame header cannot be read: {exc}") from exc
    return _Head(version, flags, seq, bytes(frame[8:HEAD_SIZE]), unzigzag(offset), ts, rlen, pos)


def _seq_hint(frame: bytes) -> int | None:
    """The seq a damaged frame claims, for error messages only."""
    try:
        return get_varint(frame, HEAD_SIZE)[0]
    except ValueError:
        return None


def _parse_head_v1(frame: bytes) -> _Head:
    if len(frame) < HEADER_SIZE_V1:
        raise CorruptionError(f"frame shorter than its {HEADER_SIZE_V1}-byte header")
    _magic, version, flags, off, seq, ts, prev, plen, rlen, crc = _HEADER_V1.unpack_from(frame)
    if version != 1:
        raise CorruptionError(
            f"frame format version {version} is not supported by this release "
            f"(it reads versions 1 and {FRAME_VERSION}); upgrade memory-plugins", seq=seq)
    if len(frame) != HEADER_SIZE_V1 + plen:
        raise CorruptionError("frame length does not match its header", seq=seq)
    if zlib.crc32(memoryview(frame)[HEADER_SIZE_V1:], zlib.crc32(frame[:48])) != crc:
        raise CorruptionError(f"frame {seq} fails its CRC32 check", seq=seq)
    return _Head(1, flags, seq, prev, off, ts, rlen, HEADER_SIZE_V1)


def read_header(frame: bytes) -> tuple[int, bytes]:
    """(seq, prev_hash) after checking magic, version, length and CRC."""
    head = _parse_head(frame)
    return head.seq, head.prev


def decode_frame(frame: bytes) -> Turn:
    """Decode a frame (version 1 or 2), raising CorruptionError on any inconsistency."""
    head = _parse_head(frame)
    seq = head.seq
    payload = frame[head.start :]
    try:
        if head.flags & _FLAG_LZ4:
            payload = lz4.block.decompress(
                payload, uncompressed_size=head.raw_length,
                dict=DICTIONARY if head.flags & _FLAG_DICTIONARY else b"")
            if len(payload) != head.raw_length:
                raise ValueError("payload length mismatch")
        elif head.version == 1 and len(payload) != head.raw_length:
            raise ValueError("payload length mismatch")
        vals: list[str | None] = []
        pos = 0
        if head.version == 1:
            optional: tuple[bool, ...] = (False, True, False, True, False, True)
        else:
            optional = (True, False, True, False, True)
            code = payload[0] if payload else -1
            pos = 1
            if code == 0:
                n, pos = get_varint(payload, pos)
                if pos + n > len(payload):
                    raise ValueError("role runs past the payload")
                vals.append(payload[pos : pos + n].decode("utf-8", "surrogatepass"))
                pos += n
            elif 0 < code < len(_ROLES):
                vals.append(_ROLES[code])
            else:
                raise ValueError(f"unknown role code {code}")
        for opt in optional:
            n, pos = get_varint(payload, pos)
            if opt:
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
    except (ValueError, IndexError, lz4.block.LZ4BlockError) as exc:
        raise CorruptionError(f"frame {seq} payload cannot be decoded: {exc}", seq=seq) from exc
    role, speaker, user_id, session_id, text = vals[:5]
    assert role is not None and user_id is not None and text is not None
    return Turn(id=seq, user_id=user_id, session_id=session_id, role=role, speaker=speaker,
                text=text, timestamp=head.timestamp, utc_offset_minutes=head.utc_offset,
                metadata=meta)
