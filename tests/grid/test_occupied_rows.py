"""``grid.occupied_rows``: every row a point inside an occupied cell reads is kept, the
rest are many, and levels too finely hashed to gain anything are left whole."""
from __future__ import annotations

import pytest
import torch

from wisp_shacira.grid.hashing import level_corners, make_layout
from wisp_shacira.grid.occupied_rows import live_vertices, occupied_rows


def _blob(r: int, seed: int) -> torch.Tensor:
    """A few random boxes of occupied cells in an ``r^3`` grid."""
    gen = torch.Generator().manual_seed(seed)
    occupied = torch.zeros(r, r, r, dtype=torch.bool)
    for _ in range(3):
        lo = torch.randint(0, r - 2, (3,), generator=gen)
        size = torch.randint(1, max(2, r // 3), (3,), generator=gen)
        occupied[lo[0]:lo[0] + size[0], lo[1]:lo[1] + size[1], lo[2]:lo[2] + size[2]] = True
    return occupied


def _points_in(occupied: torch.Tensor, per_cell: int, seed: int) -> torch.Tensor:
    """Points in ``[0, 1]^3`` inside the occupied cells: random ones, the cells' corners,
    and float32 neighbours of the corners (what rounding in the tracer can produce)."""
    r = occupied.shape[0]
    cells = occupied.nonzero().to(torch.float32)
    gen = torch.Generator().manual_seed(seed)
    inside = (cells[:, None] + torch.rand(len(cells), per_cell, 3, generator=gen)).reshape(-1, 3)
    corners = torch.cat([cells, cells + 1.0]) / r
    nudged = torch.cat([torch.nextafter(corners, torch.zeros(())),
                        torch.nextafter(corners, torch.ones(()))])
    return torch.cat([inside / r, corners, nudged]).clamp(0.0, 1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_row_read_inside_occupied_cells_is_kept(seed: int) -> None:
    layout = make_layout(3, 4, 96, 8, 12)   # dense and hashed levels
    occupied = _blob(16, seed)
    masks = occupied_rows(layout, occupied)
    points = _points_in(occupied, 8, seed)
    examined = 0
    for level, mask in enumerate(masks):
        rows, _ = level_corners(points, layout, level)
        if mask is None:
            continue
        examined += 1
        assert mask[rows - layout.offsets[level]].all(), f"level {level} lost a read row"
    assert examined >= 4
    dense = [m for m, d in zip(masks, layout.dense) if d and m is not None]
    assert dense and dense[-1].float().mean() < 0.9   # the finest dense level drops rows


def test_a_finely_hashed_level_is_left_whole_and_empty_space_keeps_nothing() -> None:
    layout = make_layout(3, 8, 256, 4, 10)
    masks = occupied_rows(layout, torch.zeros(8, 8, 8, dtype=torch.bool))
    assert masks[-1] is None                           # 257^3 vertices >> 64 x 2^10 rows
    assert all(not m.any() for m in masks if m is not None)


def test_live_vertices_of_one_cell() -> None:
    occupied = torch.zeros(4, 4, dtype=torch.bool)
    occupied[1, 2] = True
    live = live_vertices(8, occupied)                  # cell 1 of 4 = level cells 2..4
    rows, cols = live.nonzero().unbind(-1)
    assert (int(rows.min()), int(rows.max())) == (1, 6)
    assert (int(cols.min()), int(cols.max())) == (3, 8)


def test_bad_occupancy_is_refused() -> None:
    layout = make_layout(3, 4, 16, 2, 10)
    with pytest.raises(ValueError, match="3-D bool"):
        occupied_rows(layout, torch.zeros(4, 4, dtype=torch.bool))


def test_hashing_in_slabs_gives_the_same_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    from wisp_shacira.grid import occupied_rows as module
    layout = make_layout(3, 4, 96, 8, 12)
    occupied = _blob(16, 4)
    whole = occupied_rows(layout, occupied)
    monkeypatch.setattr(module, "SLAB_VERTICES", 100)
    for a, b in zip(whole, occupied_rows(layout, occupied)):
        assert (a is None and b is None) or torch.equal(a, b)
