"""Kaolin's packed volume-rendering reductions in plain PyTorch (test double)."""
from __future__ import annotations

import torch


def _segments(boundary: torch.Tensor) -> torch.Tensor:
    """Segment id of each packed sample (``boundary`` marks each ray's first sample)."""
    return torch.cumsum(boundary.long(), 0) - 1


def sum_reduce(feats: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
    """Per-ray sums of packed ``feats [S, C]``: ``[R, C]`` (R = rays with samples)."""
    ids = _segments(boundary)
    out = torch.zeros(int(boundary.sum()), feats.shape[-1], dtype=feats.dtype, device=feats.device)
    return out.index_add(0, ids, feats)


def exponential_integration(feats: torch.Tensor, tau: torch.Tensor, boundary: torch.Tensor,
                            exclusive: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sum_i T_i (1 - exp(-tau_i)) feats_i per ray [R, C], weights T_i (1 - exp(-tau_i)) [S, 1])``
    with ``T_i = exp(-sum_{j<i} tau_j)`` within each ray (``exclusive``)."""
    ids = _segments(boundary)
    total = torch.cumsum(tau[:, 0], 0)
    starts = torch.zeros(int(boundary.sum()), dtype=tau.dtype, device=tau.device)
    starts = starts.index_add(0, ids, torch.where(boundary, total - tau[:, 0], torch.zeros_like(total)))
    before = total - tau[:, 0] - starts[ids]
    weights = (torch.exp(-before) * (1.0 - torch.exp(-tau[:, 0])))[:, None]
    return sum_reduce(weights * feats, boundary), weights
