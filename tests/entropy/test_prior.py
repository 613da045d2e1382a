"""Factorised prior (the integer tables are tested in tests/codec/test_tables.py)."""
from __future__ import annotations

import numpy as np
import torch

from wisp_shacira.entropy.prior import FactorizedPrior


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

