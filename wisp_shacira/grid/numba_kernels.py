"""Numba CPU path of the multi-resolution encoding (float32, all levels fused).

Imported lazily by :mod:`wisp_shacira.grid.fast` (numba is the optional extra
``fast``). Nothing is compiled at import: each kernel is compiled on its first call
(a few seconds) and cached on disk (``cache=True``), so later processes load it fast.

The kernels recompute corner rows and weights on the fly, exactly as
:func:`wisp_shacira.grid.hashing.level_corners` does in float32, and give one level
to each thread (``prange`` over levels, finest first, dynamic scheduling). Levels own
disjoint row ranges of the table, so the backward scatter-add needs neither atomics
nor per-thread buffers, and its summation order is fixed (deterministic).

Level metadata is packed into ``meta: [L', 5]`` int64 rows
``(level, resolution, table_size, first_row, is_dense)``.
"""
from __future__ import annotations

import numpy as np
import torch

from wisp_shacira.extras import require

numba = require("numba", "fast", "the fast CPU encoding backend")

from numba import njit, prange  # noqa: E402
from numba.core.errors import NumbaError  # noqa: E402

from wisp_shacira.grid.hashing import PRIMES, GridLayout  # noqa: E402

__all__ = ["NumbaError", "encode_numba", "level_meta"]

_PRIMES = np.array(PRIMES, dtype=np.int64)
_LOW32 = np.int64(0xFFFFFFFF)
_MIN_PARALLEL_WORK = 1 << 16  # point-levels below which waking threads costs more than it saves


@njit(cache=True, inline="always")
def _axis_terms(coords: np.ndarray, point: int, res: int, dense: bool,
                terms: np.ndarray, factors: np.ndarray) -> None:
    """Per-axis row terms ``terms: [d, 2]`` and weight factors ``factors: [d, 2]``.

    Entry ``[a, b]`` belongs to vertex ``base_a + b`` on axis ``a``: its row term is
    ``vertex * stride_a`` (dense) or ``vertex * prime_a`` (hashed), its factor
    ``1 - frac_a`` (b = 0) or ``frac_a`` (b = 1).
    """
    scale = np.float32(res)
    stride = np.int64(1)
    for axis in range(coords.shape[1]):
        pos = min(max(coords[point, axis], np.float32(0.0)), np.float32(1.0)) * scale
        low = min(np.floor(pos), np.float32(res - 1))
        frac = pos - low
        vertex = np.int64(low)
        factors[axis, 0] = np.float32(1.0) - frac
        factors[axis, 1] = frac
        mult = stride if dense else _PRIMES[axis]
        terms[axis, 0] = vertex * mult
        terms[axis, 1] = (vertex + 1) * mult
        stride *= res + 1


@njit(cache=True, inline="always")
def _corners(terms: np.ndarray, factors: np.ndarray, dense: bool, size: int,
             rows: np.ndarray, weights: np.ndarray) -> None:
    """Level-local ``rows: [2^d]`` and ``weights: [2^d]`` (bit ``a`` of the corner = axis ``a``)."""
    dim = terms.shape[0]
    mask = size - 1 if size & (size - 1) == 0 else -1
    for corner in range(1 << dim):
        row = np.int64(0)
        weight = np.float32(1.0)
        for axis in range(dim):
            bit = (corner >> axis) & 1
            weight *= factors[axis, bit]
            row = row + terms[axis, bit] if dense else row ^ terms[axis, bit]
        if not dense:
            row &= _LOW32
            row = row & mask if mask >= 0 else row % size
        rows[corner] = row
        weights[corner] = weight


@njit(cache=True, inline="always")
def _scratch(dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One thread's buffers for a level: ``terms``, ``factors`` [d, 2] (see
    :func:`_axis_terms`), ``rows``, ``weights`` [2^d] (see :func:`_corners`)."""
    return (np.empty((dim, 2), np.int64), np.empty((dim, 2), np.float32),
            np.empty(1 << dim, np.int64), np.empty(1 << dim, np.float32))


@njit(parallel=True, cache=True)
def _forward(table: np.ndarray, coords: np.ndarray, meta: np.ndarray, out: np.ndarray) -> None:
    """``out[n, l*F:(l+1)*F] = sum_c w[n, l, c] * table[row[n, l, c]]`` for the levels in ``meta``.

    Shapes: table [rows, F], coords [N, d], out [N, L * F] (other columns untouched).
    """
    num_points, dim = coords.shape
    feat = table.shape[1]
    for i in prange(meta.shape[0]):
        level, res, size, first, dense = meta[i, 0], meta[i, 1], meta[i, 2], meta[i, 3], meta[i, 4]
        terms, factors, rows, weights = _scratch(dim)
        for point in range(num_points):
            _axis_terms(coords, point, res, dense != 0, terms, factors)
            _corners(terms, factors, dense != 0, size, rows, weights)
            for k in range(feat):
                acc = np.float32(0.0)
                for corner in range(1 << dim):
                    acc += weights[corner] * table[first + rows[corner], k]
                out[point, level * feat + k] = acc


@njit(parallel=True, cache=True)
def _backward(grad: np.ndarray, coords: np.ndarray, meta: np.ndarray,
              grad_table: np.ndarray) -> None:
    """``grad_table[row[n, l, c]] += w[n, l, c] * grad[n, l*F:(l+1)*F]`` for the levels in ``meta``.

    Shapes: grad [N, L * F], coords [N, d], grad_table [rows, F] (accumulated in place).
    """
    num_points, dim = coords.shape
    feat = grad_table.shape[1]
    for i in prange(meta.shape[0]):
        level, res, size, first, dense = meta[i, 0], meta[i, 1], meta[i, 2], meta[i, 3], meta[i, 4]
        terms, factors, rows, weights = _scratch(dim)
        for point in range(num_points):
            _axis_terms(coords, point, res, dense != 0, terms, factors)
            _corners(terms, factors, dense != 0, size, rows, weights)
            for corner in range(1 << dim):
                row = first + rows[corner]
                for k in range(feat):
                    grad_table[row, k] += weights[corner] * grad[point, level * feat + k]


def level_meta(layout: GridLayout, num_active: int) -> np.ndarray:
    """Packed metadata of levels ``0..num_active-1``, finest first (costliest first).

    Returns:
        [num_active, 5] int64 rows ``(level, resolution, table_size, first_row, is_dense)``.
    """
    rows = [(level, layout.resolutions[level], layout.table_sizes[level], layout.offsets[level],
             int(layout.dense[level])) for level in reversed(range(num_active))]
    return np.array(rows, dtype=np.int64).reshape(-1, 5)


def _run(kernel, work: int, *args: np.ndarray) -> None:
    """Run ``kernel(*args)`` on as many threads as torch uses (one for small ``work``)."""
    threads = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(threads if work >= _MIN_PARALLEL_WORK else 1)
    with numba.parallel_chunksize(1):
        kernel(*args)


class _NumbaEncode(torch.autograd.Function):
    @staticmethod
    def forward(ctx, table: torch.Tensor, coords: torch.Tensor,  # type: ignore[override]
                meta: np.ndarray, num_levels: int) -> torch.Tensor:
        coords = coords.detach().contiguous()
        out = table.new_zeros(coords.shape[0], num_levels * table.shape[1])
        work = coords.shape[0] * len(meta)
        _run(_forward, work, table.detach().contiguous().numpy(), coords.numpy(), meta, out.numpy())
        ctx.save_for_backward(coords)
        ctx.meta, ctx.work, ctx.table_shape = meta, work, table.shape
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (coords,) = ctx.saved_tensors
        grad_table = grad.new_zeros(ctx.table_shape)
        _run(_backward, ctx.work, grad.contiguous().numpy(), coords.numpy(), ctx.meta,
             grad_table.numpy())
        return grad_table, None, None, None


def encode_numba(table: torch.Tensor, coords: torch.Tensor, meta: np.ndarray,
                 num_levels: int) -> torch.Tensor:
    """Encoding of the levels in ``meta`` (others give zeros), gradients w.r.t. ``table`` only.

    Args:
        table: [rows, F] float32 on the CPU.
        coords: [N, d] float32 on the CPU, in [0, 1].
        meta: from :func:`level_meta`.
        num_levels: L, the output width is ``L * F``.
    Returns:
        [N, L * F] float32.
    """
    return _NumbaEncode.apply(table, coords, meta, num_levels)
