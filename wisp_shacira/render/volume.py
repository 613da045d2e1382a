"""Sampling along rays and emission-absorption volume compositing.

The quadrature is the standard NeRF one: sample ``i`` of a ray covers an interval of
length ``delta_i`` with constant density ``sigma_i``, so its opacity is
``alpha_i = 1 - exp(-sigma_i * delta_i)``; the light reaching it is the transmittance
``T_i = exp(-sum_{j<i} sigma_j * delta_j)`` and its weight is ``w_i = T_i * alpha_i``.
Samples are stratified: ``[t_near, t_far]`` is cut into ``S`` equal bins and each
sample's ``delta`` is its bin width, so the quadrature is exact for piecewise-constant
density and a constant density ``sigma`` over the whole segment gives opacity
``1 - exp(-sigma * (t_far - t_near))``. Where no gradient is recorded, the sums,
prefix sums and exponentials are :mod:`wisp_shacira.grid.exact`'s, so a render has the
same bits on every machine.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from wisp_shacira.grid import exact

__all__ = [
    "CompositeResult",
    "sample_along_rays",
    "transmittance",
    "termination_mask",
    "composite",
]


class CompositeResult(NamedTuple):
    """Output of :func:`composite` (unpacks as ``rgb, depth, opacity, weights``)."""

    rgb: Tensor
    depth: Tensor
    opacity: Tensor
    weights: Tensor


def sample_along_rays(
    t_near: Tensor,
    t_far: Tensor,
    num_samples: int,
    jitter: bool = False,
    generator: torch.Generator | None = None,
    uniform: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Stratified samples between ``t_near`` and ``t_far``.

    Args:
        t_near: segment starts ``[R]``.
        t_far: segment ends ``[R]`` (``t_far == t_near`` gives zero-length bins).
        num_samples: samples per ray ``S``.
        jitter: if True each sample is uniform within its bin, otherwise it is the
            bin midpoint (deterministic).
        generator: optional RNG for the jitter (must live on the rays' device).
        uniform: ``[R, S]`` the jitter's uniforms, drawn by the caller (e.g. for a
            global batch that processes share); None = drawn here.

    Returns:
        ``t [R, S]`` sample distances and ``deltas [R, S]`` bin widths.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    R = t_near.shape[0]
    width = ((t_far - t_near) / num_samples).clamp_min(0.0)
    steps = torch.arange(num_samples, device=t_near.device, dtype=t_near.dtype)
    if jitter and uniform is not None:
        u = uniform
    elif jitter:
        u = torch.rand(
            (R, num_samples), device=t_near.device, dtype=t_near.dtype, generator=generator
        )
    else:
        u = torch.full((R, num_samples), 0.5, device=t_near.device, dtype=t_near.dtype)
    t = t_near[:, None] + (steps[None, :] + u) * width[:, None]
    deltas = width[:, None].expand(R, num_samples)
    return t, deltas.contiguous()


def _optical_depth(sigma: Tensor, deltas: Tensor) -> Tensor:
    """Per-sample optical depth ``sigma * delta``: ``[R, S]`` -> ``[R, S]``."""
    return sigma * deltas


def transmittance(sigma: Tensor, deltas: Tensor) -> Tensor:
    """Light reaching each sample, ``T_i = exp(-sum_{j<i} sigma_j delta_j)``.

    Args:
        sigma: densities ``[R, S]`` (non-negative).
        deltas: interval lengths ``[R, S]``.

    Returns:
        Transmittance ``[R, S]`` (1 for the first sample of every ray).
    """
    return exact.exp(-exact.cumsum(_optical_depth(sigma, deltas), -1, exclusive=True))


def termination_mask(sigma: Tensor, deltas: Tensor, eps: float = 1e-4) -> Tensor:
    """Samples hidden behind nearly opaque matter (early ray termination).

    Args:
        sigma: densities ``[R, S]``.
        deltas: interval lengths ``[R, S]``.
        eps: transmittance threshold.

    Returns:
        Bool ``[R, S]``, True where the transmittance reaching the sample is below
        ``eps``; such samples change the colour by less than ``eps`` and need not be
        evaluated.
    """
    return transmittance(sigma.detach(), deltas) < eps


def _weights(tau: Tensor) -> Tensor:
    """``w_i = T_i (1 - exp(-tau_i))`` with ``T_i = exp(-sum_{j<i} tau_j)``: ``[R, S]``.

    When decoding, the exponentials are taken only where ``tau_i != 0`` (elsewhere the
    weight is 0 either way): most samples of a packed march are empty.
    """
    depth = exact.cumsum(tau, -1, exclusive=True)
    if not exact.decoding():
        return torch.exp(-depth) * (1.0 - torch.exp(-tau))
    weights = torch.zeros_like(tau)
    live = tau != 0
    weights[live] = exact.exact_exp(-depth[live]) * (1.0 - exact.exact_exp(-tau[live]))
    return weights


def composite(
    sigma: Tensor,
    rgb: Tensor,
    deltas: Tensor,
    bg: Tensor | None = None,
    t: Tensor | None = None,
) -> CompositeResult:
    """Alpha-composite samples front to back.

    Args:
        sigma: densities ``[R, S]`` (non-negative).
        rgb: sample colours ``[R, S, 3]``.
        deltas: interval lengths ``[R, S]``.
        bg: background colour ``[3]`` (or ``[R, 3]``) blended as
            ``(1 - opacity) * bg``; None means black.
        t: sample distances ``[R, S]`` for the depth; if None the bin midpoints
            measured from the first sample's bin start are used.

    Returns:
        :class:`CompositeResult` with ``rgb [R, 3]``, ``depth [R]`` (expected
        distance ``sum_i w_i t_i``, not normalised by opacity), ``opacity [R]``
        (``sum_i w_i``) and ``weights [R, S]``.
    """
    weights = _weights(_optical_depth(sigma, deltas))
    if t is None:
        t = exact.cumsum(deltas, -1) - 0.5 * deltas
    out_rgb = exact.sum_over(weights[..., None] * rgb, -2)
    opacity = exact.sum_over(weights, -1)
    depth = exact.sum_over(weights * t, -1)
    if bg is not None:
        bg_t = torch.as_tensor(bg, device=out_rgb.device, dtype=out_rgb.dtype)
        out_rgb = out_rgb + (1.0 - opacity)[..., None] * bg_t
    return CompositeResult(out_rgb, depth, opacity, weights)
