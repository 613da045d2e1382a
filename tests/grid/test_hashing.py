"""Grid layout and vertex indexing against a plain-Python reference."""
from __future__ import annotations

import itertools

import pytest
import torch

from wisp_shacira.grid.hashing import (PRIMES, box_rows, box_vertices, geometric_resolutions,
                                       level_corners, make_layout, point_rows, vertex_rows)


def _python_row(vertex: tuple[int, ...], res: int, table_size: int, dense: bool) -> int:
    if dense:
        return sum(v * (res + 1) ** axis for axis, v in enumerate(vertex))
    acc = 0
    for v, prime in zip(vertex, PRIMES):
        acc ^= (v * prime) & 0xFFFFFFFF
    return acc % table_size


@pytest.mark.parametrize("dim", [2, 3])
def test_hash_rows_match_python_reference(dim: int) -> None:
    gen = torch.Generator().manual_seed(0)
    vertices = torch.randint(0, 5000, (200, dim), generator=gen)
    rows = vertex_rows(vertices, res=4999, table_size=2**14, dense=False)
    for vertex, row in zip(vertices.tolist(), rows.tolist()):
        assert row == _python_row(tuple(vertex), 4999, 2**14, False)


def test_dense_rows_are_a_bijection() -> None:
    res = 6
    vertices = torch.tensor(list(itertools.product(range(res + 1), repeat=3)))
    rows = vertex_rows(vertices, res, (res + 1) ** 3, dense=True)
    assert sorted(rows.tolist()) == list(range((res + 1) ** 3))


def test_layout_dense_then_hashed() -> None:
    layout = make_layout(2, 4, 64, 5, log2_table_size=8)
    assert layout.resolutions[0] == 4 and layout.resolutions[-1] == 64
    for res, size, dense in zip(layout.resolutions, layout.table_sizes, layout.dense):
        assert dense == ((res + 1) ** 2 <= 256)
        assert size == ((res + 1) ** 2 if dense else 256)
    assert layout.dense[0] and not layout.dense[-1]
    assert layout.offsets[-1] == sum(layout.table_sizes)


def test_geometric_resolutions_grow() -> None:
    res = geometric_resolutions(16, 512, 24)
    assert res[0] == 16 and res[-1] == 512
    assert all(b >= a for a, b in zip(res, res[1:]))
    with pytest.raises(ValueError):
        geometric_resolutions(32, 16, 4)


@pytest.mark.parametrize("dim", [2, 3])
def test_corner_weights_interpolate_linear_functions(dim: int) -> None:
    """Multilinear weights reproduce a linear function of the vertex coordinates."""
    layout = make_layout(dim, 8, 8, 1, log2_table_size=20)
    coords = torch.rand(100, dim, generator=torch.Generator().manual_seed(1))
    rows, weights = level_corners(coords, layout, 0)
    assert torch.allclose(weights.sum(-1), torch.ones(100))
    res = layout.resolutions[0]
    strides = torch.tensor([(res + 1) ** a for a in range(dim)])
    vertex_x = torch.tensor([r % (res + 1) for r in range((res + 1) ** dim)], dtype=torch.float32)
    assert strides[0] == 1
    value = (vertex_x[rows] * weights).sum(-1) / res
    assert torch.allclose(value, coords[:, 0], atol=1e-5)


def test_coordinates_are_clamped_to_the_unit_box() -> None:
    layout = make_layout(2, 4, 4, 1, log2_table_size=10)
    rows_out, _ = level_corners(torch.tensor([[1.5, -0.2]]), layout, 0)
    rows_in, _ = level_corners(torch.tensor([[1.0, 0.0]]), layout, 0)
    assert torch.equal(rows_out, rows_in)


@pytest.mark.parametrize("dim", [2, 3])
def test_box_rows_hold_every_corner_a_point_of_the_box_reads(dim: int) -> None:
    layout = make_layout(dim, 3, 70, 4, 9)
    gen = torch.Generator().manual_seed(dim)
    for _ in range(5):
        ends = torch.rand(2, dim, generator=gen)
        low, high = ends.amin(0), ends.amax(0)
        inside = low + torch.rand(500, dim, generator=gen) * (high - low)
        points = torch.cat([inside.clamp(min=low, max=high), low[None], high[None]])
        rows = box_rows(layout, low, high)
        assert torch.equal(rows, torch.unique(rows))
        read = torch.cat([level_corners(points, layout, level)[0].flatten()
                          for level in range(layout.num_levels)])
        assert bool(torch.isin(read, rows).all())
        assert torch.equal(point_rows(layout, points, chunk=97), torch.unique(read))
        assert len(rows) <= box_vertices(layout, low, high)
        coarse = box_rows(layout, low, high, num_levels=2)
        assert bool((coarse < layout.offsets[2]).all()) and bool(torch.isin(coarse, rows).all())
    assert len(box_rows(layout, torch.zeros(dim), torch.ones(dim), 1)) == layout.table_sizes[0]
