"""Tests of the occupancy grid and of empty-space skipping in the tracer."""
from __future__ import annotations

import torch

from wisp_shacira.render.occupancy import OccupancyGrid
from wisp_shacira.render.tracer import Tracer, TracerConfig

torch.set_num_threads(1)


def sphere_density(points: torch.Tensor) -> torch.Tensor:
    """Density 10 inside the sphere of radius 0.5, 0 outside: [M, 3] -> [M]."""
    return (points.norm(dim=-1) < 0.5).float() * 10.0


def test_warmup_keeps_everything_occupied() -> None:
    grid = OccupancyGrid(resolution=8, warmup_steps=10)
    grid.update(lambda p: torch.zeros(p.shape[0]), step=0)
    assert grid.occupied.all()


def test_update_marks_sphere_cells() -> None:
    gen = torch.Generator().manual_seed(0)
    grid = OccupancyGrid(resolution=16, warmup_steps=0)
    for step in range(3):
        grid.update(sphere_density, step=step, generator=gen)
    centres = grid.cell_points(torch.arange(grid.num_cells), jitter=False)
    occ = grid.occupied.reshape(-1)
    assert occ[centres.norm(dim=-1) < 0.35].all()
    assert not occ[centres.norm(dim=-1) > 0.7].any()
    assert 0.0 < grid.occupancy_fraction() < 0.2


def test_ema_decay() -> None:
    grid = OccupancyGrid(resolution=4, warmup_steps=0, decay=0.5)
    grid.update(lambda p: torch.full((p.shape[0],), 8.0), step=0)
    grid.update(lambda p: torch.zeros(p.shape[0]), step=1)
    assert torch.allclose(grid.density, torch.full_like(grid.density, 4.0))


def test_partial_update_for_big_grids() -> None:
    grid = OccupancyGrid(resolution=16, warmup_steps=0, max_cells_per_update=512)
    seen: list[int] = []

    def density(points: torch.Tensor) -> torch.Tensor:
        seen.append(points.shape[0])
        return sphere_density(points)

    grid.update(density, step=5, generator=torch.Generator().manual_seed(0))
    assert 0 < sum(seen) <= 512


def test_query_matches_cell_lookup_and_rejects_outside_points() -> None:
    gen = torch.Generator().manual_seed(3)
    grid = OccupancyGrid(resolution=8)
    grid.occupied.copy_(torch.rand(8, 8, 8, generator=gen) < 0.5)
    pts = torch.rand(2000, 3, generator=gen) * 2.4 - 1.2
    res = grid.query(pts)
    ijk = torch.floor((pts + 1) * 4).long().clamp(0, 7)
    inside = (pts.abs() <= 1).all(-1)
    expected = grid.occupied[ijk[:, 0], ijk[:, 1], ijk[:, 2]] & inside
    assert torch.equal(res, expected)
    corners = torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]])
    assert torch.equal(grid.query(corners), grid.occupied[[7, 0], [7, 0], [7, 0]])


def test_state_dict_round_trip() -> None:
    grid = OccupancyGrid(resolution=8, warmup_steps=0)
    grid.update(sphere_density, step=1, generator=torch.Generator().manual_seed(0))
    state = grid.state_dict()
    assert set(state) == {"density", "occupied"}
    other = OccupancyGrid(resolution=8)
    other.load_state_dict(state)
    assert torch.equal(other.occupied, grid.occupied)
    assert torch.equal(other.density, grid.density)


def test_tracer_never_drops_samples_in_occupied_cells() -> None:
    gen = torch.Generator().manual_seed(7)
    grid = OccupancyGrid(resolution=8)
    grid.occupied.copy_(torch.rand(8, 8, 8, generator=gen) < 0.4)
    evaluated: list[torch.Tensor] = []

    def field(points: torch.Tensor, dirs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        evaluated.append(points)
        return torch.zeros(points.shape[0]), torch.zeros(points.shape[0], 3)

    origins = torch.randn(200, 3, generator=gen) * 2
    dirs = torch.nn.functional.normalize(-origins + torch.randn(200, 3, generator=gen) * 0.3)
    tracer = Tracer(TracerConfig(num_samples=32, segments=1))
    tracer.render_rays(field, origins, dirs, occupancy=grid, perturb=False)
    got = torch.cat(evaluated)

    # every sample of the same deterministic march, classified independently
    dense: list[torch.Tensor] = []

    def all_samples(points: torch.Tensor, dirs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dense.append(points)
        return torch.zeros(points.shape[0]), torch.zeros(points.shape[0], 3)

    tracer.render_rays(all_samples, origins, dirs, occupancy=None, perturb=False)
    every = torch.cat(dense)
    ijk = grid.cell_index(every)
    in_occupied = grid.occupied[ijk[:, 0], ijk[:, 1], ijk[:, 2]]
    assert 0 < int(in_occupied.sum()) < every.shape[0]  # the test skips something
    assert got.shape[0] == int(in_occupied.sum())
    assert torch.equal(got, every[in_occupied])
