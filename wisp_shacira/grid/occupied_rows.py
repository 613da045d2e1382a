"""Which latent rows can be read from inside the occupied cells of a scene.

A radiance field is only evaluated where the occupancy grid is occupied (the tracer
skips every other sample). A row that no vertex near an occupied cell hashes to is
never read when rendering, so its latents may be anything: the exporter sets them to
zero, which costs the entropy coder almost nothing, and the render is unchanged.

Geometry (``hashing``'s convention): the occupancy grid has ``r`` cells per axis over
``[0, 1]^d``; cell ``i`` spans ``[i / r, (i + 1) / r]``. A level of resolution ``R``
reads, for a point in that span, the corners of the level cells ``(i R) // r`` ..
``((i + 1) R) // r``. Each range is widened by one level cell on both sides, so float
rounding of a point's coordinates (far below one cell) cannot reach a row outside the
set. Everything is integer arithmetic: the set is the same on every machine.
"""
from __future__ import annotations

import torch

from wisp_shacira.grid.hashing import GridLayout, axis_rows

MAX_HASHED_VERTICES = 16
"""A hashed level is examined when it has at most this many vertices per row of its
table; above, practically every row is read, and the level is left whole (trained lego:
96% of the rows read at 16 vertices per row, 99.5% at 32)."""
SLAB_VERTICES = 1 << 22
"""Live vertices hashed at once (bounds the coordinate arrays)."""


def vertex_spans(res: int, cells: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first and last vertex (``0..res``) a level of resolution ``res`` may read
    inside each of ``cells`` occupancy cells along one axis: two ``[cells]`` int64."""
    i = torch.arange(cells, dtype=torch.int64)
    first = (i * res // cells - 1).clamp(0, res)
    last = ((i + 1) * res // cells + 2).clamp(0, res)
    return first, last


def live_vertices(res: int, occupied: torch.Tensor) -> torch.Tensor:
    """Vertices of a level of resolution ``res`` read from inside occupied cells.

    Args:
        occupied: ``[r] * d`` bool, indexed by cell along axes 0..d-1.

    Returns:
        ``[res + 1] * d`` bool, indexed by vertex along the same axes.
    """
    live = occupied.to(torch.float32)
    for axis in range(occupied.dim()):
        first, last = vertex_spans(res, occupied.shape[axis])
        vertex = torch.arange(res + 1, dtype=torch.int64)[:, None]
        reads = ((vertex >= first) & (vertex <= last)).to(torch.float32)   # [res + 1, r]
        # Sums of at most r <= 2^24 ones: exact in float32 in any order.
        live = torch.tensordot(reads, live.movedim(axis, 0), dims=([1], [0]))
        live = (live > 0).to(torch.float32).movedim(0, axis)
    return live > 0


def _examined(layout: GridLayout, res: int, size: int, dense: bool) -> bool:
    return dense or (res + 1) ** layout.dim <= MAX_HASHED_VERTICES * size


def working_bytes(layout: GridLayout, cells: int) -> int:
    """Peak memory of :func:`occupied_rows` for an occupancy grid of ``cells`` per axis
    (an upper estimate: the float32 products of :func:`live_vertices` at every stage,
    the hashed slab's coordinates and rows, the masks)."""
    peak = 0
    for res, size, dense in zip(layout.resolutions, layout.table_sizes, layout.dense):
        if _examined(layout, res, size, dense):
            stages = max((res + 1) ** k * cells ** (layout.dim - k)
                         for k in range(layout.dim + 1))
            peak = max(peak, 9 * stages + (layout.dim + 1) * 8 * SLAB_VERTICES)
    return peak + sum(layout.table_sizes) + 5 * cells**layout.dim


def occupied_rows(layout: GridLayout, occupied: torch.Tensor) -> list[torch.Tensor | None]:
    """Per level, the rows read from inside occupied cells.

    Args:
        layout: the grid's layout (``layout.dim`` axes).
        occupied: ``[r] * dim`` bool occupancy.

    Returns:
        per level ``[table_size]`` bool (True = the row may be read), or None when every
        row may be (a hashed level with over :data:`MAX_HASHED_VERTICES` vertices per row).
    """
    if occupied.dim() != layout.dim or occupied.dtype != torch.bool:
        raise ValueError(f"occupancy must be a {layout.dim}-D bool grid, got "
                         f"{occupied.dtype} of shape {tuple(occupied.shape)}")
    masks: list[torch.Tensor | None] = []
    for res, size, dense in zip(layout.resolutions, layout.table_sizes, layout.dense):
        if not _examined(layout, res, size, dense):
            masks.append(None)
            continue
        live = live_vertices(res, occupied.cpu())
        if dense:
            # Row v_0 + v_1 (R + 1) + ...: axis 0 is the fastest.
            masks.append(live.permute(*reversed(range(layout.dim))).reshape(-1))
            continue
        masks.append(_hashed_mask(live, res, size))
    return masks


def _hashed_mask(live: torch.Tensor, res: int, size: int) -> torch.Tensor:
    """``[size]`` bool: the rows the ``live`` vertices of a hashed level hash to, hashed
    in slabs along axis 0 of at most about :data:`SLAB_VERTICES` vertices."""
    mask = torch.zeros(size, dtype=torch.bool)
    step = max(1, SLAB_VERTICES // max(1, live[0].numel()))
    for first in range(0, live.shape[0], step):
        coords = live[first:first + step].nonzero()
        coords[:, 0] += first
        mask[axis_rows(coords.unbind(-1), res, size, False)] = True
    return mask
