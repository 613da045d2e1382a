"""Images rendered, written and measured tile by tile, in memory bounded by the tile.

A :class:`Window` names the pixels to render: a region of the image (``x, y, width,
height``) sampled every ``step`` pixels. Pixel ``(i, j)`` of a window is pixel
``(y + step // 2 + i * step, x + step // 2 + j * step)`` of the full image, so a
preview with ``step = S`` equals the full decode subsampled as
``full[S // 2::S, S // 2::S]``, and a region equals the same crop of the full decode,
pixel for pixel: every pixel is evaluated at its own centre, in evaluation chunks of a
fixed size (the last one padded) whatever the window.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from wisp_shacira.datasets.image import sample_dtype
from wisp_shacira.datasets.large_image import PixelStore
from wisp_shacira.datasets.tiled_output import (TIFF_OUTPUT_SUFFIXES, check_disk, output_nbytes,
                                                write_png_bands, write_tiled_tiff)
from wisp_shacira.errors import ConfigError
from wisp_shacira.extras import require
from wisp_shacira.fields.image import ImageField
from wisp_shacira.grid.hashing import box_rows, box_vertices, point_rows
from wisp_shacira.metrics import ssim_available
from wisp_shacira.tasks.decoding import EVAL_CHUNK

DEFAULT_TILE = 1024
SSIM_WINDOW = 7


@dataclass(frozen=True)
class Window:
    """Pixels ``x .. x + width`` and ``y .. y + height`` of an image, every ``step``-th.

    Attributes:
        step: sampling step in pixels (1 = full resolution).
    """

    x: int
    y: int
    width: int
    height: int
    step: int = 1

    @property
    def out_height(self) -> int:
        return len(range(self.step // 2, self.height, self.step))

    @property
    def out_width(self) -> int:
        return len(range(self.step // 2, self.width, self.step))

    def check(self, image_width: int, image_height: int) -> None:
        """Raise ``ConfigError`` unless the window lies inside the image."""
        if self.width <= 0 or self.height <= 0:
            raise ConfigError(f"region {self.width}x{self.height}: width and height must be > 0")
        if self.step < 1:
            raise ConfigError(f"downscale {self.step} must be >= 1")
        if (self.x < 0 or self.y < 0 or self.x + self.width > image_width
                or self.y + self.height > image_height):
            raise ConfigError(f"region {self.x},{self.y},{self.width},{self.height} lies outside "
                              f"the {image_width}x{image_height} image")
        if self.step > min(self.width, self.height):
            raise ConfigError(f"downscale {self.step} exceeds the region "
                              f"{self.width}x{self.height}")


def parse_region(text: str) -> tuple[int, int, int, int]:
    """``"X,Y,W,H"`` -> integers (``ConfigError`` naming the problem)."""
    parts = text.split(",")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise ConfigError(f"--region {text!r}: expected X,Y,W,H (four integers)")
    return values  # type: ignore[return-value]


def pixel_centres(rows: torch.Tensor, cols: torch.Tensor, image_height: int,
                  image_width: int) -> torch.Tensor:
    """Field coordinates of the centres of pixels ``rows x cols`` (int64 indices),
    row-major, in float32 as every decoder computes them (exact up to 2^23 pixels).

    Returns:
        [len(rows) * len(cols), 2] (x, y) in (0, 1), on the indices' device.
    """
    ys = (rows.to(torch.float32) + 0.5) / image_height
    xs = (cols.to(torch.float32) + 0.5) / image_width
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1).reshape(-1, 2)


def window_coords(window: Window, image_width: int, image_height: int) -> torch.Tensor:
    """Pixel-centre coordinates of a window, row-major.

    Returns:
        [h * w, 2] (x, y) in (0, 1), the same float values as the full image's.
    """
    start = window.step // 2
    ys = torch.arange(window.y + start, window.y + window.height, window.step)
    xs = torch.arange(window.x + start, window.x + window.width, window.step)
    return pixel_centres(ys, xs, image_height, image_width)


def window_box(window: Window, image_width: int,
               image_height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The lowest and highest pixel-centre coordinates of a window: [2] (x, y) each, the
    float values :func:`window_coords` gives its first and last pixels."""
    y, x = window.y + window.step // 2, window.x + window.step // 2
    rows = torch.tensor([y, y + (window.out_height - 1) * window.step])
    cols = torch.tensor([x, x + (window.out_width - 1) * window.step])
    corners = pixel_centres(rows, cols, image_height, image_width)
    return corners.amin(0), corners.amax(0)


@torch.no_grad()
def window_table(field_: ImageField, image_size: tuple[int, int], window: Window,
                 lod: int | None) -> torch.Tensor:
    """The decoded table for rendering ``window`` (``image_size``: width, height) with
    ``lod`` levels: only the rows its pixels read, found from the window's box
    (:func:`~wisp_shacira.grid.hashing.box_rows`, for a dense region) or from its pixels
    (:func:`~wisp_shacira.grid.hashing.point_rows`, for a sparse preview), whichever
    enumerates fewer vertices; the whole table when that is over half its rows. Either
    way the window's pixels are those of the full decode."""
    layout = field_.grid.layout
    levels = layout.num_levels if lod is None else lod
    low, high = window_box(window, *image_size)
    box = box_vertices(layout, low, high, levels)
    points = window.out_height * window.out_width * 2**layout.dim * levels
    if 2 * min(box, points) >= layout.total_rows:
        return field_.grid.decoded_table()
    if box <= points:
        rows = box_rows(layout, low, high, levels)
    else:
        rows = point_rows(layout, window_coords(window, *image_size), levels)
    return field_.grid.decoded_rows(rows)


@torch.no_grad()
def evaluate(field_: ImageField, coords: torch.Tensor, lod: int | None,
             table: torch.Tensor | None = None, chunk: int = EVAL_CHUNK) -> torch.Tensor:
    """The field at ``coords: [N, 2]`` in fixed-size chunks (the last one padded), so a
    pixel's value does not depend on the other pixels evaluated with it.

    Returns:
        [N, C] clipped to [0, 1].
    """
    table = field_.grid.decoded_table() if table is None else table
    out = []
    for start in range(0, len(coords), chunk):
        part = coords[start:start + chunk]
        count = len(part)
        if count < chunk:
            part = torch.cat([part, part[-1:].expand(chunk - count, 2)])
        out.append(field_(part, lod, table=table)[:count])
    return torch.cat(out).clamp(0, 1)


def to_samples(pixels: torch.Tensor, bit_depth: int) -> np.ndarray:
    """[..., C] float in [0, 1] -> the sample type (uint8/uint16), rounded."""
    peak = 2**bit_depth - 1
    values = torch.round(pixels * peak).to(torch.int32).numpy()
    return values.astype(sample_dtype(bit_depth))


def render_window(field_: ImageField, image_size: tuple[int, int], channels: int,
                  bit_depth: int, window: Window, lod: int | None,
                  table: torch.Tensor | None = None) -> np.ndarray:
    """Decode the pixels of ``window`` (``image_size``: width, height).

    Returns:
        [out_height, out_width, C] uint8/uint16, as the full decode quantises them.
    """
    coords = window_coords(window, *image_size)
    values = evaluate(field_, coords, lod, table)
    return to_samples(values, bit_depth).reshape(window.out_height, window.out_width, channels)


def tiles_of(window: Window, tile: int) -> Iterator[Window]:
    """Row-major sub-windows of ``tile x tile`` output pixels (edge tiles smaller)."""
    span = tile * window.step
    for y in range(window.y, window.y + window.height, span):
        for x in range(window.x, window.x + window.width, span):
            yield Window(x, y, min(span, window.x + window.width - x),
                         min(span, window.y + window.height - y), window.step)


def bands_of(window: Window, rows: int) -> Iterator[Window]:
    """Sub-windows of ``rows`` output rows across the whole window width."""
    span = rows * window.step
    for y in range(window.y, window.y + window.height, span):
        yield Window(window.x, y, window.width, min(span, window.y + window.height - y),
                     window.step)


def write_window(field_: ImageField, image_size: tuple[int, int], channels: int, bit_depth: int,
                 window: Window, lod: int | None, out: Path, tile: int = DEFAULT_TILE,
                 force: bool = False) -> Path:
    """Decode ``window`` into ``out``: a tiled BigTIFF (``.tif``/``.tiff``) or a PNG,
    rendered tile by tile (TIFF) or band by band (PNG), never whole."""
    check_disk(out, output_nbytes(window.out_height, window.out_width, channels, bit_depth))
    table = window_table(field_, image_size, window, lod)
    bar = tqdm(total=window.out_height * window.out_width, desc=f"decode {Path(out).name}",
               unit="px", unit_scale=True, disable=window.out_height * window.out_width < 1 << 22)

    def render(part: Window) -> np.ndarray:
        pixels = render_window(field_, image_size, channels, bit_depth, part, lod, table)
        bar.update(pixels.shape[0] * pixels.shape[1])
        return pixels

    with bar:
        if Path(out).suffix.lower() in TIFF_OUTPUT_SUFFIXES:
            tile = max(16, tile // 16 * 16)

            def padded() -> Iterator[np.ndarray]:
                for part in tiles_of(window, tile):
                    pixels = render(part)
                    block = np.zeros((tile, tile, channels), pixels.dtype)
                    block[:pixels.shape[0], :pixels.shape[1]] = pixels
                    yield block
            return write_tiled_tiff(out, window.out_height, window.out_width, channels,
                                    bit_depth, tile, padded(), force)
        rows = max(1, (tile * tile) // max(1, window.out_width))
        return write_png_bands(out, window.out_height, window.out_width, channels, bit_depth,
                               (render(part) for part in bands_of(window, rows)), force)


@dataclass
class TiledMetrics:
    """PSNR and SSIM accumulated over tiles, equal to the whole-image values.

    SSIM (skimage's 7x7 uniform window, the mean over pixels at least 3 from the
    border) is computed on each tile with a 3-pixel halo and the interior of each
    tile's SSIM map summed, so it matches :func:`wisp_shacira.metrics.ssim`.
    """

    squared_error: float = 0.0
    count: int = 0
    ssim_sum: float = 0.0
    ssim_count: int = 0

    @property
    def psnr(self) -> float:
        mse = self.squared_error / max(1, self.count)
        return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)

    @property
    def ssim(self) -> float | None:
        return self.ssim_sum / self.ssim_count if self.ssim_count else None


def _halo(part: Window, store: PixelStore) -> Window:
    """``part`` grown by the SSIM window's half-width (at least the window), inside the image."""
    halo = SSIM_WINDOW // 2
    y1 = min(store.height, part.y + part.height + halo)
    x1 = min(store.width, part.x + part.width + halo)
    y0 = max(0, min(part.y - halo, y1 - SSIM_WINDOW))
    x0 = max(0, min(part.x - halo, x1 - SSIM_WINDOW))
    return Window(x0, y0, x1 - x0, y1 - y0)


def _ssim_sum(decoded: np.ndarray, original: np.ndarray, part: Window, grown: Window,
              store: PixelStore) -> tuple[float, int]:
    """Sum and count of the SSIM map over the pixels of ``part`` that the whole-image SSIM
    averages (those at least the half-window from the image border)."""
    structural_similarity = require("skimage.metrics", "metrics", "SSIM").structural_similarity
    ssim_map = structural_similarity(decoded, original, data_range=1.0, channel_axis=-1,
                                     win_size=SSIM_WINDOW, full=True)[1]
    halo = SSIM_WINDOW // 2
    ys = np.arange(grown.y, grown.y + grown.height)[:, None]
    xs = np.arange(grown.x, grown.x + grown.width)[None, :]
    keep = ((ys >= max(part.y, halo)) & (ys < min(part.y + part.height, store.height - halo))
            & (xs >= max(part.x, halo)) & (xs < min(part.x + part.width, store.width - halo)))
    return float(ssim_map.mean(axis=-1)[keep].sum()), int(keep.sum())


def measure(decoded_tile: Callable[[Window], np.ndarray], store: PixelStore,
            tile: int = DEFAULT_TILE, with_ssim: bool = True) -> TiledMetrics:
    """PSNR/SSIM of a decode (``decoded_tile(window) -> [h, w, C]`` in [0, 1]) against
    ``store``, tile by tile."""
    metrics = TiledMetrics()
    with_ssim = with_ssim and ssim_available() and min(store.height, store.width) >= SSIM_WINDOW
    parts = list(tiles_of(Window(0, 0, store.width, store.height), tile))
    for part in tqdm(parts, desc=f"measure {store.name}", unit="tile", disable=len(parts) < 16):
        grown = _halo(part, store)
        decoded = decoded_tile(grown).astype(np.float64)
        original = store.tile(grown.y, grown.y + grown.height, grown.x,
                              grown.x + grown.width).astype(np.float64)
        inner = (slice(part.y - grown.y, part.y - grown.y + part.height),
                 slice(part.x - grown.x, part.x - grown.x + part.width))
        metrics.squared_error += float(np.sum((decoded[inner] - original[inner]) ** 2))
        metrics.count += part.height * part.width * store.channels
        if with_ssim:
            total, count = _ssim_sum(decoded, original, part, grown, store)
            metrics.ssim_sum += total
            metrics.ssim_count += count
    return metrics
