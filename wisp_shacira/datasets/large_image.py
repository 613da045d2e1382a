"""Large images (up to gigapixels) as 8/16-bit pixels in memory or memory-mapped.

:func:`open_pixels` reads the header first, checks that the pixels fit (memory, or disk
for a cache) and only then reads them, so a crafted or huge header is refused before
any large allocation. The pixels are never converted to float as a whole: training
gathers batches (:meth:`PixelStore.gather`) and metrics read tiles
(:meth:`PixelStore.tile`).

Readers, chosen by suffix:

- TIFF / BigTIFF (tifffile: pure Python + numpy, reads strips and tiles, zlib and
  uncompressed without further codecs): an uncompressed contiguous image is
  memory-mapped from the file (no copy at all); any other layout is decoded strip by
  strip or tile by tile into the store's buffer. Planar (one plane per sample)
  images are refused.
- PNG (pypng): decoded row by row into the buffer, at its own bit depth.
- JPEG and the rest (Pillow): Pillow decodes the whole image (its decompression-bomb
  guard is replaced by the memory check above), then bands are copied out.

The buffer is in memory when the available memory holds it, else a memory-mapped
cache file in ``cache_dir`` (deleted by :meth:`PixelStore.close`).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from wisp_shacira.codec.limits import format_bytes
from wisp_shacira.datasets.image import sample_depth, sample_dtype
from wisp_shacira.errors import DataError

TIFF_SUFFIXES = (".tif", ".tiff")
MAX_SIDE = 1 << 20
"""Largest image side accepted (the ``.shac`` image header's bound)."""
BAND_ROWS = 256
"""Rows copied at a time from a Pillow image."""


@dataclass(frozen=True)
class ImageHeader:
    """What a file declares before its pixels are read."""

    height: int
    width: int
    channels: int
    bit_depth: int
    reader: str  # "tiff-mmap", "tiff", "png" or "pillow"

    @property
    def nbytes(self) -> int:
        return self.height * self.width * self.channels * self.bit_depth // 8


@dataclass
class PixelStore:
    """Pixels of one image, kept at their own depth.

    Attributes:
        array: [H, W, C] uint8 or uint16 (a numpy array or a read-only memory map).
        bit_depth: 8 or 16.
        name: file stem.
        cache: the cache file backing ``array``, if any (removed by :meth:`close`).
    """

    array: np.ndarray
    bit_depth: int
    name: str
    cache: Path | None = None

    @property
    def height(self) -> int:
        return self.array.shape[0]

    @property
    def width(self) -> int:
        return self.array.shape[1]

    @property
    def channels(self) -> int:
        return self.array.shape[2]

    @property
    def peak(self) -> float:
        return float(2**self.bit_depth - 1)

    def tile(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Rows ``y0:y1``, columns ``x0:x1`` as [h, w, C] float32 in [0, 1]."""
        return self.array[y0:y1, x0:x1].astype(np.float32) / self.peak

    def gather(self, index: np.ndarray) -> np.ndarray:
        """Pixels at flat (row-major) indices ``index: [N]`` as [N, C] float32 in [0, 1]."""
        ys, xs = np.divmod(index, self.width)
        return self.array[ys, xs].astype(np.float32) / self.peak

    def close(self) -> None:
        """Release the pixels and remove a cache file."""
        self.array = np.empty((0, 0, self.channels), self.array.dtype)
        if self.cache is not None:
            self.cache.unlink(missing_ok=True)
            self.cache = None


def available_memory() -> int:
    """Bytes of memory available to a new allocation (``MemAvailable``), best effort."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def _check_size(path: Path, height: int, width: int, channels: int) -> None:
    if not (1 <= channels <= 4):
        raise DataError(f"{path}: {channels} samples per pixel (expected gray, gray+alpha, "
                        "RGB or RGBA)")
    if height < 2 or width < 2:
        raise DataError(f"{path}: image of {width}x{height} pixels is too small")
    if height > MAX_SIDE or width > MAX_SIDE:
        raise DataError(f"{path}: image of {width}x{height} pixels exceeds {MAX_SIDE} a side")


def _tiff_header(path: Path) -> ImageHeader:
    import tifffile  # core dependency; imported here to keep module import light

    with tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise DataError(f"{path}: TIFF holds no image")
        series, page = tif.series[0], tif.pages[0]
        if page.planarconfig == 2 and page.samplesperpixel > 1:
            raise DataError(f"{path}: planar TIFF (one plane per sample) is not supported; "
                            "store the samples interleaved (contiguous)")
        shape = series.shape
        if series.axes not in ("YX", "YXS") or len(shape) not in (2, 3):
            raise DataError(f"{path}: unsupported TIFF layout {series.axes} {shape} "
                            "(expected one image, YX or YXS)")
        channels = 1 if len(shape) == 2 else shape[2]
        _check_size(path, shape[0], shape[1], channels)
        mappable = bool(page.is_memmappable) and len(tif.pages) == 1
        return ImageHeader(shape[0], shape[1], channels, sample_depth(series.dtype, path),
                           "tiff-mmap" if mappable else "tiff")


def _png_header(path: Path) -> ImageHeader:
    import png

    width, height, _, info = png.Reader(filename=str(path)).asDirect()  # rows are lazy
    depth = 16 if info["bitdepth"] > 8 else 8
    _check_size(path, height, width, info["planes"])
    return ImageHeader(height, width, info["planes"], depth, "png")


_PILLOW_MODES = {"L": (1, 8), "LA": (2, 8), "RGB": (3, 8), "RGBA": (4, 8), "I;16": (1, 16),
                 "I;16B": (1, 16), "I;16L": (1, 16), "P": (3, 8), "PA": (4, 8), "1": (1, 8),
                 "CMYK": (3, 8), "YCbCr": (3, 8)}


@contextmanager
def _pillow_unbounded() -> Iterator[None]:
    """Pillow without its decompression-bomb limit (the caller checks the memory)."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _pillow_header(path: Path) -> ImageHeader:
    from PIL import Image

    with _pillow_unbounded(), Image.open(path) as img:
        if img.mode not in _PILLOW_MODES:
            raise DataError(f"{path}: unsupported pixel mode {img.mode}")
        channels, depth = _PILLOW_MODES[img.mode]
        if img.mode in ("P", "PA") and "transparency" in img.info:
            channels = 4
        _check_size(path, img.height, img.width, channels)
        return ImageHeader(img.height, img.width, channels, depth, "pillow")


def read_header(path: str | os.PathLike) -> ImageHeader:
    """The size and format an image file declares, without reading its pixels.

    Raises:
        DataError: missing, unreadable, corrupt or unsupported file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such image file")
    suffix = path.suffix.lower()
    try:
        if suffix in TIFF_SUFFIXES:
            return _tiff_header(path)
        if suffix == ".png":
            return _png_header(path)
        return _pillow_header(path)
    except DataError:
        raise
    except Exception as exc:  # the readers raise many types for damaged headers
        raise DataError(f"{path}: cannot read image header ({exc})") from exc


def _buffer(header: ImageHeader, path: Path, cache_dir: Path | None
            ) -> tuple[np.ndarray, Path | None]:
    """A writable [H, W, C] buffer: in memory when it fits, else a cache file on disk."""
    dtype = sample_dtype(header.bit_depth)
    shape = (header.height, header.width, header.channels)
    memory = available_memory()
    if header.nbytes <= memory * 0.8:
        return np.empty(shape, dtype), None
    folder = Path(cache_dir) if cache_dir is not None else Path(tempfile.gettempdir())
    free = shutil.disk_usage(folder).free
    if header.nbytes > free * 0.9:
        raise DataError(f"{path}: a {header.width}x{header.height}x{header.channels} "
                        f"{header.bit_depth}-bit image needs {format_bytes(header.nbytes)}; "
                        f"{format_bytes(memory)} of memory and {format_bytes(free)} of disk "
                        f"in {folder} are available")
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.pixels.{os.getpid()}.", suffix=".tmp",
                                dir=folder)
    os.close(fd)
    return np.lib.format.open_memmap(name, "w+", dtype, shape), Path(name)


def _fill_tiff(path: Path, out: np.ndarray) -> None:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        series.asarray(out=out.reshape(series.shape))


def _fill_png(path: Path, out: np.ndarray, header: ImageHeader) -> None:
    import png

    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    depth, dtype, count = info["bitdepth"], out.dtype, 0
    for count, row in enumerate(rows, start=1):
        if count > height:
            break
        values = np.asarray(row, dtype=np.uint32 if depth < 8 else dtype).reshape(width, -1)
        if depth < 8:
            values = values * (255 // (2**depth - 1))
        out[count - 1] = values
    if count < height:
        raise DataError(f"{path}: truncated PNG ({count} of {height} rows)")


def _fill_pillow(path: Path, out: np.ndarray, header: ImageHeader) -> None:
    from PIL import Image

    with _pillow_unbounded(), Image.open(path) as img:
        img.load()
        target = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[header.channels]
        for y0 in range(0, header.height, BAND_ROWS):
            band = img.crop((0, y0, header.width, min(header.height, y0 + BAND_ROWS)))
            if header.bit_depth == 8 and band.mode != target:
                band = band.convert(target)
            out[y0:y0 + band.height] = np.asarray(band).reshape(band.height, header.width, -1)


def open_pixels(path: str | os.PathLike, cache_dir: str | os.PathLike | None = None
                ) -> PixelStore:
    """Read an image of any size into a :class:`PixelStore` (see the module notes).

    Raises:
        DataError: missing, corrupt, truncated or unsupported file, or pixels that fit
            neither in memory nor in a cache on disk (naming both amounts).
    """
    path = Path(path)
    header = read_header(path)
    if header.reader == "tiff-mmap":
        import tifffile

        try:
            array = tifffile.memmap(path, mode="r")
        except (ValueError, OSError) as exc:  # e.g. a file shorter than its pixels
            raise DataError(f"{path}: cannot map image pixels ({exc})") from exc
        return PixelStore(array.reshape(header.height, header.width, header.channels),
                          header.bit_depth, path.stem)
    out, cache = _buffer(header, path, Path(cache_dir) if cache_dir is not None else None)
    try:
        fill = {"tiff": lambda: _fill_tiff(path, out), "png": lambda: _fill_png(path, out, header),
                "pillow": lambda: _fill_pillow(path, out, header)}[header.reader]
        fill()
    except Exception as exc:  # truncated or corrupt pixel data
        if cache is not None:
            cache.unlink(missing_ok=True)
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: cannot read image pixels ({exc})") from exc
    return PixelStore(out, header.bit_depth, path.stem, cache)
