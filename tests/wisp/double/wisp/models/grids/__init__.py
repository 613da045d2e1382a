"""``wisp.models.grids`` (test double): ``BLASGrid``, ``HashGrid`` (pure-torch hashing,
upstream's LOD quirks kept), and ``OctreeGrid`` / ``TriplanarGrid`` constructors."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Dict, List, Set, Type

import numpy as np
import torch
import torch.nn as nn
import kaolin.ops.spc as spc_ops

from wisp.accelstructs import BaseAS, OctreeAS
from wisp.core import WispModule

_PRIMES = (1, 2654435761, 805459861)


class BLASGrid(WispModule, ABC):
    """``wisp/models/grids/blas_grid.py:15``: ``__init__(blas)`` sets ``num_lods = 1``,
    ``active_lods = [0]``; ``raymarch`` delegates to the blas; ``interpolate`` is abstract."""

    def __init__(self, blas: BaseAS):
        super().__init__()
        self.blas = blas
        self.num_lods = 1
        self.active_lods = [0]

    def raymarch(self, *args, **kwargs):
        return self.blas.raymarch(*args, **kwargs)

    @abstractmethod
    def interpolate(self, coords, lod_idx):
        raise NotImplementedError("A BLASGrid should implement the interpolation functionality")

    def supported_blas(self) -> Set[Type[BaseAS]]:
        return set()

    def public_properties(self) -> Dict[str, Any]:
        return {"Acceleration Structure": self.blas}


class MultiTable(nn.Module):
    """``wisp/models/grids/utils.py:13``: per-level tables of ``min(res^d, max_feats)`` rows."""

    def __init__(self, resolutions, coord_dim: int, feature_dim: int, std: float = 0.01,
                 max_feats=None):
        super().__init__()
        sizes = [min(max_feats, r**coord_dim) if max_feats else r**coord_dim for r in resolutions]
        self.sizes = sizes
        self.begin_idxes = [0] + list(np.cumsum(sizes))
        self.feats = nn.Parameter(torch.randn(sum(sizes), feature_dim) * std)


def _hash_interpolate(coords: torch.Tensor, table: MultiTable, resolutions: List[int]) -> torch.Tensor:
    """Trilinear interpolation of every level (dense index when the level fits, else the
    Instant-NGP xor hash): ``[N, 3]`` in [-1, 1] -> ``[N, L * F]``."""
    x = ((coords + 1.0) * 0.5).clamp(0.0, 1.0)
    out = []
    for level, res in enumerate(resolutions):
        pos = x * (res - 1)
        base = pos.floor().clamp(max=res - 2).long()
        frac = pos - base
        feats = 0.0
        for corner in range(8):
            offset = torch.tensor([(corner >> k) & 1 for k in range(3)])
            idx = base + offset
            weight = torch.prod(torch.where(offset.bool(), frac, 1.0 - frac), dim=-1, keepdim=True)
            size = table.sizes[level]
            if res**3 <= size:
                row = idx[:, 0] + res * (idx[:, 1] + res * idx[:, 2])
            else:
                row = (idx[:, 0] * _PRIMES[0]) ^ (idx[:, 1] * _PRIMES[1]) ^ (idx[:, 2] * _PRIMES[2])
                row = row % size
            feats = feats + weight * table.feats[table.begin_idxes[level] + row]
        out.append(feats)
    return torch.cat(out, dim=-1)


class HashGrid(BLASGrid):
    """``wisp/models/grids/hash_grid.py:20`` with the real constructors and defaults."""

    def __init__(self, blas: BaseAS, feature_dim: int, resolutions: List[int],
                 multiscale_type: str = 'sum', feature_std: float = 0.0, feature_bias: float = 0.0,
                 codebook_bitwidth: int = 8, coord_dim: int = 3):
        super().__init__(blas)
        assert coord_dim in (2, 3)
        if self.blas is not None:
            self.dense_points = spc_ops.unbatched_get_level_points(
                self.blas.points, self.blas.pyramid, self.blas.max_level).clone()
            self.num_cells = self.dense_points.shape[0]
            self.occupancy = torch.zeros(self.num_cells)
        self.feature_dim, self.multiscale_type = feature_dim, multiscale_type
        self.feature_std, self.feature_bias = feature_std, feature_bias
        self.codebook_bitwidth = codebook_bitwidth
        self.resolutions = resolutions
        self.num_lods = len(resolutions)
        self.active_lods = [x for x in range(self.num_lods)]
        self.max_lod = self.num_lods - 1
        self.codebook_size = 2**self.codebook_bitwidth
        self.coord_dim = coord_dim
        self.codebook = MultiTable(resolutions, coord_dim, feature_dim, feature_std, self.codebook_size)

    @classmethod
    def from_octree(cls, blas: BaseAS, feature_dim: int, base_lod: int = 2, num_lods: int = 1,
                    multiscale_type: str = 'sum', feature_std: float = 0.0,
                    feature_bias: float = 0.0, codebook_bitwidth: int = 8,
                    coord_dim: int = 3) -> HashGrid:
        resolutions = [2**lod for lod in range(base_lod, base_lod + num_lods)]
        return cls(blas=blas, feature_dim=feature_dim, resolutions=resolutions,
                   multiscale_type=multiscale_type, feature_std=feature_std,
                   feature_bias=feature_bias, codebook_bitwidth=codebook_bitwidth, coord_dim=coord_dim)

    @classmethod
    def from_geometric(cls, blas: BaseAS, feature_dim: int, num_lods: int,
                       multiscale_type: str = 'sum', feature_std: float = 0.0,
                       feature_bias: float = 0.0, codebook_bitwidth: int = 8,
                       min_grid_res: int = 16, max_grid_res: int = None,
                       coord_dim: int = 3) -> HashGrid:
        b = np.exp((np.log(max_grid_res) - np.log(min_grid_res)) / (num_lods - 1))
        resolutions = [int(np.floor(min_grid_res * (b**l))) for l in range(num_lods)]
        return cls(blas=blas, feature_dim=feature_dim, resolutions=resolutions,
                   multiscale_type=multiscale_type, feature_std=feature_std,
                   feature_bias=feature_bias, codebook_bitwidth=codebook_bitwidth, coord_dim=coord_dim)

    @classmethod
    def from_resolutions(cls, blas: BaseAS, feature_dim: int, resolutions: List[int] = None,
                         multiscale_type: str = 'sum', feature_std: float = 0.0,
                         feature_bias: float = 0.0, codebook_bitwidth: int = 8,
                         coord_dim: int = 3) -> HashGrid:
        return cls(blas=blas, feature_dim=feature_dim, resolutions=resolutions,
                   multiscale_type=multiscale_type, feature_std=feature_std,
                   feature_bias=feature_bias, codebook_bitwidth=codebook_bitwidth, coord_dim=coord_dim)

    def freeze(self):
        self.codebook.requires_grad_(False)

    def interpolate(self, coords, lod_idx):
        """As upstream: 'cat' zeroes features from ``lod_idx`` on, 'sum' ignores ``lod_idx``."""
        output_shape = coords.shape[:-1]
        feats = _hash_interpolate(coords.reshape(-1, coords.shape[-1]), self.codebook, self.resolutions)
        if self.multiscale_type == 'cat':
            feats = feats.reshape(*output_shape, feats.shape[-1])
            feats[..., lod_idx * self.feature_dim:] = 0
            return feats
        elif self.multiscale_type == 'sum':
            return feats.reshape(*output_shape, len(self.resolutions),
                                 feats.shape[-1] // len(self.resolutions)).sum(-2)
        raise NotImplementedError

    def raymarch(self, rays, raymarch_type, num_samples, level=None):
        return self.blas.raymarch(rays, raymarch_type=raymarch_type, num_samples=num_samples,
                                  level=self.blas.max_level)

    def supported_blas(self) -> Set[Type[BaseAS]]:
        return {OctreeAS}

    def name(self) -> str:
        return "Hash Grid"

    def public_properties(self) -> Dict[str, Any]:
        active = None if not self.active_lods else f"{min(self.active_lods)} - {max(self.active_lods)}"
        return {**super().public_properties(), "Feature Dims": self.feature_dim,
                "Total LODs": self.max_lod, "Active feature LODs": active,
                "Interpolation": 'linear', "Multiscale aggregation": self.multiscale_type,
                "HashTable Size": f"2^{self.codebook_bitwidth}"}


class OctreeGrid(BLASGrid):
    """Constructor of ``wisp/models/grids/octree_grid.py:24`` only (not traced by the double)."""

    def __init__(self, blas: BaseAS, feature_dim: int, num_lods: int = 1,
                 interpolation_type: str = 'linear', multiscale_type: str = 'cat',
                 feature_std: float = 0.0, feature_bias: float = 0.0):
        super().__init__(blas)
        self.feature_dim, self.num_lods, self.multiscale_type = feature_dim, num_lods, multiscale_type

    def interpolate(self, coords, lod_idx):
        raise NotImplementedError("OctreeGrid.interpolate is not part of the test double")


class TriplanarGrid(BLASGrid):
    """Constructor of ``wisp/models/grids/triplanar_grid.py:28`` only."""

    def __init__(self, blas: BaseAS, feature_dim: int, log_base_resolution: int = 4,
                 num_lods: int = 1, interpolation_type: str = 'linear', multiscale_type: str = 'sum',
                 feature_std: float = 0.0, feature_bias: float = 0.0):
        super().__init__(blas)
        self.feature_dim, self.num_lods, self.multiscale_type = feature_dim, num_lods, multiscale_type

    def interpolate(self, coords, lod_idx):
        raise NotImplementedError("TriplanarGrid.interpolate is not part of the test double")
