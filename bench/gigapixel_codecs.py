"""JPEG and JPEG 2000 (Pillow) on a large image at a given BPP, measured in bands."""
from __future__ import annotations

import io
import math
import time
from pathlib import Path

import numpy as np
from PIL import Image

from wisp_shacira.datasets.large_image import open_pixels

J2K_TILE = (8192, 8192)


def _encode(pil: Image.Image, codec: str, quality: float) -> bytes:
    buffer = io.BytesIO()
    if codec == "jpeg":
        pil.save(buffer, "JPEG", quality=int(quality), optimize=True)
    else:
        pil.save(buffer, "JPEG2000", quality_mode="rates", quality_layers=[float(quality)],
                 irreversible=True, mct=1, no_jp2=True, tile_size=J2K_TILE)
    return buffer.getvalue()


def _psnr(original: np.ndarray, data: bytes, band: int = 512) -> float:
    Image.MAX_IMAGE_PIXELS = None
    with Image.open(io.BytesIO(data)) as pil:
        decoded = np.asarray(pil.convert("RGB"))
    total = 0.0
    for y in range(0, original.shape[0], band):
        diff = decoded[y:y + band].astype(np.float64) - original[y:y + band]
        total += float(np.sum(diff * diff))
    mse = total / original.size / 255.0**2
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def codec_point(path: Path, codec: str, target_bpp: float) -> dict:
    """``codec`` on the image at ``path`` near ``target_bpp`` (JPEG: the largest quality not
    above it; JPEG 2000: one layer at ratio 24 / BPP)."""
    store = open_pixels(path)
    original = np.asarray(store.array)
    Image.MAX_IMAGE_PIXELS = None
    pil = Image.fromarray(original)
    pixels = original.shape[0] * original.shape[1]
    start = time.perf_counter()
    if codec == "jpeg":
        low, high, best = 1, 95, None
        while low <= high:
            mid = (low + high) // 2
            data = _encode(pil, codec, mid)
            if len(data) * 8 / pixels <= target_bpp:
                best, low = (mid, data), mid + 1
            else:
                high = mid - 1
        quality, data = best if best is not None else (1, _encode(pil, codec, 1))
    else:
        quality = 24.0 / target_bpp
        data = _encode(pil, codec, quality)
    seconds = time.perf_counter() - start
    return {"bpp": len(data) * 8 / pixels, "bytes": len(data), "psnr": _psnr(original, data),
            "setting": quality, "search_seconds": seconds}
