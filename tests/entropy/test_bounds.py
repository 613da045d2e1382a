"""The likelihood bound passes the gradient of the latents that cost the most bits."""
from __future__ import annotations

import torch

from wisp_shacira.entropy.bounds import lower_bound
from wisp_shacira.entropy.context import ContextPrior
from wisp_shacira.entropy.prior import FactorizedPrior


def test_lower_bound_passes_gradients_that_raise_the_value() -> None:
    x = torch.tensor([1e-12, 0.5], requires_grad=True)
    y = lower_bound(x, 1e-9)
    assert torch.equal(y.detach(), torch.tensor([1e-9, 0.5]))
    (-y).sum().backward()                          # descent raises x: the gradient passes
    assert torch.equal(x.grad, torch.tensor([-1.0, -1.0]))
    x.grad = None
    lower_bound(x, 1e-9).sum().backward()          # descent would lower x below the bound
    assert torch.equal(x.grad, torch.tensor([0.0, 1.0]))


def _outlier_gradient(prior, value: float) -> float:
    latent = torch.tensor([[value]], requires_grad=True)
    if isinstance(prior, ContextPrior):
        bits = prior.bits(latent, torch.zeros(1, 1, dtype=torch.long))
    else:
        bits = prior.bits(latent).sum()
    bits.backward()
    return float(latent.grad)


def test_the_rate_gradient_reaches_an_outlier_latent() -> None:
    """Factorised prior: at 25 its likelihood is below the bound (1e-9), yet the rate still
    pulls the latent towards the centre (with ``clamp_min`` the gradient was exactly 0)."""
    torch.manual_seed(0)
    prior = FactorizedPrior(1, init_scale=1.0)
    assert prior.bits(torch.tensor([[25.3]])).item() > 29.8
    assert _outlier_gradient(prior, 25.3) > 0 and _outlier_gradient(prior, -25.3) < 0


def test_the_context_prior_keeps_the_full_tail_gradient() -> None:
    """The context prior works in the log domain: at 300 the gradient is as strong as near
    the centre (``-log2 r = 2`` bits per unit on average over a unit interval)."""
    prior = ContextPrior([()], [1], 1, init_centre=0.9, init_ratio=0.25)
    assert prior.bits(torch.tensor([[300.0]]), torch.zeros(1, 1, dtype=torch.long)).item() > 500
    near = _outlier_gradient(prior, 3.3)
    assert near > 1.0
    assert abs(_outlier_gradient(prior, 300.3) - near) < 1e-4
    assert abs(_outlier_gradient(prior, -300.3) + near) < 1e-4
