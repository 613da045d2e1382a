"""Inputs of ``bench/gigapixel.py``, built from real content and cached on disk.

- :func:`build_mosaic`: the frames of a video tiled into one image (a strip TIFF that
  the project memory-maps).
- :func:`build_canvas`: a square canvas with the mosaic in its top-left corner and a
  procedural rendering with detail at every scale elsewhere.
- :func:`crop_tiff`: its top-left crops.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import tifffile

BAND = 256
OCTAVES = 16


@dataclass
class BuiltImage:
    path: Path
    description: str
    side: int
    max_res: int


def _cached(path: Path, description: str) -> bool:
    meta = path.with_suffix(".json")
    return path.exists() and meta.exists() and json.loads(meta.read_text()) == description


def _done(path: Path, description: str) -> None:
    path.with_suffix(".json").write_text(json.dumps(description))


def _frames(video: Path, count: int):
    with av.open(str(video)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index >= count:
                return
            yield frame.to_ndarray(format="rgb24")


def build_mosaic(video: Path, path: Path, count: int, cols: int = 20) -> BuiltImage:
    """The first ``count`` frames of ``video`` tiled ``cols`` per row (row-major)."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        height, width = stream.codec_context.height, stream.codec_context.width
    cols = min(cols, count)
    rows = math.ceil(count / cols)
    shape = (rows * height, cols * width, 3)
    description = (f"{count} frames of {video.name} ({width}x{height}) tiled {cols}x{rows}: "
                   f"{shape[1]}x{shape[0]} RGB, {shape[0] * shape[1] / 1e6:.0f} Mpixels, "
                   f"uncompressed strip TIFF")
    if not _cached(path, description):
        path.parent.mkdir(parents=True, exist_ok=True)
        out = tifffile.memmap(path, shape=shape, dtype=np.uint8, photometric="rgb")
        out[:] = 0
        for index, frame in enumerate(_frames(video, count)):
            r, c = divmod(index, cols)
            out[r * height:(r + 1) * height, c * width:(c + 1) * width] = frame
        out.flush()
        del out
        _done(path, description)
    return BuiltImage(path, description, max(shape[:2]), max(shape[:2]) // 2)


def procedural(y0: int, y1: int, x0: int, x1: int, seed: int = 0) -> np.ndarray:
    """Oriented sinusoids of periods 2 px to 2^OCTAVES px mixed into RGB: [h, w, 3] uint8."""
    rng = np.random.default_rng(seed)
    ys = np.arange(y0, y1, dtype=np.float32)[:, None]
    xs = np.arange(x0, x1, dtype=np.float32)[None, :]
    out = np.zeros((y1 - y0, x1 - x0, 3), np.float32)
    total = 0.0
    for k in range(OCTAVES):
        period = 2.0 ** (k + 1)
        theta, phase = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
        mix = rng.uniform(0.2, 1.0, 3).astype(np.float32)
        amplitude = period ** 0.35
        wave = np.sin((xs * np.cos(theta) + ys * np.sin(theta)) * (2 * np.pi / period) + phase)
        out += (amplitude * wave)[..., None] * mix
        total += amplitude
    return np.clip(127.5 + out * (127.5 / (0.6 * total)), 0, 255).astype(np.uint8)


def build_canvas(video: Path, folder: Path, count: int, side: int = 32768) -> BuiltImage:
    """A ``side x side`` RGB canvas: the mosaic top-left, :func:`procedural` elsewhere."""
    mosaic = build_mosaic(video, folder / "cockatoo_mosaic.tif", count)
    path = folder / f"canvas_{side}.tif"
    description = (f"{side}x{side} RGB ({side * side / 1e9:.2f} Gpixels), uncompressed strip "
                   f"TIFF: top-left the mosaic ({mosaic.description}); elsewhere {OCTAVES} "
                   "octaves of oriented sinusoids (periods 2 px to 64 kpx, amplitude ~ "
                   "period^0.35) mixed into RGB")
    if not _cached(path, description):
        source = tifffile.memmap(mosaic.path, mode="r")
        mh, mw = source.shape[:2]
        out = tifffile.memmap(path, shape=(side, side, 3), dtype=np.uint8, photometric="rgb")
        for y0 in range(0, side, BAND):
            y1 = min(side, y0 + BAND)
            if y0 < mh:
                out[y0:min(y1, mh), :mw] = source[y0:min(y1, mh)]
                out[y0:min(y1, mh), mw:] = procedural(y0, min(y1, mh), mw, side)
            if y1 > mh:
                top = max(y0, mh)
                out[top:y1] = procedural(top, y1, 0, side)
        out.flush()
        del out
        _done(path, description)
    return BuiltImage(path, description, side, side // 2)


def crop_tiff(path: Path, side: int, folder: Path) -> Path:
    """The top-left ``side x side`` crop of a TIFF, as a strip TIFF (cached)."""
    target = folder / f"{path.stem}_crop{side}.tif"
    description = f"top-left {side}x{side} of {path.name}"
    if not _cached(target, description):
        source = tifffile.memmap(path, mode="r")
        out = tifffile.memmap(target, shape=(side, side, 3), dtype=np.uint8, photometric="rgb")
        for y0 in range(0, side, BAND * 4):
            out[y0:y0 + BAND * 4] = source[y0:min(side, y0 + BAND * 4), :side]
        out.flush()
        del out
        _done(target, description)
    return target
