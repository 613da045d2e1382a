"""Image loading for the image task: 8/16-bit gray, gray+alpha, RGB and RGBA."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from wisp_shacira.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


@dataclass
class ImageData:
    """A loaded image.

    Attributes:
        pixels: [H, W, C] float32 in [0, 1].
        bit_depth: 8 or 16, the depth of the source and of the decoded PNG.
        name: file stem.
    """

    pixels: np.ndarray
    bit_depth: int
    name: str

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    @property
    def width(self) -> int:
        return self.pixels.shape[1]

    @property
    def channels(self) -> int:
        return self.pixels.shape[2]


def load_image(path: str | os.PathLike) -> ImageData:
    """Read one image file.

    Raises:
        DataError: missing or unreadable file, or an unsupported pixel format.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such image file")
    try:
        array = iio.imread(path)
    except Exception as exc:  # imageio raises many types for undecodable files
        raise DataError(f"{path}: cannot read image ({exc})") from exc
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise DataError(f"{path}: unsupported image shape {array.shape} "
                        "(expected gray, gray+alpha, RGB or RGBA)")
    if array.dtype == np.uint8:
        depth = 8
    elif array.dtype == np.uint16:
        depth = 16
    else:
        raise DataError(f"{path}: unsupported sample type {array.dtype} (expected 8 or 16 bit)")
    if array.shape[0] < 2 or array.shape[1] < 2:
        raise DataError(f"{path}: image of {array.shape[1]}x{array.shape[0]} pixels is too small")
    pixels = array.astype(np.float32) / float(2**depth - 1)
    return ImageData(pixels, depth, path.stem)


def list_images(path: str | os.PathLike) -> list[Path]:
    """The image files at ``path``: the file itself, or the sorted images in a folder."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"{path}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
        return files
    raise DataError(f"{path}: no such image file or folder")


def to_integer_image(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    """[H, W, C] float in [0, 1] -> uint8/uint16 (rounded, clipped); C=1 becomes [H, W]."""
    peak = 2**bit_depth - 1
    out = np.clip(np.round(pixels * peak), 0, peak).astype(np.uint8 if bit_depth == 8 else np.uint16)
    return out[..., 0] if out.shape[2] == 1 else out


def encode_png(pixels: np.ndarray, bit_depth: int) -> bytes:
    """PNG bytes of a float image (see :func:`to_integer_image`)."""
    return iio.imwrite("<bytes>", to_integer_image(pixels, bit_depth), extension=".png")
