"""Training twin of the context entropy model (:mod:`wisp_shacira.codec.context`).

The same law, contexts and levels as the coder, with continuous parameters: per level
and latent dimension a positive share ``s`` and tail ratios ``r+``, ``r-``, and per
context a centre mass ``p0``::

    P(0) = p0,   P(n > 0) = (1 - p0) s (1 - r+) r+^(n-1),   P(n < 0) likewise with 1 - s, r-

The rate of a noisy latent ``y = q + u`` is the probability of ``y`` under the law
spread uniformly over each integer's unit bin and convolved with the noise: the
linear interpolation of ``P`` between the two integers around ``y`` (equal to ``P(n)``
at integers, with a gradient ``P(n + 1) - P(n)`` for the latent). Contexts come from
the rounded latents (no gradient), exactly as the coder computes them. At export the
coder refits every parameter to the integers it codes (``codec.context_io``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from wisp_shacira.codec.context import MAX_CONTEXTS

_FRAC_EPS = 1e-6


def _shift(x: torch.Tensor, axis: int, step: int) -> torch.Tensor:
    """``x`` moved by ``step`` along ``axis`` (``out[i] = x[i - step]``), zero filled."""
    out = torch.zeros_like(x)
    length = x.shape[axis]
    if step > 0:
        out.narrow(axis, step, length - step).copy_(x.narrow(axis, 0, length - step))
    else:
        out.narrow(axis, 0, length + step).copy_(x.narrow(axis, -step, length + step))
    return out


def grid_contexts(magnitudes: torch.Tensor, shape: tuple[int, ...],
                  num_contexts: int = MAX_CONTEXTS) -> torch.Tensor:
    """Context index of every latent of one level (the coder's ``line_contexts``, for all
    scanlines at once: they read only earlier scanlines and dimensions).

    Args:
        magnitudes: [rows, D] ``|round(latents)|`` of the level.
        shape: the level's array shape, slowest axis first (``()`` = unstructured).
    Returns:
        [rows, D] int64 in ``0 .. num_contexts - 1``.
    """
    rows, dims = magnitudes.shape
    raw = torch.zeros_like(magnitudes)
    raw[:, 1:] = magnitudes[:, :-1]
    if len(shape) >= 2:
        grid = magnitudes.reshape(*shape, dims)
        up = _shift(grid, -3, 1)
        neighbours = up + _shift(up, -2, 1) + _shift(up, -2, -1)
        if len(shape) == 3:
            neighbours = neighbours + _shift(grid, -4, 1)
        raw = raw + neighbours.reshape(rows, dims)
    return raw.clamp_max(num_contexts - 1).long()


class ContextPrior(nn.Module):
    """Per-level, per-context law of the integer latents.

    Args:
        shapes: per level, the array shape of a dense level or ``()`` (hashed).
        rows: per level, its rows.
        channels: D, latent dimensions.
        init_centre: starting ``P(0)`` of every context.
        init_ratio: starting tail ratio: wide, so that latents may grow early in training.
    """

    def __init__(self, shapes: list[tuple[int, ...]], rows: list[int], channels: int,
                 init_centre: float = 0.05, init_ratio: float = 0.9) -> None:
        super().__init__()
        self.shapes = [tuple(s) for s in shapes]
        self.rows = list(rows)
        levels = len(rows)
        logit = math.log(init_centre / (1.0 - init_centre))
        self.centre_logits = nn.Parameter(torch.full((levels, channels, MAX_CONTEXTS), logit))
        self.share_logits = nn.Parameter(torch.zeros(levels, channels))
        ratio = math.log(init_ratio / (1.0 - init_ratio))
        self.ratio_logits = nn.Parameter(torch.full((levels, channels, 2), ratio))

    def contexts(self, rounded: torch.Tensor) -> torch.Tensor:
        """Context of every latent: ``rounded: [rows, D]`` integers -> [rows, D] int64."""
        magnitudes = rounded.detach().abs()
        parts, start = [], 0
        for shape, rows in zip(self.shapes, self.rows):
            parts.append(grid_contexts(magnitudes[start:start + rows], shape))
            start += rows
        return torch.cat(parts)

    def log_probs(self, level: int, symbols: torch.Tensor) -> torch.Tensor:
        """Natural-log ``P(symbols)`` of one level for every dimension and context.

        Args:
            symbols: [S] integers (as floats).
        Returns:
            [D, C, S].
        """
        centre = self.centre_logits[level][:, :, None]                        # [D, C, 1]
        share, ratios = self.share_logits[level][:, None, None], self.ratio_logits[level]
        positive = symbols > 0
        side = torch.where(positive, F.logsigmoid(share), F.logsigmoid(-share))        # [D, 1, S]
        ratio = torch.where(positive, ratios[:, None, 0:1], ratios[:, None, 1:2])     # [D, 1, S]
        steps = (symbols.abs() - 1).clamp_min(0)
        tail = F.logsigmoid(-centre) + side + F.logsigmoid(-ratio) + steps * F.logsigmoid(ratio)
        return torch.where(symbols == 0, F.logsigmoid(centre), tail)

    def level_bits(self, level: int, values: torch.Tensor, contexts: torch.Tensor,
                   span: int) -> torch.Tensor:
        """Bits of ``values: [N, D]`` (noisy latents, or integers) of one level: [N, D].

        Computed in the log domain, so no likelihood underflows and no bound is needed:
        a latent far in a tail keeps its full rate gradient (``-log2 r`` per unit). The
        law is tabulated once over the symbols ``-span .. span + 1`` (``span`` at least
        ``max |floor(values)|``), then gathered per latent.
        """
        low = torch.floor(values)
        frac = values - low
        if values.requires_grad:
            frac = frac.clamp(_FRAC_EPS, 1.0 - _FRAC_EPS)   # finite log-weights, no NaN grads
        symbols = torch.arange(-span, span + 2, device=values.device, dtype=values.dtype)
        table = self.log_probs(level, symbols).reshape(-1)                     # [D * C * S]
        dims, stride = values.shape[1], symbols.numel()
        base = (torch.arange(dims, device=values.device) * MAX_CONTEXTS * stride)[None]
        index = base + contexts * stride + (low.long() + span)
        log_lik = torch.logaddexp(torch.log1p(-frac) + table[index],
                                  torch.log(frac) + table[index + 1])
        return -log_lik / math.log(2.0)

    def bits(self, values: torch.Tensor, contexts: torch.Tensor,
             sample: int | None = None) -> torch.Tensor:
        """Total bits of ``values: [rows, D]`` in ``contexts: [rows, D]`` (all levels).

        ``sample``: score about this many rows, drawn per level in proportion to its
        rows, scaled to an unbiased estimate of the whole table.
        """
        total, start, all_rows = values.new_zeros(()), 0, sum(self.rows)
        # one host sync per call (not one per level): the symbol span of the whole table
        span = int(torch.floor(values.detach()).abs().max().item()) + 1 if values.numel() else 1
        for level, rows in enumerate(self.rows):
            part, ctx = values[start:start + rows], contexts[start:start + rows]
            start += rows
            if sample is not None and sample < all_rows:
                count = max(1, math.ceil(sample * rows / all_rows))
                idx = torch.randint(rows, (count,), device=values.device)
                bits = self.level_bits(level, part[idx], ctx[idx], span)
                total = total + bits.sum() * (rows / count)
            else:
                total = total + self.level_bits(level, part, ctx, span).sum()
        return total
