"""``ShaciraGrid`` for Kaolin-Wisp: the compressed core grid behind Wisp's ``HashGrid`` API.

It subclasses ``wisp.models.grids.HashGrid`` so that ``NeuralRadianceField.prune()``
(which accepts only hash and triplanar grids) and every caller reading hash-grid
attributes work unchanged. Features are not stored in a float codebook: they come
from :class:`wisp_shacira.grid.shacira_grid.ShaciraGrid` (integer latents, soft
rounding / STE, shared latent decoder, learned prior), held as ``self.core`` and
interpolated by the same code as everywhere else in the package, so a ``.shac``
file written from Wisp decodes with that code. The interpolation is plain PyTorch
(Wisp's CUDA ``hashgrid`` op uses a different vertex layout), so it is correct on
any device but slower than Wisp's fused kernel.
"""
from __future__ import annotations

import os
from typing import Any, Optional

import kaolin.ops.spc as spc_ops
import torch
from torch import nn
from wisp.accelstructs import BaseAS
from wisp.models.grids import HashGrid

from wisp_shacira.codec.model_io import ShacModel
from wisp_shacira.config import require
from wisp_shacira.fields.wisp_bridge import (MULTISCALE_TYPES, export_wisp_nerf,
                                             grid_config_from_wisp, heads_of, interpolate_wisp,
                                             load_wisp_nerf)
from wisp_shacira.grid.shacira_grid import GridConfig
from wisp_shacira.grid.shacira_grid import ShaciraGrid as CoreGrid


class ShaciraGrid(HashGrid):
    """A Wisp hash grid whose features are SHACIRA's decoded integer latents.

    Args:
        blas: occupancy acceleration structure (an ``OctreeAS``), as for ``HashGrid``.
        config: the core grid's hyper-parameters (3-D, compressed).
        multiscale_type: 'cat' (levels concatenated, ``L * F`` features) or 'sum' (``F``).
    """

    def __init__(self, blas: BaseAS, config: GridConfig, multiscale_type: str = "cat") -> None:
        require(multiscale_type in MULTISCALE_TYPES, f"grid.multiscale_type must be one of "
                f"{list(MULTISCALE_TYPES)}, got {multiscale_type!r}")
        require(config.compressed, "a Wisp ShaciraGrid needs a compressed grid configuration")
        # HashGrid.__init__ would allocate a float codebook; only the BLASGrid part is needed.
        super(HashGrid, self).__init__(blas)
        self.core = CoreGrid(3, config)
        self.multiscale_type = multiscale_type
        self.feature_dim = config.feature_dim
        self.codebook_bitwidth = config.log2_table_size
        self.coord_dim = 3
        self.resolutions = list(self.core.layout.resolutions)
        self.num_lods = self.core.num_levels
        self.active_lods = list(range(self.num_lods))
        self.max_lod = self.num_lods - 1
        self.tau: Optional[float] = None
        """Quantisation phase of the current step, set by the SHACIRA trainer before each
        forward pass (Wisp's ``interpolate`` signature has no room for it); used in
        training mode only (evaluation rounds hard)."""
        if self.blas is not None:
            self._init_occupancy()

    def _init_occupancy(self) -> None:
        """Cells of the BLAS's finest level and their running densities (read by ``prune``)."""
        self.dense_points = spc_ops.unbatched_get_level_points(
            self.blas.points, self.blas.pyramid, self.blas.max_level).clone()
        self.num_cells = self.dense_points.shape[0]
        self.occupancy = torch.zeros(self.num_cells)

    @classmethod
    def from_geometric(cls,
                       blas: BaseAS,
                       feature_dim: int = 4,
                       num_lods: int = 24,
                       multiscale_type: str = "cat",
                       codebook_bitwidth: int = 19,
                       min_grid_res: int = 16,
                       max_grid_res: int = 512,
                       latent_dim: int = 1,
                       latent_init: float = 0.1,
                       prior_init_scale: float = 10.0,
                       latent_step: float = 0.0) -> ShaciraGrid:
        """Builds a SHACIRA grid with Instant-NGP's geometric resolutions.

        Args:
            blas (BaseAS): Occupancy structure (passed at instantiate time, not from YAML).
            feature_dim (int): Decoded features per level (F).
            num_lods (int): Number of levels (L).
            multiscale_type (str): 'cat' concatenates the levels, 'sum' adds them.
            codebook_bitwidth (int): Latent rows per level are at most 2**codebook_bitwidth.
            min_grid_res (int): Cells per axis of the coarsest level.
            max_grid_res (int): Cells per axis of the finest level.
            latent_dim (int): Integer latents per row (D), decoded to F features.
            latent_init (float): Latents start uniform in [-latent_init, latent_init].
            prior_init_scale (float): Initial spread of the learned probability models.
            latent_step (float): Fixed quantisation step (the decoder starts as this step
                times a unit matrix; see ``GridConfig.latent_step``); 0 = learned.
        """
        config = grid_config_from_wisp(feature_dim, num_lods, codebook_bitwidth, min_grid_res,
                                       max_grid_res, latent_dim, latent_init, prior_init_scale,
                                       multiscale_type, latent_step)
        return cls(blas=blas, config=config, multiscale_type=multiscale_type)

    def interpolate(self, coords: torch.Tensor, lod_idx: int | None = None) -> torch.Tensor:
        """Features at ``coords: [N, 3] or [B, S, 3]`` in [-1, 1].

        Args:
            lod_idx: index into ``active_lods``; levels finer than it are zeroed (None = all).
        Returns:
            [..., L * F] ('cat') or [..., F] ('sum').
        """
        tau = self.tau if self.training else None     # Wisp evaluates in eval mode
        return interpolate_wisp(self.core, coords, lod_idx, self.multiscale_type, tau)

    def freeze(self) -> None:
        """Stop training the latents, the latent decoder and the prior."""
        self.core.requires_grad_(False)

    def name(self) -> str:
        return "SHACIRA Grid"

    def public_properties(self) -> dict[str, Any]:
        """Hash-grid properties plus the compression state, for logs and the GUI."""
        properties = super().public_properties()
        tau = self.tau
        properties.update({"Latent Dims": self.core.config.latent_dim,
                           "Latent Rows": self.core.layout.total_rows,
                           "Soft Rounding": "off (STE)" if tau is None else f"tau={tau:.3f}"})
        return properties

    def export(self, path: str | os.PathLike, nef: nn.Module, sections: dict) -> int:
        """Write this grid and the nef's other modules to a ``.shac`` file; returns its bytes.

        Args:
            sections: the file's other CONFIG sections, from
                ``wisp_shacira.tasks.wisp_nerf.file_sections`` (what
                ``ShaciraMultiviewTrainer.export_shac`` passes).
        """
        return export_wisp_nerf(self.core, heads_of(nef), path, sections)

    def load(self, path: str | os.PathLike, nef: nn.Module) -> ShacModel:
        """Load a file written by :meth:`export` into this grid and ``nef``'s modules."""
        return load_wisp_nerf(path, self.core, heads_of(nef))
