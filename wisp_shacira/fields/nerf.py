"""Radiance field: 3-D :class:`ShaciraGrid` -> density MLP -> colour MLP (as Wisp's
``NeuralRadianceField``).

Points of the normalised scene box ``[-1, 1]^3`` are looked up in the grid at
``(p + 1) / 2`` in ``[0, 1]^3``. The density MLP maps the grid features to a raw
density and ``geo_feat_dim`` geometric features; the colour MLP maps those features
and an encoding of the view direction (real spherical harmonics or sinusoids) to RGB
through a sigmoid. With ``grid.compressed: false`` the same field is the uncompressed
Instant-NGP-style baseline. Both MLPs live in ``heads``, so a ``.shac`` file stores them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from wisp_shacira.config import require
from wisp_shacira.fields.base import MLP, CompressedField
from wisp_shacira.grid import exact
from wisp_shacira.grid.latents_first import StepLatents
from wisp_shacira.grid.shacira_grid import GridConfig, ShaciraGrid

_TRUNC_EXP_MAX = 15.0
GridTable = torch.Tensor | StepLatents
"""What ``ShaciraGrid.step_table`` returns: the decoded table, or (training) the rounded
latents, interpolated first where that costs less."""


@dataclass
class NerfNefConfig:
    """MLP heads of the radiance field (YAML section ``nef``).

    Attributes:
        hidden_dim: width of the density MLP's hidden layers.
        num_layers: hidden layers of the density MLP.
        geo_feat_dim: geometric features passed from the density to the colour MLP.
        color_hidden_dim: width of the colour MLP's hidden layers.
        color_num_layers: hidden layers of the colour MLP.
        view_encoding: "sh" (real spherical harmonics) or "positional" (sinusoids).
        view_degree: SH degree (1..4, ``degree^2`` coefficients) or number of
            positional frequencies (``3 + 6 * degree`` values).
        density_activation: "trunc_exp" (Instant-NGP) or "softplus".
    """

    hidden_dim: int = 64
    num_layers: int = 1
    geo_feat_dim: int = 15
    color_hidden_dim: int = 64
    color_num_layers: int = 2
    view_encoding: Literal["sh", "positional"] = "sh"
    view_degree: int = 4
    density_activation: Literal["trunc_exp", "softplus"] = "trunc_exp"

    def check(self) -> None:
        require(self.hidden_dim >= 1 and self.color_hidden_dim >= 1,
                "nef.hidden_dim and nef.color_hidden_dim must be >= 1")
        require(self.num_layers >= 0 and self.color_num_layers >= 0,
                "nef.num_layers and nef.color_num_layers must be >= 0")
        require(self.geo_feat_dim >= 0, f"nef.geo_feat_dim must be >= 0, got {self.geo_feat_dim}")
        if self.view_encoding == "sh":
            require(1 <= self.view_degree <= 4, f"nef.view_degree must be 1..4 for SH, "
                                                f"got {self.view_degree}")
        else:
            require(self.view_degree >= 0, f"nef.view_degree must be >= 0, got {self.view_degree}")


class _TruncExp(torch.autograd.Function):
    """``exp(x)`` whose gradient uses ``exp(min(x, 15))`` (Instant-NGP's density activation)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * torch.exp(x.clamp(max=_TRUNC_EXP_MAX))


def trunc_exp(x: torch.Tensor) -> torch.Tensor:
    """Exponential with a clamped gradient: ``[...] -> [...]`` (machine-independent
    arithmetic when no gradient is recorded)."""
    return exact.exact_exp(x) if exact.decoding() else _TruncExp.apply(x)


def spherical_harmonics(dirs: torch.Tensor, degree: int) -> torch.Tensor:
    """Real spherical harmonics of unit directions, bands ``0..degree-1``.

    Args:
        dirs: [M, 3] unit vectors.
        degree: 1..4.
    Returns:
        [M, degree^2].
    """
    x, y, z = dirs.unbind(-1)
    xx, yy, zz = x * x, y * y, z * z
    bands = [[torch.full_like(x, 0.28209479177387814)],
             [-0.48860251190291987 * y, 0.48860251190291987 * z, -0.48860251190291987 * x],
             [1.0925484305920792 * x * y, -1.0925484305920792 * y * z,
              0.94617469575755997 * zz - 0.31539156525251999, -1.0925484305920792 * x * z,
              0.54627421529603959 * (xx - yy)],
             [0.59004358992664352 * y * (3.0 * xx - yy), 2.8906114426405538 * x * y * z,
              0.45704579946446572 * y * (1.0 - 5.0 * zz), 0.3731763325901154 * z * (5.0 * zz - 3.0),
              0.45704579946446572 * x * (1.0 - 5.0 * zz), 1.4453057213202769 * z * (xx - yy),
              0.59004358992664352 * x * (xx - 3.0 * yy)]]
    return torch.stack([term for band in bands[:degree] for term in band], dim=-1)


def positional_encoding(dirs: torch.Tensor, num_freqs: int) -> torch.Tensor:
    """``[d, sin(2^k pi d), cos(2^k pi d)]`` for ``k < num_freqs``: [M, 3] -> [M, 3 + 6 * num_freqs]."""
    parts = [dirs]
    for k in range(num_freqs):
        scaled = dirs * (math.pi * 2.0**k)
        parts += list(exact.sin_cos(scaled))
    return torch.cat(parts, dim=-1)


def view_encoding_dim(cfg: NerfNefConfig) -> int:
    """Width of the view-direction encoding."""
    return cfg.view_degree**2 if cfg.view_encoding == "sh" else 3 + 6 * cfg.view_degree


class RadianceField(CompressedField):
    """``f(points, dirs) -> (density, rgb)`` over the scene box ``[-1, 1]^3``.

    Every evaluation takes the LOD (levels used, None = all) and the quantisation
    phase ``tau`` (None at evaluation) as arguments; :meth:`query` binds them, with the
    grid table decoded once, into the callable the tracer and the occupancy grid use.

    Args:
        grid_config: grid hyper-parameters (the grid is 3-D over ``[0, 1]^3``).
        nef_config: MLP and encoding hyper-parameters.
    """

    def __init__(self, grid_config: GridConfig, nef_config: NerfNefConfig) -> None:
        super().__init__()
        self.nef_config = nef_config
        self.grid = ShaciraGrid(3, grid_config)
        self.heads = nn.ModuleDict({
            "density": MLP(self.grid.output_dim, nef_config.hidden_dim, nef_config.num_layers,
                           1 + nef_config.geo_feat_dim),
            "color": MLP(nef_config.geo_feat_dim + view_encoding_dim(nef_config),
                         nef_config.color_hidden_dim, nef_config.color_num_layers, 3),
        })

    def query(self, lod: int | None = None, tau: float | None = None) -> "RadianceQuery":
        """The field at LOD ``lod`` in phase ``tau``, with the grid table (quantise +
        decoder) computed once for every call made through it (e.g. the tracer's
        marching rounds of one training step); when training, ``grid.step_table``: the
        latents rounded once, decoded after interpolating while that costs less."""
        return RadianceQuery(self, self.grid.step_table(tau), lod)

    def _density_features(self, points: torch.Tensor, lod: int | None,
                          table: GridTable) -> tuple[torch.Tensor, torch.Tensor]:
        """``points: [M, 3]`` in [-1, 1] -> (density [M] >= 0, geometric features [M, G])."""
        coords = ((points + 1.0) * 0.5).clamp(0.0, 1.0)
        out = self.heads["density"](self.grid.interpolate(coords, lod, table=table))
        raw = out[:, 0]
        if self.nef_config.density_activation == "trunc_exp":
            sigma = trunc_exp(raw)
        else:
            sigma = exact.softplus(raw - 1.0)
        return sigma, out[:, 1:]

    def density(self, points: torch.Tensor, lod: int | None = None, tau: float | None = None,
                table: GridTable | None = None) -> torch.Tensor:
        """Density at ``points: [M, 3]`` in [-1, 1]; returns [M] (for occupancy updates).
        ``table``: ``grid.step_table(tau)`` computed by the caller."""
        table = self.grid.step_table(tau) if table is None else table
        return self._density_features(points, lod, table)[0]

    def encode_dirs(self, dirs: torch.Tensor) -> torch.Tensor:
        """View encoding of ``dirs: [M, 3]`` unit vectors: [M, view_encoding_dim]."""
        if self.nef_config.view_encoding == "sh":
            return spherical_harmonics(dirs, self.nef_config.view_degree)
        return positional_encoding(dirs, self.nef_config.view_degree)

    def forward(self, points: torch.Tensor, dirs: torch.Tensor, lod: int | None = None,
                tau: float | None = None, table: GridTable | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Density and colour of samples.

        Args:
            points: [M, 3] in [-1, 1]^3.
            dirs: [M, 3] unit view directions.
            lod: levels used (None = all); tau: quantisation phase (None at evaluation).
            table: ``grid.step_table(tau)`` computed by the caller (then ``tau`` is
                not used).
        Returns:
            (sigma [M] >= 0, rgb [M, 3] in (0, 1)).
        """
        table = self.grid.step_table(tau) if table is None else table
        sigma, geo = self._density_features(points, lod, table)
        rgb = exact.sigmoid(self.heads["color"](torch.cat([geo, self.encode_dirs(dirs)], dim=-1)))
        return sigma, rgb


@dataclass(frozen=True)
class RadianceQuery:
    """A :class:`RadianceField` bound to one LOD and one decoded grid table (see
    :meth:`RadianceField.query`): ``query(points, dirs) -> (sigma, rgb)`` and
    ``query.density(points)``, the contract of the tracer and the occupancy grid."""

    field: RadianceField
    table: GridTable
    lod: int | None

    def __call__(self, points: torch.Tensor, dirs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.field(points, dirs, self.lod, table=self.table)

    def density(self, points: torch.Tensor) -> torch.Tensor:
        return self.field.density(points, self.lod, table=self.table)
