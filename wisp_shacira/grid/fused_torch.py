"""Vectorised PyTorch path of the multi-resolution encoding (any device, any float dtype).

All levels of one kind (dense or hashed) are handled together: corner rows and
weights are built as ``[n, L', 2^d]`` tensors from per-axis terms (no ``[.., d]``
vertex tensor), the forward is one gather and one batched product, and the backward
is one flat ``index_add_`` into the table gradient. A custom autograd function keeps
only the coordinates and recomputes rows and weights chunk by chunk in the backward
pass, so memory stays bounded for any batch size. This is the CUDA path and the CPU
fallback when numba is missing (on a CPU it runs at about the reference's speed, with
less memory); results match :func:`wisp_shacira.grid.encoding.encode_reference` to
float rounding.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from wisp_shacira.grid.hashing import PRIMES, GridLayout

_CHUNK_ELEMENTS_CPU = 1 << 23
_CHUNK_ELEMENTS_ACCELERATOR = 1 << 25


@dataclass(frozen=True)
class LevelGroup:
    """Levels indexed the same way (all dense or all hashed), as device tensors.

    Attributes:
        levels: [L'] int64 level indices (output columns).
        resolutions: [L'] int64.
        offsets: [L'] int64 first row of each level.
        strides: dense: [L', d] int64 row strides of the axes; hashed: empty.
        corner_rows: dense: [L', 2^d] int64 row of each corner minus the row of the
            lower corner; hashed: empty.
        modulus: hashed: [L'] int64 table sizes, or the sizes minus one when all are
            powers of two (then a bit mask replaces the modulo); dense: empty.
        dense: whether the group is dense.
        pow2: whether ``modulus`` holds masks.
    """

    levels: torch.Tensor
    resolutions: torch.Tensor
    offsets: torch.Tensor
    strides: torch.Tensor
    corner_rows: torch.Tensor
    modulus: torch.Tensor
    dense: bool
    pow2: bool


def _group(layout: GridLayout, levels: list[int], dense: bool, device: torch.device) -> LevelGroup:
    def tensor(values: list) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.int64, device=device)

    res = [layout.resolutions[l] for l in levels]
    sizes = [layout.table_sizes[l] for l in levels]
    if dense:
        strides = [[(r + 1) ** axis for axis in range(layout.dim)] for r in res]
        corner_rows = [[sum(s for axis, s in enumerate(level) if corner >> axis & 1)
                        for corner in range(2**layout.dim)] for level in strides]
        return LevelGroup(tensor(levels), tensor(res), tensor([layout.offsets[l] for l in levels]),
                          tensor(strides), tensor(corner_rows), tensor([]), True, False)
    pow2 = all(size & (size - 1) == 0 for size in sizes)
    modulus = [size - 1 for size in sizes] if pow2 else sizes
    return LevelGroup(tensor(levels), tensor(res), tensor([layout.offsets[l] for l in levels]),
                      tensor([]), tensor([]), tensor(modulus), False, pow2)


@lru_cache(maxsize=64)
def level_groups(layout: GridLayout, num_active: int,
                 device: torch.device) -> tuple[LevelGroup, ...]:
    """Dense and hashed groups of levels ``0..num_active-1`` (empty groups left out)."""
    groups = []
    for dense in (True, False):
        levels = [l for l in range(num_active) if layout.dense[l] == dense]
        if levels:
            groups.append(_group(layout, levels, dense, device))
    return tuple(groups)


def _hashed_rows(vertex: torch.Tensor, group: LevelGroup) -> torch.Tensor:
    """[n, L', d] lower vertices -> [n, L', 2^d] level-local rows of all corners."""
    rows = None
    for axis in range(vertex.shape[-1]):
        lower = vertex[..., axis] * PRIMES[axis]
        terms = torch.stack([lower, lower + PRIMES[axis]], dim=-1)
        rows = terms if rows is None else torch.bitwise_xor(rows[..., None, :],
                                                             terms[..., :, None]).flatten(-2)
    rows = rows & 0xFFFFFFFF
    if group.pow2:
        return rows & group.modulus[None, :, None]
    return torch.remainder(rows, group.modulus[None, :, None])


def group_corners(coords: torch.Tensor, group: LevelGroup) -> tuple[torch.Tensor, torch.Tensor]:
    """Global rows and multilinear weights of every corner of every level in ``group``.

    Args:
        coords: [n, d] in [0, 1] (clamped).
    Returns:
        rows: [n, L', 2^d] int64; weights: [n, L', 2^d] in ``coords.dtype``. Corner
        ``c`` has bit ``a`` set when it takes the upper vertex on axis ``a``.
    """
    res = group.resolutions.to(coords.dtype)
    pos = coords.clamp(0.0, 1.0)[:, None, :] * res[None, :, None]
    low = torch.minimum(pos.floor(), (res - 1)[None, :, None])
    frac = pos - low
    weights = None
    for axis in range(coords.shape[1]):
        factors = torch.stack([1.0 - frac[..., axis], frac[..., axis]], dim=-1)
        weights = factors if weights is None else (weights[..., None, :]
                                                   * factors[..., :, None]).flatten(-2)
    if group.dense:
        lower = (low.long() * group.strides).sum(-1, keepdim=True)
        rows = lower + group.corner_rows
    else:
        rows = _hashed_rows(low.long(), group)
    return rows + group.offsets[None, :, None], weights


def _chunk_size(coords: torch.Tensor, layout: GridLayout, feat: int) -> int:
    budget = _CHUNK_ELEMENTS_CPU if coords.device.type == "cpu" else _CHUNK_ELEMENTS_ACCELERATOR
    per_point = layout.num_levels * 2**layout.dim * max(feat, 2)
    return max(1, budget // per_point)


def _corner_sum(weights: torch.Tensor, gathered: torch.Tensor) -> torch.Tensor:
    """``sum_c weights[..., c] * gathered[..., c, :]``, corners added one after another
    in corner order (as :func:`~wisp_shacira.grid.encoding.encode_reference`; a matrix
    product would sum in an order its BLAS kernel picks): ``[..., C]``, ``[..., C, F]``
    -> ``[..., F]``."""
    acc = gathered[..., 0, :] * weights[..., 0, None]
    for corner in range(1, weights.shape[-1]):
        acc = acc + gathered[..., corner, :] * weights[..., corner, None]
    return acc


class _FusedEncode(torch.autograd.Function):
    @staticmethod
    def forward(ctx, table: torch.Tensor, coords: torch.Tensor,  # type: ignore[override]
                layout: GridLayout, num_active: int) -> torch.Tensor:
        coords = coords.detach()
        groups = level_groups(layout, num_active, coords.device)
        num_points, feat = coords.shape[0], table.shape[1]
        out = table.new_zeros(num_points, layout.num_levels, feat)
        chunk = _chunk_size(coords, layout, feat)
        for start in range(0, num_points, chunk):
            part = coords[start:start + chunk]
            for group in groups:
                rows, weights = group_corners(part, group)
                gathered = table.index_select(0, rows.reshape(-1)).view(*rows.shape, feat)
                out[start:start + chunk, group.levels] = _corner_sum(weights.to(table.dtype),
                                                                     gathered)
        ctx.save_for_backward(coords)
        ctx.layout, ctx.num_active, ctx.table_shape = layout, num_active, table.shape
        return out.view(num_points, -1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (coords,) = ctx.saved_tensors
        grad_table = fused_backward(grad, coords, ctx.layout, ctx.num_active, ctx.table_shape)
        return grad_table, None, None, None


def fused_backward(grad: torch.Tensor, coords: torch.Tensor, layout: GridLayout,
                   num_active: int, table_shape: torch.Size) -> torch.Tensor:
    """Table gradient of the encoding (one ``index_add_`` per chunk and level group;
    deterministic on CUDA under ``torch.use_deterministic_algorithms(True)``).

    Args:
        grad: [N, L * F] gradient of the output; coords: [N, d].
    Returns:
        [rows, F], ``rows, F = table_shape``.
    """
    rows_total, feat = table_shape
    grad_flat = grad.new_zeros(rows_total * feat)
    grad = grad.reshape(coords.shape[0], layout.num_levels, feat)
    features = torch.arange(feat, device=grad.device)
    chunk = _chunk_size(coords, layout, feat)
    for start in range(0, coords.shape[0], chunk):
        part = coords[start:start + chunk]
        for group in level_groups(layout, num_active, coords.device):
            rows, weights = group_corners(part, group)
            level_grad = grad[start:start + chunk, group.levels]
            contrib = weights.to(grad.dtype)[..., None] * level_grad[:, :, None, :]
            index = rows[..., None] * feat + features
            grad_flat.index_add_(0, index.reshape(-1), contrib.reshape(-1))
    return grad_flat.view(rows_total, feat)


def encode_fused(table: torch.Tensor, coords: torch.Tensor, layout: GridLayout,
                 num_active: int) -> torch.Tensor:
    """Encoding with levels ``>= num_active`` zero; gradients w.r.t. ``table`` only.

    Args:
        table: [total_rows, F].
        coords: [N, d] in [0, 1], on the table's device.
    Returns:
        [N, L * F] in ``table.dtype``.
    """
    return _FusedEncode.apply(table, coords, layout, num_active)
