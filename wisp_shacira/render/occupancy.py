"""Instant-NGP style occupancy grid over the normalised scene box ``[-1, 1]^3``.

The grid keeps, per cell, an exponential moving maximum of the field's density
(``density``) and a bitfield (``occupied``). :meth:`OccupancyGrid.update` evaluates
the density at one jittered point per selected cell, sets
``density = max(decay * density, new_density)`` on those cells and re-thresholds:
a cell is occupied when its density exceeds ``min(mean density, threshold)``.
During the first ``warmup_steps`` steps every cell stays occupied, and every cell
is evaluated; afterwards, grids larger than ``max_cells_per_update`` refresh half
that many random cells plus half that many random occupied cells per update.

Cells are indexed ``occupied[ix, iy, iz]`` with ``i = floor((p + 1) / 2 * r)``.
Both tensors are registered buffers, so they follow ``.to(device)`` and are saved
in ``state_dict``.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["OccupancyGrid", "DEFAULT_DENSITY_THRESHOLD"]

DEFAULT_DENSITY_THRESHOLD: float = 0.01 / (2.0 * math.sqrt(3.0) / 1024.0)
"""Density whose optical thickness over the smallest Instant-NGP step (the box
diagonal ``2*sqrt(3)`` divided into 1024 steps) is 0.01."""

DensityFn = Callable[[Tensor], Tensor]


class OccupancyGrid(nn.Module):
    """Occupancy bitfield with a density EMA, used to skip empty space.

    Args:
        resolution: cells per axis ``r``; the grid has ``r^3`` cells.
        decay: EMA decay applied to a cell's previous density on each update.
        threshold: density threshold cap (see module docstring).
        warmup_steps: updates with ``step < warmup_steps`` keep every cell occupied.
        max_cells_per_update: grids with more cells are refreshed partially.
        chunk: points per ``density_fn`` call.
    """

    density: Tensor
    occupied: Tensor

    def __init__(
        self,
        resolution: int = 128,
        decay: float = 0.95,
        threshold: float = DEFAULT_DENSITY_THRESHOLD,
        warmup_steps: int = 256,
        max_cells_per_update: int = 2**18,
        chunk: int = 2**16,
    ) -> None:
        super().__init__()
        if resolution < 1:
            raise ValueError(f"resolution must be >= 1, got {resolution}")
        self.resolution = int(resolution)
        self.decay = float(decay)
        self.threshold = float(threshold)
        self.warmup_steps = int(warmup_steps)
        self.max_cells_per_update = int(max_cells_per_update)
        self.chunk = int(chunk)
        shape = (self.resolution,) * 3
        self.register_buffer("density", torch.zeros(shape, dtype=torch.float32))
        self.register_buffer("occupied", torch.ones(shape, dtype=torch.bool))

    @property
    def num_cells(self) -> int:
        """Total number of cells ``r^3``."""
        return self.resolution**3

    def occupancy_fraction(self) -> float:
        """Fraction of cells currently marked occupied."""
        return float(self.occupied.float().mean())

    def cell_index(self, points: Tensor) -> Tensor:
        """Integer cell coordinates of points: ``[N, 3]`` float -> ``[N, 3]`` long.

        Points outside the box are clamped to the border cells.
        """
        r = self.resolution
        idx = torch.floor((points.detach() + 1.0) * (0.5 * r)).long()
        return idx.clamp_(0, r - 1)

    def query(self, points: Tensor) -> Tensor:
        """Whether points lie in occupied cells: ``[N, 3]`` -> bool ``[N]``.

        Points outside ``[-1, 1]^3`` are reported as unoccupied.
        """
        points = points.to(self.occupied.device)
        inside = ((points >= -1.0) & (points <= 1.0)).all(dim=-1)
        idx = self.cell_index(points)
        return self.occupied[idx[:, 0], idx[:, 1], idx[:, 2]] & inside

    def cell_points(self, flat_idx: Tensor, jitter: bool = True,
                    generator: torch.Generator | None = None) -> Tensor:
        """One point per cell: ``flat_idx [K]`` long -> points ``[K, 3]`` in ``[-1, 1]``.

        With ``jitter`` the point is uniform within the cell, otherwise its centre.
        """
        r = self.resolution
        ix = torch.div(flat_idx, r * r, rounding_mode="floor")
        iy = torch.div(flat_idx, r, rounding_mode="floor") % r
        iz = flat_idx % r
        ijk = torch.stack([ix, iy, iz], dim=-1).to(self.density.dtype)
        if jitter:
            off = torch.rand(ijk.shape, device=ijk.device, dtype=ijk.dtype, generator=generator)
        else:
            off = torch.full_like(ijk, 0.5)
        return (ijk + off) * (2.0 / r) - 1.0

    def _cells_to_update(self, step: int, generator: torch.Generator | None) -> Tensor:
        """Flat indices ``[K]`` of the cells refreshed by this update."""
        device = self.density.device
        n = self.num_cells
        if step < self.warmup_steps or n <= self.max_cells_per_update:
            return torch.arange(n, device=device)
        half = max(self.max_cells_per_update // 2, 1)
        uniform = torch.randint(0, n, (half,), device=device, generator=generator)
        occ = torch.nonzero(self.occupied.reshape(-1)).squeeze(-1)
        if occ.numel() > 0:
            pick = torch.randint(0, occ.numel(), (half,), device=device, generator=generator)
            uniform = torch.cat([uniform, occ[pick]])
        return torch.unique(uniform)

    @torch.no_grad()
    def update(self, density_fn: DensityFn, step: int,
               generator: torch.Generator | None = None) -> None:
        """Refresh the density EMA and the bitfield.

        Args:
            density_fn: maps points ``[M, 3]`` in ``[-1, 1]^3`` to densities ``[M]``
                (or ``[M, 1]``), on the grid's device.
            step: current training step (controls warm-up and partial updates).
            generator: optional RNG for cell selection and jitter.
        """
        idx = self._cells_to_update(step, generator)
        pts = self.cell_points(idx, jitter=True, generator=generator)
        values = [
            density_fn(pts[i:i + self.chunk]).reshape(-1).to(self.density.dtype)
            for i in range(0, pts.shape[0], self.chunk)
        ]
        new = torch.nan_to_num(torch.cat(values), nan=0.0).clamp_min(0.0)
        flat = self.density.view(-1)
        flat[idx] = torch.maximum(flat[idx] * self.decay, new)
        if step < self.warmup_steps:
            self.occupied.fill_(True)
            return
        thr = min(float(flat.mean()), self.threshold)
        self.occupied.copy_(self.density > thr)

    def mark_all(self, value: bool = True) -> None:
        """Set every cell's occupancy bit to ``value``."""
        self.occupied.fill_(bool(value))

    def extra_repr(self) -> str:
        return (f"resolution={self.resolution}, decay={self.decay}, "
                f"threshold={self.threshold:.4g}, warmup_steps={self.warmup_steps}")
