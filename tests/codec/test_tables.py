"""Integer frequency tables (codec, numpy only): quantised pmfs and symbol histograms."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wisp_shacira.codec.tables import build_table, histogram_table, quantize_pmf


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=2, max_size=300),
       st.integers(8, 20))
def test_quantized_frequencies_are_positive_and_exact(probs: list[float], precision: int) -> None:
    freqs = quantize_pmf(np.array(probs), precision)
    assert freqs.dtype == np.uint32
    assert freqs.min() >= 1
    assert int(freqs.sum()) == 1 << precision


def test_quantization_follows_the_probabilities() -> None:
    freqs = quantize_pmf(np.array([0.7, 0.2, 0.1]), 16)
    assert abs(freqs[0] / 65536 - 0.7) < 1e-3 and freqs[0] > freqs[1] > freqs[2]


def test_one_symbol_table_and_errors() -> None:
    table = build_table(np.array([1.0]), low=5)
    assert table.num_symbols == 1 and table.low == table.high == 5
    with pytest.raises(ValueError):
        quantize_pmf(np.array([0.5, -0.1]))
    with pytest.raises(ValueError):
        quantize_pmf(np.ones(300), precision=8)


def test_histogram_table_covers_the_range_and_follows_the_counts() -> None:
    symbols = np.array([-3] * 10 + [0] * 70 + [2] * 20)
    table = histogram_table(symbols, precision=12)
    assert (table.low, table.high) == (-3, 2)
    assert int(table.freqs.sum()) == 1 << 12 and table.freqs.min() >= 1
    assert np.allclose(table.freqs[[0, 3, 5]] / 4096, [0.1, 0.7, 0.2], atol=2e-3)


def test_histogram_table_of_one_symbol_or_none_codes_nothing() -> None:
    assert histogram_table(np.full(5, 7)).num_symbols == 1
    empty = histogram_table(np.zeros(0, dtype=np.int32))
    assert (empty.low, empty.num_symbols) == (0, 1)
