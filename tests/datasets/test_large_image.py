"""Large-image reading: every reader gives the same 8/16-bit pixels, headers are
checked before any large allocation, damaged files are one clear error."""
from __future__ import annotations

import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import png
import pytest
import tifffile
from PIL import Image

from wisp_shacira.datasets import large_image
from wisp_shacira.datasets.image import load_image
from wisp_shacira.datasets.large_image import open_pixels, read_header
from wisp_shacira.datasets.tiled_output import write_png_bands, write_tiled_tiff
from wisp_shacira.errors import DataError, OutputError


def _pixels(channels: int = 3, dtype=np.uint8, size=(37, 53)) -> np.ndarray:
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    peak = np.iinfo(dtype).max
    planes = [((xx * (c + 1) * 7 + yy * 5) % 256) / 255 for c in range(channels)]
    return (np.stack(planes, -1) * peak).astype(dtype)


def _write_png(path: Path, array: np.ndarray) -> Path:
    channels = array.shape[2]
    writer = png.Writer(array.shape[1], array.shape[0], greyscale=channels <= 2,
                        alpha=channels in (2, 4), bitdepth=8 * array.itemsize)
    with open(path, "wb") as handle:
        writer.write_array(handle, array.reshape(-1))
    return path


@pytest.mark.parametrize("channels, dtype", [(1, np.uint8), (3, np.uint8), (4, np.uint8),
                                             (3, np.uint16)])
def test_tiff_layouts_and_png_give_the_same_pixels(tmp_path: Path, channels: int, dtype) -> None:
    array = _pixels(channels, dtype)
    plain = array[..., 0] if channels == 1 else array
    files = {"strips.tif": lambda p: tifffile.imwrite(p, plain),
             "tiles.tif": lambda p: tifffile.imwrite(p, plain, tile=(16, 16)),
             "zlib.tif": lambda p: tifffile.imwrite(p, plain, tile=(16, 16), compression="zlib",
                                                    bigtiff=True),
             "rows.png": lambda p: _write_png(p, array)}
    for name, write in files.items():
        write(tmp_path / name)
        store = open_pixels(tmp_path / name)
        assert store.array.dtype == dtype and store.bit_depth == 8 * np.dtype(dtype).itemsize
        assert np.array_equal(store.array, array), name
        assert np.array_equal(store.tile(3, 9, 5, 20), load_image(tmp_path / name).pixels[3:9, 5:20])
        index = np.array([0, 7, 53 * 36 + 52])
        assert np.allclose(store.gather(index), array.reshape(-1, channels)[index] / store.peak)
    assert read_header(tmp_path / "strips.tif").reader == "tiff-mmap"
    assert isinstance(open_pixels(tmp_path / "strips.tif").array, np.memmap)
    assert read_header(tmp_path / "tiles.tif").reader == "tiff"


def test_jpeg_loads_past_pillows_decompression_bomb_limit(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    Image.fromarray(_pixels()).save(tmp_path / "a.jpg", quality=95)
    with Image.open(tmp_path / "a.jpg") as img:
        expected = np.asarray(img)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(tmp_path / "a.jpg")
    store = open_pixels(tmp_path / "a.jpg")
    assert store.array.shape == (37, 53, 3) and Image.MAX_IMAGE_PIXELS == 100
    assert np.array_equal(store.array, expected)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_a_crafted_huge_header_is_refused_before_allocating(tmp_path: Path) -> None:
    side = (1 << 20) - 1
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(b"\0" * 100)) + _chunk(b"IEND", b""))
    (tmp_path / "huge.png").write_bytes(data)
    tracemalloc.start()
    with pytest.raises(DataError, match=r"needs 3\.0 TiB.*of memory and .* of disk"):
        open_pixels(tmp_path / "huge.png", cache_dir=tmp_path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 << 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.png"]
    tifffile.imwrite(tmp_path / "short.tif", np.zeros((64, 64, 3), np.uint8))
    (tmp_path / "short.tif").write_bytes((tmp_path / "short.tif").read_bytes()[:5000])
    with pytest.raises(DataError, match="cannot map image pixels"):
        open_pixels(tmp_path / "short.tif")


def test_damaged_and_unsupported_files_are_one_clear_error(tmp_path: Path) -> None:
    array = (np.random.default_rng(0).random((64, 80, 3)) * 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "planar.tif", array, planarconfig="separate")
    tifffile.imwrite(tmp_path / "float.tif", array.astype(np.float32), photometric="rgb")
    tifffile.imwrite(tmp_path / "zlib.tif", array, tile=(16, 16), compression="zlib")
    _write_png(tmp_path / "noise.png", array)
    for name in ("zlib.tif", "noise.png"):
        data = (tmp_path / name).read_bytes()
        (tmp_path / f"cut_{name}").write_bytes(data[:len(data) // 2])
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    cases = {"planar.tif": "planar TIFF", "float.tif": "unsupported sample type float32",
             "cut_zlib.tif": "cannot read image pixels", "cut_noise.png": "cannot read image pixels",
             "junk.png": "cannot read image header", "missing.tif": "no such image file"}
    for name, message in cases.items():
        with pytest.raises(DataError, match=message) as info:
            open_pixels(tmp_path / name)
        assert "\n" not in str(info.value)


def test_pixels_that_do_not_fit_in_memory_go_to_a_removable_cache(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    array = _pixels(3)
    tifffile.imwrite(tmp_path / "tiles.tif", array, tile=(16, 16))
    monkeypatch.setattr(large_image, "available_memory", lambda: 1000)
    store = open_pixels(tmp_path / "tiles.tif", cache_dir=tmp_path)
    assert store.cache is not None and store.cache.parent == tmp_path
    assert np.array_equal(store.array, array)
    store.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiles.tif"]


def test_tiled_outputs_read_back_and_leave_nothing_on_error(tmp_path: Path) -> None:
    array = _pixels(3)
    tiles = [np.pad(array[y:y + 16, x:x + 16], ((0, max(0, y + 16 - 37)), (0, max(0, x + 16 - 53)), (0, 0)))
             for y in range(0, 37, 16) for x in range(0, 53, 16)]
    write_tiled_tiff(tmp_path / "out.tif", 37, 53, 3, 8, 16, iter(tiles))
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert tif.is_bigtiff and tif.pages[0].is_tiled
        assert np.array_equal(tif.asarray(), array)
    bands = [array[y:y + 10] for y in range(0, 37, 10)]
    write_png_bands(tmp_path / "out.png", 37, 53, 3, 8, iter(bands))
    assert np.array_equal(open_pixels(tmp_path / "out.png").array, array)
    with pytest.raises(OutputError, match="36 rows rendered"):
        write_png_bands(tmp_path / "short.png", 37, 53, 3, 8, iter(bands[:-1] + [array[30:36]]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png", "out.tif"]
