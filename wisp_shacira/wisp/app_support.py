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
import sys
import typing
from pathlib import Path
from typing import Any, Optional

import torch
import yaml
from wisp.accelstructs import OctreeAS
from wisp.app_utils import default_log_setup
from wisp.config import autoconfig, configure, instantiate, parse_config, print_config
from wisp.datasets import NeRFSyntheticDataset, RTMVDataset, SampleRays
from wisp.framework import WispState
from wisp.models.grids import HashGrid, OctreeGrid, TriplanarGrid
from wisp.models.nefs import NeuralRadianceField
from wisp.models.pipeline import Pipeline
from wisp.tracers import PackedRFTracer
from wisp.trainers import ConfigMultiviewTrainer
from wisp.trainers.tracker import ConfigTracker, Tracker

from wisp_shacira.errors import ConfigError
from wisp_shacira.fields.wisp_bridge import WISP_YAML_NEEDED, user_error_cause, wisp_version_error
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
    """A new pipeline (or the pretrained one) for ``cfg``; a pretrained ``.shac`` file is
    loaded into a new pipeline built from ``cfg`` (its grid must be a ShaciraGrid)."""
    pretrained = Path(cfg.pretrained) if cfg.pretrained else None
    shac = pretrained is not None and pretrained.suffix.lower() == ".shac"
    if pretrained is not None and not shac and cfg.trainer.model_format == "full":
        return torch.load(pretrained, weights_only=False)
    pointcloud = train_dataset.as_pointcloud() if train_dataset.supports_depth() else None
    blas = instantiate_checked(cfg.blas, pointcloud=pointcloud)
    grid = instantiate_checked(cfg.grid, blas=blas)
    nef = instantiate_checked(cfg.nef, grid=grid)
    pipeline = Pipeline(nef=nef, tracer=instantiate_checked(cfg.tracer))
    if shac:
        if not isinstance(grid, ShaciraGrid):
            raise ConfigError(f"--pretrained {pretrained}: a .shac file loads into "
                              f"grid:ShaciraGrid.from-geometric, not {type(grid).__name__}")
        grid.load(pretrained, nef)
    elif pretrained is not None:
        pipeline.load_state_dict(torch.load(pretrained, weights_only=True))
    return pipeline


def run(cfg: ShaciraNeRFAppConfig) -> None:
    """Build the datasets, pipeline and trainer of ``cfg`` and train (headless or GUI)."""
    if cfg.trainer.mode not in ("train", "validate"):
        raise ConfigError(f"trainer.mode must be 'train' or 'validate', got {cfg.trainer.mode!r}")
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
        elif cfg.trainer.mode == "train":
            trainer.train()
        return
    import wisp_shacira.wisp.renderer  # noqa: F401  (registers the LOD renderer and widget)
    from wisp.renderer.app.optimization_app import OptimizationApp
    scene_state.renderer.device = trainer.device
    app = OptimizationApp(wisp_state=scene_state, trainer_step_func=trainer.iterate,
                          experiment_name=cfg.trainer.exp_name)
    app.run()


def constructor_choices(config_type: type) -> dict[str, list[str]]:
    """Per field of an app config built with ``autoconfig``: the constructor names its
    YAML ``constructor`` key may take (from the config classes' ``__ctor_name__``)."""
    choices: dict[str, list[str]] = {}
    for name, hint in typing.get_type_hints(config_type, include_extras=True).items():
        options = typing.get_args(hint) if typing.get_origin(hint) is typing.Union else (hint,)
        names = []
        for option in options:
            if typing.get_origin(option) is typing.Annotated:
                option = typing.get_args(option)[0]
            ctor = getattr(option, "__ctor_name__", None)
            if isinstance(ctor, str):
                names.append(ctor)
        if names:
            choices[name] = names
    return choices


PAPER_KEYS = {"grid": "grid_type", "optimizer": "optimizer_type", "latent_decoder": None,
              "entropy_reg": None}
"""Sections and keys of the official SHACIRA code's argparse YAMLs (not Wisp-main configs)."""


def check_yaml(path: str, config_type: type = ShaciraNeRFAppConfig) -> None:
    """One-line errors, before Wisp's parser, for a YAML from the SHACIRA paper's code and
    for a ``constructor`` this app does not offer (e.g. a grid class not installed).

    Raises:
        ConfigError: the problem and what to use instead.
    """
    try:
        with open(path, encoding="utf-8") as stream:
            data = yaml.safe_load(stream) or {}     # Wisp's reader (duplicate keys allowed)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a YAML mapping")
    paper = "parent" in data or any(
        key in data and (field is None or field in (data[key] or {}))
        for key, field in PAPER_KEYS.items())
    if paper:
        raise ConfigError(f"{path} is a config of the official SHACIRA code (argparse, Wisp "
                          f"0.1.0); use its translation in configs/wisp/ (paper_lego.yaml, "
                          f"paper_rtmv_v8.yaml) or see docs/wisp.md, 'Coming from the paper's code'")
    for name, names in constructor_choices(config_type).items():
        section = data.get(name)
        ctor = section.get("constructor") if isinstance(section, dict) else None
        if ctor is not None and ctor.replace("-", "_") not in [n.replace("-", "_") for n in names]:
            raise ConfigError(f"{path}: {name}.constructor {ctor!r} is not available in this app "
                              f"(installed: {', '.join(names)})")
    trainer = data.get("trainer")
    if isinstance(trainer, dict) and {"rgb_loss_type", "rgb_loss_denom"} & set(trainer):
        check_trainer_keys()


def check_trainer_keys() -> None:
    """The YAML's ``rgb_loss_type`` / ``rgb_loss_denom`` need Wisp main from ad6af84."""
    fields = getattr(ConfigMultiviewTrainer, "__dataclass_fields__", {})
    missing = [key for key in ("rgb_loss_type", "rgb_loss_denom") if key not in fields]
    if missing:
        raise wisp_version_error("a Kaolin-Wisp whose ConfigMultiviewTrainer lacks "
                                 + " and ".join(missing), WISP_YAML_NEEDED,
                                 "main between 99639ae and ad6af84; or delete those keys "
                                 "from the YAML")


def yaml_path(argv: list[str], yaml_arg: str = "--config") -> str | None:
    """The ``--config`` path of a command line (``--config PATH`` or ``--config=PATH``)."""
    for i, arg in enumerate(argv):
        if arg == yaml_arg and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(yaml_arg + "="):
            return arg.split("=", 1)[1]
    return None


def main() -> None:
    """Check the YAML and the Wisp version, parse ``--config`` YAML and command-line
    overrides, then :func:`run`."""
    path = yaml_path(sys.argv)
    if path is not None:
        check_yaml(path)
    run(parse_config(ShaciraNeRFAppConfig, yaml_arg="--config"))
