"""The ``.shac`` container: a versioned sequence of checksummed sections.

Layout (all integers little-endian; ``varint`` = unsigned LEB128)::

    b"SHAC" | version: u8 | [coder: u8, version >= 3] | num_sections: varint
    then per section:  kind: u8 | length: varint | crc32: u32 | payload

``coder`` names the entropy-coder layout that wrote the level sections (see
:mod:`wisp_shacira.codec.coder`); files of versions 1 and 2 have no coder byte and
use the legacy layout. From version 3 on the checksums are *chained*: section ``i``
stores ``crc32(payload_i, start=crc_{i-1})`` with ``crc_{-1} = crc32(header)``, so a
section moved, duplicated or spliced in from another file fails its checksum, and
so does a header whose section count was changed. Versions 1 and 2 store
``crc32(payload_i)``.

The container knows nothing of grids or tasks: it stores ``(kind, payload)`` pairs
in order and verifies them when read. A reader in ``partial`` mode returns the
sections that are complete and intact before the first missing or damaged one,
which is what progressive (LOD) decoding of a stream prefix needs.
"""
from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from wisp_shacira.errors import BitstreamError

MAGIC = b"SHAC"
VERSION = 3
"""Version of files coded with per-dimension (or per-level) frequency tables."""
CONTEXT_VERSION = 4
"""Version of files coded with the context model (TABLES mode 2)."""
WEIGHTS_VERSION = 5
"""Version of files with entropy-coded weights and a preset CONFIG dictionary (either
latent coding); what the writer writes today."""
READABLE_VERSIONS = (1, 2, 3, 4, 5)
CODER_LEGACY, CODER_EXACT = 0, 1
"""Coder layouts: ``0`` = versions 1-2 (implicit), ``1`` = exact integer CDF (versions 3-5)."""
KNOWN_CODERS = (CODER_EXACT,)
MAX_SECTIONS = 1 << 16
"""More sections than any model has (3 headers + at most ``MAX_LEVELS`` levels)."""


@dataclass
class Section:
    """One section: ``kind`` code, ``payload`` bytes, its encoded size with header
    (``nbytes``) and the file offset of its first byte (``start``, its kind byte).
    The section occupies bytes ``start .. end - 1`` of the file."""

    kind: int
    payload: bytes
    nbytes: int = 0
    start: int = 0

    @property
    def end(self) -> int:
        """Offset one past the section's last byte: a prefix of ``end`` bytes holds it."""
        return self.start + self.nbytes


@dataclass
class Container:
    """Sections read from a file.

    Attributes:
        sections: the complete, intact sections in file order.
        version: the file's format version.
        declared: how many sections the header announces.
        problem: why reading stopped early (partial mode), else None.
        coder: the coder layout of the level sections (``CODER_LEGACY`` before version 3).
        header_nbytes: bytes of the file header (magic, version, coder, count); the
            first section starts there.
    """

    sections: list[Section] = field(default_factory=list)
    declared: int = 0
    problem: str | None = None
    version: int = VERSION
    coder: int = CODER_EXACT
    header_nbytes: int = 0


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128."""
    if value < 0:
        raise ValueError(f"varint must be nonnegative, got {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def decode_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Read an unsigned LEB128 at ``pos``; returns (value, new position)."""
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            raise IndexError("varint runs past the end of the data")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 64 bits")


def _header(version: int, coder: int, count: int) -> bytes:
    coder_byte = bytes([coder]) if version >= 3 else b""
    return MAGIC + bytes([version]) + coder_byte + encode_varint(count)


def pack_sections(sections: list[tuple[int, bytes]], version: int = VERSION,
                  coder: int = CODER_EXACT) -> bytes:
    """Serialise ``(kind, payload)`` pairs into a container of format ``version``.

    ``coder`` is recorded from version 3 on (older versions imply ``CODER_LEGACY``).
    """
    header = _header(version, coder, len(sections))
    out = bytearray(header)
    crc = zlib.crc32(header)
    for kind, payload in sections:
        crc = zlib.crc32(payload, crc) if version >= 3 else zlib.crc32(payload)
        out += bytes([kind]) + encode_varint(len(payload))
        out += crc.to_bytes(4, "little") + payload
    return bytes(out)


def _read_header(data: bytes, name: str) -> Container:
    if len(data) < 5 or data[:4] != MAGIC:
        raise BitstreamError(f"{name}: not a .shac file (bad magic bytes)")
    version = data[4]
    if version not in READABLE_VERSIONS:
        raise BitstreamError(f"{name}: unsupported .shac format version {version} "
                             f"(this build reads versions {READABLE_VERSIONS})")
    pos, coder = 5, CODER_LEGACY
    if version >= 3:
        if len(data) < 6:
            raise BitstreamError(f"{name}: truncated header (no coder byte)")
        coder, pos = data[5], 6
        if coder not in KNOWN_CODERS:
            raise BitstreamError(f"{name}: unknown coder layout {coder} (this build knows "
                                 f"{list(KNOWN_CODERS)}); it was written by a newer version")
    try:
        declared, pos = decode_varint(data, pos)
    except (IndexError, ValueError) as exc:
        raise BitstreamError(f"{name}: truncated header ({exc})") from exc
    if declared > MAX_SECTIONS:
        raise BitstreamError(f"{name}: corrupt header: {declared} sections declared "
                             f"(at most {MAX_SECTIONS})")
    return Container(declared=declared, version=version, coder=coder, header_nbytes=pos)


def unpack_sections(data: bytes, name: str = "<bytes>", partial: bool = False) -> Container:
    """Parse and verify a container.

    Args:
        data: the file contents.
        name: shown in error messages.
        partial: return the intact prefix instead of raising on truncation/damage.
    Raises:
        BitstreamError: not a .shac file, unsupported version or coder, or (unless
            ``partial``) truncated, failing a checksum, or with trailing bytes.
    """
    result = _read_header(data, name)
    pos = result.header_nbytes
    crc = zlib.crc32(data[:pos])
    for index in range(result.declared):
        start = pos
        try:
            kind = data[pos]
            length, pos = decode_varint(data, pos + 1)
        except (IndexError, ValueError):
            result.problem = f"truncated: section {index} of {result.declared} has no complete header"
            break
        if pos + 4 + length > len(data):
            result.problem = (f"truncated: section {index} of {result.declared} needs {length} "
                              f"bytes, {max(0, len(data) - pos - 4)} present")
            break
        stored = int.from_bytes(data[pos:pos + 4], "little")
        payload = data[pos + 4:pos + 4 + length]
        pos += 4 + length
        crc = zlib.crc32(payload, crc) if result.version >= 3 else zlib.crc32(payload)
        if crc != stored:
            result.problem = f"corrupt: checksum mismatch in section {index} of {result.declared}"
            break
        result.sections.append(Section(kind, payload, pos - start, start))
    if result.problem is None and pos != len(data):
        result.problem = f"corrupt: {len(data) - pos} unexpected trailing bytes"
    if result.problem is not None and not partial:
        raise BitstreamError(f"{name}: {result.problem}")
    return result


def read_file_bytes(path: str | os.PathLike) -> bytes:
    """Read a file, turning OS errors into a :class:`BitstreamError`."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise BitstreamError(f"{path}: no such file") from exc
    except OSError as exc:
        raise BitstreamError(f"{path}: cannot read ({exc.strerror})") from exc


def zigzag(value: int) -> int:
    """Signed to unsigned: 0, -1, 1, -2, ... -> 0, 1, 2, 3, ..."""
    return value * 2 if value >= 0 else -value * 2 - 1


def unzigzag(value: int) -> int:
    """Inverse of :func:`zigzag`."""
    return value // 2 if value % 2 == 0 else -(value + 1) // 2


class Reader:
    """Bounds-checked reading of one section's payload (errors are ValueErrors)."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def u8(self) -> int:
        return self.take(1)[0]

    def varint(self, high: int, field_name: str) -> int:
        try:
            value, self.pos = decode_varint(self.data, self.pos)
        except IndexError as exc:
            raise ValueError(f"{self.what} ends inside {field_name}") from exc
        if value > high:
            raise ValueError(f"{self.what}: {field_name} {value} is above the limit {high}")
        return value

    def take(self, count: int) -> bytes:
        if self.pos + count > len(self.data):
            raise ValueError(f"{self.what} runs past the end of the section")
        out = self.data[self.pos:self.pos + count]
        self.pos += count
        return out

    def finish(self) -> None:
        if self.pos != len(self.data):
            raise ValueError(f"{self.what} has {len(self.data) - self.pos} trailing bytes")
