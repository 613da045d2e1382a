"""Images of any size written from tiles or bands, never held whole.

- :func:`write_tiled_tiff`: a tiled BigTIFF (tifffile), uncompressed, so that it can be
  read back by tile (and memory-mapped by tools that do); tiles arrive row-major.
- :func:`write_png_bands`: a PNG (pypng) from bands of full rows.

Both write under a temporary name and move the file into place when complete
(:func:`wisp_shacira.outputs.staged_output`); an error leaves nothing behind. The
caller checks the free disk space first (:func:`check_disk`).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import numpy as np

from wisp_shacira.codec.limits import format_bytes
from wisp_shacira.datasets.image import png_writer, sample_dtype
from wisp_shacira.errors import OutputError
from wisp_shacira.outputs import existing_ancestor, staged_output

TIFF_OUTPUT_SUFFIXES = (".tif", ".tiff")


def output_nbytes(height: int, width: int, channels: int, bit_depth: int) -> int:
    """Bytes of the uncompressed pixels (the size of the TIFF, bounding the PNG)."""
    return height * width * channels * bit_depth // 8


def check_disk(path: Path, nbytes: int) -> None:
    """Refuse an output whose pixels need more than the free space beside ``path``.

    Raises:
        OutputError: naming the bytes needed and free.
    """
    folder = existing_ancestor(Path(path).parent)
    free = shutil.disk_usage(folder).free
    if nbytes > free:
        raise OutputError(f"{path}: the decoded image needs up to {format_bytes(nbytes)} on "
                          f"disk; {format_bytes(free)} are free in {folder}")


def write_tiled_tiff(path: Path, height: int, width: int, channels: int, bit_depth: int,
                     tile: int, tiles: Iterator[np.ndarray], force: bool = False) -> Path:
    """Write a tiled BigTIFF.

    Args:
        tile: tile side (a multiple of 16, as TIFF requires).
        tiles: row-major tiles, each [tile, tile, C] of the sample type (edge tiles
            padded with zeros).
    """
    import tifffile

    if tile % 16:
        raise ValueError(f"TIFF tiles must be a multiple of 16, got {tile}")
    photometric = "rgb" if channels >= 3 else "minisblack"
    extrasamples = ("unassalpha",) if channels in (2, 4) else None
    shape = (height, width, channels) if channels > 1 else (height, width)
    squeeze = (t[..., 0] for t in tiles) if channels == 1 else tiles
    with staged_output(path, force=force) as tmp:
        tifffile.imwrite(tmp, squeeze, shape=shape, dtype=sample_dtype(bit_depth), tile=(tile, tile),
                         bigtiff=True, photometric=photometric, extrasamples=extrasamples,
                         metadata=None)
    return Path(path)


def write_png_bands(path: Path, height: int, width: int, channels: int, bit_depth: int,
                    bands: Iterator[np.ndarray], force: bool = False) -> Path:
    """Write a PNG from bands of full rows, each [h, W, C] of the sample type."""
    def rows() -> Iterator[np.ndarray]:
        count = 0
        for band in bands:
            for row in band.reshape(band.shape[0], -1):
                count += 1
                yield row
        if count != height:
            raise OutputError(f"{path}: {count} rows rendered for an image of {height}")

    with staged_output(path, force=force) as tmp, open(tmp, "wb") as handle:
        png_writer(height, width, channels, bit_depth).write(handle, rows())
    return Path(path)
