"""Child process of ``bench/gigapixel.py``: train the gigapixel config on an image (in
its own process, so the parent reads its peak memory with ``wait4``) and write
``stats.json`` into the output folder.

Seconds per step are the median time between steps (the first step's set-up and the
final size measurement left out). A compressed grid is written as ``model.shac``; the uncompressed float grid
(``--float-grid``, which has no ``.shac`` form) is measured here instead, tile by tile,
and its size counted as its parameters in float16 (Instant-NGP's storage) and float32.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from wisp_shacira.config import build_config, load_yaml
from wisp_shacira.datasets.large_image import open_pixels
from wisp_shacira.resources import resolve_config
from wisp_shacira.tasks.common import write_model
from wisp_shacira.tasks.image import AppConfig
from wisp_shacira.tasks.image_file import ImageMeta, file_config
from wisp_shacira.tasks.image_large import DEFAULT_BATCH, PixelSampler, train
from wisp_shacira.tasks.image_tiles import measure, render_window
from wisp_shacira.train.rd import resolve_device


def _config(args: argparse.Namespace) -> AppConfig:
    raw = load_yaml(resolve_config("shacira_gigapixel"))
    raw["grid"].update(max_res=args.max_res, log2_table_size=args.log2_t)
    raw["trainer"].update(iterations=args.steps, log_every=10**9, lambda_start=args.lam,
                          lambda_end=args.lam)
    cfg = build_config(AppConfig, raw)
    if args.float_grid:  # the image task itself only writes compressed grids
        cfg.grid = dataclasses.replace(cfg.grid, compressed=False)
    return cfg


def _float_grid_quality(field, store, tile: int) -> dict:
    size = (store.width, store.height)
    peak = float(2**store.bit_depth - 1)
    table = field.grid.decoded_table().detach()
    quality = measure(lambda w: render_window(field, size, store.channels, store.bit_depth, w,
                                              None, table) / peak, store, tile)
    params = sum(p.numel() for p in field.parameters())
    pixels = store.width * store.height
    return {"psnr": quality.psnr, "ssim": quality.ssim, "bytes_fp16": 2 * params,
            "bytes_fp32": 4 * params, "bpp": 16 * params / pixels, "bpp_fp32": 32 * params / pixels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", type=Path)
    parser.add_argument("out", type=Path, help="output folder")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--max-res", type=int, required=True)
    parser.add_argument("--log2-t", type=int, default=23)
    parser.add_argument("--lam", type=float, default=1e-4)
    parser.add_argument("--float-grid", action="store_true")
    args = parser.parse_args()
    cfg = _config(args)
    args.out.mkdir(parents=True, exist_ok=True)
    store = open_pixels(args.image)
    meta = ImageMeta(store.name, store.height, store.width, store.channels, store.bit_depth)
    config = file_config(cfg, meta)
    calls: list[float] = []
    batch = PixelSampler.batch

    def timed_batch(sampler: PixelSampler):  # one call per step: its start times
        calls.append(time.perf_counter())
        return batch(sampler)

    PixelSampler.batch = timed_batch
    start = time.perf_counter()
    field = train(store, cfg, resolve_device("cpu"), None, config).field
    seconds = time.perf_counter() - start
    step = float(np.median(np.diff(calls))) if len(calls) > 2 else seconds / args.steps
    params = sum(p.numel() for p in field.parameters())
    stats = {"steps": args.steps, "train_seconds": seconds, "seconds_per_step": step,
             "pixels_per_second": DEFAULT_BATCH / step,
             "grid_rows": field.grid.layout.total_rows, "parameters": params,
             "grid_state_bytes": params * 4 * 4,
             "input_memory_mapped": isinstance(store.array, np.memmap)}
    if args.float_grid:
        stats.update(_float_grid_quality(field, store, cfg.dataset.tile))
    else:
        field.round_weights()
        stats["shac_bytes"] = write_model(field, config, args.out / "model.shac")[0]
    (args.out / "stats.json").write_text(json.dumps(stats, indent=2))


if __name__ == "__main__":
    main()
