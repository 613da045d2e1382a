"""ShacModel <-> bytes: bit-exact latents, weights, config; LOD prefixes."""
from __future__ import annotations

import numpy as np
import pytest

from wisp_shacira.codec.model_io import (ShacModel, decode_model, encode_model, read_shac,
                                         section_summary, write_shac)
from wisp_shacira.entropy.tables import build_table
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


def test_header_damage_is_fatal_even_in_partial_mode() -> None:
    data = encode_model(_model(np.random.default_rng(2)))
    with pytest.raises(BitstreamError):
        decode_model(data[:20], partial=True)
