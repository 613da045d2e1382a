"""Evaluation side of the NeRF task: rebuild a radiance field from a file and render it.

Encoder and decoder share these functions, so the views measured before export are
the views a decoder renders from the file. The occupancy grid used for rendering is
stored in the file (:mod:`~wisp_shacira.tasks.occupancy_file`), or, in files without
it, recomputed deterministically from the field's density by :func:`rebuild_occupancy`
(``subsamples^3`` fixed points per cell).
Rendered views are rounded to 8 bits (what the PNGs hold) before any metric.
"""
from __future__ import annotations

import io
import math
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from wisp_shacira.codec import limits
from wisp_shacira.codec.limits import (MAX_IMAGE_SIDE, MAX_OCCUPANCY_RESOLUTION,
                                       MAX_OCCUPANCY_SUBSAMPLES)
from wisp_shacira.codec.model_io import ShacModel, read_shac, register_row_masks
from wisp_shacira.config import build_config, require
from wisp_shacira.datasets.nerf_synthetic import BLENDER_TO_YUP
from wisp_shacira.datasets.rtmv import look_at_c2w
from wisp_shacira.errors import BitstreamError, ConfigError
from wisp_shacira.fields.nerf import NerfNefConfig, RadianceField
from wisp_shacira.grid.exact import exact_sin_cos, exact_sum
from wisp_shacira.grid.hashing import make_layout
from wisp_shacira.grid.occupied_rows import occupied_rows, working_bytes
from wisp_shacira.grid.shacira_grid import GridConfig
from wisp_shacira.metrics import psnr, ssim
from wisp_shacira.render.occupancy import OccupancyGrid
from wisp_shacira.render.tracer import Tracer, TracerConfig
from wisp_shacira.tasks.decoding import build_field, eval_bytes, parse_file_config
from wisp_shacira.tasks.occupancy_file import coded_masks, unpack_cells

OCCUPANCY_CHUNK = 1 << 16


@dataclass
class SceneModel:
    """A radiance field ready to render, rebuilt from a file.

    Attributes:
        field: the field (eval mode).
        tracer: the tracer configured as in training.
        occupancy: the occupancy grid rebuilt from the field.
        meta: the file's CONFIG (``scene``, ``camera``, ``occupancy``, ... sections).
        lod: levels used (None = all), for the occupancy and every render.
    """

    field: RadianceField
    tracer: Tracer
    occupancy: OccupancyGrid
    meta: dict
    lod: int | None = None


@torch.no_grad()
def rebuild_occupancy(field: RadianceField, resolution: int, subsamples: int,
                      threshold: float, lod: int | None = None) -> OccupancyGrid:
    """Occupancy from the field's density: per cell the maximum density over a fixed
    ``subsamples^3`` lattice inside it; occupied above ``min(mean, threshold)`` (the
    mean a fixed-point sum: no machine's summation order moves a cell across it), then
    dilated by one cell (so thin surfaces between lattice points are kept)."""
    device = next(field.parameters()).device
    grid = OccupancyGrid(resolution, threshold=threshold, warmup_steps=0).to(device)
    offsets = (torch.arange(subsamples, device=device, dtype=torch.float32) + 0.5) / subsamples
    lattice = torch.stack(torch.meshgrid(offsets, offsets, offsets, indexing="ij"), -1).reshape(-1, 3)
    cells = torch.arange(grid.num_cells, device=device)
    corners = grid.cell_points(cells, jitter=False) - 1.0 / resolution
    best = torch.zeros(grid.num_cells, device=device)
    step = max(1, OCCUPANCY_CHUNK // len(lattice))
    query = field.query(lod)
    for start in range(0, grid.num_cells, step):
        part = corners[start:start + step]
        pts = (part[:, None, :] + lattice[None] * (2.0 / resolution)).reshape(-1, 3)
        best[start:start + len(part)] = query.density(pts).reshape(len(part), -1).amax(1)
    grid.density.copy_(best.reshape(grid.density.shape))
    occupied = grid.density > min(float(exact_sum(best, 0)) / best.numel(), threshold)
    dilated = F.max_pool3d(occupied[None, None].float(), 3, stride=1, padding=1)[0, 0] > 0
    grid.occupied.copy_(dilated)
    return grid


@torch.no_grad()
def render_views(model: SceneModel, c2w: torch.Tensor, intrinsics: torch.Tensor,
                 height: int, width: int) -> np.ndarray:
    """Render views with the packed tracer (deterministic sample midpoints).

    Args:
        c2w: [V, 4, 4] camera-to-world in the normalised box (OpenGL axes).
        intrinsics: [V, 4] (fx, fy, cx, cy) in pixels at ``height x width``.
    Returns:
        [V, H, W, 3] uint8.
    """
    device = next(model.field.parameters()).device
    out = np.empty((len(c2w), height, width, 3), dtype=np.uint8)
    query = model.field.query(model.lod)
    for v in tqdm(range(len(c2w)), desc="views", unit="view", leave=False,
                  disable=len(c2w) * height * width < 1 << 18):
        fx, fy, cx, cy = (float(x) for x in intrinsics[v])
        rgb = model.tracer.render_image(query, c2w[v].to(device), fx, fy, cx, cy,
                                        height, width, model.occupancy)["rgb"]
        out[v] = torch.round(rgb.clamp(0, 1) * 255).to(torch.uint8).cpu().numpy()
    return out


def view_metrics(renders: np.ndarray, images: np.ndarray) -> tuple[list[float], list[float]]:
    """PSNR and SSIM of each view: ``renders [V, H, W, 3]`` uint8 vs ``images`` float in [0, 1]."""
    pred = renders.astype(np.float64) / 255.0
    pairs = [(p, np.asarray(g, dtype=np.float64)) for p, g in zip(pred, images)]
    return [psnr(p, g) for p, g in pairs], [ssim(p, g) for p, g in pairs]


@dataclass
class OccupancyMeta:
    """The ``occupancy`` section: how the decoder rebuilds the occupancy grid, or the
    grid itself (``cells``, see :mod:`~wisp_shacira.tasks.occupancy_file`; files before
    2026-12-04 have none)."""

    resolution: int
    subsamples: int
    threshold: float
    cells: str | None = None

    def check(self) -> None:
        require(1 <= self.resolution <= MAX_OCCUPANCY_RESOLUTION,
                f"occupancy.resolution must be 1..{MAX_OCCUPANCY_RESOLUTION}, got {self.resolution}")
        require(1 <= self.subsamples <= MAX_OCCUPANCY_SUBSAMPLES, f"occupancy.subsamples must be "
                f"1..{MAX_OCCUPANCY_SUBSAMPLES}, got {self.subsamples}")
        require(self.threshold >= 0, f"occupancy.threshold must be >= 0, got {self.threshold}")


@dataclass
class SceneMeta:
    """The ``scene`` section: source scene, training resolution, pose normalisation."""

    name: str
    format: str
    mip: int
    height: int
    width: int
    scale: float
    offset: tuple[float, float, float]

    def check(self) -> None:
        require(1 <= self.height <= MAX_IMAGE_SIDE and 1 <= self.width <= MAX_IMAGE_SIDE,
                f"scene size {self.width}x{self.height} outside 1..{MAX_IMAGE_SIDE}")
        require(self.scale > 0, f"scene.scale must be > 0, got {self.scale}")


@dataclass
class CameraMeta:
    """The ``camera`` section: training intrinsics and the mean orbit (for turntables)."""

    fx: float
    fy: float
    cx: float
    cy: float
    orbit_radius: float
    orbit_height: float

    def check(self) -> None:
        require(self.fx > 0 and self.fy > 0, f"camera focal lengths must be > 0, got "
                                             f"{self.fx}, {self.fy}")


@dataclass
class SceneFileConfig:
    """The CONFIG section of a scene ``.shac`` file (see ``tasks.nerf.file_config``)."""

    task: Literal["nerf"]
    grid: GridConfig
    nef: NerfNefConfig
    tracer: TracerConfig
    occupancy: OccupancyMeta
    scene: SceneMeta
    camera: CameraMeta
    coded_rows: Literal["occupancy"] | None = None


def scene_bytes(field: RadianceField, cfg: SceneFileConfig, views: int) -> float:
    """Memory of rebuilding the occupancy grid and rendering ``views`` views (an upper
    estimate): the occupancy cells, the tracer's dense per-sample arrays of one ray
    chunk, one field call (at most a chunk's rays times one marching segment's samples,
    see :meth:`Tracer._evaluate`), the rays and the rendered views."""
    cells = cfg.occupancy.resolution ** 3
    tracer = cfg.tracer
    samples = tracer.chunk_size * tracer.num_samples
    evaluated = tracer.chunk_size * -(-tracer.num_samples // tracer.segments)
    pixels = cfg.scene.height * cfg.scene.width
    return (cells * 48 + eval_bytes(field, max(OCCUPANCY_CHUNK, evaluated)) + samples * 64
            + pixels * 96 + views * pixels * 3 * 2)


def scene_model_from(field: RadianceField, meta: dict, name: str,
                     lod: int | None = None) -> SceneModel:
    """Wrap a trained or decoded field (already in eval mode) with its tracer and its
    occupancy: the file's cells when it stores them (the same for every LOD), else the
    grid rebuilt at LOD ``lod`` (levels used; None = all)."""
    try:
        tracer = Tracer(build_config(TracerConfig, meta["tracer"], "tracer"))
        occ = build_config(OccupancyMeta, meta["occupancy"], "occupancy")
    except (KeyError, TypeError, ConfigError) as exc:
        raise BitstreamError(f"{name}: malformed scene configuration ({exc})") from exc
    if occ.cells is None:
        occupancy = rebuild_occupancy(field, occ.resolution, occ.subsamples, occ.threshold, lod)
    else:
        occupancy = OccupancyGrid(occ.resolution, threshold=occ.threshold, warmup_steps=0)
        occupancy.occupied.copy_(unpack_cells(occ.cells, occ.resolution, name))
        occupancy = occupancy.to(next(field.parameters()).device)
    return SceneModel(field, tracer, occupancy, meta, lod)


def _build_field(meta: dict, name: str) -> RadianceField:
    """A float baseline's field from its saved configuration."""
    if meta.get("task") != "nerf":
        raise BitstreamError(f"{name}: holds a {meta.get('task')!r} model, not a nerf scene")
    try:
        grid_cfg = build_config(GridConfig, meta["grid"], "grid")
        nef_cfg = build_config(NerfNefConfig, meta["nef"], "nef")
        for key in ("scene", "camera", "occupancy", "tracer"):
            if not isinstance(meta[key], dict):
                raise TypeError(f"section {key} is not a mapping")
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise BitstreamError(f"{name}: malformed nerf configuration ({exc})") from exc
    return RadianceField(grid_cfg, nef_cfg)


def check_render_limits(cfg: SceneFileConfig, name: str) -> None:
    """Decoder bounds of the tracer and occupancy sections of a scene file."""
    limits.require_in(cfg.tracer.num_samples, 1, limits.MAX_TRACER_SAMPLES, "tracer.num_samples",
                      name)
    limits.require_in(cfg.tracer.chunk_size, 1, limits.MAX_TRACER_CHUNK, "tracer.chunk_size", name)
    limits.require_in(cfg.tracer.segments, 1, limits.MAX_TRACER_SEGMENTS, "tracer.segments", name)
    points = (cfg.occupancy.resolution * cfg.occupancy.subsamples) ** 3
    limits.require_in(points, 1, limits.MAX_OCCUPANCY_POINTS,
                      "occupancy points (resolution x subsamples)^3", name)


def scene_row_masks(model: ShacModel, name: str) -> list[np.ndarray | None]:
    """The coded rows of a scene file with ``coded_rows: "occupancy"`` (registered with
    the codec, :func:`~wisp_shacira.codec.model_io.register_row_masks`): its CONFIG is
    checked as a scene decoder checks it, and the memory of deriving the rows, before
    the stored cells are unpacked."""
    cfg = parse_file_config(SceneFileConfig, model, name)
    if cfg.coded_rows != "occupancy" or cfg.occupancy.cells is None:
        raise BitstreamError(f"{name}: coded_rows {cfg.coded_rows!r} without stored "
                             f"occupancy cells")
    grid, resolution = cfg.grid, cfg.occupancy.resolution
    layout = make_layout(3, grid.min_res, grid.max_res, grid.num_levels, grid.log2_table_size)
    if list(layout.table_sizes) != list(model.level_rows):
        raise BitstreamError(f"{name}: the grid configuration does not give the file's levels")
    limits.check_memory(working_bytes(layout, resolution), f"the latent rows that a "
                        f"{resolution}^3 occupancy grid keeps", name)
    return coded_masks(layout, occupied_rows(layout, unpack_cells(cfg.occupancy.cells,
                                                                  resolution, name)))


register_row_masks("occupancy", scene_row_masks)


def scene_field(model: ShacModel, name: str, views: int = 1) -> tuple[RadianceField,
                                                                      SceneFileConfig]:
    """The radiance field of a decoded scene file, after checking its configuration, its
    weights and the memory of rendering ``views`` views (a Kaolin-Wisp scene's field is
    built by ``tasks.wisp_nerf``)."""
    if model.config.get("task") == "wisp_nerf":
        from wisp_shacira.tasks.wisp_nerf import wisp_scene_field
        return wisp_scene_field(model, name, views)
    cfg = parse_file_config(SceneFileConfig, model, name)
    check_render_limits(cfg, name)
    field = build_field(lambda: RadianceField(cfg.grid, cfg.nef), model, name,
                        lambda probe: scene_bytes(probe, cfg, views),
                        f"{views} views of {cfg.scene.width}x{cfg.scene.height}")
    return field, cfg


def load_scene_model(path: Path, max_lod: int | None = None,
                     device: torch.device | None = None, views: int = 1) -> SceneModel:
    """Decode a scene ``.shac`` file (the file alone) into a renderable model.

    Args:
        max_lod: use the first ``max_lod`` levels only (None = all).
        device: where to render (default CPU).
        views: how many views the caller will render (for the memory check).
    """
    model: ShacModel = read_shac(path, max_lod=max_lod)
    if not model.levels:
        raise BitstreamError(f"{path}: no latent level to decode")
    field, _ = scene_field(model, str(path), views)
    field = field.to(device or torch.device("cpu")).eval()
    return scene_model_from(field, model.config, str(path), len(model.levels))


def load_float_model(path: Path, device: torch.device | None = None) -> SceneModel:
    """Load an uncompressed baseline saved by the NeRF task (``torch.save`` of config + weights)."""
    try:
        saved = torch.load(io.BytesIO(Path(path).read_bytes()), map_location="cpu", weights_only=True)
        meta, state = saved["config"], saved["state_dict"]
    except FileNotFoundError as exc:
        raise BitstreamError(f"{path}: no such file") from exc
    except (OSError, RuntimeError, KeyError, TypeError, EOFError, pickle.UnpicklingError,
            zipfile.BadZipFile) as exc:
        raise BitstreamError(f"{path}: not a saved baseline model ({exc})".replace("\n", " ")) from exc
    field = _build_field(meta, str(path))
    try:
        field.load_state_dict(state)
    except (RuntimeError, TypeError) as exc:
        raise BitstreamError(f"{path}: weights do not match the configuration") from exc
    return scene_model_from(field.to(device or torch.device("cpu")).eval(), meta, str(path))


def box_poses(raw_c2w: torch.Tensor, scene_meta: dict) -> torch.Tensor:
    """Blender-world camera-to-world ``[V, 4, 4]`` -> normalised box (Y up): translations
    become ``t * scale + offset`` (Blender frame), then the Z-up -> Y-up change of basis."""
    poses = raw_c2w.to(torch.float64).clone()
    poses[:, :3, 3] = poses[:, :3, 3] * float(scene_meta["scale"]) + torch.tensor(
        scene_meta["offset"], dtype=torch.float64)
    return (BLENDER_TO_YUP.to(torch.float64) @ poses).float()


def turntable_poses(camera: dict, frames: int) -> torch.Tensor:
    """Cameras on a horizontal circle around the box centre, looking at it.

    Args:
        camera: the file's ``camera`` section (``orbit_radius``, ``orbit_height``).
    Returns:
        [frames, 4, 4] camera-to-world (box frame, Y up).
    """
    radius, height = float(camera["orbit_radius"]), float(camera["orbit_height"])
    up, at = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    angles = torch.tensor([2.0 * math.pi * k / frames for k in range(frames)],
                          dtype=torch.float64)
    sin, cos = exact_sin_cos(angles)
    poses = [look_at_c2w(torch.stack([radius * s, torch.tensor(height, dtype=torch.float64),
                                      radius * c]), at, up)
             for s, c in zip(sin, cos)]
    return torch.stack(poses).float()


def render_turntable(model: SceneModel, frames: int) -> np.ndarray:
    """A turntable of ``frames`` views at the training resolution: [frames, H, W, 3] uint8."""
    cam = model.meta["camera"]
    try:
        height, width = int(model.meta["scene"]["height"]), int(model.meta["scene"]["width"])
        intr = torch.tensor([[float(cam[k]) for k in ("fx", "fy", "cx", "cy")]] * frames)
    except (KeyError, TypeError, ValueError) as exc:
        raise BitstreamError(f"malformed camera section in the file ({exc})") from exc
    return render_views(model, turntable_poses(cam, frames), intr, height, width)


def load_any_model(path: Path, max_lod: int | None = None,
                   device: torch.device | None = None, views: int = 1) -> SceneModel:
    """A ``.shac`` scene, or (for any other suffix) a saved uncompressed baseline."""
    if Path(path).suffix.lower() == ".shac":
        return load_scene_model(path, max_lod, device, views)
    if max_lod is not None:
        raise ConfigError(f"{path}: --max-lod needs a .shac file")
    return load_float_model(path, device)
