"""NeRF task: train a compressed radiance field, export ``scene.shac``, decode, report.

Outputs in the output folder: ``scene.shac`` (or, for the uncompressed baseline with
``grid.compressed: false``, ``model.pt``: a ``torch.save`` of the float weights),
``checkpoint.pt`` (training state, for ``--resume``), ``renders/NAME.png`` (held-out
views rendered from the file) and ``metrics.json``. The held-out split is ``test``
when the scene has one, else ``val``. PSNR/SSIM are measured on the 8-bit renders.
"""
from __future__ import annotations

import dataclasses
import io
import logging
import threading
from pathlib import Path

import numpy as np
import torch

from wisp_shacira.codec.model_io import ShacModel
from wisp_shacira.datasets.image import encode_png
from wisp_shacira.datasets.nerf_synthetic import (BLENDER_TO_YUP, NerfScene, load_nerf_synthetic,
                                                  read_json)
from wisp_shacira.datasets.rtmv import load_rtmv
from wisp_shacira.datasets.video import check_video_output, save_video
from wisp_shacira.errors import ConfigError
from wisp_shacira.fields.base import smallest
from wisp_shacira.fields.nerf import RadianceField
from wisp_shacira.outputs import write_atomic
from wisp_shacira.metrics import format_metric, mean_metric
from wisp_shacira.render.occupancy import DEFAULT_DENSITY_THRESHOLD
from wisp_shacira.resources import demo_data
from wisp_shacira.tasks.common import (check_not_input, prepare_decode_output, prepare_output_dir,
                                       timed, write_json, write_model)
from wisp_shacira.tasks.nerf_config import AppConfig, NerfDatasetConfig
from wisp_shacira.tasks.nerf_eval import (SceneModel, load_any_model, rebuild_occupancy,
                                          render_turntable, render_views, scene_field,
                                          scene_model_from, turntable_poses, view_metrics)
from wisp_shacira.tasks.nerf_poses import read_poses
from wisp_shacira.tasks.occupancy_file import pack_cells, pruned_field
from wisp_shacira.tasks.protocol import LodTarget, TaskSpec
from wisp_shacira.tasks.report import latent_rate_lines, rate_control_lines
from wisp_shacira.tasks.nerf_train import train_field
from wisp_shacira.train.distributed import SINGLE, DataParallel
from wisp_shacira.train.rate_control import fit_to_target, rate_target
from wisp_shacira.train.rd import resolve_device

__all__ = ["AppConfig", "TASK", "SceneSource", "run", "summary", "decode", "load_scene",
           "file_config"]

log = logging.getLogger("wisp_shacira")
DEMO_SCENE = demo_data("demo_scene")
TURNTABLE_FRAMES = 60
_YUP = BLENDER_TO_YUP[:3, :3].double()


def _blender_normalisation(root: Path) -> dict:
    """``t * scale + offset`` (Blender frame) as the loader applies it to train poses."""
    train = root / "transforms_train.json"
    meta = read_json(train if train.is_file() else root / "transforms.json")
    scale = float(meta.get("scale", 1.0)) / float(meta.get("aabb_scale", 1.25))
    return {"scale": scale, "offset": [float(v) for v in meta.get("offset", [0.0, 0.0, 0.0])]}


def _rtmv_normalisation(root: Path, scene: NerfScene) -> dict:
    """The similarity ``t * scale + offset`` (Blender frame) that maps each view's raw
    camera position to the loader's normalised one (least squares; exact up to rounding)."""
    raw = []
    for name in scene.names:
        eye = read_json(root / f"{name}.json")["camera_data"]["camera_look_at"]["eye"]
        raw.append([float(v) for v in eye])
    raw_t = torch.tensor(raw, dtype=torch.float64)
    box = scene.c2w[:, :3, 3].double() @ _YUP
    raw_c, box_c = raw_t - raw_t.mean(0), box - box.mean(0)
    scale = float((raw_c * box_c).sum() / (raw_c**2).sum().clamp_min(1e-12))
    offset = box.mean(0) - scale * raw_t.mean(0)
    return {"scale": scale, "offset": offset.tolist()}


def load_scene(data: NerfDatasetConfig) -> tuple[NerfScene, dict, Path]:
    """Load the configured scene; returns (scene, normalisation, root folder)."""
    root = Path(data.path) if data.path is not None else DEMO_SCENE
    if data.format == "blender":
        scene = load_nerf_synthetic(root, data.mip, data.bg_color, data.holdout_every or None)
        return scene, _blender_normalisation(root), root
    scene = load_rtmv(root, data.mip, data.bg_color)
    return scene, _rtmv_normalisation(root, scene), root


def held_out_split(scene: NerfScene, root: Path) -> str:
    """``test`` when present, else ``val``."""
    for name in ("test", "val"):
        if scene.splits.get(name):
            return name
    raise ConfigError(f"{root}: no held-out views (no test or val split; set dataset.holdout_every)")


def file_config(cfg: AppConfig, scene: NerfScene, norm: dict, name: str) -> dict:
    """What the file's CONFIG records: everything ``render`` needs besides poses."""
    train = scene.split("train")
    positions = train.c2w[:, :3, 3]
    fx, fy, cx, cy = (float(v) for v in train.intrinsics[0])
    return {"task": "nerf", "grid": dataclasses.asdict(cfg.grid), "nef": dataclasses.asdict(cfg.nef),
            "tracer": dataclasses.asdict(cfg.tracer),
            "occupancy": {"resolution": cfg.trainer.occupancy_resolution,
                          "subsamples": cfg.trainer.occupancy_subsamples,
                          "threshold": DEFAULT_DENSITY_THRESHOLD},
            "scene": {"name": name, "format": cfg.dataset.format, "mip": cfg.dataset.mip,
                      "height": scene.H, "width": scene.W, **norm},
            "camera": {"fx": fx, "fy": fy, "cx": cx, "cy": cy,
                       "orbit_radius": float(positions.norm(dim=-1).mean()),
                       "orbit_height": float(positions[:, 1].mean())}}


def _save_float_model(path: Path, field_: RadianceField, config: dict) -> int:
    """The uncompressed baseline: ``torch.save`` of config + float32 state_dict, atomically."""
    buffer = io.BytesIO()
    state = {k: v.detach().cpu() for k, v in field_.state_dict().items()}
    torch.save({"config": config, "state_dict": state}, buffer)
    write_atomic(path, buffer.getvalue())
    return len(buffer.getvalue())


def _input_files(root: Path, fmt: str) -> list[Path]:
    if fmt == "rtmv":
        return sorted(root.glob("*.json")) + sorted(root.glob("*.exr"))
    jsons = sorted(root.glob("transforms*.json"))
    images = []
    for path in jsons:
        doc = read_json(path)
        frames = doc.get("frames", []) if isinstance(doc, dict) else []
        for frame in frames:
            rel = frame.get("file_path") if isinstance(frame, dict) else None
            if isinstance(rel, str):
                image = root / rel.replace("\\", "/")
                images.append(image if image.suffix else image.with_name(image.name + ".png"))
    return jsons + images


def _prunes(cfg: AppConfig) -> bool:
    """Whether the export stores the occupancy and zeroes the rows it leaves unread."""
    return cfg.grid.compressed and cfg.trainer.prune_empty_space and cfg.tracer.use_occupancy


@dataclasses.dataclass
class Pruned:
    """A scene's field pruned to its occupancy (:func:`prune_empty_space`)."""

    field: RadianceField
    config: dict
    row_masks: list
    zeroed_rows: float
    occupied_cells: float

    def codings(self) -> dict[str, bytes]:
        """The pruned file's bytes in each coding the grid tries."""
        return self.field.encode_codings(self.config, row_masks=self.row_masks)

    def encode(self) -> bytes:
        """The pruned file's bytes (the smallest coding)."""
        return smallest(self.codings())[0]


def prune_empty_space(field_: RadianceField, config: dict) -> Pruned:
    """The field, CONFIG and row masks of a file that stores its occupancy (rebuilt from
    ``field_`` as a decoder of an unpruned file would) and codes only the rows read from
    inside it, the others zero (see :mod:`~wisp_shacira.tasks.occupancy_file`): the
    same render, fewer bytes."""
    occ = config["occupancy"]
    occupancy = rebuild_occupancy(field_, occ["resolution"], occ["subsamples"], occ["threshold"])
    pruned, masks, zeroed = pruned_field(field_, occupancy.occupied)
    stored = {**config, "coded_rows": "occupancy",
              "occupancy": {**occ, "cells": pack_cells(occupancy.occupied)}}
    return Pruned(pruned, stored, masks, zeroed, occupancy.occupancy_fraction())


def _export(field_: RadianceField, config: dict, out_dir: Path, prune: bool
            ) -> tuple[Path, int, dict | None, RadianceField, dict]:
    """Write the scene: ``(path, bytes, latent rate check or None for a float model, the
    field and CONFIG written)``; with ``prune``, the smaller of the pruned and the
    unpruned file (the rate check then has ``pruning``: both sizes and the fractions)."""
    if not field_.grid.config.compressed:
        path = out_dir / "model.pt"
        return path, _save_float_model(path, field_, config), None, field_, config
    field_.round_weights()
    path = out_dir / "scene.shac"
    if not prune:
        return (path, *write_model(field_, config, path), field_, config)
    pruned = prune_empty_space(field_, config)
    unpruned_codings, pruned_codings = field_.encode_codings(config), pruned.codings()
    sizes = {"unpruned": len(smallest(unpruned_codings)[0]),
             "pruned": len(smallest(pruned_codings)[0])}
    log.info("empty space: %.1f%% of the latent rows are read from no occupied cell "
             "(%.1f%% of the cells); file %d bytes pruned, %d unpruned",
             100 * pruned.zeroed_rows, 100 * pruned.occupied_cells, sizes["pruned"],
             sizes["unpruned"])
    applied = sizes["pruned"] < sizes["unpruned"]
    if applied:
        field_, config = pruned.field, pruned.config
    nbytes, rate = write_model(field_, config, path, pruned.row_masks if applied else None,
                               pruned_codings if applied else unpruned_codings)
    rate["pruning"] = {"zeroed_rows": pruned.zeroed_rows,
                       "occupied_cells": pruned.occupied_cells, **sizes, "applied": applied}
    return path, nbytes, rate, field_, config


def _export_bytes(field_: RadianceField, config: dict, prune: bool) -> int:
    """Bytes of the file :func:`_export` would write (for rate control)."""
    unpruned = len(field_.encode_shac(config)[0])
    return min(unpruned, len(prune_empty_space(field_, config).encode())) if prune else unpruned


def _grid_float_bytes(field_: RadianceField) -> int:
    """Bytes of the grid as a float32 table of decoded features (what Instant-NGP stores)."""
    return 4 * field_.grid.layout.total_rows * field_.grid.config.feature_dim


def _measure(field_: RadianceField, config: dict, path: Path, held: NerfScene,
             device: torch.device, out_dir: Path) -> dict:
    """Render the held-out views in memory and from the saved file (a fresh model built
    from the file alone); write the file's renders; return the metrics."""
    reference = render_views(scene_model_from(field_, config, str(path)), held.c2w,
                             held.intrinsics, held.H, held.W)
    with timed() as decode_time:
        decoded = render_views(load_any_model(path, device=device), held.c2w, held.intrinsics,
                               held.H, held.W)
    for name, view in zip(held.names, decoded):
        write_atomic(out_dir / "renders" / f"{name}.png",
                     encode_png(view.astype(np.float32) / 255.0, 8))
    images = held.images.cpu().numpy()
    psnrs, ssims = view_metrics(decoded, images)
    ref_psnrs, _ = view_metrics(reference, images)
    return {"psnr": float(np.mean(psnrs)), "ssim": mean_metric(ssims),
            "psnr_in_memory": float(np.mean(ref_psnrs)),
            "decode_matches": bool(np.array_equal(reference, decoded)),
            "per_view": [{"name": n, "psnr": p, "ssim": s}
                         for n, p, s in zip(held.names, psnrs, ssims)],
            "decode_seconds": decode_time[0]}


def run(cfg: AppConfig, out_dir: Path, parallel: DataParallel = SINGLE) -> dict:
    """Train, export, decode from the file and measure held-out views; writes ``metrics.json``
    (under ``torchrun``: every process trains, only the main one writes; the others
    return ``{"task", "rank"}``)."""
    if parallel.is_main:
        prepare_output_dir(out_dir)
    scene, norm, root = load_scene(cfg.dataset)
    split = held_out_split(scene, root)
    held = scene.split(split)
    outputs = [out_dir / n for n in ("scene.shac", "model.pt", "checkpoint.pt", "metrics.json")]
    outputs += [out_dir / "renders" / f"{name}.png" for name in held.names]
    inputs = _input_files(root, cfg.dataset.format)
    for path in outputs:
        check_not_input(path, inputs)
    device = resolve_device(cfg.trainer.device)
    val = scene.split("val").to(device) if scene.splits.get("val") else None
    config = file_config(cfg, scene, norm, root.resolve().name)
    target = rate_target(lambda: RadianceField(cfg.grid, cfg.nef), cfg.trainer, config, None,
                         "scene")
    train = scene.split("train").to(device)
    result, rate_search = fit_to_target(
        lambda scale: train_field(cfg, train, val, device, out_dir, config, scale, parallel),
        lambda done: done.field, config, target, "scene",
        size_of=lambda done: _export_bytes(done.field, config, _prunes(cfg)))
    if not parallel.is_main:
        return {"task": "nerf", "rank": parallel.rank}
    field_ = result.field.eval()
    path, nbytes, rate, field_, config = _export(field_, config, out_dir, _prunes(cfg))
    report = {"task": "nerf", "scene": str(root), "split": split, "views": len(held.names),
              "height": held.H, "width": held.W, "file": str(path), "bytes": nbytes, "rate": rate,
              "compressed": cfg.grid.compressed, "grid_float_bytes": _grid_float_bytes(field_),
              **_measure(field_, config, path, held, device, out_dir),
              "train_seconds": result.seconds, "iterations": cfg.trainer.iterations,
              "resumed_from": result.resumed_from, "validation": result.history,
              "rate_control": None if rate_search is None else rate_search.report(),
              "config": dataclasses.asdict(cfg)}
    if result.parallel is not None:
        report["distributed"] = result.parallel
    write_json(out_dir / "metrics.json", report)
    return report


def summary(report: dict) -> str:
    """Readable summary of a :func:`run` report, for ``wisp-shacira encode``."""
    kind = ".shac" if report["compressed"] else "uncompressed float"
    delta = report["psnr"] - report["psnr_in_memory"]
    resumed = "" if report["resumed_from"] is None else f" (resumed at step {report['resumed_from']})"
    rows = [("scene", f"{report['scene']} ({report['views']} held-out '{report['split']}' views "
                      f"of {report['width']}x{report['height']})"),
            ("held-out PSNR (from file)", f"{report['psnr']:.2f} dB"),
            ("held-out SSIM (from file)", format_metric(report["ssim"])),
            ("PSNR in memory", f"{report['psnr_in_memory']:.2f} dB (file - memory: {delta:+.3f} dB)"),
            ("file", f"{report['file']}: {report['bytes']} bytes "
                     f"({report['bytes'] / 1024:.1f} KiB, {kind})"),
            ("train", f"{report['iterations']} steps{resumed}, {report['train_seconds']:.1f} s"),
            ("decode + render", f"{report['decode_seconds']:.1f} s"),
            ("decode == exported", str(report["decode_matches"]))]
    pruning = (report.get("rate") or {}).get("pruning")
    if pruning is not None:
        rows.append(("empty space", f"{100 * pruning['zeroed_rows']:.1f}% of the latent rows "
                     f"unread ({100 * pruning['occupied_cells']:.1f}% of the cells occupied): "
                     f"{pruning['pruned']} bytes pruned, {pruning['unpruned']} unpruned; "
                     f"wrote {'pruned' if pruning['applied'] else 'unpruned'}"))
    width = max(len(label) for label, _ in rows)
    table = "\n".join(f"{label.ljust(width)}  {value}" for label, value in rows)
    return (table + latent_rate_lines([report.get("rate")], ["scene"])
            + rate_control_lines([report.get("rate_control")], ["scene"]))


def decode(path: Path, out: Path, max_lod: int | None = None, *, force: bool = False) -> Path:
    """``wisp-shacira decode`` for scenes: a turntable around the scene at the training
    resolution, as a video (``out`` ending in .mp4/.mkv/.mov/.avi) or a folder of PNGs;
    ``force`` replaces a read-only output. The output path is checked before rendering."""
    out = prepare_decode_output(TASK, Path(path), Path(out), force)
    model = load_any_model(Path(path), max_lod, views=TURNTABLE_FRAMES)
    frames = render_turntable(model, TURNTABLE_FRAMES)
    return save_video(frames, out, fps=24.0, force=force)



class SceneSource:
    """Renders a radiance-field model at any LOD with the project's tracer (a
    :class:`~wisp_shacira.tasks.protocol.SceneSource`).

    The occupancy grid of each LOD is rebuilt from that LOD's density (as a decoder
    of the prefix would) and cached. Renders are serialised by a lock, so viewer
    threads can share one source.
    """

    view = "scene"

    def __init__(self, model: ShacModel, name: str) -> None:
        self.name, self.meta, self.num_levels = name, model.config, model.num_levels
        self.field, cfg = scene_field(model, name)
        self.height, self.width = cfg.scene.height, cfg.scene.width
        self._scenes: dict[int, SceneModel] = {}
        self._lock = threading.Lock()

    def _scene(self, lod: int) -> SceneModel:
        if lod not in self._scenes:
            self._scenes[lod] = scene_model_from(self.field, self.meta, self.name, lod)
        return self._scenes[lod]

    @torch.no_grad()
    def render(self, lod: int, c2w: torch.Tensor, intrinsics: torch.Tensor, height: int,
               width: int) -> np.ndarray:
        with self._lock:
            return render_views(self._scene(lod), c2w, intrinsics, height, width)

    def camera(self) -> dict:
        return dict(self.meta["camera"])

    def default_view(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The first turntable camera at the training resolution: ([1, 4, 4], [1, 4])."""
        cam = self.camera()
        intr = torch.tensor([[float(cam[k]) for k in ("fx", "fy", "cx", "cy")]])
        return turntable_poses(cam, 1), intr

    def turntable(self, lod: int, frames: int = TURNTABLE_FRAMES) -> np.ndarray:
        """A turntable at the training resolution and LOD ``lod``: [F, H, W, 3] uint8."""
        cam = self.camera()
        intr = torch.tensor([[float(cam[k]) for k in ("fx", "fy", "cx", "cy")]] * frames)
        return self.render(lod, turntable_poses(cam, frames), intr, self.height, self.width)

    def write(self, lod: int, out: Path, force: bool = False) -> Path:
        return save_video(self.turntable(lod), out, fps=24.0, force=force)


def lod_target(model: ShacModel, name: str, reference: Path | None, poses: Path | None,
               max_views: int | None) -> LodTarget:
    """What ``wisp-shacira lod`` renders and compares with: the views of ``poses`` that
    have images (at most ``max_views``), or the first turntable view at the highest LOD."""
    if reference is not None:
        raise ConfigError("a scene is compared with views: give --poses, not --reference")
    source = SceneSource(model, name)
    c2w, intr = source.default_view()
    height, width, ref = source.height, source.width, None
    label = "full LOD at the first turntable view (no poses given)"
    if poses is not None:
        views = read_poses(poses, model.config)
        keep = [i for i, img in enumerate(views.images) if img is not None] or \
            list(range(len(views.images)))
        keep = keep[:max_views] if max_views else keep
        c2w, intr, height, width = views.c2w[keep], views.intrinsics[keep], views.height, views.width
        if views.images[keep[0]] is not None:
            ref = np.stack([views.images[i] for i in keep])
            label = f"{len(keep)} views of {poses}"
        else:
            label = f"full LOD at {len(keep)} views of {poses} (no images found)"
    return LodTarget(lambda prefix, lod: SceneSource(prefix, name).render(lod, c2w, intr,
                                                                          height, width),
                     ref, label)


def decode_output(source: Path, out: Path) -> Path:
    """A scene decodes to a turntable: a video file (.mp4, ...) or a folder of frames."""
    return check_video_output(out)


TASK = TaskSpec(name="nerf", description="a nerf scene", config_type=AppConfig, run=run,
                summary=summary, decode_output=decode_output, decode=decode,
                open_source=SceneSource, lod_target=lod_target, data_parallel=True)
