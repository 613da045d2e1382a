"""Configuration and main routine of ``app/main_wisp.py``: a Wisp NeRF app with SHACIRA.

It follows Wisp's own ``app/nerf/main_nerf.py``: a ``@configure`` app config parsed
by ``parse_config`` (CLI > YAML > defaults), a pipeline of a grid, a
``NeuralRadianceField`` and a ``PackedRFTracer``, trained by a multiview trainer,
headless or in the interactive app. Differences: the grid union lists
``ShaciraGrid.from_geometric``, the trainer is ``ShaciraMultiviewTrainer`` (rate term,
``.shac`` export), and the interactive app gets the LOD-slider renderer.

This module deliberately avoids ``from __future__ import annotations``: the config
annotations (``autoconfig(...)``) must be real types at runtime.
"""
import logging
import os
from typing import Any, Optional

import torch
from wisp.accelstructs import OctreeAS
from wisp.app_utils import default_log_setup
from wisp.config import autoconfig, configure, instantiate, parse_config, print_config
from wisp.datasets import NeRFSyntheticDataset, RTMVDataset, SampleRays
from wisp.framework import WispState
from wisp.models.grids import HashGrid, OctreeGrid, TriplanarGrid
from wisp.models.nefs import NeuralRadianceField
from wisp.models.pipeline import Pipeline
from wisp.tracers import PackedRFTracer
from wisp.trainers.tracker import ConfigTracker, Tracker

from wisp_shacira.fields.wisp_bridge import user_error_cause
from wisp_shacira.wisp.grid import ShaciraGrid
from wisp_shacira.wisp.trainer import ConfigShaciraTrainer, ShaciraMultiviewTrainer


@configure
class ShaciraNeRFAppConfig:
    """ Train a NeRF whose feature grid is SHACIRA-compressed (or a Wisp baseline grid). """

    blas: autoconfig(OctreeAS.make_dense, OctreeAS.from_pointcloud)
    """ Occupancy acceleration structure of the grid (an octree, pruned during training). """
    grid: autoconfig(ShaciraGrid.from_geometric, HashGrid.from_geometric, OctreeGrid, TriplanarGrid)
    """ Feature grid: ShaciraGrid.from_geometric, or one of Wisp's uncompressed grids. """
    nef: autoconfig(NeuralRadianceField)
    """ Neural radiance field: the grid, density/colour decoders and embedders. """
    tracer: autoconfig(PackedRFTracer)
    """ Ray marching and volume integration. """
    dataset: autoconfig(NeRFSyntheticDataset, RTMVDataset)
    """ Multiview dataset (NeRF-synthetic / Blender format, or RTMV). """
    dataset_transform: autoconfig(SampleRays)
    """ Rays sampled per training image. """
    trainer: ConfigShaciraTrainer
    """ Multiview trainer plus the rate-distortion settings. """
    tracker: ConfigTracker
    """ Logs, TensorBoard / W&B, snapshots. """
    log_level: int = logging.INFO
    """ Global log level. """
    pretrained: Optional[str] = None
    """ A pretrained pipeline (.pth) to load instead of creating a new one. """
    device: str = "cuda"
    """ Device used for the optimisation. """
    interactive: bool = os.environ.get("WISP_HEADLESS") != "1"
    """ Use the interactive GUI (default unless WISP_HEADLESS=1). """


def instantiate_checked(config: Any, **kwargs: Any) -> Any:
    """``instantiate`` that re-raises our own user errors instead of Hydra's wrapper."""
    try:
        return instantiate(config, **kwargs)
    except Exception as exc:
        cause = user_error_cause(exc)
        if cause is None or cause is exc:
            raise
        raise cause from None


def build_pipeline(cfg: ShaciraNeRFAppConfig, train_dataset: Any) -> Pipeline:
    """A new pipeline (or the pretrained one) for ``cfg``."""
    if cfg.pretrained and cfg.trainer.model_format == "full":
        return torch.load(cfg.pretrained, weights_only=False)
    pointcloud = train_dataset.as_pointcloud() if train_dataset.supports_depth() else None
    blas = instantiate_checked(cfg.blas, pointcloud=pointcloud)
    grid = instantiate_checked(cfg.grid, blas=blas)
    nef = instantiate_checked(cfg.nef, grid=grid)
    pipeline = Pipeline(nef=nef, tracer=instantiate_checked(cfg.tracer))
    if cfg.pretrained and cfg.trainer.model_format == "state_dict":
        pipeline.load_state_dict(torch.load(cfg.pretrained))
    return pipeline


def run(cfg: ShaciraNeRFAppConfig) -> None:
    """Build the datasets, pipeline and trainer of ``cfg`` and train (headless or GUI)."""
    default_log_setup(cfg.log_level)
    if cfg.interactive:
        cfg.tracer.bg_color = (0.0, 0.0, 0.0)
        cfg.trainer.render_every = cfg.trainer.save_every = cfg.trainer.valid_every = -1
    print_config(cfg)
    transform = instantiate_checked(cfg.dataset_transform)
    train_dataset = instantiate_checked(cfg.dataset, transform=transform)
    validation_dataset = None
    if cfg.trainer.valid_every > -1 or cfg.trainer.mode == "validate":
        validation_dataset = train_dataset.create_split(split=cfg.trainer.valid_split,
                                                        transform=None)
    pipeline = build_pipeline(cfg, train_dataset)
    scene_state = WispState()
    tracker = Tracker(cfg=cfg.tracker, exp_name=cfg.trainer.exp_name)
    tracker.save_app_config(cfg)
    trainer = ShaciraMultiviewTrainer(cfg=cfg.trainer, pipeline=pipeline,
                                      train_dataset=train_dataset,
                                      validation_dataset=validation_dataset, tracker=tracker,
                                      device=torch.device(cfg.device), scene_state=scene_state)
    if not cfg.interactive:
        logging.info("Running headless. For the GUI, set --interactive=True or WISP_HEADLESS=0.")
        if cfg.trainer.mode == "validate":
            trainer.validate()
        else:
            trainer.train()
        return
    import wisp_shacira.wisp.renderer  # noqa: F401  (registers the LOD renderer and widget)
    from wisp.renderer.app.optimization_app import OptimizationApp
    scene_state.renderer.device = trainer.device
    app = OptimizationApp(wisp_state=scene_state, trainer_step_func=trainer.iterate,
                          experiment_name=cfg.trainer.exp_name)
    app.run()


def main() -> None:
    """Parse ``--config`` YAML and command-line overrides, then :func:`run`."""
    run(parse_config(ShaciraNeRFAppConfig, yaml_arg="--config"))
