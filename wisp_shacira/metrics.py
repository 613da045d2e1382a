"""Image and video quality metrics (PSNR, SSIM) on numpy arrays.

Inputs are images ``[H, W, C]`` or ``[H, W]`` (videos ``[T, H, W, C]``) of any numeric
dtype; they are compared in float64 and ``data_range`` is the span of valid values
(1.0 for floats in [0, 1], 255.0 for ``uint8``).

SSIM needs scikit-image (extra ``metrics``). Without it :func:`ssim` and
:func:`video_ssim` return None (reported as "n/a", ``null`` in JSON) and one warning
names the extra; :func:`mean_metric` and :func:`format_metric` carry the None through.
"""
from __future__ import annotations

import logging
import math
from typing import Callable, Iterable

import numpy as np

from wisp_shacira.errors import MissingExtraError
from wisp_shacira.extras import require

logger = logging.getLogger(__name__)
_ssim_warned = False


def _structural_similarity() -> Callable[..., float] | None:
    """skimage's ``structural_similarity``, or None (warned once per process) without it."""
    global _ssim_warned
    try:
        return require("skimage.metrics", "metrics", "SSIM").structural_similarity
    except MissingExtraError as exc:
        if not _ssim_warned:
            _ssim_warned = True
            logger.warning("%s; SSIM is reported as n/a", exc)
        return None


def ssim_available() -> bool:
    """Whether SSIM can be computed (scikit-image is installed); warns once if not."""
    return _structural_similarity() is not None


def mean_metric(values: Iterable[float | None]) -> float | None:
    """Mean of ``values`` as a float; None if any value is None (a metric not computed)."""
    values = list(values)
    if any(v is None for v in values):
        return None
    return float(np.mean(values))


def format_metric(value: float | None, spec: str = ".4f") -> str:
    """``value`` formatted with ``spec``, or ``"n/a"`` for a metric not computed."""
    return "n/a" if value is None else format(value, spec)


def _as_pair(
    a: np.ndarray, b: np.ndarray, min_ndim: int, max_ndim: int
) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    if not min_ndim <= a.ndim <= max_ndim:
        raise ValueError(f"expected {min_ndim} to {max_ndim} dimensions, got shape {a.shape}")
    return a, b


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB of ``a, b: [H, W, C] or [H, W]``; ``inf`` if equal."""
    a, b = _as_pair(a, b, 2, 3)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float | None:
    """Structural similarity (skimage, 7x7 uniform window) of ``a, b: [H, W, C] or [H, W]``.

    Images smaller than 7 pixels use the largest odd window that fits. None without
    scikit-image (extra ``metrics``; one warning per process).
    """
    a, b = _as_pair(a, b, 2, 3)
    win_size = min(7, a.shape[0], a.shape[1])
    win_size -= 1 - win_size % 2
    if win_size < 3:
        raise ValueError(f"SSIM needs images of at least 3x3 pixels, got shape {a.shape}")
    structural_similarity = _structural_similarity()
    if structural_similarity is None:
        return None
    value = structural_similarity(
        a.astype(np.float64),
        b.astype(np.float64),
        data_range=data_range,
        channel_axis=-1 if a.ndim == 3 else None,
        win_size=win_size,
    )
    return float(value)


def video_psnr(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Mean over frames of the per-frame PSNR of ``a, b: [T, H, W, C] or [T, H, W]``."""
    a, b = _as_pair(a, b, 3, 4)
    return float(np.mean([psnr(fa, fb, data_range) for fa, fb in zip(a, b)]))


def video_ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float | None:
    """Mean over frames of the per-frame SSIM of ``a, b: [T, H, W, C] or [T, H, W]``;
    None without scikit-image."""
    a, b = _as_pair(a, b, 3, 4)
    if not ssim_available():
        return None
    return mean_metric(ssim(fa, fb, data_range) for fa, fb in zip(a, b))
