"""ShacModel <-> bytes: bit-exact latents, weights, config; LOD prefixes."""
from __future__ import annotations

import numpy as np
import pytest

from wisp_shacira.codec.container import CODER_EXACT, pack_sections, unpack_sections
from wisp_shacira.codec.model_io import (KIND_CONFIG, KIND_LEVEL, KIND_TABLES, KIND_WEIGHTS,
                                         TABLES_PER_LEVEL, TABLES_SHARED, ShacModel,
                                         _level_payloads, _pack_tables, decode_model,
                                         encode_model, level_prefix_bytes, prefix_nbytes,
                                         read_shac, section_offsets, section_summary, write_shac)
from wisp_shacira.codec.tables import build_table
from wisp_shacira.errors import BitstreamError


def _model(rng: np.random.Generator) -> ShacModel:
    rows = [0, 1, 50, 300]
    levels = [rng.integers(-4, 5, size=(r, 2)).astype(np.int32) for r in rows]
    levels[2][:, 1] = 3
    tables = [build_table(np.ones(9), -4), build_table(np.ones(9), -4)]
    weights = {"heads.0.weight": rng.standard_normal((4, 3)).astype(np.float16),
               "grid.decoder.bias": rng.standard_normal(2).astype(np.float32)}
    return ShacModel({"task": "image", "x": [1, 2]}, tables, weights, rows, levels)


def test_model_round_trip(tmp_path) -> None:
    model = _model(np.random.default_rng(0))
    path = tmp_path / "m.shac"
    size = write_shac(path, model)
    assert size == path.stat().st_size
    back = read_shac(path)
    assert back.config == model.config and back.level_rows == model.level_rows
    for a, b in zip(back.levels, model.levels):
        assert np.array_equal(a, b)
    for name, value in model.weights.items():
        assert back.weights[name].dtype == value.dtype and np.array_equal(back.weights[name], value)
    rows, total, problem = section_summary(path)
    assert total == size and problem is None and rows[-1][0] == "level 3"


def test_max_lod_and_partial_prefix() -> None:
    model = _model(np.random.default_rng(1))
    data = encode_model(model)
    assert len(decode_model(data, max_lod=2).levels) == 2
    last_level = len(encode_model(model)) - 1
    partial = decode_model(data[:last_level], partial=True)
    assert len(partial.levels) == 3 and partial.problem
    with pytest.raises(BitstreamError, match="truncated"):
        decode_model(data[:last_level])


def test_section_offsets_tile_the_file_and_give_the_lod_prefixes(tmp_path) -> None:
    model = _model(np.random.default_rng(1))
    data = encode_model(model)
    path = tmp_path / "m.shac"
    path.write_bytes(data)
    spans = section_offsets(data)
    assert spans == section_offsets(path)
    levels = [f"level {i}" for i in range(4)]
    assert [s.name for s in spans] == ["config", "tables", "weights"] + levels
    assert spans[0].start == len(data) - sum(s.nbytes for s in spans)  # the file header
    assert all(a.end == b.start for a, b in zip(spans, spans[1:])) and spans[-1].end == len(data)
    assert [data[s.start] for s in spans] == [s.kind for s in spans]
    assert [(s.name, s.nbytes) for s in spans] == section_summary(path)[0]
    ends = level_prefix_bytes(data)
    assert ends == [s.end for s in spans[3:]] == [prefix_nbytes(data, k) for k in range(1, 5)]
    assert prefix_nbytes(path, 0) == spans[2].end
    for k, end in enumerate(ends, start=1):
        assert len(decode_model(data[:end], partial=True).levels) == k
        assert len(decode_model(data[:end - 1], partial=True).levels) == k - 1
        assert level_prefix_bytes(data[:end]) == ends[:k]
    with pytest.raises(BitstreamError, match="no prefix holds 2 levels"):
        prefix_nbytes(data[:ends[1] - 1], 2)
    with pytest.raises(BitstreamError, match="not a .shac"):
        section_offsets(b"PNG!" + data[4:])


def test_header_damage_is_fatal_even_in_partial_mode() -> None:
    data = encode_model(_model(np.random.default_rng(2)))
    with pytest.raises(BitstreamError):
        decode_model(data[:20], partial=True)


def _two_level_model(wide: int, narrow: int, rows: int) -> ShacModel:
    """Level 0 spread over ``[-wide, wide]``, level 1 over ``[-narrow, narrow]``."""
    rng = np.random.default_rng(3)
    levels = [rng.integers(-wide, wide + 1, size=(rows, 1)).astype(np.int32),
              rng.integers(-narrow, narrow + 1, size=(rows, 1)).astype(np.int32)]
    both = np.concatenate(levels)[:, 0]
    counts = np.bincount(both - both.min()).astype(np.float64)
    return ShacModel({"task": "image"}, [build_table(counts, int(both.min()))], {},
                     [rows, rows], levels)


def _table_mode(data: bytes) -> int:
    section = unpack_sections(data).sections[1]
    return section.payload[1]


@pytest.mark.parametrize("wide, narrow, rows, mode", [
    (40, 0, 4000, TABLES_PER_LEVEL),   # different levels: per-level tables pay for themselves
    (3, 3, 200, TABLES_SHARED),        # alike levels: a second table only costs bytes
])
def test_encoder_keeps_the_smaller_table_layout(wide: int, narrow: int, rows: int,
                                                 mode: int) -> None:
    model = _two_level_model(wide, narrow, rows)
    data = encode_model(model)
    assert _table_mode(data) == mode
    head = unpack_sections(data).sections
    shared = pack_sections([(KIND_CONFIG, head[0].payload), (KIND_TABLES, _pack_tables(model, 16)),
                            (KIND_WEIGHTS, head[2].payload)]
                           + [(KIND_LEVEL, p) for p in _level_payloads(model, CODER_EXACT)])
    assert len(data) <= len(shared)
    back = decode_model(data)
    assert all(np.array_equal(a, b) for a, b in zip(back.levels, model.levels))
    assert back.latent_dim == 1 and len(decode_model(data, max_lod=1).levels) == 1


@pytest.mark.parametrize("version", [1, 2, 3])
def test_every_version_round_trips(version: int) -> None:
    """The readers of versions 1 and 2 (legacy coder layout) and 3; the real guard of old
    files are the golden files written by the old writers (tests/test_golden.py)."""
    model = _model(np.random.default_rng(4))
    container = unpack_sections(encode_model(model, version=version))
    assert container.version == version
    back = decode_model(encode_model(model, version=version))
    assert all(np.array_equal(a, b) for a, b in zip(back.levels, model.levels))
    sections = [(s.kind, s.payload) for s in container.sections]
    with pytest.raises(BitstreamError, match="format version 9"):
        decode_model(pack_sections(sections, version=9))
