"""Multi-resolution feature interpolation: the reference implementation.

``encode_reference`` is the correctness oracle: written for clarity, one level at a
time, gradients by autograd. Fast paths live in :mod:`wisp_shacira.grid.fast` and
are chosen in :func:`wisp_shacira.grid.fast.encode`; they must match this function
(outputs and gradients w.r.t. the table).
"""
from __future__ import annotations

import torch

from wisp_shacira.grid.hashing import GridLayout, level_corners


def encode_reference(table: torch.Tensor, coords: torch.Tensor, layout: GridLayout,
                     num_active: int | None = None) -> torch.Tensor:
    """Interpolate per-level features and concatenate them.

    Args:
        table: [total_rows, F] features of all levels (rows ``offsets[l]:offsets[l+1]``
            belong to level l).
        coords: [N, d] in [0, 1].
        num_active: levels ``>= num_active`` contribute zeros (LOD); None = all.
    Returns:
        [N, L * F], level-major (level l occupies columns ``l*F:(l+1)*F``).

    Corners are summed one after another in corner order (corner ``c`` has bit ``a``
    set when it takes the upper vertex on axis ``a``), as the fused paths do, so every
    backend gives bit-identical features (``tests/grid/test_fast.py``) and a decode
    does not depend on which one runs.
    """
    num_levels = layout.num_levels
    active = num_levels if num_active is None else max(0, min(num_active, num_levels))
    feats = []
    for level in range(num_levels):
        if level >= active:
            feats.append(table.new_zeros(coords.shape[0], table.shape[1]))
            continue
        rows, weights = level_corners(coords, layout, level)
        weights = weights.to(table.dtype)
        acc = table[rows[:, 0]] * weights[:, 0, None]
        for corner in range(1, rows.shape[1]):
            acc = acc + table[rows[:, corner]] * weights[:, corner, None]
        feats.append(acc)
    return torch.cat(feats, dim=-1)
