"""Tiled metrics equal the whole-image ones; windows cover their pixels exactly once."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wisp_shacira.datasets.large_image import PixelStore
from wisp_shacira.errors import ConfigError
from wisp_shacira.metrics import psnr, ssim
from wisp_shacira.fields.image import ImageField, ImageNefConfig
from wisp_shacira.grid.fast import load_numba
from wisp_shacira.grid.hashing import box_rows, point_rows
from wisp_shacira.grid.shacira_grid import GridConfig
from wisp_shacira.tasks.image_tiles import (Window, bands_of, evaluate, measure, parse_region,
                                            render_window, tiles_of, window_box, window_coords,
                                            window_table)


@pytest.mark.parametrize("shape, tile", [((45, 70, 3), 16), ((40, 33, 1), 17), ((7, 9, 3), 16),
                                         ((100, 64, 4), 32), ((9, 200, 3), 8)])
def test_tiled_psnr_and_ssim_equal_the_whole_image_values(shape, tile: int) -> None:
    rng = np.random.default_rng(sum(shape))
    original = (rng.random(shape) * 255).astype(np.uint8)
    noisy = np.clip(original.astype(int) + rng.integers(-20, 20, shape), 0, 255) / 255.0
    metrics = measure(lambda w: noisy[w.y:w.y + w.height, w.x:w.x + w.width],
                      PixelStore(original, 8, "x"), tile=tile)
    reference = original.astype(np.float32) / 255  # what the store's tiles hold
    assert metrics.psnr == pytest.approx(psnr(noisy, reference), abs=1e-9)
    assert metrics.ssim == pytest.approx(ssim(noisy, reference), abs=1e-12)


def test_tiles_and_bands_cover_every_output_pixel_once() -> None:
    window = Window(3, 5, 101, 47, step=3)
    for parts in (list(tiles_of(window, 8)), list(bands_of(window, 4))):
        assert sum(p.out_height * p.out_width for p in parts) == window.out_height * window.out_width
        cover = np.zeros((60, 110), int)
        for p in parts:
            cover[p.y + 1:p.y + p.height:3, p.x + 1:p.x + p.width:3] += 1
        expected = np.zeros_like(cover)
        expected[6:52:3, 4:104:3] = 1
        assert np.array_equal(cover, expected)


def test_bad_regions_are_named() -> None:
    with pytest.raises(ConfigError, match="expected X,Y,W,H"):
        parse_region("1,2,x,4")
    with pytest.raises(ConfigError, match="exceeds the region"):
        Window(0, 0, 4, 4, step=5).check(10, 10)
    Window(6, 6, 4, 4).check(10, 10)
    with pytest.raises(ConfigError, match="lies outside"):
        Window(7, 6, 4, 4).check(10, 10)


def _field() -> ImageField:
    torch.manual_seed(0)
    grid = GridConfig(num_levels=5, min_res=4, max_res=96, log2_table_size=10)  # dense and hashed
    field_ = ImageField(grid, ImageNefConfig(hidden_dim=8), channels=3).eval()
    with torch.no_grad():
        field_.grid.latents.copy_(torch.round(torch.randn_like(field_.grid.latents) * 3))
    return field_


@pytest.mark.parametrize("backend", ["reference", "torch", "numba"])
def test_a_window_reads_only_the_rows_its_partial_table_decodes(backend: str, monkeypatch) -> None:
    if backend == "numba" and load_numba() is None:
        pytest.skip("numba not installed")
    monkeypatch.setenv("WISP_SHACIRA_ENCODING", backend)
    field_, size = _field(), (200, 150)
    windows = [(Window(37, 21, 50, 40), None), (Window(150, 110, 50, 40), None),
               (Window(0, 0, 200, 150, step=8), 3), (Window(60, 30, 21, 17, step=2), 2),
               (Window(199, 149, 1, 1), None)]
    for window, lod in windows:
        coords = window_coords(window, *size)
        full = render_window(field_, size, 3, 8, Window(0, 0, *size), lod)
        start = window.step // 2
        crop = full[window.y + start:window.y + window.height:window.step,
                    window.x + start:window.x + window.width:window.step]
        for rows in (box_rows(field_.grid.layout, *window_box(window, *size), lod),
                     point_rows(field_.grid.layout, coords, lod)):
            with torch.no_grad():
                partial = field_.grid.decoded_rows(rows)
                poisoned = torch.full_like(partial, math.nan)  # a row not in ``rows``: NaN
                poisoned[rows] = partial[rows]
            assert torch.equal(evaluate(field_, coords, lod, poisoned), evaluate(field_, coords, lod))
            assert np.array_equal(render_window(field_, size, 3, 8, window, lod, poisoned), crop)


def test_window_table_decodes_only_a_small_windows_rows() -> None:
    field_, size = _field(), (200, 150)
    total = field_.grid.layout.total_rows
    small = box_rows(field_.grid.layout, *window_box(Window(37, 21, 30, 20), *size))
    assert 0 < len(small) < total // 2
    assert 2 * len(box_rows(field_.grid.layout, *window_box(Window(0, 0, *size), *size))) >= total
    with torch.no_grad():
        whole = field_.grid.decoded_table()
        part = window_table(field_, size, Window(37, 21, 30, 20), None)
        assert torch.equal(part[small], whole[small])
        assert torch.equal(window_table(field_, size, Window(0, 0, *size), None), whole)
    full = render_window(field_, size, 3, 8, Window(0, 0, *size), None)
    for window in (Window(0, 0, *size, step=50), Window(37, 21, 30, 20)):  # by pixels, by box
        table = window_table(field_, size, window, None)
        s = window.step // 2
        crop = full[window.y + s:window.y + window.height:window.step,
                    window.x + s:window.x + window.width:window.step]
        assert np.array_equal(render_window(field_, size, 3, 8, window, None, table), crop)
    with pytest.raises(RuntimeError, match="no_grad"):
        field_.grid.decoded_rows(small)
