"""Soft rounding converges to rounding; STE passes gradients through."""
from __future__ import annotations

import pytest
import torch

from wisp_shacira.grid.quantize import quantize, soft_round, ste_round


def test_soft_round_tends_to_hard_round_as_tau_vanishes() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(10000, generator=gen) * 5
    x = x[(x - x.floor() - 0.5).abs() > 0.02]
    errors = []
    for tau in (1.0, 0.1, 0.01, 0.001):
        errors.append((soft_round(x, tau, generator=gen) - torch.round(x)).abs().mean().item())
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < 1e-3
    assert errors[0] > 0.1


def test_soft_round_stays_between_floor_and_ceil_and_has_gradient() -> None:
    x = (torch.randn(500) * 3).requires_grad_()
    y = soft_round(x, 0.5)
    assert torch.all(y >= x.floor() - 1e-6) and torch.all(y <= x.floor() + 1 + 1e-6)
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_ste_round_value_and_gradient() -> None:
    x = torch.tensor([0.2, 1.7, -2.4], requires_grad=True)
    y = ste_round(x)
    assert torch.equal(y.detach(), torch.tensor([0.0, 2.0, -2.0]))
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones(3))
    assert torch.equal(quantize(x, None).detach(), y.detach())


def test_soft_round_rejects_nonpositive_tau() -> None:
    with pytest.raises(ValueError):
        soft_round(torch.zeros(3), 0.0)
