"""Multi-resolution grid layout and vertex indexing (Instant-NGP style).

Pure functions, no parameters: a :class:`GridLayout` says, for each level, its
resolution, whether it is dense or hashed, its table size and where its rows start
in the concatenated table. :func:`level_corners` turns coordinates into the
``2^d`` corner rows and bilinear/trilinear weights of one level.

Convention: a level of resolution ``R`` has ``R`` cells and ``R + 1`` vertices per
axis; ``coords`` in ``[0, 1]`` map to ``coords * R``. The level is dense (row =
row-major vertex index) when ``(R + 1)^d <= T`` and hashed otherwise
(``xor_i(v_i * prime_i) mod T``, primes 1, 2654435761, 805459861, ...).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

PRIMES: tuple[int, ...] = (1, 2654435761, 805459861, 3674653429, 2097192037, 1434869437)


@dataclass(frozen=True)
class GridLayout:
    """Geometry of a multi-resolution grid.

    Attributes:
        dim: input dimension d.
        resolutions: cells per axis of each level, coarse to fine.
        table_sizes: rows of each level's table.
        dense: whether each level is indexed densely (else hashed).
        offsets: first row of each level in the concatenated table, plus the total.
    """

    dim: int
    resolutions: tuple[int, ...]
    table_sizes: tuple[int, ...]
    dense: tuple[bool, ...]
    offsets: tuple[int, ...]

    @property
    def num_levels(self) -> int:
        return len(self.resolutions)

    @property
    def total_rows(self) -> int:
        return self.offsets[-1]

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        """Per level, the array shape of its rows, slowest axis first: ``(R + 1,) * d`` for
        a dense level (row ``v_0 + v_1 (R + 1) + ...``), ``()`` for a hashed one."""
        return tuple((res + 1,) * self.dim if dense else ()
                     for res, dense in zip(self.resolutions, self.dense))


def geometric_resolutions(min_res: int, max_res: int, num_levels: int) -> list[int]:
    """Resolutions ``floor(min_res * b^l)`` with ``b`` chosen so the last equals ``max_res``."""
    if num_levels < 1 or min_res < 1 or max_res < min_res:
        raise ValueError(f"need num_levels >= 1 and 1 <= min_res <= max_res, got "
                         f"{num_levels}, {min_res}, {max_res}")
    if num_levels == 1:
        return [min_res]
    growth = math.exp((math.log(max_res) - math.log(min_res)) / (num_levels - 1))
    res = [int(math.floor(min_res * growth**level + 1e-6)) for level in range(num_levels)]
    res[-1] = max_res
    return res


def make_layout(dim: int, min_res: int, max_res: int, num_levels: int,
                log2_table_size: int) -> GridLayout:
    """Build the layout of a grid with ``num_levels`` geometric levels and ``T = 2^log2_table_size``."""
    if not 1 <= dim <= len(PRIMES):
        raise ValueError(f"grid dimension must be in 1..{len(PRIMES)}, got {dim}")
    max_rows = 2**log2_table_size
    resolutions = geometric_resolutions(min_res, max_res, num_levels)
    sizes, dense, offsets = [], [], [0]
    for res in resolutions:
        vertices = (res + 1) ** dim
        is_dense = vertices <= max_rows
        sizes.append(vertices if is_dense else max_rows)
        dense.append(is_dense)
        offsets.append(offsets[-1] + sizes[-1])
    return GridLayout(dim, tuple(resolutions), tuple(sizes), tuple(dense), tuple(offsets))


def corner_offsets(dim: int, device: torch.device | None = None) -> torch.Tensor:
    """Binary corner offsets of a d-cube.

    Returns:
        [2^d, d] int64, row c holds the bits of c (axis 0 is the lowest bit).
    """
    corners = torch.arange(2**dim, device=device)
    return torch.stack([(corners >> axis) & 1 for axis in range(dim)], dim=-1)


def vertex_rows(vertices: torch.Tensor, res: int, table_size: int, dense: bool) -> torch.Tensor:
    """Row of each vertex inside its level's table.

    Args:
        vertices: [..., d] int64 integer vertex coordinates in ``0..res``.
    Returns:
        [...] int64 rows in ``0..table_size-1``.
    """
    return axis_rows(vertices.unbind(-1), res, table_size, dense)


def axis_rows(axes: Sequence[torch.Tensor], res: int, table_size: int,
              dense: bool) -> torch.Tensor:
    """Rows of the vertices whose coordinates along axis ``i`` are ``axes[i]``: int64
    tensors that broadcast together (one vertex per broadcast element, so a block of
    vertices can be given as one ``arange`` per axis).

    Returns:
        int64 rows in ``0..table_size-1``, of the broadcast shape.
    """
    out = None
    for axis, coord in enumerate(axes):
        term = coord * ((res + 1) ** axis if dense else PRIMES[axis])
        out = term if out is None else (out + term if dense else torch.bitwise_xor(out, term))
    return out if dense else (out & 0xFFFFFFFF) % table_size


def level_corners(coords: torch.Tensor, layout: GridLayout,
                  level: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Global table rows and interpolation weights of the ``2^d`` corners of each point.

    Args:
        coords: [N, d] float in [0, 1] (values outside are clamped).
    Returns:
        rows: [N, 2^d] int64 rows of the concatenated table.
        weights: [N, 2^d] float, multilinear weights (sum to 1 per point).
    """
    res = layout.resolutions[level]
    pos = coords.clamp(0.0, 1.0) * res
    base = pos.floor().clamp(max=res - 1)
    frac = pos - base
    offsets = corner_offsets(layout.dim, coords.device)
    vertices = base.long()[:, None, :] + offsets[None]
    rows = vertex_rows(vertices, res, layout.table_sizes[level], layout.dense[level])
    weights = torch.where(offsets[None].bool(), frac[:, None, :], 1.0 - frac[:, None, :]).prod(-1)
    return rows + layout.offsets[level], weights


def _box_blocks(layout: GridLayout, low: torch.Tensor, high: torch.Tensor,
                num_levels: int) -> list[list[tuple[int, int]]]:
    """Per level, per axis, the first and last vertex that a point of the box reads
    (computed as :func:`level_corners` computes the cells, so the bounds hold for every
    float32 point of the box)."""
    blocks = []
    for level in range(num_levels):
        res = layout.resolutions[level]
        first = (low.clamp(0.0, 1.0) * res).floor().clamp(max=res - 1).long()
        last = (high.clamp(0.0, 1.0) * res).floor().clamp(max=res - 1).long() + 1
        blocks.append([(int(a), int(b)) for a, b in zip(first, last)])
    return blocks


def box_vertices(layout: GridLayout, low: torch.Tensor, high: torch.Tensor,
                 num_levels: int | None = None) -> int:
    """How many vertices :func:`box_rows` enumerates for the box (its cost)."""
    levels = layout.num_levels if num_levels is None else num_levels
    return sum(math.prod(b - a + 1 for a, b in block)
               for block in _box_blocks(layout, low, high, levels))


def box_rows(layout: GridLayout, low: torch.Tensor, high: torch.Tensor,
             num_levels: int | None = None) -> torch.Tensor:
    """Every global table row that a point of the box ``low..high`` reads: per level, the
    rows of the block of vertices its cells' corners span (:func:`axis_rows` of one
    ``arange`` per axis, broadcast), once each.

    Args:
        low, high: [d] float32 corners of the box in [0, 1] (``low <= high``).
        num_levels: the first levels only (None = all).

    Returns:
        [R] int64 sorted unique rows of the concatenated table.
    """
    levels = layout.num_levels if num_levels is None else num_levels
    rows = []
    for level, block in enumerate(_box_blocks(layout, low, high, levels)):
        shapes = [[-1 if i == axis else 1 for i in range(layout.dim)] for axis in range(layout.dim)]
        axes = [torch.arange(first, last + 1).view(shape)
                for (first, last), shape in zip(block, shapes)]
        size = layout.table_sizes[level]
        index = axis_rows(axes, layout.resolutions[level], size, layout.dense[level])
        hit = torch.zeros(size, dtype=torch.bool)
        hit[index.reshape(-1)] = True
        rows.append(hit.nonzero().squeeze(1) + layout.offsets[level])
    return torch.cat(rows) if rows else torch.zeros(0, dtype=torch.int64)


def point_rows(layout: GridLayout, coords: torch.Tensor, num_levels: int | None = None,
               chunk: int = 1 << 16) -> torch.Tensor:
    """Every global table row that :func:`level_corners` reads for ``coords: [N, d]``
    (the first ``num_levels`` levels; None = all), once each, sorted: [R] int64."""
    hit = torch.zeros(layout.total_rows, dtype=torch.bool)
    for level in range(layout.num_levels if num_levels is None else num_levels):
        for start in range(0, len(coords), chunk):
            hit[level_corners(coords[start:start + chunk], layout, level)[0].reshape(-1)] = True
    return hit.nonzero().squeeze(1)
