"""Image field: 2-D :class:`ShaciraGrid` -> MLP -> colour channels."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from wisp_shacira.config import require
from wisp_shacira.fields.base import MLP, CompressedField
from wisp_shacira.grid.fast import EncodingPlan
from wisp_shacira.grid.shacira_grid import GridConfig, ShaciraGrid


@dataclass
class ImageNefConfig:
    """MLP head of the image field (YAML section ``nef``).

    Attributes:
        hidden_dim: width of the hidden layers.
        num_layers: hidden layers (the paper's code uses 1 of width 16 for Kodak).
    """

    hidden_dim: int = 16
    num_layers: int = 1

    def check(self) -> None:
        require(self.hidden_dim >= 1, f"nef.hidden_dim must be >= 1, got {self.hidden_dim}")
        require(self.num_layers >= 0, f"nef.num_layers must be >= 0, got {self.num_layers}")


class ImageField(CompressedField):
    """``f(x, y) -> channels`` over ``[0, 1]^2``.

    Args:
        grid_config: grid hyper-parameters.
        nef_config: MLP hyper-parameters.
        channels: output channels (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA).
    """

    def __init__(self, grid_config: GridConfig, nef_config: ImageNefConfig, channels: int) -> None:
        super().__init__()
        self.grid = ShaciraGrid(2, grid_config)
        self.heads = MLP(self.grid.output_dim, nef_config.hidden_dim, nef_config.num_layers,
                         channels)

    def forward(self, coords: torch.Tensor | None, lod: int | None = None,
                tau: float | None = None, plan: EncodingPlan | None = None,
                table: torch.Tensor | None = None) -> torch.Tensor:
        """Colours at ``coords: [N, 2]`` (x, y) in [0, 1] (None when ``plan`` holds them),
        using the first ``lod`` levels (None = all) in quantisation phase ``tau`` (None at
        evaluation), with ``table`` the grid's decoded table when the caller computed it
        once for several calls; returns [N, channels], unclamped."""
        return self.heads(self.grid.interpolate(coords, lod, tau, plan, table))
