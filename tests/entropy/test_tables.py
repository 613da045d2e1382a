"""Integer frequency tables built from symbol histograms."""
from __future__ import annotations

import numpy as np

from wisp_shacira.entropy.tables import histogram_table


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
