"""A lower bound that keeps the gradient where it helps (as CompressAI's ``LowerBound``).

``clamp_min`` zeroes the gradient of every value below the bound; for a likelihood
that means the latents that cost the most bits get no rate gradient at all. Here the
gradient passes wherever the value is above the bound *or* a descent step would raise
it towards the bound.
"""
from __future__ import annotations

import torch


class _LowerBound(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, bound: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp_min(bound)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        passes = (x >= ctx.bound) | (grad < 0)
        return grad * passes.to(grad.dtype), None


def lower_bound(x: torch.Tensor, bound: float) -> torch.Tensor:
    """``max(x, bound)`` whose gradient passes where ``x >= bound`` or where gradient
    descent would increase ``x`` (``grad < 0``)."""
    return _LowerBound.apply(x, bound)
