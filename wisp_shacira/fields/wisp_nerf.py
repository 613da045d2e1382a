"""Kaolin-Wisp's ``NeuralRadianceField`` rebuilt in plain PyTorch, on SHACIRA's grid.

A ``.shac`` file written by the Kaolin-Wisp adapter (task ``wisp_nerf``) holds the
compressed grid and every learned module of Wisp's radiance field. This module
rebuilds that field without Wisp, Kaolin or CUDA, with the same module names (so the
file's weights load by name) and the same arithmetic as Wisp ``main`` (931707e):

* ``wisp/models/nefs/nerf.py`` ``NeuralRadianceField``: grid features (+ optional
  position embedding) -> ``decoder_density`` (16 outputs, ``num_layers`` hidden
  layers); ``density = relu(out[:, 0])``; colour =
  ``sigmoid(decoder_color(cat(out, view_embedding)[:, 1:]))`` with ``num_layers + 1``
  hidden layers; ``color_net_input_dim = 15 + view_embed_dim``.
* ``wisp/models/decoders/basic_decoders.py`` ``BasicDecoder`` (``layers`` + ``lout``,
  no skips in the NeRF), ``wisp/models/layers.py`` (linear, Frobenius, L1, L-inf
  normalised linear layers), ``wisp/models/activations/basic_activations.py``.
* ``wisp/models/embedders/positional_embedder.py``: ``bands = 2^linspace(0, F-1, F)``
  (a frozen parameter, stored in the file), ``[x, sin(x * bands), cos(x * bands)]``.

The grid follows the adapter's conventions (``fields.wisp_bridge``): points in
``[-1, 1]^3`` map to ``[0, 1]^3``; an LOD here is the number of levels used (the
adapter's ``lod_idx + 1``). Not rebuildable (refused by :meth:`WispNefConfig.check`):
``spectral_norm`` layers (their power-iteration buffers are not in the file) and
``tcnn`` embedders (tiny-cuda-nn).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from wisp_shacira.config import require
from wisp_shacira.fields.base import CompressedField
from wisp_shacira.grid.shacira_grid import GridConfig, ShaciraGrid

EMBEDDERS = ("none", "identity", "positional")
LAYERS = ("none", "linear", "frobenius_norm", "l_1_norm", "l_inf_norm")
DENSITY_OUTPUTS = 16
"""Outputs of Wisp's density decoder (density + 15 features for the colour decoder)."""
MAX_MULTIRES = 32
MULTISCALE_TYPES = ("cat", "sum")


def wisp_coords_to_unit(coords: torch.Tensor) -> torch.Tensor:
    """Flatten Wisp points and map them to the grid's domain.

    Args:
        coords: [..., 3] in [-1, 1] (Wisp's normalised scene box).
    Returns:
        [N, 3] float32 in [0, 1] (points outside are clamped later by the grid).
    """
    return (coords.reshape(-1, coords.shape[-1]).float() + 1.0) * 0.5


def _min_max(x: torch.Tensor) -> torch.Tensor:
    pairs = x.reshape(x.shape[0], x.shape[1] // 2, 2)
    return torch.cat([pairs.min(-1, keepdim=True)[0], pairs.max(-1, keepdim=True)[0]],
                     dim=-1).reshape(x.shape)


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "none": lambda x: x, "fullsort": lambda x: torch.sort(x, dim=-1)[0], "minmax": _min_max,
    "relu": torch.relu, "sin": torch.sin, "celu": F.celu, "selu": F.selu,
    "leaky_relu": F.leaky_relu, "gelu": F.gelu,
}


@dataclass
class WispNefConfig:
    """The arguments of Wisp's ``NeuralRadianceField`` that shape its modules.

    Attributes mirror ``NeuralRadianceField.__init__`` (same names and defaults);
    the pruning arguments are training-only and not recorded.
    """

    pos_embedder: str = "none"
    view_embedder: str = "none"
    pos_multires: int = 10
    view_multires: int = 4
    position_input: bool = False
    activation_type: str = "relu"
    layer_type: str = "linear"
    hidden_dim: int = 128
    num_layers: int = 1
    bias: bool = False

    def check(self) -> None:
        for key in ("pos_embedder", "view_embedder"):
            value = getattr(self, key)
            require(value != "tcnn", f"nef.{key} 'tcnn' (tiny-cuda-nn) cannot be rebuilt "
                                     f"without Wisp; use 'positional' or 'identity'")
            require(value in EMBEDDERS, f"nef.{key} must be one of {list(EMBEDDERS)}, got {value!r}")
        require(self.layer_type != "spectral_norm", "nef.layer_type 'spectral_norm' cannot be "
                "stored in a .shac file (its power-iteration state is not saved)")
        require(self.layer_type in LAYERS, f"nef.layer_type must be one of {list(LAYERS)}, "
                                           f"got {self.layer_type!r}")
        require(self.activation_type in ACTIVATIONS, f"nef.activation_type must be one of "
                f"{list(ACTIVATIONS)}, got {self.activation_type!r}")
        require(1 <= self.hidden_dim and 0 <= self.num_layers,
                "nef.hidden_dim must be >= 1 and nef.num_layers >= 0")
        for key in ("pos_multires", "view_multires"):
            value = getattr(self, key)
            require(1 <= value <= MAX_MULTIRES, f"nef.{key} must be 1..{MAX_MULTIRES}, got {value}")


class NormalizedLinear(nn.Module):
    """A linear layer whose weight is normalised in the forward pass (Wisp's
    ``FrobeniusLinear``, ``L_1_Linear``, ``L_inf_Linear``: the weight lives in ``.linear``)."""

    def __init__(self, norm: str, in_dim: int, out_dim: int, bias: bool) -> None:
        super().__init__()
        self.norm = norm
        self.linear = nn.Linear(in_dim, out_dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, in] -> [N, out]``."""
        w = self.linear.weight
        if self.norm == "frobenius_norm":
            w = w / torch.sqrt((torch.abs(w)**2).sum())
        elif self.norm == "l_1_norm":
            col = torch.sum(torch.abs(w), dim=0)
            w = w * torch.min(torch.stack([1.0 / col, torch.ones_like(col)], dim=0), dim=0)[0][None, :]
        else:
            row = torch.sum(torch.abs(w), dim=1)
            w = w * torch.min(torch.stack([1.0 / row, torch.ones_like(row)], dim=0), dim=0)[0][:, None]
        return F.linear(x, w, self.linear.bias)


def make_layer(layer_type: str, in_dim: int, out_dim: int, bias: bool) -> nn.Module:
    """One decoder layer of ``layer_type`` (see :data:`LAYERS`)."""
    if layer_type in ("none", "linear"):
        return nn.Linear(in_dim, out_dim, bias=bias)
    return NormalizedLinear(layer_type, in_dim, out_dim, bias)


class WispDecoder(nn.Module):
    """Wisp's ``BasicDecoder`` without skips: ``layers`` (activation after each), ``lout``.

    Shapes: ``[N, input_dim] -> [N, output_dim]``.
    """

    def __init__(self, input_dim: int, output_dim: int, cfg: WispNefConfig, num_layers: int) -> None:
        super().__init__()
        self.activation = ACTIVATIONS[cfg.activation_type]
        widths = [input_dim] + [cfg.hidden_dim] * num_layers
        self.layers = nn.ModuleList([make_layer(cfg.layer_type, widths[i], cfg.hidden_dim, cfg.bias)
                                     for i in range(num_layers)])
        self.lout = make_layer(cfg.layer_type, cfg.hidden_dim, output_dim, cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for layer in self.layers:
            h = self.activation(layer(h))
        return self.lout(h)


class PositionalEmbedding(nn.Module):
    """Wisp's ``PositionalEmbedder`` (log-sampled bands ``2^0 .. 2^(F-1)``).

    Shapes: ``[N, 3] -> [N, 3 * include_input + 6 * F]``.
    """

    def __init__(self, num_freq: int, include_input: bool) -> None:
        super().__init__()
        self.num_freq, self.include_input = num_freq, include_input
        bands = 2.0**torch.linspace(0.0, num_freq - 1, steps=num_freq)
        self.bands = nn.Parameter(bands).requires_grad_(False)
        self.out_dim = 3 * int(include_input) + 6 * num_freq

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        winded = (coords[:, None] * self.bands[None, :, None]).reshape(
            coords.shape[0], coords.shape[1] * self.num_freq)
        encoded = torch.cat([torch.sin(winded), torch.cos(winded)], dim=-1)
        return torch.cat([coords, encoded], dim=-1) if self.include_input else encoded


def make_embedder(kind: str, multires: int, include_input: bool) -> tuple[nn.Module | None, int]:
    """Wisp's ``NeuralRadianceField.init_embedder``: (module or None, output width)."""
    if kind == "none" and not include_input:
        return None, 0
    if kind == "identity" or kind == "none":
        return nn.Identity(), 3
    embedder = PositionalEmbedding(multires, include_input)
    return embedder, embedder.out_dim


class WispRadianceField(CompressedField):
    """Wisp's radiance field on SHACIRA's grid: ``(points, dirs) -> (sigma, rgb)``.

    Args:
        grid_config: the compressed grid (3-D).
        nef_config: the Wisp field's architecture.
        multiscale_type: 'cat' (``L * F`` features) or 'sum' (``F``).
    """

    def __init__(self, grid_config: GridConfig, nef_config: WispNefConfig,
                 multiscale_type: Literal["cat", "sum"] = "cat") -> None:
        super().__init__()
        require(multiscale_type in MULTISCALE_TYPES,
                f"wisp.multiscale_type must be one of {list(MULTISCALE_TYPES)}")
        self.nef_config, self.multiscale_type = nef_config, multiscale_type
        self.grid = ShaciraGrid(3, grid_config)
        levels = grid_config.num_levels if multiscale_type == "cat" else 1
        pos, pos_dim = make_embedder(nef_config.pos_embedder, nef_config.pos_multires,
                                     nef_config.position_input)
        view, view_dim = make_embedder(nef_config.view_embedder, nef_config.view_multires, True)
        heads: dict[str, nn.Module] = {
            "decoder_density": WispDecoder(grid_config.feature_dim * levels + pos_dim,
                                           DENSITY_OUTPUTS, nef_config, nef_config.num_layers),
            "decoder_color": WispDecoder(DENSITY_OUTPUTS - 1 + view_dim, 3, nef_config,
                                         nef_config.num_layers + 1)}
        for name, module in (("pos_embedder", pos), ("view_embedder", view)):
            if module is not None:
                heads[name] = module
        self.heads = nn.ModuleDict(heads)

    def query(self, lod: int | None = None, tau: float | None = None) -> WispRadianceQuery:
        """The field at LOD ``lod`` (levels used) with the grid table decoded once."""
        return WispRadianceQuery(self, self.grid.decoded_table(tau), lod)

    def density_features(self, points: torch.Tensor, lod: int | None,
                         table: torch.Tensor) -> torch.Tensor:
        """``points: [M, 3]`` in [-1, 1] -> the density decoder's output ``[M, 16]``."""
        feats = self.grid.interpolate(wisp_coords_to_unit(points), lod, table=table)
        if self.multiscale_type == "sum":
            feats = feats.view(feats.shape[0], self.grid.num_levels, -1).sum(1)
        if "pos_embedder" in self.heads:
            feats = torch.cat([feats, self.heads["pos_embedder"](points)], dim=-1)
        return self.heads["decoder_density"](feats)

    def forward(self, points: torch.Tensor, dirs: torch.Tensor, lod: int | None = None,
                tau: float | None = None, table: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Wisp's ``rgba``: ``points, dirs: [M, 3]`` -> (sigma [M] >= 0, rgb [M, 3])."""
        table = self.grid.decoded_table(tau) if table is None else table
        out = self.density_features(points, lod, table)
        if "view_embedder" in self.heads:
            out = torch.cat([out, self.heads["view_embedder"](dirs)], dim=-1)
        rgb = torch.sigmoid(self.heads["decoder_color"](out[..., 1:]))
        return torch.relu(out[:, 0]), rgb


@dataclasses.dataclass(frozen=True)
class WispRadianceQuery:
    """A :class:`WispRadianceField` bound to one LOD and one decoded table: the contract
    of the tracer and the occupancy grid (``query(points, dirs)``, ``query.density``)."""

    field: WispRadianceField
    table: torch.Tensor
    lod: int | None

    def __call__(self, points: torch.Tensor, dirs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.field(points, dirs, self.lod, table=self.table)

    def density(self, points: torch.Tensor) -> torch.Tensor:
        """``[M, 3] -> [M]``."""
        return torch.relu(self.field.density_features(points, self.lod, self.table)[:, 0])


__all__ = ["ACTIVATIONS", "MULTISCALE_TYPES", "wisp_coords_to_unit", "WispNefConfig", "WispRadianceField", "WispRadianceQuery",
           "PositionalEmbedding", "WispDecoder", "make_embedder"]
