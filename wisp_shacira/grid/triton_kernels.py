"""Triton path of the multi-resolution encoding: one fused kernel per direction (GPU).

Imported lazily by :mod:`wisp_shacira.grid.fast` (Triton ships with PyTorch's CUDA
builds); nothing is compiled at import: Triton compiles each kernel on its first
launch (per input dimension and feature width) and caches it on disk
(``~/.triton/cache``). With ``TRITON_INTERPRET=1`` set before this module is first
imported, the same kernels run on CPU tensors through Triton's interpreter (the CPU
tests use that).

One program handles ``BLOCK`` points of one level (grid ``[cdiv(N, BLOCK), levels]``):
it recomputes corner rows and weights from the coordinates exactly as
:func:`wisp_shacira.grid.hashing.level_corners` does in float32 (hashing in uint32:
``xor_a((v_a * prime_a) mod 2^32) & (T - 1)``), gathers the ``F`` features of every
corner and sums them in corner order, as every backend does. Kernels are compiled with
``enable_fp_fusion=False`` (no fused multiply-add), so the forward pass rounds like
the CPU reference. The backward pass scatters ``w * grad`` into the table gradient with
float32 atomics: exact to float rounding, but the summation order (and so the last
bits) can vary from run to run; with ``torch.use_deterministic_algorithms(True)`` the
gradient is computed by the torch path's ``index_add_`` instead (deterministic on CUDA).

Level metadata is packed into ``meta: [L', 4]`` int64 rows
``(resolution, table_size, first_row, is_dense)``, row ``l`` for level ``l``.
"""
from __future__ import annotations

from functools import lru_cache

import torch
import triton
import triton.language as tl

from wisp_shacira.grid.hashing import PRIMES, GridLayout, make_layout

__all__ = ["encode_triton", "fits_layout", "level_meta", "probe", "BLOCK"]

BLOCK = 256
_NUM_WARPS = 4
_MAX_DIM = 3


@triton.jit
def _axis(coords_ptr, points, mask, axis: tl.constexpr, DIM: tl.constexpr, res_f):
    """Lower vertex (int32) and fraction (float32) of ``points`` on ``axis``; ``[BLOCK]``."""
    x = tl.load(coords_ptr + points * DIM + axis, mask=mask, other=0.0)
    pos = tl.minimum(tl.maximum(x, 0.0), 1.0) * res_f
    low = tl.minimum(tl.floor(pos), res_f - 1.0)
    return low.to(tl.int32), pos - low


@triton.jit
def _factor(frac, BIT: tl.constexpr):
    """Weight factor of one axis: ``frac`` for the upper vertex, ``1 - frac`` for the lower."""
    return frac if BIT else 1.0 - frac


@triton.jit
def _hash_term(vertex, PRIME: tl.constexpr):
    """``(vertex * prime) mod 2^32`` as uint32."""
    return vertex.to(tl.uint32) * tl.full((), PRIME, tl.uint32)


@triton.jit
def _corner(C: tl.constexpr, DIM: tl.constexpr, v0, f0, v1, f1, v2, f2, res, size, dense,
            P1: tl.constexpr, P2: tl.constexpr):
    """Level-local row (int64) and weight (float32) of corner ``C`` (bit ``a`` = axis ``a``).

    The weight is the product of the axis factors in axis order, as in the reference.
    """
    B0: tl.constexpr = C & 1
    B1: tl.constexpr = (C >> 1) & 1
    B2: tl.constexpr = (C >> 2) & 1
    weight = _factor(f0, B0)
    dense_row = (v0 + B0).to(tl.int64)
    hashed = (v0 + B0).to(tl.uint32)
    if DIM > 1:
        weight = weight * _factor(f1, B1)
        dense_row += (v1 + B1).to(tl.int64) * (res + 1)
        hashed = hashed ^ _hash_term(v1 + B1, P1)
    if DIM > 2:
        weight = weight * _factor(f2, B2)
        dense_row += (v2 + B2).to(tl.int64) * ((res + 1) * (res + 1))
        hashed = hashed ^ _hash_term(v2 + B2, P2)
    hashed_row = (hashed & (size - 1).to(tl.uint32)).to(tl.int64)
    return tl.where(dense != 0, dense_row, hashed_row), weight


@triton.jit
def _level_setup(coords_ptr, meta_ptr, n, DIM: tl.constexpr, BLOCK_N: tl.constexpr):
    """Shared prologue: this program's points, mask, level metadata and axis terms."""
    level = tl.program_id(1)
    points = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = points < n
    res = tl.load(meta_ptr + level * 4)
    size = tl.load(meta_ptr + level * 4 + 1)
    first = tl.load(meta_ptr + level * 4 + 2)
    dense = tl.load(meta_ptr + level * 4 + 3)
    res_f = res.to(tl.float32)
    v0, f0 = _axis(coords_ptr, points, mask, 0, DIM, res_f)
    v1, f1 = v0, f0
    v2, f2 = v0, f0
    if DIM > 1:
        v1, f1 = _axis(coords_ptr, points, mask, 1, DIM, res_f)
    if DIM > 2:
        v2, f2 = _axis(coords_ptr, points, mask, 2, DIM, res_f)
    return level, points, mask, res, size, first, dense, v0, f0, v1, f1, v2, f2


@triton.jit
def _forward_kernel(table_ptr, coords_ptr, meta_ptr, out_ptr, n, out_stride,
                    DIM: tl.constexpr, FEAT: tl.constexpr, BLOCK_N: tl.constexpr,
                    P1: tl.constexpr, P2: tl.constexpr):
    """``out[p, l*F + k] = sum_c w[p, l, c] * table[first_l + row[p, l, c], k]``, corners in
    order for each feature ``k`` (all in one layout: no data exchange between threads)."""
    level, points, mask, res, size, first, dense, v0, f0, v1, f1, v2, f2 = _level_setup(
        coords_ptr, meta_ptr, n, DIM, BLOCK_N)
    out_base = out_ptr + points * out_stride + level * FEAT
    for k in tl.static_range(FEAT):
        acc = tl.zeros((BLOCK_N,), dtype=tl.float32)
        for c in tl.static_range(1 << DIM):
            row, weight = _corner(c, DIM, v0, f0, v1, f1, v2, f2, res, size, dense, P1, P2)
            value = tl.load(table_ptr + (first + row) * FEAT + k, mask=mask, other=0.0)
            acc = acc + weight * value
        tl.store(out_base + k, acc, mask=mask)


@triton.jit
def _backward_kernel(grad_ptr, coords_ptr, meta_ptr, grad_table_ptr, n, grad_stride,
                     DIM: tl.constexpr, FEAT: tl.constexpr, BLOCK_N: tl.constexpr,
                     P1: tl.constexpr, P2: tl.constexpr):
    """``grad_table[first_l + row[p, l, c], k] += w[p, l, c] * grad[p, l*F + k]`` (atomics)."""
    level, points, mask, res, size, first, dense, v0, f0, v1, f1, v2, f2 = _level_setup(
        coords_ptr, meta_ptr, n, DIM, BLOCK_N)
    grad_base = grad_ptr + points * grad_stride + level * FEAT
    for k in tl.static_range(FEAT):
        grad = tl.load(grad_base + k, mask=mask, other=0.0)
        for c in tl.static_range(1 << DIM):
            row, weight = _corner(c, DIM, v0, f0, v1, f1, v2, f2, res, size, dense, P1, P2)
            tl.atomic_add(grad_table_ptr + (first + row) * FEAT + k, weight * grad, mask=mask,
                          sem="relaxed")


def fits_layout(layout: GridLayout) -> bool:
    """Whether the kernels take this layout: 1-3 dimensions, hashed tables of 2^k rows."""
    sizes = [size for size, dense in zip(layout.table_sizes, layout.dense) if not dense]
    return 1 <= layout.dim <= _MAX_DIM and all(size & (size - 1) == 0 for size in sizes)


@lru_cache(maxsize=64)
def level_meta(layout: GridLayout, num_active: int, device: torch.device) -> torch.Tensor:
    """``[num_active, 4]`` int64 rows ``(resolution, table_size, first_row, is_dense)``."""
    rows = [(layout.resolutions[l], layout.table_sizes[l], layout.offsets[l], int(layout.dense[l]))
            for l in range(num_active)]
    return torch.tensor(rows, dtype=torch.int64, device=device).reshape(-1, 4)


def _constants(layout: GridLayout, feat: int) -> dict:
    return {"DIM": layout.dim, "FEAT": feat, "BLOCK_N": BLOCK, "P1": PRIMES[1], "P2": PRIMES[2]}


def launch_forward(table: torch.Tensor, coords: torch.Tensor, layout: GridLayout,
                   num_active: int) -> torch.Tensor:
    """Forward kernel. table: [rows, F] float32; coords: [N, d] float32 -> [N, L * F]."""
    num_points, feat = coords.shape[0], table.shape[1]
    shape = (num_points, layout.num_levels * feat)
    # every column of the levels used is written; the others must be zeros
    out = table.new_empty(shape) if num_active == layout.num_levels else table.new_zeros(shape)
    if num_points and num_active:
        meta = level_meta(layout, num_active, coords.device)
        _forward_kernel[(triton.cdiv(num_points, BLOCK), num_active)](
            table, coords, meta, out, num_points, out.stride(0), **_constants(layout, feat),
            num_warps=_NUM_WARPS, enable_fp_fusion=False)
    return out


def launch_backward(grad: torch.Tensor, coords: torch.Tensor, layout: GridLayout,
                    num_active: int, table_shape: torch.Size) -> torch.Tensor:
    """Backward kernel. grad: [N, L * F] float32 -> table gradient [rows, F]."""
    num_points, feat = coords.shape[0], table_shape[1]
    grad_table = grad.new_zeros(table_shape)
    if num_points and num_active:
        meta = level_meta(layout, num_active, coords.device)
        _backward_kernel[(triton.cdiv(num_points, BLOCK), num_active)](
            grad, coords, meta, grad_table, num_points, grad.stride(0),
            **_constants(layout, feat), num_warps=_NUM_WARPS, enable_fp_fusion=False)
    return grad_table


class _TritonEncode(torch.autograd.Function):
    @staticmethod
    def forward(ctx, table: torch.Tensor, coords: torch.Tensor,  # type: ignore[override]
                layout: GridLayout, num_active: int) -> torch.Tensor:
        coords = coords.detach().contiguous()
        out = launch_forward(table.detach().contiguous(), coords, layout, num_active)
        ctx.save_for_backward(coords)
        ctx.layout, ctx.num_active, ctx.table_shape = layout, num_active, table.shape
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (coords,) = ctx.saved_tensors
        if torch.are_deterministic_algorithms_enabled():
            from wisp_shacira.grid.fused_torch import fused_backward
            grad_table = fused_backward(grad, coords, ctx.layout, ctx.num_active, ctx.table_shape)
        else:
            grad_table = launch_backward(grad.float().contiguous(), coords, ctx.layout,
                                         ctx.num_active, ctx.table_shape)
        return grad_table, None, None, None


def encode_triton(table: torch.Tensor, coords: torch.Tensor, layout: GridLayout,
                  num_active: int) -> torch.Tensor:
    """Encoding with levels ``>= num_active`` zero; gradients w.r.t. ``table`` only.

    Args:
        table: [total_rows, F] float32 (CUDA, or CPU under ``TRITON_INTERPRET=1``).
        coords: [N, d] float32 in [0, 1], on the table's device.
    Returns:
        [N, L * F] float32.
    """
    return _TritonEncode.apply(table, coords, layout, num_active)


def probe(dim: int, feat: int, device: torch.device) -> None:
    """Compile (or load from the cache) and run both kernels once for input dimension
    ``dim`` and feature width ``feat`` on a few points; raises what Triton raises."""
    tiny = make_layout(dim, 1, 8, 2, 3)   # one dense and one hashed level
    coords = torch.rand(4, dim, device=device)
    table = torch.zeros(tiny.total_rows, feat, device=device)
    launch_forward(table, coords, tiny, 2)
    launch_backward(torch.ones(4, 2 * feat, device=device), coords, tiny, 2, table.shape)
