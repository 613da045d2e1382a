"""The .shac container: checksums, truncation, partial (prefix) reading."""
from __future__ import annotations

import pytest

from wisp_shacira.codec.container import (CODER_LEGACY, decode_varint, encode_varint,
                                          pack_sections, unpack_sections)
from wisp_shacira.errors import BitstreamError
from wisp_shacira.outputs import write_atomic

SECTIONS = [(1, b"config"), (2, b""), (4, bytes(range(256)) * 3), (4, b"x" * 10)]


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**32, 2**63 - 1])
def test_varint_round_trip(value: int) -> None:
    data = encode_varint(value)
    assert decode_varint(data, 0) == (value, len(data))


def test_round_trip_and_sizes() -> None:
    data = pack_sections(SECTIONS)
    container = unpack_sections(data)
    assert [(s.kind, s.payload) for s in container.sections] == SECTIONS
    header = len(data) - sum(s.nbytes for s in container.sections)
    assert header == 7 == container.header_nbytes   # magic, version, coder, section count
    starts = [s.start for s in container.sections]
    assert starts == [header] + [s.end for s in container.sections[:-1]]
    assert container.sections[-1].end == len(data)


def test_every_truncation_is_an_error_naming_the_problem() -> None:
    data = pack_sections(SECTIONS)
    for cut in range(len(data)):
        with pytest.raises(BitstreamError, match="truncated|not a .shac"):
            unpack_sections(data[:cut], "f.shac")


def test_every_single_byte_corruption_in_a_payload_is_caught() -> None:
    data = bytearray(pack_sections(SECTIONS))
    start = len(data) - 10
    for pos in range(start, len(data)):
        broken = bytearray(data)
        broken[pos] ^= 0x55
        with pytest.raises(BitstreamError, match="checksum"):
            unpack_sections(bytes(broken), "f.shac")


def test_partial_reading_returns_the_intact_prefix() -> None:
    data = pack_sections(SECTIONS)
    cut = len(data) - 5
    container = unpack_sections(data[:cut], partial=True)
    assert len(container.sections) == 3 and "truncated" in container.problem


def test_wrong_magic_version_and_trailing_bytes() -> None:
    data = pack_sections(SECTIONS)
    with pytest.raises(BitstreamError, match="not a .shac"):
        unpack_sections(b"PNG!" + data[4:])
    with pytest.raises(BitstreamError, match="version"):
        unpack_sections(data[:4] + b"\x09" + data[5:])
    with pytest.raises(BitstreamError, match="trailing"):
        unpack_sections(data + b"\x00")


def test_write_atomic_leaves_no_temporary_files(tmp_path) -> None:
    target = tmp_path / "out" / "a.bin"
    write_atomic(target, b"abc")
    write_atomic(target, b"defg")
    assert target.read_bytes() == b"defg"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.bin"]


def _raw_sections(data: bytes) -> list[bytes]:
    """The encoded sections (header, crc and payload) of a container, as bytes."""
    container = unpack_sections(data)
    pos, out = container.header_nbytes, []
    for section in container.sections:
        out.append(data[pos:pos + section.nbytes])
        pos += section.nbytes
    return out


def test_chained_checksums_catch_moved_duplicated_and_spliced_sections() -> None:
    data = pack_sections(SECTIONS)
    head = data[:unpack_sections(data).header_nbytes]
    raw = _raw_sections(data)
    other = _raw_sections(pack_sections([(1, b"other"), (2, b""), (4, b"y" * 7), (4, b"x" * 10)]))
    for sections in ([raw[0], raw[1], raw[3], raw[2]], [raw[0], raw[1], raw[2], raw[2]],
                     [raw[0], raw[1], other[2], raw[3]]):
        with pytest.raises(BitstreamError, match="checksum"):
            unpack_sections(head + b"".join(sections), "f.shac")
    recounted = head[:-1] + bytes([3])
    with pytest.raises(BitstreamError, match="checksum"):
        unpack_sections(recounted + b"".join(raw[:3]), "f.shac")


def test_coder_byte_is_recorded_and_unknown_coders_are_refused() -> None:
    data = pack_sections(SECTIONS)
    assert data[4] == 3 and unpack_sections(data).coder == 1
    with pytest.raises(BitstreamError, match="unknown coder layout 7"):
        unpack_sections(data[:5] + b"\x07" + data[6:])
    old = unpack_sections(pack_sections(SECTIONS, version=2))
    assert old.version == 2 and old.coder == CODER_LEGACY and old.header_nbytes == 6
    assert [(s.kind, s.payload) for s in old.sections] == SECTIONS


def test_absurd_section_counts_are_refused_before_reading() -> None:
    with pytest.raises(BitstreamError, match="sections declared"):
        unpack_sections(b"SHAC\x03\x01" + encode_varint(2**40), "f.shac")
