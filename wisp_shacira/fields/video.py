"""Video field: 3-D :class:`ShaciraGrid` over ``(x, y, t)`` -> MLP -> RGB.

A clip of ``T`` frames of ``H x W`` pixels is a field over ``[0, 1]^3``: pixel
``(t, y, x)`` sits at ``((x + 0.5) / W, (y + 0.5) / H, (t + 0.5) / T)`` (see
:func:`wisp_shacira.datasets.video.coords_of`). The same grid as for images is used,
with ``dim = 3``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from wisp_shacira.config import require
from wisp_shacira.fields.base import MLP, CompressedField
from wisp_shacira.grid.fast import EncodingPlan
from wisp_shacira.grid.shacira_grid import GridConfig, ShaciraGrid

VIDEO_CHANNELS = 3


@dataclass
class VideoNefConfig:
    """MLP head of the video field (YAML section ``nef``).

    Attributes:
        hidden_dim: width of the hidden layers.
        num_layers: hidden layers.
    """

    hidden_dim: int = 32
    num_layers: int = 1

    def check(self) -> None:
        require(self.hidden_dim >= 1, f"nef.hidden_dim must be >= 1, got {self.hidden_dim}")
        require(self.num_layers >= 0, f"nef.num_layers must be >= 0, got {self.num_layers}")


class VideoField(CompressedField):
    """``f(x, y, t) -> RGB`` over ``[0, 1]^3``.

    Args:
        grid_config: grid hyper-parameters (the grid is 3-D).
        nef_config: MLP hyper-parameters.
    """

    def __init__(self, grid_config: GridConfig, nef_config: VideoNefConfig) -> None:
        super().__init__()
        self.grid = ShaciraGrid(3, grid_config)
        self.heads = MLP(self.grid.output_dim, nef_config.hidden_dim, nef_config.num_layers,
                         VIDEO_CHANNELS)

    def forward(self, coords: torch.Tensor | None, lod: int | None = None,
                tau: float | None = None, plan: EncodingPlan | None = None,
                table: torch.Tensor | None = None) -> torch.Tensor:
        """Colours at ``coords: [N, 3]`` (x, y, t) in [0, 1] (None when ``plan`` holds
        them), using the first ``lod`` levels (None = all) in quantisation phase ``tau``
        (None at evaluation), with ``table`` the grid's decoded table when the caller
        computed it; returns [N, 3] RGB, unclamped."""
        return self.heads(self.grid.interpolate(coords, lod, tau, plan, table))
