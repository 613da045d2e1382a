"""``wisp.accelstructs`` (test double): ``BaseAS`` and Kaolin-format ``OctreeAS``."""
from __future__ import annotations

import dataclasses

import torch
import kaolin.ops.spc as spc_ops


@dataclasses.dataclass
class ASRaymarchResults:
    """As ``wisp/accelstructs/base_as.py``: packed samples of a ray march."""

    ridx: torch.Tensor
    samples: torch.Tensor
    depth_samples: torch.Tensor
    deltas: torch.Tensor
    boundary: torch.Tensor
    pack_info: torch.Tensor


class BaseAS:
    """Base of Wisp's acceleration structures."""

    def __init__(self) -> None:
        pass


class OctreeAS(BaseAS):
    """``OctreeAS(octree)``: ``points``, ``pyramid``, ``prefix`` from the octree bytes and
    ``max_level = pyramid.shape[-1] - 2`` (``wisp/accelstructs/octree_as.py:42``)."""

    def __init__(self, octree: torch.Tensor) -> None:
        super().__init__()
        self.octree = octree
        self.points, self.pyramid, self.prefix = spc_ops.octree_to_spc(octree)
        self.max_level = self.pyramid.shape[-1] - 2
        self.extent = dict()

    @classmethod
    def from_pointcloud(cls, pointcloud: torch.FloatTensor, level: int) -> OctreeAS:
        """Cells holding points of ``pointcloud [N, 3]`` in [-1, 1]."""
        res = 2**level
        quantized = ((pointcloud + 1.0) * 0.5 * res).floor().clamp(0, res - 1)
        return cls.from_quantized_points(quantized.long(), level)

    @classmethod
    def from_quantized_points(cls, quantized_points: torch.LongTensor, level: int) -> OctreeAS:
        return cls(spc_ops.unbatched_points_to_octree(quantized_points, level, sorted=False))

    @classmethod
    def make_dense(cls, level: int) -> OctreeAS:
        count = sum(8**lv for lv in range(level))
        return cls(torch.full((count,), 255, dtype=torch.uint8))

    def raymarch(self, rays, raymarch_type: str = "ray", num_samples: int = 64,
                 level: int | None = None) -> ASRaymarchResults:
        """'ray' marching: ``num_samples`` midpoints over ``[dist_min, dist_max]``, kept where
        they fall in an occupied cell of ``level`` (default: the finest)."""
        level = self.max_level if level is None else level
        cells = spc_ops.unbatched_get_level_points(self.points, self.pyramid, level).long()
        res = 2**level
        occupied = torch.zeros(res, res, res, dtype=torch.bool)
        occupied[cells[:, 0], cells[:, 1], cells[:, 2]] = True
        span = rays.dist_max - rays.dist_min
        depths = rays.dist_min + (torch.arange(num_samples) + 0.5) * span / num_samples
        pts = rays.origins[:, None] + rays.dirs[:, None] * depths[None, :, None]
        idx = ((pts + 1.0) * 0.5 * res).floor().long()
        inside = ((idx >= 0) & (idx < res)).all(-1)
        keep = inside.clone()
        keep[inside] = occupied[idx[inside][:, 0], idx[inside][:, 1], idx[inside][:, 2]]
        ridx, sidx = keep.nonzero(as_tuple=True)
        boundary = torch.ones_like(ridx, dtype=torch.bool)
        boundary[1:] = ridx[1:] != ridx[:-1]
        counts = torch.bincount(ridx, minlength=len(rays.origins))
        return ASRaymarchResults(ridx=ridx, samples=pts[ridx, sidx],
                                 depth_samples=depths[sidx][:, None],
                                 deltas=torch.full((len(ridx), 1), span / num_samples),
                                 boundary=boundary, pack_info=counts[counts > 0])
