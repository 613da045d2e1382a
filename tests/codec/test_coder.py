"""Entropy coding round trips, bit-exact, including edge cases."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wisp_shacira.codec.coder import decode_symbols, encode_symbols
from wisp_shacira.entropy.tables import FrequencyTable, build_table


def _tables_for(symbols: np.ndarray, rng: np.random.Generator) -> list[FrequencyTable]:
    tables = []
    for column in symbols.T:
        low, high = int(column.min()), int(column.max())
        tables.append(build_table(rng.random(high - low + 1) + 1e-3, low))
    return tables


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 400), st.integers(1, 4), st.integers(0, 2**20), st.integers(0, 10**6))
def test_round_trip_is_bit_exact(rows: int, dims: int, spread: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    symbols = rng.integers(-spread // 2 - 1, spread // 2 + 1, size=(max(rows, 1), dims))
    symbols = symbols.astype(np.int32)[:rows] if rows else symbols.astype(np.int32)
    spread_cap = min(spread, 1000)
    symbols = np.clip(symbols, -spread_cap, spread_cap)
    tables = _tables_for(symbols, rng)
    data = encode_symbols(symbols, tables)
    assert np.array_equal(decode_symbols(data, len(symbols), tables), symbols)


def test_one_symbol_dimension_costs_nothing() -> None:
    symbols = np.full((1000, 2), 7, dtype=np.int32)
    symbols[:, 1] = np.arange(1000) % 3
    tables = [build_table(np.array([1.0]), 7), build_table(np.ones(3), 0)]
    data = encode_symbols(symbols, tables)
    only_second = encode_symbols(symbols[:, 1:], tables[1:])
    assert len(data) == len(only_second)
    assert np.array_equal(decode_symbols(data, 1000, tables), symbols)


def test_empty_and_single_row_blocks() -> None:
    tables = [build_table(np.ones(4), -2)]
    assert decode_symbols(encode_symbols(np.zeros((0, 1), np.int32), tables), 0, tables).shape == (0, 1)
    one = np.array([[1]], dtype=np.int32)
    assert np.array_equal(decode_symbols(encode_symbols(one, tables), 1, tables), one)


def test_large_value_range() -> None:
    rng = np.random.default_rng(0)
    symbols = rng.integers(-30000, 30000, size=(5000, 1)).astype(np.int32)
    tables = [build_table(np.ones(60001), -30000, precision=20)]
    data = encode_symbols(symbols, tables)
    assert np.array_equal(decode_symbols(data, 5000, tables), symbols)


def test_skewed_data_codes_near_its_entropy() -> None:
    rng = np.random.default_rng(0)
    probs = np.array([0.9, 0.05, 0.03, 0.02])
    symbols = rng.choice(4, size=(20000, 1), p=probs).astype(np.int32)
    data = encode_symbols(symbols, [build_table(probs, 0)])
    entropy_bits = -(probs * np.log2(probs)).sum() * 20000
    assert len(data) * 8 < entropy_bits * 1.02 + 64


def test_out_of_range_symbols_and_bad_data_are_rejected() -> None:
    tables = [build_table(np.ones(3), 0)]
    with pytest.raises(ValueError, match="outside"):
        encode_symbols(np.array([[5]], dtype=np.int32), tables)
    with pytest.raises(ValueError):
        decode_symbols(b"\x01\x02\x03", 4, tables)
