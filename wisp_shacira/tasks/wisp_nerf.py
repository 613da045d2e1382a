"""Scenes trained in Kaolin-Wisp (task ``wisp_nerf``): decode, render, LOD, view without Wisp.

``app/main_wisp.py`` (the Kaolin-Wisp adapter, :mod:`wisp_shacira.wisp`) writes these
files on a CUDA machine; this task reads them anywhere: the CONFIG records the grid,
Wisp's ``NeuralRadianceField`` architecture (``nef``, rebuilt in plain PyTorch by
:class:`~wisp_shacira.fields.wisp_nerf.WispRadianceField`), the ``wisp`` section
(file format, multiscale type, the user's Wisp configuration), and the sections every
scene file has (``tracer``, ``occupancy``, ``scene``, ``camera``), so
``wisp-shacira render|lod|view|decode|info`` work as for ``nerf`` files. Rendering
uses this package's tracer, not Wisp's octree marcher: views agree with Wisp's up to
the sampling of the rays, and exactly with the adapter's model rendered by this tracer.

Training is Wisp's: ``wisp-shacira encode`` refuses this task with a pointer to the app.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from wisp_shacira.codec import limits
from wisp_shacira.codec.model_io import ShacModel
from wisp_shacira.errors import BitstreamError, ConfigError
from wisp_shacira.fields.wisp_bridge import WISP_FILE_FORMAT, WISP_TASK
from wisp_shacira.fields.wisp_nerf import MULTISCALE_TYPES, WispNefConfig, WispRadianceField
from wisp_shacira.grid.shacira_grid import GridConfig
from wisp_shacira.render.occupancy import DEFAULT_DENSITY_THRESHOLD
from wisp_shacira.render.tracer import TracerConfig
from wisp_shacira.tasks import nerf
from wisp_shacira.tasks.decoding import build_field, parse_file_config
from wisp_shacira.tasks.nerf_config import NerfDatasetConfig
from wisp_shacira.tasks.nerf_eval import (CameraMeta, OccupancyMeta, SceneMeta, check_render_limits,
                                          scene_bytes)
from wisp_shacira.tasks.protocol import TaskSpec

OCCUPANCY_RESOLUTION = 64
"""Cells per axis of the occupancy grid a decoder rebuilds for a Wisp scene (Wisp's own
octree is not stored; 64^3 cells with one-cell dilation only skip empty space)."""


@dataclass
class WispSection:
    """The ``wisp`` section: file format, Wisp grid aggregation, the user's Wisp config."""

    format: int
    multiscale_type: Literal["cat", "sum"] = "cat"
    app: Any = None

    def check(self) -> None:
        if self.format != WISP_FILE_FORMAT:
            raise ConfigError(f"wisp.format {self.format} is not {WISP_FILE_FORMAT}")


@dataclass
class WispSceneFileConfig:
    """The CONFIG section of a ``wisp_nerf`` file (format 2)."""

    task: Literal["wisp_nerf"]
    grid: GridConfig
    nef: WispNefConfig
    wisp: WispSection
    tracer: TracerConfig
    occupancy: OccupancyMeta
    scene: SceneMeta
    camera: CameraMeta


@dataclass
class WispNerfConfig:
    """``task: wisp_nerf`` for ``wisp-shacira encode``: trained by ``app/main_wisp.py`` only."""

    task: Literal["wisp_nerf"] = "wisp_nerf"


def _check_format(model: ShacModel, name: str) -> None:
    section = model.config.get("wisp")
    fmt = section.get("format") if isinstance(section, dict) else None
    if fmt is None:
        raise BitstreamError(
            f"{name}: written by an earlier Kaolin-Wisp adapter (wisp_nerf format 1: no scene, "
            f"tracer or camera sections), which only Wisp can render; re-export it with this "
            f"version (ShaciraGrid.load then ShaciraMultiviewTrainer.export_shac)")
    if fmt != WISP_FILE_FORMAT:
        raise BitstreamError(f"{name}: wisp_nerf format {fmt!r}; this version reads format "
                             f"{WISP_FILE_FORMAT} (upgrade wisp-shacira)")


def wisp_scene_field(model: ShacModel, name: str, views: int = 1
                     ) -> tuple[WispRadianceField, WispSceneFileConfig]:
    """The rebuilt Wisp radiance field of a decoded ``wisp_nerf`` file, after checking its
    configuration, weights and the memory of rendering ``views`` views."""
    if model.config.get("task") == WISP_TASK:
        _check_format(model, name)
    cfg = parse_file_config(WispSceneFileConfig, model, name)
    check_render_limits(cfg, name)
    field = build_field(lambda: WispRadianceField(cfg.grid, cfg.nef, cfg.wisp.multiscale_type),
                        model, name, lambda probe: scene_bytes(probe, cfg, views),
                        f"{views} views of {cfg.scene.width}x{cfg.scene.height}")
    return field, cfg


def scene_sections(dataset: NerfDatasetConfig) -> dict:
    """The ``scene`` and ``camera`` sections for the scene folder Wisp trained on (read with
    this package's loaders, whose normalisation is Wisp's).

    Raises:
        DataError, ConfigError: the folder cannot be read.
    """
    scene, norm, root = nerf.load_scene(dataset)
    train = scene.split("train")
    positions = train.c2w[:, :3, 3]
    fx, fy, cx, cy = (float(v) for v in train.intrinsics[0])
    return {"scene": {"name": root.resolve().name, "format": dataset.format, "mip": dataset.mip,
                      "height": scene.H, "width": scene.W, **norm},
            "camera": {"fx": fx, "fy": fy, "cx": cx, "cy": cy,
                       "orbit_radius": float(positions.norm(dim=-1).mean()),
                       "orbit_height": float(positions[:, 1].mean())}}


def default_scene_sections(name: str, height: int, width: int, mip: int = 0) -> dict:
    """``scene`` and ``camera`` sections with Wisp's NeRF-synthetic defaults (``aabb_scale``
    1.25, no offset; the Blender scenes' 0.6911 rad field of view and 4.03 orbit radius),
    for a scene folder that cannot be read at export."""
    focal = 0.5 * width / math.tan(0.5 * 0.6911112070083618)
    return {"scene": {"name": name, "format": "blender", "mip": mip, "height": height,
                      "width": width, "scale": 0.8, "offset": [0.0, 0.0, 0.0]},
            "camera": {"fx": focal, "fy": focal, "cx": width / 2.0, "cy": height / 2.0,
                       "orbit_radius": 4.031128857175551 * 0.8, "orbit_height": 0.0}}


def file_sections(nef_cfg: WispNefConfig, multiscale_type: str, app: dict,
                  bg_color: tuple[float, float, float], num_steps: int, scene: dict) -> dict:
    """Every CONFIG section of a ``wisp_nerf`` file besides ``task`` and ``grid``.

    Args:
        app: the user's Wisp configuration (``fields.wisp_bridge.user_config``).
        bg_color, num_steps: the Wisp tracer's background and samples per ray.
        scene: :func:`scene_sections`.
    """
    if multiscale_type not in MULTISCALE_TYPES:
        raise ConfigError(f"grid.multiscale_type must be one of {list(MULTISCALE_TYPES)}")
    tracer = TracerConfig(num_samples=max(1, min(int(num_steps), limits.MAX_TRACER_SAMPLES)),
                          bg_color=tuple(float(c) for c in bg_color))
    tracer.check()
    return {"nef": dataclasses.asdict(nef_cfg),
            "wisp": {"format": WISP_FILE_FORMAT, "multiscale_type": multiscale_type, "app": app},
            "tracer": dataclasses.asdict(tracer),
            "occupancy": {"resolution": OCCUPANCY_RESOLUTION, "subsamples": 2,
                          "threshold": DEFAULT_DENSITY_THRESHOLD}, **scene}


def run(cfg: WispNerfConfig, out_dir: Path) -> dict:
    """Not trainable here: Wisp scenes are trained by ``app/main_wisp.py``."""
    raise ConfigError("wisp_nerf scenes are trained in Kaolin-Wisp with app/main_wisp.py "
                      "(see docs/wisp.md); use task: nerf to train a scene with this package")


def summary(report: dict) -> str:
    """One line per report entry (``run`` never makes one)."""
    return "\n".join(f"{key}: {value}" for key, value in report.items())


TASK = TaskSpec(name=WISP_TASK, description="a Kaolin-Wisp nerf scene",
                config_type=WispNerfConfig, run=run, summary=summary,
                decode_output=nerf.decode_output, decode=nerf.decode,
                open_source=nerf.SceneSource, lod_target=nerf.lod_target)

__all__ = ["TASK", "WispNerfConfig", "WispSceneFileConfig", "WispSection", "default_scene_sections",
           "file_sections",
           "scene_sections", "wisp_scene_field"]
