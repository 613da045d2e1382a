"""Learned factorised probability model, one per latent dimension (Balle et al. 2018).

Each latent dimension ``d`` has a monotone cumulative function ``c_d`` built from a
small chain of positive-weight affine maps and ``tanh`` gates. The probability of
an interval is ``P_d(x) = c_d(x + 1/2) - c_d(x - 1/2)``; on integers this is the
probability mass the entropy coder uses, on ``Q_hat + u`` (uniform noise) it is the
differentiable rate proxy used in training.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from wisp_shacira.entropy.bounds import lower_bound

_LIKELIHOOD_FLOOR = 1e-9


class FactorizedPrior(nn.Module):
    """Per-dimension learned CDF.

    Args:
        channels: number of latent dimensions D.
        filters: hidden widths of the CDF network.
        init_scale: expected spread of the latents at initialisation.
    """

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3),
                 init_scale: float = 10.0) -> None:
        super().__init__()
        self.channels = channels
        widths = (1,) + tuple(filters) + (1,)
        scale = init_scale ** (1.0 / (len(widths) - 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(widths) - 1):
            init = math.log(math.expm1(1.0 / scale / widths[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, widths[i + 1], widths[i]), init)))
            # uniform_ draws the same numbers as ``rand - 0.5``; torch.rand on the meta
            # device (the decoders' probe) would import torch._dynamo, ~1 s
            bias = torch.empty(channels, widths[i + 1], 1).uniform_(-0.5, 0.5)
            self.biases.append(nn.Parameter(bias))
            if i < len(widths) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, widths[i + 1], 1)))

    def _logits_cdf(self, x: torch.Tensor) -> torch.Tensor:
        """x: [D, 1, N] -> [D, 1, N] logits of the cumulative distribution."""
        for i, (matrix, bias) in enumerate(zip(self.matrices, self.biases)):
            x = torch.matmul(F.softplus(matrix), x) + bias
            if i < len(self.factors):
                x = x + torch.tanh(self.factors[i]) * torch.tanh(x)
        return x

    def likelihood(self, values: torch.Tensor) -> torch.Tensor:
        """Probability of the unit interval centred on each value.

        Args:
            values: [N, D].
        Returns:
            [N, D] probabilities, bounded below by 1e-9 (the gradient still passes where
            it raises a probability, see :func:`~wisp_shacira.entropy.bounds.lower_bound`).
        """
        x = values.t().unsqueeze(1)
        lower, upper = self._logits_cdf(torch.cat([x - 0.5, x + 0.5], dim=-1)).chunk(2, dim=-1)
        sign = -torch.sign(lower + upper).detach()
        lik = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        return lower_bound(lik.squeeze(1).t(), _LIKELIHOOD_FLOOR)

    def bits(self, values: torch.Tensor) -> torch.Tensor:
        """Self-information ``-log2 P(values)`` in bits.

        Args:
            values: [N, D].
        Returns:
            [N, D].
        """
        return -torch.log2(self.likelihood(values))

    @torch.no_grad()
    def pmf(self, dim: int, low: int, high: int) -> torch.Tensor:
        """Probability mass of the integers ``low..high`` (inclusive) for one dimension.

        Returns:
            [high - low + 1] float64.
        """
        symbols = torch.arange(low, high + 1, dtype=torch.float32,
                               device=self.matrices[0].device)
        values = torch.zeros(symbols.numel(), self.channels, device=symbols.device)
        values[:, dim] = symbols
        return self.likelihood(values)[:, dim].double().cpu()
