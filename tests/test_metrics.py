"""Tests of PSNR/SSIM."""
from __future__ import annotations

import math

import numpy as np
import pytest

from wisp_shacira.metrics import psnr, ssim, video_psnr, video_ssim


def test_psnr_of_known_mse() -> None:
    a = np.zeros((8, 8, 3))
    b = np.full((8, 8, 3), 0.1)  # MSE 0.01 -> 20 dB
    assert psnr(a, b) == pytest.approx(20.0)
    assert psnr(a * 255, b * 255, data_range=255.0) == pytest.approx(20.0)
    assert psnr(a[..., 0], b[..., 0]) == pytest.approx(20.0)
    assert psnr(a, a) == math.inf


def test_psnr_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="shape"):
        psnr(np.zeros((4, 4, 3)), np.zeros((4, 4)))


def test_ssim_identical_is_one() -> None:
    rng = np.random.default_rng(0)
    img = rng.random((16, 16, 3))
    assert ssim(img, img) == pytest.approx(1.0)
    assert ssim(img[..., 0], img[..., 0]) == pytest.approx(1.0)
    noisy = np.clip(img + rng.normal(0, 0.2, img.shape), 0, 1)
    assert ssim(img, noisy) < 0.9
    assert ssim(img[:4, :4], img[:4, :4]) == pytest.approx(1.0)  # small window fallback


def test_video_metrics_are_frame_means() -> None:
    a = np.zeros((2, 8, 8, 3))
    b = a.copy()
    b[0] = 0.1  # 20 dB
    b[1] = 0.01  # 40 dB
    assert video_psnr(a, b) == pytest.approx(30.0)
    rng = np.random.default_rng(1)
    clip = rng.random((3, 16, 16, 3))
    assert video_ssim(clip, clip) == pytest.approx(1.0)
