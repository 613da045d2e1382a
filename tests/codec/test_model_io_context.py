"""Files whose levels are coded with the context model (format version 5, or 4 as the
writers up to version 4 wrote them)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from wisp_shacira.codec.container import (CONTEXT_VERSION, WEIGHTS_VERSION, pack_sections,
                                          unpack_sections)
from wisp_shacira.codec.context_io import fit_context_model
from wisp_shacira.codec.model_io import (ShacModel, decode_model, encode_model, level_prefix_bytes,
                                         section_summary)
from wisp_shacira.errors import BitstreamError

SHAPES = [(5, 5), (9, 9), (), (4, 4, 4), ()]


def _model(rng: np.random.Generator) -> ShacModel:
    rows = [25, 81, 300, 64, 200]
    levels = [np.round(rng.laplace(0, s, size=(r, 2))).astype(np.int32)
              for r, s in zip(rows, (2.0, 1.0, 0.5, 0.7, 0.0))]
    levels[1][:, 1] = -2                                   # a one-symbol dimension
    weights = {"heads.0.weight": rng.standard_normal((4, 3)).astype(np.float16)}
    return ShacModel({"task": "image"}, [], weights, rows, levels,
                     context=fit_context_model(levels, SHAPES))


@pytest.mark.parametrize("version", [None, CONTEXT_VERSION])
def test_context_files_round_trip(tmp_path, version) -> None:
    model = _model(np.random.default_rng(0))
    data = encode_model(model, version=version)
    assert unpack_sections(data).version == (version or WEIGHTS_VERSION)
    back = decode_model(data)
    assert back.context == model.context and back.tables == [] and back.latent_dim == 2
    for a, b in zip(back.levels, model.levels):
        assert np.array_equal(a, b)
    assert back.weights.keys() == model.weights.keys()
    assert encode_model(back, version=version) == data
    path = tmp_path / "m.shac"
    path.write_bytes(data)
    assert section_summary(path)[0][-1][0] == "level 4"


def test_a_prefix_decodes_the_levels_it_holds() -> None:
    model = _model(np.random.default_rng(1))
    data = encode_model(model)
    ends = level_prefix_bytes(data)
    for held, end in enumerate(ends, start=1):
        for cut in (end, end + 3 if held < len(ends) else end):
            part = decode_model(data[:cut], partial=True)
            assert len(part.levels) == held
            for a, b in zip(part.levels, model.levels):
                assert np.array_equal(a, b)
    inside = decode_model(data[:ends[2] - 5], partial=True)
    assert len(inside.levels) == 2 and inside.problem


def test_versions_and_table_modes_must_agree() -> None:
    model = _model(np.random.default_rng(2))
    with pytest.raises(ValueError, match="version 5 \\(or 4\\)"):
        encode_model(model, version=3)
    plain = dataclasses.replace(model, context=None, tables=[])
    with pytest.raises(ValueError, match="context model"):
        encode_model(plain, version=4)


def _edit_tables(data: bytes, offset: int, value: int) -> bytes:
    """``data`` with byte ``offset`` of the TABLES payload set to ``value``, checksums valid."""
    container = unpack_sections(data)
    sections = [(s.kind, bytearray(s.payload)) for s in container.sections]
    sections[1][1][offset] = value
    return pack_sections([(k, bytes(p)) for k, p in sections], container.version, container.coder)


SHAPE_AT = 1 + 1 + 1 + 1 + 7          # precision, mode, D, L, the rows of five levels


@pytest.mark.parametrize("offset,value,message", [
    (1, 3, "table mode 3"), (SHAPE_AT, 7, "axes"), (SHAPE_AT + 1, 6, "does not hold"),
    (SHAPE_AT, 1, "not a cube|does not hold|contexts|symbol"),
    (SHAPE_AT + 5, 0, "tail parameters"), (SHAPE_AT + 8, 9, "contexts"),
    (0, 3, "precision|symbol count")])
def test_bad_tables_are_one_line_bitstream_errors(offset, value, message) -> None:
    data = encode_model(_model(np.random.default_rng(3)))
    with pytest.raises(BitstreamError, match=message):
        decode_model(_edit_tables(data, offset, value))


def test_a_version_4_file_holds_only_the_context_mode() -> None:
    data = encode_model(_model(np.random.default_rng(3)), version=CONTEXT_VERSION)
    with pytest.raises(BitstreamError, match="table mode 0 in a version-4 file"):
        decode_model(_edit_tables(data, 1, 0))


def test_a_huge_declared_symbol_range_is_refused_before_building_tables() -> None:
    """A few bytes may declare 2^20 symbols for every level and dimension: refused."""
    from wisp_shacira.codec.container import Reader, encode_varint
    from wisp_shacira.codec.context_io import unpack_context_model
    dim = encode_varint(0) + encode_varint((1 << 20) - 1) + bytes([128, 10, 10, 4]) + b"\x00\x80" * 4
    data = (b"\x00" + dim * 2) * 3
    with pytest.raises(ValueError, match="above the limit"):
        unpack_context_model(Reader(data, "t"), [10, 10, 10], 2, 24)


def test_damaged_level_payload_is_caught() -> None:
    data = bytearray(encode_model(_model(np.random.default_rng(4))))
    section = unpack_sections(bytes(data)).sections[4]
    data[section.end - 6] ^= 0xFF
    with pytest.raises(BitstreamError):
        decode_model(bytes(data))
    part = decode_model(bytes(data), partial=True)
    assert len(part.levels) == 1
