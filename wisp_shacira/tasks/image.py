"""Image task: compress each image into a ``.shac`` file, decode it, report quality.

Per image ``NAME``: ``NAME.shac`` (the compressed image), ``NAME.png`` (decoded from
that file), and an entry in ``metrics.json`` (PSNR, SSIM, BPP from the file size,
encode and decode seconds).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from wisp_shacira.codec.limits import check_memory
from wisp_shacira.codec.model_io import ShacModel, read_shac
from wisp_shacira.config import require
from wisp_shacira.datasets.image import ImageData, encode_png, list_images, load_image
from wisp_shacira.datasets.large_image import read_header
from wisp_shacira.datasets.tiled_output import TIFF_OUTPUT_SUFFIXES
from wisp_shacira.errors import ConfigError, DataError, OutputError
from wisp_shacira.fields.image import ImageField, ImageNefConfig
from wisp_shacira.grid.fast import build_plan
from wisp_shacira.grid.shacira_grid import GridConfig
from wisp_shacira.metrics import mean_metric, psnr, ssim
from wisp_shacira.outputs import write_atomic
from wisp_shacira.resources import demo_data
from wisp_shacira.tasks import image_large
from wisp_shacira.tasks.common import (Trained, batch_mse, check_not_input, global_batch_table,
                                       prepare_decode_output, prepare_output_dir,
                                       seed_everything, tensorboard_writer, timed, write_json,
                                       write_model)
from wisp_shacira.tasks.decoding import EVAL_CHUNK, parse_file_config
from wisp_shacira.tasks.image_file import (ImageFileConfig, ImageMeta, decode_field,
                                           field_from_model, file_config)
from wisp_shacira.tasks.image_large import default_suffix, use_out_of_core
from wisp_shacira.tasks.image_tiles import (DEFAULT_TILE, Window, evaluate, pixel_centres,
                                            render_window, write_window)
from wisp_shacira.tasks.protocol import LodTarget, TaskSpec
from wisp_shacira.tasks.report import format_table, latent_rate_lines, rate_control_lines
from wisp_shacira.train.config import TrainerConfig
from wisp_shacira.train.distributed import SINGLE, DataParallel
from wisp_shacira.train.rate_control import (RateSearch, file_size_probe, fit_to_target,
                                             pass_label, rate_target)
from wisp_shacira.train.rd import Distortion, RDTrainer, resolve_device

DEMO_IMAGE = demo_data("demo_image.png")


@dataclass
class ImageDatasetConfig:
    """Input (YAML section ``dataset``).

    Attributes:
        path: an image file or a folder of images; None = the bundled demo image.
        out_of_core: ``auto`` | ``always`` | ``never``: train on random pixel batches of
            8/16-bit pixels kept in memory or memory-mapped, and decode and measure tile
            by tile (auto: above 16 Mpixels, or when the in-memory path would not
            precompute its plans). PNG, TIFF/BigTIFF and JPEG are read by strip or tile.
        tile: tile side of the out-of-core path (reading, metrics, output), 16..8192.
        cache_dir: where a cache of the pixels goes when they do not fit in memory
            (None = the output folder).
    """

    path: str | None = None
    out_of_core: Literal["auto", "always", "never"] = "auto"
    tile: int = DEFAULT_TILE
    cache_dir: str | None = None

    def check(self) -> None:
        require(16 <= self.tile <= 8192, f"dataset.tile must be in 16..8192, got {self.tile}")


@dataclass
class AppConfig:
    """Configuration of ``wisp-shacira encode`` for the image task.

    Attributes:
        output: output folder (None = ``runs/image-<time>``).
    """

    task: Literal["image"] = "image"
    output: str | None = None
    grid: GridConfig = field(default_factory=GridConfig)
    nef: ImageNefConfig = field(default_factory=ImageNefConfig)
    dataset: ImageDatasetConfig = field(default_factory=ImageDatasetConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def check(self) -> None:
        require(self.nef.hidden_dim >= 1 and self.nef.num_layers >= 0,
                "nef.hidden_dim must be >= 1 and nef.num_layers >= 0")
        require(self.grid.compressed, "the image task writes .shac files: grid.compressed must be true")


def pixel_coords(height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """Pixel-centre coordinates, row-major.

    Returns:
        [H * W, 2] (x, y) in (0, 1).
    """
    return pixel_centres(torch.arange(height, device=device), torch.arange(width, device=device),
                         height, width)


def render(field_: ImageField, height: int, width: int, lod: int | None = None,
           chunk: int = EVAL_CHUNK) -> np.ndarray:
    """Evaluate the field on every pixel at LOD ``lod`` (levels used; None = all), in
    chunks (:func:`~wisp_shacira.tasks.image_tiles.evaluate`: the table decoded once).

    Returns:
        [H, W, C] float32 clipped to [0, 1].
    """
    device = next(field_.parameters()).device
    out = evaluate(field_, pixel_coords(height, width, device), lod, chunk=chunk)
    return out.reshape(height, width, -1).cpu().numpy()


def _quantized(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    peak = 2**bit_depth - 1
    return np.round(np.clip(pixels, 0, 1) * peak) / peak


PLAN_LIMIT = 1 << 25
"""Largest ``pixels * levels`` for which mini-batch training precomputes encoding plans
(about 64 bytes per pixel and level: ~2 GiB)."""


def _distortion(field_: ImageField, coords: torch.Tensor, target: torch.Tensor,
                batch_size: int, seed: int, parallel: DataParallel = SINGLE) -> Distortion:
    """``distortion(tau)``: the MSE of one step in phase ``tau``, on the full image or on
    mini-batches of ``batch_size`` pixels (in a data-parallel run: this rank's slice of
    each, weighted; see :mod:`~wisp_shacira.train.distributed`).

    Mini-batches partition the pixels at random into fixed subsets, each with its own
    precomputed encoding plan, visited in a new random order every epoch (so every
    pixel counts once per epoch, at the speed of the planned path). Above
    :data:`PLAN_LIMIT` pixels are drawn at random and encoded on the fly.

    Raises:
        ConfigError: a batch the processes cannot share (not divisible, or a subset
            smaller than the number of processes).
    """
    num = len(coords)
    if batch_size == 0 or batch_size >= num:
        start, stop = parallel.bounds(num)
        plan = build_plan(coords[start:stop], field_.grid.layout)
        weight = parallel.weight(stop - start, num)
        return lambda tau: batch_mse(field_(None, tau=tau, plan=plan), target[start:stop], weight)
    parallel.check_divisible("trainer.batch_size", batch_size)
    gen = torch.Generator().manual_seed(seed)
    if num * field_.grid.num_levels > PLAN_LIMIT:
        return _random_batches(field_, coords, target, batch_size, gen, parallel)
    subsets = torch.randperm(num, generator=gen).to(coords.device).chunk(math.ceil(num / batch_size))
    if len(subsets[-1]) < parallel.world:
        raise ConfigError(f"trainer.batch_size = {batch_size} leaves a subset of "
                          f"{len(subsets[-1])} pixels, fewer than the {parallel.world} "
                          f"processes; choose another batch size")
    local = [parallel.split(idx) for idx in subsets]
    weights = [parallel.weight(len(part), len(idx)) for part, idx in zip(local, subsets)]
    plans = [build_plan(coords[idx], field_.grid.layout) for idx in local]
    order: list[int] = []

    def planned_batch(tau: float | None) -> torch.Tensor:
        if not order:
            order.extend(torch.randperm(len(plans), generator=gen).tolist())
        k = order.pop()
        return batch_mse(field_(None, tau=tau, plan=plans[k]), target[local[k]], weights[k])
    planned_batch.subsets = subsets  # type: ignore[attr-defined]
    return planned_batch


def _random_batches(field_: ImageField, coords: torch.Tensor, target: torch.Tensor,
                    batch_size: int, gen: torch.Generator, parallel: DataParallel) -> Distortion:
    """``distortion(tau)``: ``batch_size`` pixels drawn at random each call, encoded on the
    fly (this rank's equal share of them)."""
    def random_batch(tau: float | None) -> torch.Tensor:
        idx = parallel.split(torch.randint(len(coords), (batch_size,), generator=gen)
                             .to(coords.device))
        table = global_batch_table(field_, tau, batch_size, len(idx))
        return batch_mse(field_(coords[idx], tau=tau, table=table), target[idx])
    return random_batch


def _train(image: ImageData, cfg: AppConfig, device: torch.device, writer, config: dict,
           scale: float = 1.0, parallel: DataParallel = SINGLE) -> Trained:
    """A field trained with the lambda schedule times ``scale``, weights rounded for
    export (``config``: the file's CONFIG, for the size shown while training)."""
    seed_everything(cfg.trainer.seed)
    field_ = ImageField(cfg.grid, cfg.nef, image.channels).to(device)
    target = torch.from_numpy(image.pixels).to(device).reshape(-1, image.channels)
    coords = pixel_coords(image.height, image.width, device)
    trainer = RDTrainer(field_, cfg.trainer, file_size_probe(field_, config), scale, parallel)
    distortion = _distortion(field_, coords, target, cfg.trainer.batch_size, cfg.trainer.seed,
                             parallel)
    trainer.fit(distortion, desc=pass_label(f"image {image.name}", scale), writer=writer,
                tag=image.name)
    return Trained(field_, trainer.parallel_report())


def _fit(image: ImageData, cfg: AppConfig, device: torch.device, writer,
         parallel: DataParallel) -> tuple[Trained, RateSearch | None]:
    """The trained field, and the rate-control search when a target size is set."""
    config, what = file_config(cfg, image), f"image {image.name}"
    target = rate_target(lambda: ImageField(cfg.grid, cfg.nef, image.channels), cfg.trainer,
                         config, image.height * image.width, what)
    return fit_to_target(lambda scale: _train(image, cfg, device, writer, config, scale,
                                              parallel),
                         lambda trained: trained.field, config, target, what)


def decode_pixels(path: Path, max_lod: int | None = None, partial: bool = False
                  ) -> tuple[np.ndarray, ImageMeta, ShacModel]:
    """Decode an image ``.shac`` file whole.

    Args:
        max_lod: use the first ``max_lod`` levels only (None = all).
        partial: accept a truncated stream and use the levels it holds.
    Returns:
        ([H, W, C] float32 in [0, 1] quantised to the bit depth, image metadata, model).
    """
    field_, meta, model = decode_field(path, max_lod, partial)
    pixels = render(field_, meta.height, meta.width, len(model.levels))
    return _quantized(pixels, meta.bit_depth), meta, model


def decode(path: Path, out: Path, max_lod: int | None = None, *, force: bool = False,
           region: tuple[int, int, int, int] | None = None, downscale: int = 1) -> Path:
    """``wisp-shacira decode`` for images: write the reconstruction (``out``: a .png,
    .tif or .tiff file, or a folder that gets ``NAME.png``, or ``NAME.tif`` for a large
    image), rendered tile by tile; ``region`` (x, y, width, height) and ``downscale``
    (every S-th pixel, see :class:`~wisp_shacira.tasks.image_tiles.Window`) select the
    pixels; ``force`` replaces a read-only output."""
    out = prepare_decode_output(TASK, Path(path), Path(out), force)
    header = read_shac(path, max_lod=0, partial=True)
    meta = parse_file_config(ImageFileConfig, header, str(path)).image
    x, y, width, height = region if region is not None else (0, 0, meta.width, meta.height)
    window = Window(x, y, width, height, downscale)
    window.check(meta.width, meta.height)
    field_, meta, model = decode_field(path, max_lod, pixels=DEFAULT_TILE * DEFAULT_TILE)
    return write_window(field_, (meta.width, meta.height), meta.channels, meta.bit_depth,
                        window, len(model.levels), out, force=force)


def decode_output(source: Path, out: Path) -> Path:
    """The file ``decode`` writes for ``out``: a .png/.tif/.tiff file as named, or in a
    folder ``NAME.png`` (``NAME.tif`` above 64 Mpixels).

    Raises:
        OutputError: another suffix.
    """
    out = Path(out)
    if out.is_dir() or not out.suffix:
        meta = parse_file_config(ImageFileConfig, read_shac(source, max_lod=0, partial=True),
                                 str(source)).image
        return out / f"{Path(source).stem}{default_suffix(meta.height, meta.width)}"
    if out.suffix.lower() not in (".png", *TIFF_OUTPUT_SUFFIXES):
        raise OutputError(f"{out}: an image decodes to PNG or TIFF; the output must end in "
                          ".png, .tif or .tiff, or name a folder")
    return out


def compress_one(image_path: Path, cfg: AppConfig, out_dir: Path, writer=None,
                 parallel: DataParallel = SINGLE) -> dict:
    """Train, export, decode and measure one image; returns its metrics (the
    out-of-core path for large images, see :mod:`~wisp_shacira.tasks.image_large`).
    In a data-parallel run every rank trains; only the main one writes and measures
    (the others return ``{"name"}``)."""
    header = read_header(image_path)
    if use_out_of_core(cfg.dataset.out_of_core, header.height, header.width, cfg.grid,
                       PLAN_LIMIT):
        return image_large.compress(image_path, header, cfg, out_dir, writer, parallel)
    image = load_image(image_path)
    shac_path, png_path = out_dir / f"{image.name}.shac", out_dir / f"{image.name}.png"
    check_not_input(shac_path, [image_path])
    check_not_input(png_path, [image_path])
    device = resolve_device(cfg.trainer.device)
    with timed() as encode_time:
        trained, rate_search = _fit(image, cfg, device, writer, parallel)
        if not parallel.is_main:
            return {"name": image.name}
        field_ = trained.field.cpu()
        nbytes, rate = write_model(field_, file_config(cfg, image), shac_path)
    reference = _quantized(render(field_, image.height, image.width), image.bit_depth)
    with timed() as decode_time:
        decoded, _, _ = decode_pixels(shac_path)
    write_atomic(png_path, encode_png(decoded, image.bit_depth))
    row = {"name": image.name, "width": image.width, "height": image.height,
           "psnr": psnr(decoded, image.pixels), "ssim": ssim(decoded, image.pixels),
           "bpp": nbytes * 8 / (image.width * image.height), "bytes": nbytes,
           "psnr_before_export": psnr(reference, image.pixels),
           "decode_matches": bool(np.array_equal(reference, decoded)),
           "encode_seconds": encode_time[0], "decode_seconds": decode_time[0], "rate": rate,
           "rate_control": None if rate_search is None else rate_search.report()}
    if trained.parallel is not None:
        row["distributed"] = trained.parallel
    return row


def run(cfg: AppConfig, out_dir: Path, parallel: DataParallel = SINGLE) -> dict:
    """Compress every image of ``cfg.dataset.path``; writes files and ``metrics.json``
    (under ``torchrun``: every process trains, only the main one writes; the others
    return ``{"task", "rank"}``)."""
    if parallel.is_main:
        prepare_output_dir(out_dir)
    paths = list_images(cfg.dataset.path or DEMO_IMAGE)
    names = [p.stem for p in paths]
    if len(set(names)) != len(names):
        raise DataError(f"{cfg.dataset.path}: two input images share a file name stem; outputs would collide")
    writer = tensorboard_writer(cfg.trainer.tensorboard and parallel.is_main,
                                out_dir / "tensorboard")
    rows = [compress_one(p, cfg, out_dir, writer, parallel) for p in paths]
    if not parallel.is_main:
        return {"task": "image", "rank": parallel.rank}
    keys = ("psnr", "ssim", "bpp", "bytes", "encode_seconds", "decode_seconds")
    mean = {k: mean_metric(r[k] for r in rows) for k in keys}
    report = {"task": "image", "images": rows, "mean": mean, "config": dataclasses.asdict(cfg)}
    if parallel.distributed:
        report["distributed"] = rows[0].get("distributed")
    write_json(out_dir / "metrics.json", report)
    return report


def summary(report: dict) -> str:
    """A table of a :func:`run` report: one row per image and the mean."""
    keys = ("psnr", "ssim", "bpp", "bytes", "encode_seconds", "decode_seconds")
    rows = [[r["name"], *(r[k] for k in keys)] for r in report["images"]]
    rows.append(["mean", *(report["mean"][k] for k in keys)])
    table = format_table(["image", "PSNR", "SSIM", "BPP", "bytes", "encode s", "decode s"], rows)
    names = [r["name"] for r in report["images"]]
    return (table + latent_rate_lines([r.get("rate") for r in report["images"]], names)
            + rate_control_lines([r["rate_control"] for r in report["images"]], names))


class ImageSource:
    """Renders an image model at any LOD (a :class:`~wisp_shacira.tasks.protocol.PlanarSource`)."""

    view = "planar"

    def __init__(self, model: ShacModel, name: str) -> None:
        self.name = name
        self.field, meta = field_from_model(model, name, pixels=DEFAULT_TILE * DEFAULT_TILE)
        self.height, self.width = meta.height, meta.width
        self.channels, self.bit_depth = meta.channels, meta.bit_depth
        self.num_frames, self.num_levels = 1, model.num_levels
        with torch.no_grad():
            self.table = self.field.grid.decoded_table()

    @torch.no_grad()
    def colours(self, coords: torch.Tensor, lod: int, frame: int = 0) -> torch.Tensor:
        """The field at ``coords: [N, 2]`` (the decoded table computed once) -> [N, C]."""
        return self.field(coords, lod, table=self.table).clamp(0, 1)

    def window(self, window: Window, lod: int) -> np.ndarray:
        """Pixels of ``window`` as decoded at LOD ``lod``: [h, w, C] uint8/uint16."""
        return render_window(self.field, (self.width, self.height), self.channels,
                             self.bit_depth, window, lod, self.table)

    def full_frame(self, lod: int) -> np.ndarray:
        """What ``decode_pixels`` gives at LOD ``lod``: [H, W, C] quantised to the bit depth
        (refused, before allocating, when the whole image exceeds the memory limit)."""
        pixels = self.height * self.width
        check_memory(pixels * (24 + 24 * self.channels), f"a whole {self.width}x{self.height} "
                     "image (decode it by tiles with `wisp-shacira decode`)", self.name)
        window = Window(0, 0, self.width, self.height)
        return (self.window(window, lod) / float(2**self.bit_depth - 1)).astype(np.float32)

    def write(self, lod: int, out: Path, force: bool = False) -> Path:
        return write_window(self.field, (self.width, self.height), self.channels, self.bit_depth,
                            Window(0, 0, self.width, self.height), lod, out, force=force)


def lod_target(model: ShacModel, name: str, reference: Path | None, poses: Path | None,
               max_views: int | None) -> LodTarget:
    """What ``wisp-shacira lod`` renders (the full image at each LOD) and compares it with
    (``reference``, the original image, or the highest LOD held)."""
    if poses is not None:
        raise ConfigError(f"--poses is for scenes; {name} holds an image")
    source = ImageSource(model, name)
    ref, label = None, "full LOD (no reference given)"
    if reference is not None:
        pixels = load_image(reference).pixels
        expected = (source.height, source.width, source.channels)
        if pixels.shape != expected:
            raise DataError(f"{reference}: image of shape {pixels.shape}, the model holds "
                            f"{expected} (height, width, channels)")
        ref, label = pixels[None], f"original image {reference}"
    return LodTarget(lambda prefix, lod: ImageSource(prefix, name).full_frame(lod)[None],
                     ref, label)


TASK = TaskSpec(name="image", description="an image", config_type=AppConfig, run=run,
                summary=summary, decode_output=decode_output, decode=decode,
                open_source=ImageSource, lod_target=lod_target, data_parallel=True)
