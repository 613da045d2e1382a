"""Classical codec baselines for rate-distortion comparisons (no torch needed).

Images go through Pillow (JPEG, WebP, JPEG 2000) in memory; videos go through the
FFmpeg binary shipped with ``imageio-ffmpeg`` (H.264/H.265 via libx264/libx265) with raw
RGB frames piped in and out. Rates are bits per pixel: ``bytes * 8 / (H * W)`` for an
image, ``bytes * 8 / (T * H * W)`` for a video. Each ``*_at_bpp`` search returns the
highest-quality setting whose rate is not above the target, or the lowest-rate setting
when even that is above it.
"""
from __future__ import annotations

import io
import logging
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from wisp_shacira.metrics import psnr, video_psnr, video_ssim

logger = logging.getLogger(__name__)

PILLOW_CODECS = ("jpeg", "webp", "jpeg2000")
FFMPEG_CODECS = {"h264": "libx264", "h265": "libx265"}
_MAX_J2K_RATIO = 2000.0


def _check_image(img: np.ndarray) -> None:
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected an [H, W, 3] uint8 image, got {img.dtype} {img.shape}")


def pillow_encode(img: np.ndarray, codec: str, quality: float) -> bytes:
    """Encode ``img: [H, W, 3] uint8`` in memory.

    ``quality`` is Pillow's 1-95 quality for JPEG, 0-100 for WebP, and the compression
    ratio (24 / bpp, larger is smaller) for JPEG 2000 (raw codestream, 9/7 wavelet).
    """
    _check_image(img)
    buffer = io.BytesIO()
    pil = Image.fromarray(img)
    if codec == "jpeg":
        pil.save(buffer, "JPEG", quality=int(quality), optimize=True)
    elif codec == "webp":
        pil.save(buffer, "WEBP", quality=int(quality), method=6)
    elif codec == "jpeg2000":
        pil.save(buffer, "JPEG2000", quality_mode="rates", quality_layers=[float(quality)],
                 irreversible=True, mct=1, no_jp2=True)
    else:
        raise ValueError(f"unknown codec {codec!r}; expected one of {PILLOW_CODECS}")
    return buffer.getvalue()


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as pil:
        return np.asarray(pil.convert("RGB"), dtype=np.uint8)


def _image_bpp(data: bytes, img: np.ndarray) -> float:
    return len(data) * 8.0 / (img.shape[0] * img.shape[1])


def _search_int(rate_of: Callable[[int], float], low: int, high: int, target: float) -> int:
    """Largest ``q`` in ``[low, high]`` with ``rate_of(q) <= target``, else ``low``.

    Assumes the rate grows with ``q``.
    """
    if rate_of(low) > target:
        return low
    while low < high:
        mid = (low + high + 1) // 2
        if rate_of(mid) <= target:
            low = mid
        else:
            high = mid - 1
    return low


def pillow_codec_at_bpp(
    img: np.ndarray, codec: str, target_bpp: float
) -> tuple[float, float, np.ndarray]:
    """Encode ``img: [H, W, 3] uint8`` near ``target_bpp``; return ``(bpp, psnr_db, decoded)``.

    JPEG/WebP: binary search on the integer quality. JPEG 2000: binary search on the
    compression ratio, starting from ``24 / target_bpp``. PSNR is on RGB in [0, 1].
    """
    _check_image(img)
    if target_bpp <= 0:
        raise ValueError(f"target_bpp must be positive, got {target_bpp}")
    cache: dict[float, bytes] = {}

    def encoded(quality: float) -> bytes:
        if quality not in cache:
            cache[quality] = pillow_encode(img, codec, quality)
        return cache[quality]

    if codec in ("jpeg", "webp"):
        low, high = (1, 95) if codec == "jpeg" else (0, 100)
        best = _search_int(lambda q: _image_bpp(encoded(q), img), low, high, target_bpp)
        data = encoded(best)
    elif codec == "jpeg2000":
        data = encoded(_search_j2k_ratio(lambda r: _image_bpp(encoded(r), img), target_bpp))
    else:
        raise ValueError(f"unknown codec {codec!r}; expected one of {PILLOW_CODECS}")
    decoded = _decode(data)
    return _image_bpp(data, img), psnr(img / 255.0, decoded / 255.0), decoded


def _search_j2k_ratio(rate_of: Callable[[float], float], target: float, steps: int = 12) -> float:
    """Smallest compression ratio (best quality) whose rate is not above ``target``."""
    ratio = 24.0 / target
    if rate_of(ratio) <= target:
        return ratio
    low, high = ratio, ratio
    while rate_of(high) > target and high < _MAX_J2K_RATIO:
        low, high = high, high * 1.25
    for _ in range(steps):
        mid = (low * high) ** 0.5
        if rate_of(mid) <= target:
            high = mid
        else:
            low = mid
    return high


def pillow_codec_curve(
    img: np.ndarray, codec: str, qualities: Sequence[float]
) -> list[tuple[float, float]]:
    """Rate-distortion points ``[(bpp, psnr_db), ...]`` of ``img`` at each quality.

    ``qualities`` are in the units of :func:`pillow_encode`.
    """
    points = []
    for quality in qualities:
        data = pillow_encode(img, codec, quality)
        points.append((_image_bpp(data, img), psnr(img / 255.0, _decode(data) / 255.0)))
    return points


def _run_ffmpeg(args: list[str], stdin: bytes | None = None) -> bytes:
    import imageio_ffmpeg  # only the video baselines need the ffmpeg binary

    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args]
    result = subprocess.run(command, input=stdin, capture_output=True, check=False)
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace")[-2000:]
        raise RuntimeError(f"ffmpeg failed ({result.returncode}): {message}")
    return result.stdout


def ffmpeg_encode(frames: np.ndarray, codec: str, crf: float, out: Path, fps: float = 25.0) -> int:
    """Encode ``frames: [T, H, W, 3] uint8`` to the raw bitstream ``out``; return its size in bytes.

    libx264/libx265, preset medium, yuv420p, constant rate factor ``crf``; no container,
    so the size is the coded video alone.
    """
    if codec not in FFMPEG_CODECS:
        raise ValueError(f"unknown codec {codec!r}; expected one of {tuple(FFMPEG_CODECS)}")
    _, height, width, _ = frames.shape
    if height % 2 or width % 2:
        raise ValueError(f"yuv420p needs even frame sizes, got {width}x{height}")
    extra = ["-x265-params", "log-level=error"] if codec == "h265" else []
    _run_ffmpeg(
        ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps),
         "-i", "-",
         "-c:v", FFMPEG_CODECS[codec], "-preset", "medium", "-crf", f"{crf:.3f}", *extra,
         "-pix_fmt", "yuv420p", "-f", "h264" if codec == "h264" else "hevc", str(out)],
        stdin=np.ascontiguousarray(frames).tobytes(),
    )
    return out.stat().st_size


def ffmpeg_decode(path: Path, num_frames: int, height: int, width: int) -> np.ndarray:
    """Decode a raw H.264/H.265 bitstream to ``frames: [T, H, W, 3] uint8``."""
    raw = _run_ffmpeg(
        ["-i", str(path), "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    )
    expected = num_frames * height * width * 3
    if len(raw) != expected:
        raise RuntimeError(f"{path}: decoded {len(raw)} bytes, expected {expected}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(num_frames, height, width, 3)


def ffmpeg_codec_at_bpp(
    frames: np.ndarray, codec: str, target_bpp: float, fps: float = 25.0, steps: int = 8
) -> tuple[float, float, float]:
    """Encode ``frames: [T, H, W, 3] uint8`` near ``target_bpp``; return ``(bpp, psnr_db, ssim)``.

    Binary search on the CRF in [0, 51] (``steps`` halvings after an integer bracket)
    for the best quality not above the target. PSNR/SSIM are the per-frame means of
    :func:`wisp_shacira.metrics.video_psnr` / ``video_ssim`` on RGB.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected [T, H, W, 3] uint8 frames, got {frames.dtype} {frames.shape}")
    num_frames, height, width, _ = frames.shape
    pixels = num_frames * height * width
    with tempfile.TemporaryDirectory(prefix="wisp_ffmpeg_") as tmp:
        sizes: dict[float, int] = {}

        def bpp_at(crf: float) -> float:
            if crf not in sizes:
                out = Path(tmp) / f"crf_{crf:.3f}.bin"
                sizes[crf] = ffmpeg_encode(frames, codec, crf, out, fps)
            return sizes[crf] * 8.0 / pixels

        crf = _search_crf(bpp_at, target_bpp, steps)
        path = Path(tmp) / f"crf_{crf:.3f}.bin"
        decoded = ffmpeg_decode(path, num_frames, height, width)
        bpp = bpp_at(crf)
        logger.info("%s crf %.3f: %.4f bpp (target %.4f)", codec, crf, bpp, target_bpp)
        return bpp, video_psnr(frames, decoded, 255.0), video_ssim(frames, decoded, 255.0)


def _search_crf(bpp_at: Callable[[float], float], target: float, steps: int) -> float:
    """Lowest CRF (best quality) whose rate is not above ``target``; 51 if none is."""
    low, high = 0.0, 51.0
    if bpp_at(high) > target:
        return high
    if bpp_at(low) <= target:
        return low
    while high - low > 1.0:
        mid = float(round((low + high) / 2))
        if bpp_at(mid) <= target:
            high = mid
        else:
            low = mid
    for _ in range(steps):
        mid = (low + high) / 2
        if bpp_at(mid) <= target:
            high = mid
        else:
            low = mid
    return high
