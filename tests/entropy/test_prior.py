"""Factorised prior and integer frequency tables."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wisp_shacira.entropy.prior import FactorizedPrior
from wisp_shacira.entropy.tables import build_table, quantize_pmf


def test_pmf_over_a_wide_range_sums_to_one() -> None:
    torch.manual_seed(0)
    prior = FactorizedPrior(2)
    for dim in range(2):
        assert abs(prior.pmf(dim, -200, 200).sum().item() - 1.0) < 1e-3


def test_training_the_prior_lowers_the_bits_of_its_data() -> None:
    torch.manual_seed(0)
    prior = FactorizedPrior(1)
    data = torch.round(torch.randn(2000, 1) * 2)
    opt = torch.optim.Adam(prior.parameters(), lr=0.05)
    before = prior.bits(data).mean().item()
    for _ in range(200):
        opt.zero_grad()
        prior.bits(data + torch.rand_like(data) - 0.5).mean().backward()
        opt.step()
    after = prior.bits(data).mean().item()
    _, counts = np.unique(data.numpy(), return_counts=True)
    freq = counts / counts.sum()
    entropy = float(-(freq * np.log2(freq)).sum())
    assert after < before - 1.0
    assert after < entropy + 0.1


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
