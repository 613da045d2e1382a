"""Configuration of the NeRF task (``task: nerf`` configs of ``wisp-shacira encode``).

Sections: ``grid`` (:class:`GridConfig`; ``compressed: false`` gives the uncompressed
Instant-NGP-style baseline), ``nef`` (:class:`NerfNefConfig`), ``tracer``
(:class:`TracerConfig`), ``dataset`` (:class:`NerfDatasetConfig`) and ``trainer``
(:class:`NerfTrainerConfig`); top-level ``output`` and ``resume``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from wisp_shacira.config import require
from wisp_shacira.fields.nerf import NerfNefConfig
from wisp_shacira.grid.shacira_grid import GridConfig
from wisp_shacira.render.tracer import TracerConfig
from wisp_shacira.train.config import TrainerConfig


@dataclass
class NerfDatasetConfig:
    """Input scene (YAML section ``dataset``).

    Attributes:
        path: scene folder; None = the bundled demo scene ``data/demo_scene``.
        format: "blender" (NeRF-synthetic ``transforms_*.json``) or "rtmv".
        mip: downscale images by ``2^mip`` per axis.
        bg_color: background RGB in [0, 1] that images are composited over; the
            tracer renders over the same colour (``tracer.bg_color`` must match).
        holdout_every: Blender scenes without a val file hold out train views
            ``0, k, 2k, ...`` as ``val`` (0 disables).
    """

    path: str | None = None
    format: Literal["blender", "rtmv"] = "blender"
    mip: int = 0
    bg_color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    holdout_every: int = 8

    def check(self) -> None:
        require(self.mip >= 0, f"dataset.mip must be >= 0, got {self.mip}")
        require(all(0.0 <= c <= 1.0 for c in self.bg_color),
                f"dataset.bg_color must lie in [0, 1], got {list(self.bg_color)}")
        require(self.holdout_every >= 0, "dataset.holdout_every must be >= 0")
        require(self.format == "blender" or self.path is not None,
                "dataset.path is required for format rtmv (the bundled demo scene is Blender)")


@dataclass
class NerfTrainerConfig(TrainerConfig):
    """Optimisation of a radiance field (YAML section ``trainer``).

    Adds to :class:`TrainerConfig` (whose ``batch_size`` is unused here):

    Attributes:
        rays_per_batch: random training rays per step.
        random_bg: composite targets over a random background per ray (with the
            images' alpha), so empty space cannot take the background colour.
        occupancy_resolution: cells per axis of the occupancy grid (training and the
            grid rebuilt from the final model).
        occupancy_every: steps between occupancy updates.
        occupancy_warmup: steps during which every cell stays occupied.
        occupancy_subsamples: fixed points per cell axis when the grid is rebuilt
            from the final model for evaluation and rendering from the file.
        val_every: steps between validation renders (0 = none).
        val_views: validation views rendered each time (evenly spaced).
        checkpoint_every: steps between checkpoints (0 = none; a checkpoint is
            also written at the end).
        prune_empty_space: the export stores the occupancy grid rebuilt from the final
            model in the file and sets to zero every latent row that no point inside
            an occupied cell reads; the renders are those of the unpruned file, and the
            smaller of the two files is written (needs ``tracer.use_occupancy``).
    """

    rays_per_batch: int = 1024
    random_bg: bool = True
    occupancy_resolution: int = 64
    occupancy_every: int = 16
    occupancy_warmup: int = 256
    occupancy_subsamples: int = 2
    val_every: int = 500
    val_views: int = 2
    checkpoint_every: int = 250
    prune_empty_space: bool = True

    def check(self) -> None:
        super().check()
        require(self.batch_size == 0, "trainer.batch_size is not used by the nerf task; "
                                      "set trainer.rays_per_batch")
        require(self.rays_per_batch >= 1, "trainer.rays_per_batch must be >= 1")
        require(self.occupancy_resolution >= 1, "trainer.occupancy_resolution must be >= 1")
        require(self.occupancy_every >= 1, "trainer.occupancy_every must be >= 1")
        require(self.occupancy_warmup >= 0, "trainer.occupancy_warmup must be >= 0")
        require(self.occupancy_subsamples >= 1, "trainer.occupancy_subsamples must be >= 1")
        require(self.val_every >= 0 and self.val_views >= 1,
                "trainer.val_every must be >= 0 and trainer.val_views >= 1")
        require(self.checkpoint_every >= 0, "trainer.checkpoint_every must be >= 0")


def _default_grid() -> GridConfig:
    return GridConfig(num_levels=16, min_res=16, max_res=512, log2_table_size=19,
                      feature_dim=2, latent_dim=1)


@dataclass
class AppConfig:
    """Configuration of ``wisp-shacira encode`` for the NeRF task.

    Attributes:
        output: output folder (None = ``runs/nerf-<time>``; required with ``resume``).
        resume: continue from ``output/checkpoint.pt`` (``--resume`` on the command line).
    """

    task: Literal["nerf"] = "nerf"
    output: str | None = None
    resume: bool = False
    grid: GridConfig = field(default_factory=_default_grid)
    nef: NerfNefConfig = field(default_factory=NerfNefConfig)
    tracer: TracerConfig = field(default_factory=TracerConfig)
    dataset: NerfDatasetConfig = field(default_factory=NerfDatasetConfig)
    trainer: NerfTrainerConfig = field(default_factory=NerfTrainerConfig)

    def check(self) -> None:
        require(tuple(self.tracer.bg_color) == tuple(self.dataset.bg_color),
                f"tracer.bg_color {list(self.tracer.bg_color)} must equal dataset.bg_color "
                f"{list(self.dataset.bg_color)} (images are composited over it)")
        require(self.tracer.num_samples >= 1 and self.tracer.segments >= 1,
                "tracer.num_samples and tracer.segments must be >= 1")
        require(not self.resume or self.output is not None,
                "resume needs an output folder that holds the checkpoint (--output DIR)")
        require(not self.resume or (self.trainer.target_bytes is None
                                    and self.trainer.target_bpp is None),
                "resume continues one training run; rate control (trainer.target_bytes) "
                "trains several: run it without --resume")
