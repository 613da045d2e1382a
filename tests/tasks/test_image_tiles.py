"""Tiled metrics equal the whole-image ones; windows cover their pixels exactly once."""
from __future__ import annotations

import numpy as np
import pytest

from wisp_shacira.datasets.large_image import PixelStore
from wisp_shacira.errors import ConfigError
from wisp_shacira.metrics import psnr, ssim
from wisp_shacira.tasks.image_tiles import Window, bands_of, measure, parse_region, tiles_of


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
