"""Numba CPU path of the gathered training encoding (:mod:`wisp_shacira.grid.gathered`).

One fused pass per level (``prange`` over levels, as in
:mod:`wisp_shacira.grid.numba_kernels`): corner rows and weights, the corner's latents,
their rounding (soft: the same per-row hashed logistic sample as the torch path, bit
for bit; hard: nearest), the shared decoder and the weighted sum. The forward keeps each
corner's rounded latents and their derivatives (``[L, N, 2^d, D]`` float32: 128 MiB for
2^18 points, 16 levels, D = 1), so the backward only recomputes rows and weights and
scatters into the latent gradient (levels own disjoint rows: no atomics, a fixed order);
the decoder's gradient is accumulated per level and summed afterwards in level order.
"""
from __future__ import annotations

import numpy as np
import torch

from wisp_shacira.extras import require

numba = require("numba", "fast", "the fast CPU encoding backend")

from numba import njit, prange  # noqa: E402

from wisp_shacira.grid.numba_kernels import _axis_terms, _corners, _run, _scratch  # noqa: E402

__all__ = ["encode_gathered_numba"]

_EPS = np.float32(1e-6)
_MIX0 = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@njit(cache=True, inline="always")
def _uniform(key: np.int64, seed: np.int64) -> np.float32:
    """:func:`wisp_shacira.grid.gathered.row_uniform` of one key."""
    z = np.uint64(key) * _MIX0 + np.uint64(seed)
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    return (np.float32((z >> np.uint64(40)) & np.uint64(0xFFFFFF)) + np.float32(0.5)) \
        / np.float32(1 << 24)


@njit(cache=True, inline="always")
def _round(x: np.float32, key: np.int64, tau: np.float32, seed: np.int64
           ) -> tuple[np.float32, np.float32]:
    """(rounded value, its derivative w.r.t. ``x``); ``tau <= 0`` = hard rounding (STE).

    ``atanh(f) - atanh(1 - f) = log(f (1 + f) / ((1 - f) (2 - f))) / 2`` and the
    logistic sample ``log(u / (1 - u))``: two logarithms and one exponential.
    """
    if tau <= 0:
        return np.float32(np.round(x)), np.float32(1.0)
    one = np.float32(1.0)
    floor = np.float32(np.floor(x))
    frac = x - floor
    inside = _EPS < frac < one - _EPS
    frac = min(max(frac, _EPS), one - _EPS)
    u = _uniform(key, seed)
    score = (np.float32(0.5) * np.float32(np.log(frac * (one + frac) / ((one - frac) * (2 - frac))))
             / tau + np.float32(np.log(u / (one - u))))
    p = one / (one + np.float32(np.exp(-score)))
    if not inside:
        return floor + p, np.float32(0.0)
    other = one - frac
    slope = (one / (one - frac * frac) + one / (one - other * other)) / tau
    return floor + p, p * (one - p) * slope


@njit(parallel=True, cache=True)
def _forward(latents, weight, bias, coords, meta, tau, seed, out, q_saved, slope_saved) -> None:
    """out[n, l*F + f] = sum_c w_c * (bias[f] + sum_d weight[f, d] * q(latents[row_c, d])).

    Also keeps every corner's rounded latents and their derivatives for the backward:
    ``q_saved, slope_saved: [L', N, 2^d, D]``.
    """
    num_points, dim = coords.shape
    feat, ldim = weight.shape
    for i in prange(meta.shape[0]):
        level, res, size, first, dense = meta[i, 0], meta[i, 1], meta[i, 2], meta[i, 3], meta[i, 4]
        terms, factors, rows, weights = _scratch(dim)
        for point in range(num_points):
            _axis_terms(coords, point, res, dense != 0, terms, factors)
            _corners(terms, factors, dense != 0, size, rows, weights)
            for k in range(feat):
                out[point, level * feat + k] = bias[k]
            for corner in range(1 << dim):
                row = first + rows[corner]
                for d in range(ldim):
                    q_saved[i, point, corner, d], slope_saved[i, point, corner, d] = _round(
                        latents[row, d], row * ldim + d, tau, seed)
                for k in range(feat):
                    acc = np.float32(0.0)
                    for d in range(ldim):
                        acc += weight[k, d] * q_saved[i, point, corner, d]
                    out[point, level * feat + k] += weights[corner] * acc


@njit(parallel=True, cache=True)
def _backward(grad, weight, coords, meta, q_saved, slope_saved, grad_latents, grad_weight,
              grad_bias) -> None:
    """Gradients of :func:`_forward`; ``grad_weight: [L', F, D]``, ``grad_bias: [L', F]``
    per level (summed by the caller)."""
    num_points, dim = coords.shape
    feat, ldim = weight.shape
    for i in prange(meta.shape[0]):
        level, res, size, first, dense = meta[i, 0], meta[i, 1], meta[i, 2], meta[i, 3], meta[i, 4]
        terms, factors, rows, weights = _scratch(dim)
        gw = np.zeros((feat, ldim), np.float32)
        for point in range(num_points):
            _axis_terms(coords, point, res, dense != 0, terms, factors)
            _corners(terms, factors, dense != 0, size, rows, weights)
            for k in range(feat):
                grad_bias[i, k] += grad[point, level * feat + k]
            for corner in range(1 << dim):
                row = first + rows[corner]
                for d in range(ldim):
                    back = np.float32(0.0)
                    for k in range(feat):
                        g = weights[corner] * grad[point, level * feat + k]
                        gw[k, d] += g * q_saved[i, point, corner, d]
                        back += g * weight[k, d]
                    grad_latents[row, d] += back * slope_saved[i, point, corner, d]
        grad_weight[i] = gw


class _GatheredNumba(torch.autograd.Function):
    @staticmethod
    def forward(ctx, latents: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,  # type: ignore[override]
                coords: torch.Tensor, meta: np.ndarray, num_levels: int, tau: float,
                seed: int) -> torch.Tensor:
        coords = coords.detach().contiguous()
        weight = weight.detach().contiguous()
        out = latents.new_zeros(coords.shape[0], num_levels * weight.shape[0])
        saved = (len(meta), coords.shape[0], 1 << coords.shape[1], latents.shape[1])
        q_saved, slope_saved = np.empty(saved, np.float32), np.empty(saved, np.float32)
        work = coords.shape[0] * len(meta)
        _run(_forward, work, latents.detach().contiguous().numpy(), weight.numpy(),
             bias.detach().contiguous().numpy(), coords.numpy(), meta, np.float32(tau),
             np.int64(seed), out.numpy(), q_saved, slope_saved)
        ctx.save_for_backward(weight, coords)
        ctx.meta, ctx.work, ctx.rows = meta, work, latents.shape[0]
        ctx.q_saved, ctx.slope_saved = q_saved, slope_saved
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        weight, coords = ctx.saved_tensors
        levels = len(ctx.meta)
        grad_latents = weight.new_zeros(ctx.rows, weight.shape[1])
        grad_weight = weight.new_zeros(levels, *weight.shape)
        grad_bias = weight.new_zeros(levels, weight.shape[0])
        _run(_backward, ctx.work, grad.contiguous().numpy(), weight.numpy(), coords.numpy(),
             ctx.meta, ctx.q_saved, ctx.slope_saved, grad_latents.numpy(), grad_weight.numpy(),
             grad_bias.numpy())
        return (grad_latents, grad_weight.sum(0), grad_bias.sum(0), None, None, None, None, None)


def encode_gathered_numba(latents: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                          coords: torch.Tensor, meta: np.ndarray, num_levels: int,
                          tau: float | None, seed: int) -> torch.Tensor:
    """Gathered encoding of the levels in ``meta`` (float32 CPU tensors).

    Args:
        latents: [rows, D]; weight: [F, D]; bias: [F] (the shared decoder).
        coords: [N, d] in [0, 1].
        meta: :func:`wisp_shacira.grid.numba_kernels.level_meta`.
        tau: soft-rounding temperature, None = hard (straight-through) rounding.
        seed: the step's seed of the per-row samples.
    Returns:
        [N, L * F], equal to the torch path to float rounding.
    """
    return _GatheredNumba.apply(latents, weight, bias, coords, meta, num_levels,
                                0.0 if tau is None else float(tau), seed)
