"""Camera and viewport math of the viewer (no viser import; plain numpy/torch).

viser reports a browser camera as ``wxyz`` (rotation camera -> world, OpenCV axes:
+Z forward, +Y down), ``position``, a vertical field of view and the viewport's
aspect ratio. The tracer takes a camera-to-world matrix with OpenGL axes (-Z
forward, +Y up) and pinhole intrinsics in pixels. The window on images and video
frames is :mod:`wisp_shacira.viewer.planar`.
"""
from __future__ import annotations

import math

import numpy as np
import torch

MAX_ASPECT = 4.0
_CV_TO_GL = np.diag([1.0, -1.0, -1.0])


def viewport_size(resolution: int, aspect: float) -> tuple[int, int]:
    """``(height, width)`` of a render ``resolution`` pixels high with the viewport's
    aspect ratio (width / height, clamped to ``[1/4, 4]``)."""
    aspect = min(max(float(aspect), 1.0 / MAX_ASPECT), MAX_ASPECT) if aspect > 0 else 1.0
    return resolution, max(1, round(resolution * aspect))


def quaternion_matrix(wxyz: np.ndarray) -> np.ndarray:
    """Rotation matrix ``[3, 3]`` of a (not necessarily unit) quaternion ``(w, x, y, z)``."""
    w, x, y, z = np.asarray(wxyz, dtype=np.float64) / np.linalg.norm(wxyz)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def c2w_from_viser(wxyz: np.ndarray, position: np.ndarray) -> torch.Tensor:
    """Camera-to-world ``[4, 4]`` (OpenGL axes) of a viser camera (OpenCV axes)."""
    c2w = np.eye(4)
    c2w[:3, :3] = quaternion_matrix(wxyz) @ _CV_TO_GL
    c2w[:3, 3] = np.asarray(position, dtype=np.float64)
    return torch.from_numpy(c2w).float()


def pinhole(fov_y: float, height: int, width: int) -> tuple[float, float, float, float]:
    """``(fx, fy, cx, cy)`` in pixels of a centred camera with vertical field of view
    ``fov_y`` (radians) and square pixels."""
    focal = 0.5 * height / math.tan(0.5 * fov_y)
    return focal, focal, 0.5 * width, 0.5 * height


def fov_from_focal(focal: float, height: int) -> float:
    """Vertical field of view (radians) of a focal length in pixels at ``height``."""
    return 2.0 * math.atan(0.5 * height / focal)

