"""Kaolin's SPC format in plain PyTorch (test double).

An octree is a uint8 tensor of occupancy bytes, level by level (breadth first); bit
``i`` of a node's byte marks child ``i`` with offset ``((i >> 2) & 1, (i >> 1) & 1, i & 1)``.
``points`` holds the integer coordinates of every node of every level (level 0 is the
root ``(0, 0, 0)``), ``pyramid`` is ``[2, max_level + 2]``: nodes per level, then the
exclusive prefix sums (``pyramid[1, l]`` is where level ``l`` starts in ``points``).
"""
from __future__ import annotations

import torch

_CHILD = torch.tensor([[(i >> 2) & 1, (i >> 1) & 1, i & 1] for i in range(8)], dtype=torch.int16)


def octree_to_spc(octree: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(points [P, 3] int16, pyramid [2, L + 2] int32, prefix [B] int32)`` of an octree."""
    levels = [torch.zeros(1, 3, dtype=torch.int16)]
    start = 0
    while start < octree.numel():
        nodes = levels[-1]
        bytes_ = octree[start:start + nodes.shape[0]].long()
        bits = (bytes_[:, None] >> torch.arange(8)) & 1
        parent, child = bits.nonzero(as_tuple=True)
        levels.append((nodes[parent] * 2 + _CHILD[child]).to(torch.int16))
        start += nodes.shape[0]
    counts = torch.tensor([len(level) for level in levels] + [0], dtype=torch.int32)
    pyramid = torch.stack([counts, torch.cumsum(counts, 0) - counts]).int()
    prefix = torch.cumsum(torch.tensor([bin(int(b)).count("1") for b in octree]), 0).int()
    return torch.cat(levels), pyramid, prefix


def unbatched_get_level_points(points: torch.Tensor, pyramid: torch.Tensor,
                               level: int) -> torch.Tensor:
    """The points of one level: ``points[pyramid[1, level]:pyramid[1, level + 1]]``."""
    return points[int(pyramid[1, level]):int(pyramid[1, level + 1])]


def unbatched_points_to_octree(points: torch.Tensor, level: int,
                               sorted: bool = False) -> torch.Tensor:
    """The octree whose finest level holds the integer ``points [N, 3]`` (duplicates merged)."""
    out = []
    finest = torch.unique(points.long(), dim=0)
    per_level = [finest]
    for _ in range(level):
        per_level.append(torch.unique(per_level[-1] // 2, dim=0))
    per_level = per_level[::-1]
    for depth in range(level):
        parents, children = per_level[depth], per_level[depth + 1]
        index = {tuple(p.tolist()): i for i, p in enumerate(parents)}
        codes = torch.zeros(len(parents), dtype=torch.long)
        for child in children:
            offset = child % 2
            bit = int(offset[0]) * 4 + int(offset[1]) * 2 + int(offset[2])
            codes[index[tuple((child // 2).tolist())]] |= 1 << bit
        out.append(codes.to(torch.uint8))
    return torch.cat(out)
