"""Entropy coding round trips, bit-exact, including edge cases."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import constriction

from wisp_shacira.codec import coder
from wisp_shacira.codec.coder import decode_symbols, encode_symbols
from wisp_shacira.codec.container import CODER_LEGACY
from wisp_shacira.codec.tables import FrequencyTable, build_table


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


def _random_table(rng: np.random.Generator, precision: int = 16) -> FrequencyTable:
    count = int(rng.integers(2, 400))
    return build_table(rng.random(count) ** 4, int(rng.integers(-50, 50)), precision)


def test_constriction_uses_exactly_the_integer_table() -> None:
    """Crafted coder states at every CDF boundary decode to the symbols the file's integer
    table says, for the exact (version 3) and the legacy (versions 1-2) layouts."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        table = _random_table(rng, int(rng.integers(9, 25)))
        assert coder.cdf_boundaries_hold(coder.exact_cdf(table))
        assert coder.cdf_boundaries_hold(coder.legacy_cdf(table))
    table = build_table(np.array([0.5, 0.25, 0.25]), 0, 4)
    assert coder.exact_cdf(table).tolist() == [0, 8 << 20, 12 << 20, 16 << 20]


def test_legacy_tables_reproduce_what_versions_1_and_2_coded_with() -> None:
    """The legacy CDF, computed by this package, codes identically to the float model the old
    writer handed to constriction (``Categorical(freqs / sum, perfect=False)``)."""
    rng = np.random.default_rng(1)
    for _ in range(100):
        table = _random_table(rng)
        symbols = rng.integers(0, table.num_symbols, size=300).astype(np.int32)
        probs = table.freqs.astype(np.float64) / float(table.freqs.sum())
        old = constriction.stream.stack.AnsCoder()
        old.encode_reverse(symbols, constriction.stream.model.Categorical(probs, perfect=False))
        data = encode_symbols(symbols[:, None] + table.low, [table], CODER_LEGACY)
        assert old.get_compressed().astype("<u4").tobytes() == data


def test_coded_size_is_the_integer_tables_ideal_code_length() -> None:
    rng = np.random.default_rng(2)
    table = build_table(np.array([0.6, 0.25, 0.1, 0.05]), -1, 12)
    symbols = rng.choice(4, size=20000, p=[0.6, 0.25, 0.1, 0.05]) - 1
    data = encode_symbols(symbols[:, None].astype(np.int32), [table])
    ideal = -np.log2(table.freqs[symbols + 1] / 4096.0).sum()
    assert ideal <= len(data) * 8 <= ideal + 64


def test_blocks_that_do_not_fit_their_tables_are_refused() -> None:
    tables = [build_table(np.ones(4), -2)]
    with pytest.raises(ValueError, match="unread data|failed"):
        decode_symbols(b"\0\0\0\1" * 8, 5, tables)
    with pytest.raises(ValueError, match="codes no symbols"):
        decode_symbols(b"\0\0\0\1", 5, [build_table(np.ones(1), 0)])
    with pytest.raises(ValueError, match="whole number"):
        decode_symbols(b"\1\2\3", 5, tables)
