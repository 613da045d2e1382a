"""Interpolate first, decode after: the training encoding when it costs less than a table.

The latent decoder is affine (``f = W q + b``) and the interpolation weights of a point
sum to one, so interpolating the rounded latents and decoding the result gives the
features of decoding every row first (``sum_c w_c (W q_c + b) = W sum_c w_c q_c + b``),
equal to float rounding. Decoding every row costs ``rows * (D + F)`` (forward and
backward, plus the decoded ``[rows, F]`` table and its gradient); decoding after costs
``N * L' * (D + F)`` for ``N`` points and ``L'`` levels used, and the gather reads
``D`` instead of ``F`` values per corner. :func:`latents_first_pays` compares the two.

Only training takes this path (gradients on, the grid in train mode): evaluation and
decoding keep decoding the table first, so files and decodes stay bit-identical
whatever the batch. The choice counts all levels, whatever the LOD, so every LOD takes
the same path; levels past the LOD give exact zeros (not the decoder's bias).

:class:`StepLatents` is the table a training step's several calls share (the NeRF
tracer's marching rounds): the latents are rounded once; each call interpolates first
while the calls so far have cost less than decoding the table would, after that the
table is decoded once and used for the remaining calls (at most twice the cheaper
choice made in hindsight).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from wisp_shacira.grid.fast import EncodingPlan, encode
from wisp_shacira.grid.hashing import GridLayout


def table_cost(layout: GridLayout, latent_dim: int, feature_dim: int) -> int:
    """Cost units of decoding every row: ``rows * (D + F)``."""
    return layout.total_rows * (latent_dim + feature_dim)


def latents_first_cost(layout: GridLayout, num_points: int, num_active: int, latent_dim: int,
                       feature_dim: int) -> int:
    """Cost units of interpolating ``num_points`` first, relative to the table path: the
    decoded vectors ``N L' (D + F)`` plus the change of the gather, ``N L' 2^d (D - F)``
    (negative when ``D < F``)."""
    vectors = num_points * num_active
    return vectors * (latent_dim + feature_dim) + vectors * 2**layout.dim * (latent_dim
                                                                            - feature_dim)


def latents_first_pays(layout: GridLayout, num_points: int, num_active: int, latent_dim: int,
                       feature_dim: int) -> bool:
    """Whether interpolating first costs less than decoding every row (see the module
    docstring): e.g. 2^18 points on a 16-level T = 2^19 grid (5.2M rows) with D = 1,
    F = 2; never for the image task's full-image plans (9.4M point-levels, 49K rows)."""
    return (latents_first_cost(layout, num_points, num_active, latent_dim, feature_dim)
            < table_cost(layout, latent_dim, feature_dim))


def encode_latents_first(latents: torch.Tensor, decoder: nn.Linear, coords: torch.Tensor | None,
                         layout: GridLayout, num_active: int,
                         plan: EncodingPlan | None = None) -> torch.Tensor:
    """Features of decoding after interpolating.

    Args:
        latents: [rows, D] rounded latents (soft or hard).
        decoder: the shared ``D -> F`` decoder.
        coords: [N, d] in [0, 1] (None with ``plan``).
        num_active: levels used; finer levels give zeros.
    Returns:
        [N, L * F], equal to ``encode(decoder(latents), coords, layout, num_active)`` to
        float rounding.
    """
    mixed = encode(latents, coords, layout, num_active, plan)
    num_points, num_levels, feat = mixed.shape[0], layout.num_levels, decoder.out_features
    features = decoder(mixed.view(num_points, num_levels, -1)[:, :num_active])
    if num_active < num_levels:
        features = torch.cat([features, features.new_zeros(num_points, num_levels - num_active,
                                                           feat)], dim=1)
    return features.reshape(num_points, num_levels * feat)


@dataclass
class StepLatents:
    """The rounded latents of one training step, shared by its interpolate calls.

    Attributes:
        latents: [rows, D] rounded latents of the step (in its phase ``tau``).
        decoder: the grid's decoder.
        table: the decoded table, once a call has decoded it (then used by the rest).
        spent: cost units the latents-first calls have used so far.
    """

    latents: torch.Tensor
    decoder: nn.Linear
    table: torch.Tensor | None = None
    spent: int = 0

    def decoded(self) -> torch.Tensor:
        """[rows, F] ``decoder(latents)``, computed once."""
        if self.table is None:
            self.table = self.decoder(self.latents)
        return self.table

    def interpolate(self, coords: torch.Tensor | None, layout: GridLayout, num_active: int,
                    plan: EncodingPlan | None = None) -> torch.Tensor:
        """[N, L * F] features, latents first while that is cheaper (see the module docstring)."""
        num_points = coords.shape[0] if coords is not None else plan.num_points
        dims = (self.latents.shape[1], self.decoder.out_features)
        cost = latents_first_cost(layout, num_points, layout.num_levels, *dims)
        if self.table is None and self.spent + cost < table_cost(layout, *dims):
            self.spent += cost
            return encode_latents_first(self.latents, self.decoder, coords, layout, num_active,
                                        plan)
        return encode(self.decoded(), coords, layout, num_active, plan)
