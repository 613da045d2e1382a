"""Out-of-core path of the image task: images too large for per-pixel arrays.

The pixels stay 8/16-bit in a :class:`~wisp_shacira.datasets.large_image.PixelStore`
(in memory or memory-mapped). Each training step draws ``trainer.batch_size`` pixels
(2^18 when 0) at random with replacement, builds their coordinates and gathers their
values: nothing of the size of the image is ever float. The result is measured and
decoded tile by tile (:mod:`wisp_shacira.tasks.image_tiles`) and written as a tiled
BigTIFF when it is large (:data:`LARGE_OUTPUT_PIXELS`), else as PNG.

The path is taken when ``dataset.out_of_core`` is ``always``, or ``auto`` and the
image has more than :data:`OUT_OF_CORE_PIXELS` pixels (or more pixels times levels
than the in-memory path precomputes plans for).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from wisp_shacira.datasets.large_image import ImageHeader, PixelStore, open_pixels
from wisp_shacira.fields.image import ImageField
from wisp_shacira.grid.shacira_grid import GridConfig
from wisp_shacira.tasks.common import (Trained, batch_mse, check_not_input, global_batch_table,
                                       seed_everything, timed, write_model)
from wisp_shacira.tasks.image_file import ImageMeta, decode_field, file_config
from wisp_shacira.tasks.image_tiles import (Window, measure, render_window, tiles_of,
                                            write_window)
from wisp_shacira.train.rate_control import (RateSearch, file_size_probe, fit_to_target,
                                             pass_label, rate_target)
from wisp_shacira.train.distributed import SINGLE, DataParallel
from wisp_shacira.train.rd import RDTrainer, resolve_device

if TYPE_CHECKING:
    from wisp_shacira.tasks.image import AppConfig

OUT_OF_CORE_PIXELS = 1 << 24
"""Images above 16 Mpixels take the out-of-core path under ``out_of_core: auto``."""
LARGE_OUTPUT_PIXELS = 1 << 26
"""Decoded images above 64 Mpixels are written as tiled BigTIFF by default."""
DEFAULT_BATCH = 1 << 18
CHECK_TILES = 8
"""Tiles on which the decode from the file is compared with the field before export."""


def use_out_of_core(mode: str, height: int, width: int, grid: GridConfig,
                    plan_limit: int) -> bool:
    """Whether an image of ``height x width`` takes the out-of-core path."""
    if mode != "auto":
        return mode == "always"
    pixels = height * width
    return pixels > OUT_OF_CORE_PIXELS or pixels * grid.num_levels > plan_limit


def default_suffix(height: int, width: int) -> str:
    """``.tif`` for large decoded images, else ``.png``."""
    return ".tif" if height * width > LARGE_OUTPUT_PIXELS else ".png"


class PixelSampler:
    """Random pixel batches of a store: ``batch() -> (coords [n, 2], target [n, C])``.

    Indices are drawn with a seeded ``torch.Generator`` (with replacement), sorted to
    read the store in order, and converted to pixel-centre coordinates. In a
    data-parallel run every rank draws the same ``batch_size`` indices and reads only
    its equal slice of them (``n = batch_size / world``).

    Raises:
        ConfigError: ``batch_size`` not divisible by the number of processes.
    """

    def __init__(self, store: PixelStore, batch_size: int, seed: int,
                 device: torch.device, parallel: DataParallel = SINGLE) -> None:
        parallel.check_divisible("trainer.batch_size", batch_size)
        self.store, self.batch_size, self.device = store, batch_size, device
        self.parallel = parallel
        self.generator = torch.Generator().manual_seed(seed)

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.randint(self.store.height * self.store.width, (self.batch_size,),
                              generator=self.generator)
        index = self.parallel.split(torch.sort(index).values).numpy()
        ys, xs = np.divmod(index, self.store.width)
        coords = np.stack([(xs + 0.5) / self.store.width, (ys + 0.5) / self.store.height], -1)
        target = self.store.gather(index)
        return (torch.from_numpy(coords.astype(np.float32)).to(self.device),
                torch.from_numpy(target).to(self.device))


def train(store: PixelStore, cfg: "AppConfig", device: torch.device, writer, config: dict,
          scale: float = 1.0, parallel: DataParallel = SINGLE) -> Trained:
    """A field trained on random batches of ``store`` with the lambda schedule times
    ``scale`` (``config``: the file's CONFIG, for the size shown while training), by every
    process of ``parallel``, each on its slice of every batch."""
    seed_everything(cfg.trainer.seed)
    field_ = ImageField(cfg.grid, cfg.nef, store.channels).to(device)
    trainer = RDTrainer(field_, cfg.trainer, file_size_probe(field_, config), scale, parallel)
    batch_size = cfg.trainer.batch_size or DEFAULT_BATCH
    sampler = PixelSampler(store, batch_size, cfg.trainer.seed, device, parallel)

    def distortion(tau: float | None) -> torch.Tensor:
        coords, target = sampler.batch()
        table = global_batch_table(field_, tau, batch_size, len(coords))
        return batch_mse(field_(coords, tau=tau, table=table), target)

    trainer.fit(distortion, desc=pass_label(f"image {store.name}", scale), writer=writer,
                tag=store.name)
    return Trained(field_, trainer.parallel_report())


def _fit(store: PixelStore, cfg: "AppConfig", device: torch.device, writer,
         config: dict, parallel: DataParallel) -> tuple[Trained, RateSearch | None]:
    what = f"image {store.name}"
    target = rate_target(lambda: ImageField(cfg.grid, cfg.nef, store.channels), cfg.trainer,
                         config, store.height * store.width, what)
    return fit_to_target(lambda scale: train(store, cfg, device, writer, config, scale, parallel),
                         lambda trained: trained.field, config, target, what)


def _decoder(field_: ImageField, meta: ImageMeta) -> Callable[[Window], np.ndarray]:
    """``window -> [h, w, C]`` float32 in [0, 1] as the file decodes it."""
    table = field_.grid.decoded_table()
    peak = float(2**meta.bit_depth - 1)
    return lambda window: render_window(field_, (meta.width, meta.height), meta.channels,
                                        meta.bit_depth, window, None, table) / peak


def _spread_tiles(meta: ImageMeta, tile: int) -> list[Window]:
    tiles = list(tiles_of(Window(0, 0, meta.width, meta.height), tile))
    picks = np.unique(np.linspace(0, len(tiles) - 1, CHECK_TILES).round().astype(int))
    return [tiles[i] for i in picks]


def compress(image_path: Path, header: ImageHeader, cfg: "AppConfig", out_dir: Path,
             writer=None, parallel: DataParallel = SINGLE) -> dict:
    """Train, export, decode and measure one image on the out-of-core path (``header``:
    its :func:`~wisp_shacira.datasets.large_image.read_header`). In a data-parallel run
    every rank trains; only the main one writes and measures (the others return
    ``{"name"}``; a pixel cache they need goes to ``dataset.cache_dir`` or the system's
    temporary folder, never into the output folder)."""
    name = Path(image_path).stem
    shac_path = out_dir / f"{name}.shac"
    out_path = out_dir / f"{name}{default_suffix(header.height, header.width)}"
    check_not_input(shac_path, [image_path])
    check_not_input(out_path, [image_path])
    cache_dir = cfg.dataset.cache_dir or (out_dir if parallel.is_main else None)
    store = open_pixels(image_path, cache_dir=cache_dir)
    try:
        meta = ImageMeta(name, store.height, store.width, store.channels, store.bit_depth)
        config = file_config(cfg, meta)
        device = resolve_device(cfg.trainer.device)
        with timed() as encode_time:
            with timed() as train_time:
                trained, rate_search = _fit(store, cfg, device, writer, config, parallel)
            if not parallel.is_main:
                return {"name": name}
            field_ = trained.field.cpu()
            nbytes, rate = write_model(field_, config, shac_path)
        with timed() as decode_time:
            decoded_field, _, _ = decode_field(shac_path, pixels=cfg.dataset.tile**2)
            write_window(decoded_field, (meta.width, meta.height), meta.channels,
                         meta.bit_depth, Window(0, 0, meta.width, meta.height), None, out_path,
                         cfg.dataset.tile)
        checked = _spread_tiles(meta, cfg.dataset.tile)
        before, after = _decoder(field_, meta), _decoder(decoded_field, meta)
        matches = all(np.array_equal(before(w), after(w)) for w in checked)
        quality = measure(after, store, cfg.dataset.tile)
    finally:
        store.close()
    steps = cfg.trainer.iterations * (1 if rate_search is None else len(rate_search.passes))
    row = {"name": name, "width": meta.width, "height": meta.height,
           "psnr": quality.psnr, "ssim": quality.ssim,
           "bpp": nbytes * 8 / (meta.width * meta.height), "bytes": nbytes,
           "decode_matches": matches, "decode_checked_tiles": len(checked),
           "encode_seconds": encode_time[0], "decode_seconds": decode_time[0],
           "train_pixels_per_second": steps * (cfg.trainer.batch_size or DEFAULT_BATCH)
           / train_time[0], "output": str(out_path), "out_of_core": True, "rate": rate,
           "rate_control": None if rate_search is None else rate_search.report()}
    if trained.parallel is not None:
        row["distributed"] = trained.parallel
    return row
