"""Camera and viewport math of the viewer (no viser import; plain numpy/torch).

viser reports a browser camera as ``wxyz`` (rotation camera -> world, OpenCV axes:
+Z forward, +Y down), ``position``, a vertical field of view and the viewport's
aspect ratio. The tracer takes a camera-to-world matrix with OpenGL axes (-Z
forward, +Y up) and pinhole intrinsics in pixels. Images and video frames are shown
through a zoomable window over ``[0, 1]^2``.
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


def window_coords(out_height: int, out_width: int, image_height: int, image_width: int,
                  zoom: float = 1.0, center: tuple[float, float] = (0.5, 0.5)
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Field coordinates seen by each output pixel of a zoomable window on an image.

    At ``zoom`` 1 the whole image fits the output (letterboxed, square pixels);
    ``center`` (x, y in [0, 1]) is the image point at the output's centre. With an
    output of the image's size at zoom 1 the coordinates are exactly the pixel centres.

    Returns:
        (coords [out_H * out_W, 2] (x, y), inside [out_H * out_W] bool: within [0, 1)^2).
    """
    scale = min(out_height / image_height, out_width / image_width) * zoom
    cols = (torch.arange(out_width, dtype=torch.float64) + 0.5 - 0.5 * out_width) / scale
    rows = (torch.arange(out_height, dtype=torch.float64) + 0.5 - 0.5 * out_height) / scale
    xs = (cols + center[0] * image_width) / image_width
    ys = (rows + center[1] * image_height) / image_height
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    coords = torch.stack([grid_x, grid_y], -1).reshape(-1, 2)
    inside = ((coords >= 0) & (coords < 1)).all(-1)
    return coords.float(), inside
