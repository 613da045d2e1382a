"""Image and video quality metrics (PSNR, SSIM) on numpy arrays.

Inputs are images ``[H, W, C]`` or ``[H, W]`` (videos ``[T, H, W, C]``) of any numeric
dtype; they are compared in float64 and ``data_range`` is the span of valid values
(1.0 for floats in [0, 1], 255.0 for ``uint8``).
"""
from __future__ import annotations

import math

import numpy as np
from skimage.metrics import structural_similarity


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


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Structural similarity (skimage, 7x7 uniform window) of ``a, b: [H, W, C] or [H, W]``.

    Images smaller than 7 pixels use the largest odd window that fits.
    """
    a, b = _as_pair(a, b, 2, 3)
    win_size = min(7, a.shape[0], a.shape[1])
    win_size -= 1 - win_size % 2
    if win_size < 3:
        raise ValueError(f"SSIM needs images of at least 3x3 pixels, got shape {a.shape}")
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


def video_ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Mean over frames of the per-frame SSIM of ``a, b: [T, H, W, C] or [T, H, W]``."""
    a, b = _as_pair(a, b, 3, 4)
    return float(np.mean([ssim(fa, fb, data_range) for fa, fb in zip(a, b)]))
