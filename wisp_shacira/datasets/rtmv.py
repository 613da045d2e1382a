"""RTMV scene loader, following Kaolin-Wisp's conventions.

Layout: per view ``NNNNN.json`` and ``NNNNN.exr``. The JSON's ``camera_data`` holds
``camera_look_at`` (``eye``, ``at``, ``up`` in the Blender Z-up world), ``intrinsics``
(``fx``, ``fy``, optional ``cx``, ``cy``) and ``width``/``height``; images must be
square (Wisp's rule). The EXR holds linear ``R, G, B, A`` and optionally a depth
channel (``depth``, ``depth.*`` or ``Z``), else depth is read from
``NNNNN.depth.exr`` when present. Depth is the distance along the unit ray.

Views are split by sorted file name: the first ``2/3`` train, the next ``1/30``
val, the rest test. Colours are composited over ``bg_color`` in linear space,
box-filtered by ``2**mip`` and converted to sRGB. The Blender world is mapped to
Y up, then (``normalize=True``) the scene is centred on, and scaled by, the bounding
box of the depth point cloud of all views (the camera positions when no view has
depth), so that its largest half-extent is 1.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from wisp_shacira.datasets.nerf_synthetic import (
    BLENDER_TO_YUP,
    NerfScene,
    area_downscale,
    read_json,
)
from wisp_shacira.grid.exact import cross, normalize
from wisp_shacira.errors import DataError
from wisp_shacira.extras import require
from wisp_shacira.render.rays import generate_rays

__all__ = ["load_rtmv", "rtmv_split_indices", "look_at_c2w", "linear_to_srgb", "srgb_to_linear",
           "read_exr_channels"]

log = logging.getLogger(__name__)

_DEPTH_NAMES = ("depth", "depth.R", "depth.Z", "depth.V", "depth.Y", "Z")
_MAX_VALID_DEPTH = 1000.0


def linear_to_srgb(x: Tensor) -> Tensor:
    """sRGB transfer function on linear values in [0, 1]: ``[...]`` -> ``[...]``."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x > 0.0031308, 1.055 * x.clamp_min(1e-12) ** (1.0 / 2.4) - 0.055, 12.92 * x)


def srgb_to_linear(x: Tensor) -> Tensor:
    """Inverse sRGB transfer function: ``[...]`` -> ``[...]``."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x > 0.04045, ((x + 0.055) / 1.055) ** 2.4, x / 12.92)


def rtmv_split_indices(n: int) -> dict[str, list[int]]:
    """Wisp's RTMV split of ``n`` sorted views: first 2/3 train, next 1/30 val, rest test."""
    train_end = n * 2 // 3
    val_end = train_end + n * 10 // 300
    return {"train": list(range(train_end)), "val": list(range(train_end, val_end)),
            "test": list(range(val_end, n))}


def look_at_c2w(eye: Tensor, at: Tensor, up: Tensor) -> Tensor:
    """OpenGL-axes camera-to-world ``[4, 4]`` of a camera at ``eye`` looking at ``at``.

    Args:
        eye, at, up: ``[3]`` float64 world vectors.
    """
    forward = normalize(at - eye)
    right = normalize(cross(forward, up))
    true_up = cross(right, forward)
    c2w = torch.eye(4, dtype=eye.dtype)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, true_up, -forward, eye
    return c2w


def read_exr_channels(path: Path) -> dict[str, np.ndarray]:
    """All channels of an EXR as float32 ``[H, W]`` arrays (needs the OpenEXR package,
    extra ``exr``; else :class:`MissingExtraError`)."""
    OpenEXR = require("OpenEXR", "exr", f"reading the EXR file {path}")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with OpenEXR.File(str(path), separate_channels=True) as exr:
            return {name: np.asarray(ch.pixels, dtype=np.float32)
                    for name, ch in exr.channels().items()}
    except (RuntimeError, OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read EXR ({err})") from None


def _camera(meta: Any, path: Path) -> tuple[Tensor, int, int, list[float]]:
    """Blender-world c2w ``[4, 4]``, width, height and ``[fx, fy, cx, cy]`` of one view."""
    try:
        cam = meta["camera_data"]
        look = cam["camera_look_at"]
        eye, at, up = (torch.tensor(look[k], dtype=torch.float64) for k in ("eye", "at", "up"))
        W, H = int(cam["width"]), int(cam["height"])
        intr = cam["intrinsics"]
        fx, fy = float(intr["fx"]), float(intr["fy"])
        cx, cy = float(intr.get("cx", W / 2)), float(intr.get("cy", H / 2))
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"{path}: missing or invalid camera_data field ({err!r})") from None
    if (eye.shape, at.shape, up.shape) != ((3,), (3,), (3,)):
        raise DataError(f"{path}: camera_look_at eye/at/up must be 3-vectors")
    if W != H:
        raise DataError(f"{path}: image is {W}x{H}; RTMV views must be square")
    return look_at_c2w(eye, at, up), W, H, [fx, fy, cx, cy]


def _find_depth(channels: dict[str, np.ndarray], exr_path: Path) -> np.ndarray | None:
    """Depth ``[H, W]`` from the EXR's own channels or from ``NNNNN.depth.exr``."""
    for name in _DEPTH_NAMES:
        if name in channels:
            return channels[name]
    side = exr_path.with_name(exr_path.stem + ".depth.exr")
    if not side.is_file():
        return None
    side_ch = read_exr_channels(side)
    for name in ("R", "Z", "Y", "V") + _DEPTH_NAMES:
        if name in side_ch:
            return side_ch[name]
    raise DataError(f"{side}: no depth channel among {sorted(side_ch)}")


def _read_view(exr_path: Path, size: int, bg_lin: Tensor,
               factor: int) -> tuple[Tensor, Tensor, Tensor | None]:
    """sRGB ``[h, w, 3]``, alpha ``[h, w]`` and depth ``[h, w]`` (or None) of one view."""
    channels = read_exr_channels(exr_path)
    missing = [c for c in "RGBA" if c not in channels]
    if missing:
        raise DataError(f"{exr_path}: missing channel(s) {missing}; has {sorted(channels)} "
                        "but RTMV needs R, G, B, A")
    rgba = torch.from_numpy(np.stack([channels[c] for c in "RGBA"], axis=-1))
    if rgba.shape[:2] != (size, size):
        raise DataError(f"{exr_path}: image is {rgba.shape[1]}x{rgba.shape[0]} but its JSON "
                        f"says {size}x{size}")
    rgba = torch.nan_to_num(rgba, nan=0.0)
    alpha = rgba[..., 3:4].clamp(0.0, 1.0)
    rgb = (rgba[..., :3] * alpha + bg_lin * (1.0 - alpha)).clamp(0.0, 1.0)
    small = area_downscale(torch.cat([rgb, alpha], dim=-1), factor)
    depth = _find_depth(channels, exr_path)
    if depth is not None:
        d = torch.from_numpy(np.ascontiguousarray(depth))[None, None]
        d = F.interpolate(d, size=small.shape[:2], mode="nearest")[0, 0]
        valid = torch.isfinite(d) & (d > 0) & (d < _MAX_VALID_DEPTH)
        depth = torch.where(valid, d, torch.zeros_like(d))
    return linear_to_srgb(small[..., :3]), small[..., 3], depth


def _normalisation(c2w: Tensor, intr: Tensor, depths: list[Tensor | None],
                   H: int, W: int) -> tuple[Tensor, float]:
    """Centre ``[3]`` and scale of the depth point cloud (or camera) bounding box."""
    lo = torch.full((3,), float("inf"), dtype=torch.float64)
    hi = -lo
    for i, depth in enumerate(depths):
        if depth is None or not bool((depth > 0).any()):
            continue
        origins, dirs = generate_rays(c2w[i], *(float(v) for v in intr[i]), H, W)
        d = depth.reshape(-1).to(torch.float64)
        pts = origins[d > 0] + dirs[d > 0] * d[d > 0, None]
        lo, hi = torch.minimum(lo, pts.amin(0)), torch.maximum(hi, pts.amax(0))
    if not torch.isfinite(lo).all():
        log.info("no depth available; normalising the scene by its camera positions")
        lo, hi = c2w[:, :3, 3].amin(0), c2w[:, :3, 3].amax(0)
    centre = (lo + hi) / 2
    half = float((hi - centre).max())
    return centre, (1.0 / half if half > 0 else 1.0)


def _load_views(json_files: list[Path], bg_lin: Tensor, factor: int) -> tuple[
        list[Tensor], list[Tensor], list[Tensor | None], list[Tensor], list[list[float]]]:
    """Per view: sRGB image ``[h, w, 3]``, alpha ``[h, w]``, depth ``[h, w]`` or None,
    Y-up c2w ``[4, 4]`` float64 and ``[fx, fy, cx, cy]`` at the loaded resolution."""
    images, alphas, depths, poses, intrs = [], [], [], [], []
    for path in json_files:
        c2w, size, _, intr = _camera(read_json(path), path)
        exr_path = path.with_suffix(".exr")
        if not exr_path.is_file():
            raise DataError(f"{path}: image {exr_path} does not exist")
        rgb, alpha, depth = _read_view(exr_path, size, bg_lin, factor)
        ratio = rgb.shape[0] / size
        images.append(rgb)
        alphas.append(alpha)
        depths.append(depth)
        poses.append(BLENDER_TO_YUP.to(torch.float64) @ c2w)
        intrs.append([v * ratio for v in intr])
    return images, alphas, depths, poses, intrs


def load_rtmv(
    root: str | Path,
    mip: int = 0,
    bg_color: tuple[float, float, float] = (1.0, 1.0, 1.0),
    normalize: bool = True,
) -> NerfScene:
    """Load an RTMV scene (see the module docstring).

    Args:
        root: scene directory with ``NNNNN.json`` / ``NNNNN.exr`` pairs.
        mip: downscale images by ``2**mip`` per axis (box filter; depth: nearest).
        bg_color: sRGB background in [0, 1].
        normalize: centre and scale the scene into ``[-1, 1]^3``.

    Returns:
        A :class:`NerfScene` with ``train``/``val``/``test`` splits and ``depths``.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: scene directory does not exist")
    if mip < 0:
        raise DataError(f"mip must be >= 0, got {mip}")
    json_files = sorted(root.glob("*.json"))
    if not json_files:
        raise DataError(f"{root}: no RTMV view JSON files (NNNNN.json) found")
    bg_lin = srgb_to_linear(torch.tensor(bg_color, dtype=torch.float32))
    images, alphas, depths, poses, intrs = _load_views(json_files, bg_lin, 2**mip)
    sizes = {tuple(img.shape[:2]) for img in images}
    if len(sizes) != 1:
        raise DataError(f"{root}: views have different sizes {sorted(sizes)}")
    H, W = sizes.pop()
    c2w_all = torch.stack(poses)
    intr_all = torch.tensor(intrs, dtype=torch.float64)
    depth_all = torch.stack([d if d is not None else torch.zeros(H, W) for d in depths])
    if normalize:
        centre, scale = _normalisation(c2w_all, intr_all, depths, H, W)
        c2w_all[:, :3, 3] = (c2w_all[:, :3, 3] - centre) * scale
        depth_all = depth_all * scale
    return NerfScene(
        images=torch.stack(images), alphas=torch.stack(alphas), c2w=c2w_all.float(),
        intrinsics=intr_all.float(), names=[p.stem for p in json_files],
        splits=rtmv_split_indices(len(json_files)), H=H, W=W,
        bg_color=tuple(float(c) for c in bg_color), depths=depth_all.float())
