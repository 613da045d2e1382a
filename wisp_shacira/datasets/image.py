"""Image loading for the image task: 8/16-bit gray, gray+alpha, RGB and RGBA."""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import png

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


def sample_depth(dtype: np.dtype, path: Path) -> int:
    """8 or 16 for uint8 / uint16 samples.

    Raises:
        DataError: any other sample type.
    """
    if dtype == np.uint8:
        return 8
    if dtype == np.uint16:
        return 16
    raise DataError(f"{path}: unsupported sample type {dtype} (expected 8 or 16 bit)")


def sample_dtype(bit_depth: int) -> type:
    """The numpy sample type of a bit depth (8 or 16)."""
    return np.uint8 if bit_depth == 8 else np.uint16


def load_image(path: str | os.PathLike) -> ImageData:
    """Read one image file.

    Raises:
        DataError: missing or unreadable file, or an unsupported pixel format.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such image file")
    try:
        array = _read_png(path) if path.suffix.lower() == ".png" else iio.imread(path)
    except Exception as exc:  # the readers raise many types for undecodable files
        raise DataError(f"{path}: cannot read image ({exc})") from exc
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise DataError(f"{path}: unsupported image shape {array.shape} "
                        "(expected gray, gray+alpha, RGB or RGBA)")
    depth = sample_depth(array.dtype, path)
    if array.shape[0] < 2 or array.shape[1] < 2:
        raise DataError(f"{path}: image of {array.shape[1]}x{array.shape[0]} pixels is too small")
    pixels = array.astype(np.float32) / float(2**depth - 1)
    return ImageData(pixels, depth, path.stem)


def _read_png(path: Path) -> np.ndarray:
    """PNG at its own bit depth (Pillow would reduce 16-bit colour to 8 bits).

    Returns:
        [H, W, C] uint8 or uint16; depths below 8 are scaled to 8 bits.
    """
    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    depth = info["bitdepth"]
    array = np.vstack([np.asarray(row, dtype=np.uint32) for row in rows])
    array = array.reshape(height, width, info["planes"])
    if depth < 8:
        return (array * (255 // (2**depth - 1))).astype(np.uint8)
    return array.astype(np.uint16 if depth > 8 else np.uint8)


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
    out = np.clip(np.round(pixels * peak), 0, peak).astype(sample_dtype(bit_depth))
    return out[..., 0] if out.shape[2] == 1 else out


def png_writer(height: int, width: int, channels: int, bit_depth: int) -> png.Writer:
    """The pypng writer of an image with 1-4 channels (gray, gray+alpha, RGB, RGBA)."""
    return png.Writer(width, height, greyscale=channels <= 2, alpha=channels in (2, 4),
                      bitdepth=bit_depth)


def encode_png(pixels: np.ndarray, bit_depth: int) -> bytes:
    """PNG bytes of a float image [H, W, C] in [0, 1] at 8 or 16 bits per sample."""
    array = to_integer_image(pixels, bit_depth)
    buffer = io.BytesIO()
    png_writer(*pixels.shape, bit_depth).write_array(buffer, array.reshape(-1))
    return buffer.getvalue()
