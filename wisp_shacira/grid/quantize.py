"""Quantisation of the continuous latent proxies: annealed soft rounding, then STE.

SHACIRA keeps integer latents ``Q`` as continuous proxies ``Q_hat``. While the
temperature ``tau`` is positive, each entry is rounded down or up by a relaxed
2-class (Gumbel-softmax) sample with logits ``-atanh(frac) / tau`` (floor) and
``-atanh(1 - frac) / tau`` (ceil); as ``tau -> 0`` this becomes nearest rounding.
With ``tau = None`` the rounding is hard, with a straight-through gradient.
"""
from __future__ import annotations

import torch

_EPS = 1e-6


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """Nearest rounding with an identity (straight-through) gradient."""
    return x + (torch.round(x) - x).detach()


def soft_round(x: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Annealed stochastic soft rounding.

    Args:
        x: [...] continuous latents.
        tau: temperature > 0; smaller is closer to nearest rounding.
    Returns:
        [...] ``floor(x) + p_ceil``, with ``p_ceil`` a relaxed Bernoulli sample in (0, 1).
    """
    if tau <= 0:
        raise ValueError(f"soft_round needs tau > 0, got {tau}")
    floor = torch.floor(x).detach()
    frac = (x - floor).clamp(_EPS, 1.0 - _EPS)
    logit_floor = -torch.atanh(frac) / tau
    logit_ceil = -torch.atanh(1.0 - frac) / tau
    uniform = torch.rand(x.shape + (2,), generator=generator, device=x.device, dtype=x.dtype)
    gumbel = -torch.log(-torch.log(uniform.clamp(_EPS, 1.0 - _EPS)))
    p_ceil = torch.sigmoid((logit_ceil + gumbel[..., 1]) - (logit_floor + gumbel[..., 0]))
    return floor + p_ceil


def soft_round_logistic(x: torch.Tensor, tau: float, uniform: torch.Tensor) -> torch.Tensor:
    """:func:`soft_round` with its relaxed sample given as uniforms: the difference of
    the two Gumbel variables is logistic, ``log(u) - log(1 - u)``, so the law is the same
    while the caller chooses the random stream.

    Args:
        x: [...] continuous latents; uniform: [...] in (0, 1).
    Returns:
        [...] ``floor(x) + p_ceil``.
    """
    if tau <= 0:
        raise ValueError(f"soft_round needs tau > 0, got {tau}")
    floor = torch.floor(x).detach()
    frac = (x - floor).clamp(_EPS, 1.0 - _EPS)
    logistic = torch.log(uniform) - torch.log1p(-uniform)
    return floor + torch.sigmoid((torch.atanh(frac) - torch.atanh(1.0 - frac)) / tau + logistic)


def quantize(x: torch.Tensor, tau: float | None) -> torch.Tensor:
    """Soft rounding at temperature ``tau``, or hard STE rounding when ``tau`` is None."""
    return ste_round(x) if tau is None else soft_round(x, tau)
