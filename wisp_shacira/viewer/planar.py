"""Geometry of the planar view (images and video frames): the window a render shows,
the image pixels under it, pan steps, the zoom range and the automatic LOD (no viser;
plain torch and math).

A render of ``out_height x out_width`` pixels shows an image of ``image_height x
image_width`` pixels at ``zoom`` times the scale at which the whole image fits
(letterboxed, square pixels), centred on ``center`` (x, y in ``[0, 1]`` of the image).
Every render pixel shows the image pixel under its centre, evaluated at that pixel's
centre, so the viewer shows what ``wisp-shacira decode`` writes: magnified, an image
pixel covers a block of render pixels (each visible pixel is evaluated once); zoomed
out, the render point-samples the pixels as ``decode --downscale`` does. Nothing is
allocated per image pixel: only per render row, column and pixel.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

MAX_MAGNIFICATION = 8.0
"""Render pixels per image pixel at the largest zoom, for a render REFERENCE_SIDE high."""
REFERENCE_SIDE = 256
ZOOM_STEP = 0.125
"""Step of the zoom slider in log2 units (one notch = 2^0.125, about 9%)."""
MIN_LOG2_ZOOM_RANGE = 4.0
OVERSAMPLE = 2.0
"""Auto LOD keeps levels of at most OVERSAMPLE cells per sample across the image."""


def max_log2_zoom(image_height: int, image_width: int) -> float:
    """log2 of the largest zoom: :data:`MAX_MAGNIFICATION` render pixels per image pixel
    for a render :data:`REFERENCE_SIDE` pixels high (more for a higher render), at least
    ``2^4``, rounded up to a slider step. A ``2^20``-pixel side gives ``2^15``."""
    zoom = MAX_MAGNIFICATION * max(image_height, image_width) / REFERENCE_SIDE
    steps = math.ceil(math.log2(max(zoom, 1.0)) / ZOOM_STEP)
    return max(MIN_LOG2_ZOOM_RANGE, steps * ZOOM_STEP)


def auto_lod(resolutions: Sequence[int], image_side_px: int, screen_px_across_image: float,
             available: int) -> int:
    """The LOD (levels used, coarsest first) for a view sampling the image this densely.

    A level of resolution ``R`` has cells of ``1 / R`` of the image side. The samples
    across the image are its pixels seen: ``n = min(image_side_px,
    screen_px_across_image)`` (a render shows each image pixel at its centre, so a
    magnified view samples no finer than the pixels). Levels with ``R > OVERSAMPLE * n``
    alias and cost time; the LOD is the number of levels with ``R <= OVERSAMPLE * n``,
    at least 1 and at most ``available`` (the levels the stream holds).

    Args:
        resolutions: cells per axis of each level, coarse to fine (increasing).
        image_side_px: the image side the grid's unit spans (the longer side), pixels.
        screen_px_across_image: that side's length in render pixels.
    """
    samples = min(float(image_side_px), float(screen_px_across_image))
    used = sum(1 for res in resolutions if res <= OVERSAMPLE * samples)
    return int(min(max(used, 1), available))


def _axis_pixels(out_size: int, scale: float, centre_px: float) -> torch.Tensor:
    """Index of the image pixel under each of ``out_size`` render pixels: [out_size] int64."""
    offsets = torch.arange(out_size, dtype=torch.float64) + 0.5 - 0.5 * out_size
    return torch.floor(offsets / scale + centre_px).to(torch.int64)


@dataclass(frozen=True)
class PlanarWindow:
    """A render of ``out_height x out_width`` pixels through a window on an image.

    Attributes:
        zoom: magnification relative to the whole image fitting the render (1).
        center: image point (x, y in [0, 1]) at the render's centre.
    """

    out_height: int
    out_width: int
    image_height: int
    image_width: int
    zoom: float = 1.0
    center: tuple[float, float] = (0.5, 0.5)

    @property
    def scale(self) -> float:
        """Render pixels per image pixel."""
        fit = min(self.out_height / self.image_height, self.out_width / self.image_width)
        return fit * self.zoom

    def pixel_indices(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Image rows [out_height] and columns [out_width] (int64) under the render's
        pixel centres; outside the image: < 0 or >= the image side."""
        rows = _axis_pixels(self.out_height, self.scale, self.center[1] * self.image_height)
        cols = _axis_pixels(self.out_width, self.scale, self.center[0] * self.image_width)
        return rows, cols

    def region(self) -> tuple[int, int, int, int]:
        """The image pixels the render covers, whole or in part: ``(x, y, width,
        height)`` (width or height 0 when the window misses the image)."""
        spans = []
        for out, side, centre in ((self.out_width, self.image_width, self.center[0]),
                                  (self.out_height, self.image_height, self.center[1])):
            half = 0.5 * out / self.scale
            low = max(0, math.floor(centre * side - half))
            high = min(side, math.ceil(centre * side + half))
            spans.append((low, max(low, high)))
        (x0, x1), (y0, y1) = spans
        return x0, y0, x1 - x0, y1 - y0

    def screen_px_across_image(self) -> float:
        """The image's longer side in render pixels."""
        return self.scale * max(self.image_height, self.image_width)

    def panned(self, dx: float, dy: float) -> tuple[float, float]:
        """The centre moved by ``dx, dy`` render widths/heights, clamped to the image."""
        x = self.center[0] + dx * self.out_width / (self.scale * self.image_width)
        y = self.center[1] + dy * self.out_height / (self.scale * self.image_height)
        return min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0)


def grid_resolutions(source: object) -> tuple[int, ...] | None:
    """Level resolutions of a planar source's 2-D grid (``source.field.grid.layout``:
    images); None when it has none or its grid is not 2-D (videos: x, y, t; scenes)."""
    layout = getattr(getattr(getattr(source, "field", None), "grid", None), "layout", None)
    if layout is None or getattr(layout, "dim", None) != 2:
        return None
    return tuple(int(res) for res in layout.resolutions)
