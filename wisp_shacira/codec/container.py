"""The ``.shac`` container: a versioned sequence of checksummed sections.

Layout (all integers little-endian; ``varint`` = unsigned LEB128)::

    b"SHAC" | version: u8 | num_sections: varint
    then per section:  kind: u8 | length: varint | crc32(payload): u32 | payload

The container knows nothing of grids or tasks: it stores ``(kind, payload)`` pairs
in order and verifies them when read. A reader in ``partial`` mode returns the
sections that are complete and intact before the first missing or damaged one,
which is what progressive (LOD) decoding of a stream prefix needs.
"""
from __future__ import annotations

import os
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from wisp_shacira.errors import BitstreamError

MAGIC = b"SHAC"
VERSION = 2
READABLE_VERSIONS = (1, 2)


@dataclass
class Section:
    """One section: ``kind`` code, ``payload`` bytes, and its encoded size with header."""

    kind: int
    payload: bytes
    nbytes: int = 0


@dataclass
class Container:
    """Sections read from a file.

    Attributes:
        sections: the complete, intact sections in file order.
        version: the file's format version.
        declared: how many sections the header announces.
        problem: why reading stopped early (partial mode), else None.
    """

    sections: list[Section] = field(default_factory=list)
    declared: int = 0
    problem: str | None = None
    version: int = VERSION


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


def pack_sections(sections: list[tuple[int, bytes]], version: int = VERSION) -> bytes:
    """Serialise ``(kind, payload)`` pairs into a container of format ``version``."""
    out = bytearray(MAGIC + bytes([version]) + encode_varint(len(sections)))
    for kind, payload in sections:
        out += bytes([kind]) + encode_varint(len(payload))
        out += zlib.crc32(payload).to_bytes(4, "little") + payload
    return bytes(out)


def unpack_sections(data: bytes, name: str = "<bytes>", partial: bool = False) -> Container:
    """Parse and verify a container.

    Args:
        data: the file contents.
        name: shown in error messages.
        partial: return the intact prefix instead of raising on truncation/damage.
    Raises:
        BitstreamError: not a .shac file, unsupported version, or (unless ``partial``)
            truncated or failing a checksum.
    """
    if len(data) < 5 or data[:4] != MAGIC:
        raise BitstreamError(f"{name}: not a .shac file (bad magic bytes)")
    if data[4] not in READABLE_VERSIONS:
        raise BitstreamError(f"{name}: unsupported .shac format version {data[4]} "
                             f"(this build reads versions {READABLE_VERSIONS})")
    try:
        declared, pos = decode_varint(data, 5)
    except (IndexError, ValueError) as exc:
        raise BitstreamError(f"{name}: truncated header ({exc})") from exc
    result = Container(declared=declared, version=data[4])
    for index in range(declared):
        start = pos
        try:
            kind = data[pos]
            length, pos = decode_varint(data, pos + 1)
        except (IndexError, ValueError):
            result.problem = f"truncated: section {index} of {declared} has no complete header"
            break
        if pos + 4 + length > len(data):
            result.problem = (f"truncated: section {index} of {declared} needs {length} bytes, "
                              f"{max(0, len(data) - pos - 4)} present")
            break
        crc = int.from_bytes(data[pos:pos + 4], "little")
        payload = data[pos + 4:pos + 4 + length]
        pos += 4 + length
        if zlib.crc32(payload) != crc:
            result.problem = f"corrupt: checksum mismatch in section {index} of {declared}"
            break
        result.sections.append(Section(kind, payload, pos - start))
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


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename (no partial files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
