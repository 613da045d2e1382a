"""Fast paths for the multi-resolution encoding, and the one dispatch point.

For a batch of coordinates that is reused (the full-image batch of the image task,
the full-frame batches of video evaluation) the corner rows and weights never
change, so the encoding is a fixed sparse matrix ``A`` of shape ``[N * L, rows]``:
``features = A @ table`` and the table gradient is ``A^T @ grad``. An
:class:`EncodingPlan` holds ``A`` and ``A^T`` in CSR form, built once.

:func:`encode` picks the path: a plan when one is given, otherwise the reference.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from wisp_shacira.grid.encoding import encode_reference
from wisp_shacira.grid.hashing import GridLayout, level_corners


@dataclass
class EncodingPlan:
    """Precomputed sparse interpolation operator for fixed coordinates.

    Attributes:
        num_points: N.
        num_levels: L.
        matrix: CSR [N * L, total_rows] (row ``n * L + l``).
        matrix_t: CSR [total_rows, N * L], the transpose, for the backward pass.
    """

    num_points: int
    num_levels: int
    matrix: torch.Tensor
    matrix_t: torch.Tensor

    @property
    def nbytes(self) -> int:
        """Memory held by the plan in bytes."""
        total = 0
        for mat in (self.matrix, self.matrix_t):
            for part in (mat.crow_indices(), mat.col_indices(), mat.values()):
                total += part.numel() * part.element_size()
        return total


def _csr(crow_counts: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor,
         shape: tuple[int, int]) -> torch.Tensor:
    index_dtype = torch.int32 if max(shape) < 2**31 and cols.numel() < 2**31 else torch.int64
    crow = torch.zeros(shape[0] + 1, dtype=torch.int64, device=cols.device)
    crow[1:] = torch.cumsum(crow_counts, 0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow.to(index_dtype), cols.to(index_dtype), vals,
                                       size=shape, check_invariants=False)


def build_plan(coords: torch.Tensor, layout: GridLayout, chunk: int = 1 << 18) -> EncodingPlan:
    """Precompute the interpolation operator for ``coords``.

    Args:
        coords: [N, d] in [0, 1].
    """
    num_points, num_levels = coords.shape[0], layout.num_levels
    corners = 2**layout.dim
    cols = torch.empty(num_points, num_levels, corners, dtype=torch.int64, device=coords.device)
    vals = torch.empty(num_points, num_levels, corners, dtype=torch.float32, device=coords.device)
    with torch.no_grad():
        for start in range(0, num_points, chunk):
            part = coords[start:start + chunk].float()
            for level in range(num_levels):
                rows, weights = level_corners(part, layout, level)
                cols[start:start + chunk, level] = rows
                vals[start:start + chunk, level] = weights
    cols, vals = cols.reshape(-1), vals.reshape(-1)
    num_rows = num_points * num_levels
    counts = torch.full((num_rows,), corners, dtype=torch.int64, device=coords.device)
    matrix = _csr(counts, cols, vals, (num_rows, layout.total_rows))
    order = torch.argsort(cols, stable=True)
    counts_t = torch.bincount(cols, minlength=layout.total_rows)
    matrix_t = _csr(counts_t, torch.div(order, corners, rounding_mode="floor"), vals[order],
                    (layout.total_rows, num_rows))
    return EncodingPlan(num_points, num_levels, matrix, matrix_t)


class _PlannedEncode(torch.autograd.Function):
    @staticmethod
    def forward(ctx, table: torch.Tensor, plan: EncodingPlan) -> torch.Tensor:  # type: ignore[override]
        ctx.plan = plan
        out = torch.sparse.mm(plan.matrix, table.float().contiguous())
        return out.view(plan.num_points, -1).to(table.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        plan: EncodingPlan = ctx.plan
        feat = grad.shape[1] // plan.num_levels
        grad_rows = grad.float().contiguous().view(plan.num_points * plan.num_levels, feat)
        return torch.sparse.mm(plan.matrix_t, grad_rows).to(grad.dtype), None


def encode(table: torch.Tensor, coords: torch.Tensor | None, layout: GridLayout,
           num_active: int | None = None, plan: EncodingPlan | None = None) -> torch.Tensor:
    """Interpolate and concatenate level features, by the fastest available path.

    Args:
        table: [total_rows, F].
        coords: [N, d] in [0, 1]; may be None when ``plan`` is given.
        num_active: levels ``>= num_active`` give zeros; None = all.
        plan: precomputed operator for these coordinates (see :func:`build_plan`).
    Returns:
        [N, L * F].
    """
    if plan is None:
        if coords is None:
            raise ValueError("encode needs coords when no plan is given")
        return encode_reference(table, coords, layout, num_active)
    out = _PlannedEncode.apply(table, plan)
    if num_active is not None and num_active < layout.num_levels:
        feat = table.shape[1]
        mask = torch.zeros(layout.num_levels, feat, dtype=out.dtype, device=out.device)
        mask[:max(0, num_active)] = 1.0
        out = out * mask.view(1, -1)
    return out
