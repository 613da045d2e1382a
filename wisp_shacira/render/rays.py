"""Pinhole ray generation and ray/box intersection.

Cameras follow the OpenGL convention used by NeRF-synthetic and Kaolin-Wisp: in camera
space the camera looks down -Z, +X points right and +Y points up. Pixel ``(row, col)``
is sampled at its centre ``(col + 0.5, row + 0.5)``; image rows grow downwards, so
they map to -Y in camera space. ``cx``/``cy`` are the principal point in pixels,
measured from the top-left image corner.

All functions are device-agnostic: outputs live on the device of the camera matrix.
"""
from __future__ import annotations

import torch
from torch import Tensor

from wisp_shacira.grid.exact import normalize

__all__ = ["generate_rays", "camera_rays", "ray_aabb"]


def camera_rays(
    c2w: Tensor,
    intrinsics: Tensor,
    px: Tensor,
    py: Tensor,
) -> tuple[Tensor, Tensor]:
    """Rays through arbitrary (sub)pixel positions of one or many cameras.

    Args:
        c2w: camera-to-world matrices, ``[4, 4]`` (shared) or ``[N, 4, 4]`` (per ray);
            a ``[3, 4]`` / ``[N, 3, 4]`` matrix is accepted too.
        intrinsics: ``(fx, fy, cx, cy)`` in pixels, ``[4]`` or ``[N, 4]``.
        px: horizontal pixel coordinates ``[N]`` (``col + 0.5`` is a pixel centre).
        py: vertical pixel coordinates ``[N]`` (``row + 0.5`` is a pixel centre).

    Returns:
        ``origins [N, 3]`` and unit-length ``dirs [N, 3]`` in world space.
    """
    dtype = c2w.dtype if c2w.is_floating_point() else torch.float32
    c2w = c2w.to(dtype)
    intrinsics = intrinsics.to(device=c2w.device, dtype=dtype)
    px = px.to(device=c2w.device, dtype=dtype)
    py = py.to(device=c2w.device, dtype=dtype)
    fx, fy, cx, cy = intrinsics.unbind(-1)
    cam_dirs = torch.stack(
        [(px - cx) / fx, -(py - cy) / fy, -torch.ones_like(px)], dim=-1
    )
    rot = c2w[..., :3, :3]
    if rot.dim() == 2:
        origins = c2w[:3, 3].expand(px.shape[0], 3)
    else:
        origins = c2w[:, :3, 3]
    dirs = normalize(_rotate(rot, cam_dirs))
    return origins.contiguous(), dirs


def _rotate(rot: Tensor, vectors: Tensor) -> Tensor:
    """``rot @ v`` for ``rot: [3, 3]`` or ``[N, 3, 3]`` and ``vectors: [N, 3]``, as
    products added in column order (a matrix product would sum in an order its BLAS
    kernel picks, and rays would differ between machines)."""
    cols = rot.unbind(-1)
    out = vectors[:, 0, None] * cols[0]
    for axis in (1, 2):
        out = out + vectors[:, axis, None] * cols[axis]
    return out


def generate_rays(
    c2w: Tensor,
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    H: int,
    W: int,
) -> tuple[Tensor, Tensor]:
    """One ray per pixel centre of an ``H x W`` pinhole camera.

    Args:
        c2w: camera-to-world matrix ``[4, 4]`` (OpenGL camera axes).
        fx, fy: focal lengths in pixels.
        cx, cy: principal point in pixels from the top-left corner.
        H, W: image height and width in pixels.

    Returns:
        ``origins [H*W, 3]`` and unit ``dirs [H*W, 3]``, in row-major pixel order
        (index ``row * W + col``).
    """
    device = c2w.device
    dtype = c2w.dtype if c2w.is_floating_point() else torch.float32
    rows = torch.arange(H, device=device, dtype=dtype) + 0.5
    cols = torch.arange(W, device=device, dtype=dtype) + 0.5
    py, px = torch.meshgrid(rows, cols, indexing="ij")
    intr = torch.tensor([fx, fy, cx, cy], device=device, dtype=dtype)
    return camera_rays(c2w.to(dtype), intr, px.reshape(-1), py.reshape(-1))


def ray_aabb(
    origins: Tensor,
    dirs: Tensor,
    lo: float | Tensor = -1.0,
    hi: float | Tensor = 1.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Slab test of rays against an axis-aligned box.

    Args:
        origins: ray origins ``[N, 3]``.
        dirs: ray directions ``[N, 3]`` (need not be unit length; ``t`` is in units
            of ``dirs``).
        lo, hi: box corners, scalars or ``[3]`` tensors.

    Returns:
        ``t_near [N]`` (clamped to ``>= 0`` so rays starting inside the box begin at
        their origin), ``t_far [N]`` and ``hit [N]`` (bool). For missed rays both
        distances are 0.
    """
    lo_t = torch.as_tensor(lo, device=origins.device, dtype=origins.dtype)
    hi_t = torch.as_tensor(hi, device=origins.device, dtype=origins.dtype)
    tiny = torch.finfo(dirs.dtype).tiny ** 0.5
    safe = torch.where(dirs.abs() < tiny, torch.full_like(dirs, tiny) * _sign(dirs), dirs)
    inv = 1.0 / safe
    t0 = (lo_t - origins) * inv
    t1 = (hi_t - origins) * inv
    t_near = torch.minimum(t0, t1).amax(dim=-1).clamp_min(0.0)
    t_far = torch.maximum(t0, t1).amin(dim=-1)
    hit = t_far > t_near
    zero = torch.zeros_like(t_near)
    return torch.where(hit, t_near, zero), torch.where(hit, t_far, zero), hit


def _sign(x: Tensor) -> Tensor:
    """Sign of ``x`` with +1 for zeros: ``[...]`` -> ``[...]``."""
    return torch.where(x < 0, -torch.ones_like(x), torch.ones_like(x))
