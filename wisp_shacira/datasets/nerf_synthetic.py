"""NeRF-synthetic (Blender) scene loader, following Kaolin-Wisp's conventions.

Layout: ``transforms_{train,val,test}.json`` (any subset containing train) or a
single ``transforms.json`` (all frames go to ``train``). Each frame has ``file_path``
(extension optional, ``.png`` assumed) and a camera-to-world ``transform_matrix`` in
OpenGL camera axes (looks down -Z, +Y up). Focal lengths come from per-frame or
top-level ``fl_x``/``fl_y``, else ``camera_angle_x``/``camera_angle_y`` (radians);
``cx``/``cy`` default to the image centre; ``w``/``h`` rescale them when the images
have another size.

Normalisation (as Wisp): translations are divided by ``aabb_scale`` (the JSON's
``aabb_scale`` if present, else 1.25), multiplied by ``scale`` and shifted by
``offset`` (JSON keys, default 1 and 0), then the Blender Z-up world is mapped to a
Y-up world, ``(x, y, z) -> (x, z, -y)``. Scenes then fit in ``[-1, 1]^3``.

RGBA images are composited over ``bg_color`` (straight alpha), then box-filtered by
``2**mip`` per axis. When no validation file exists, every ``holdout_every``-th
training view (indices 0, 8, 16, ... by default) becomes the ``val`` split.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from wisp_shacira.errors import DataError
from wisp_shacira.render.rays import camera_rays, generate_rays

__all__ = ["NerfScene", "load_nerf_synthetic", "BLENDER_TO_YUP", "area_downscale", "read_json"]

log = logging.getLogger(__name__)

BLENDER_TO_YUP = torch.tensor(
    [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)
"""World-space change of basis from Blender (Z up) to Y up, as kaolin's ``blender_coords``."""

SPLITS = ("train", "val", "test")


@dataclass
class NerfScene:
    """Posed images of a scene normalised to ``[-1, 1]^3``.

    Attributes:
        images: RGB composited over the background, ``[V, H, W, 3]`` float32 in [0, 1].
        alphas: coverage ``[V, H, W]`` float32 (1 where there was no alpha channel).
        c2w: camera-to-world matrices ``[V, 4, 4]`` float32, OpenGL camera axes.
        intrinsics: ``(fx, fy, cx, cy)`` in pixels per view, ``[V, 4]`` float32.
        names: per-view names (file stems), length ``V``.
        splits: split name -> view indices into this scene.
        H, W: image size.
        bg_color: background the images were composited over.
        depths: optional ray-distance depth ``[V, H, W]`` (0 where unknown).
        near, far: ray range hints; the scene box is ``bbox``.
    """

    images: Tensor
    alphas: Tensor
    c2w: Tensor
    intrinsics: Tensor
    names: list[str]
    splits: dict[str, list[int]]
    H: int
    W: int
    bg_color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    depths: Tensor | None = None
    near: float = 0.0
    far: float = 6.0
    bbox: tuple[tuple[float, float, float], tuple[float, float, float]] = field(
        default=((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0)))

    @property
    def num_views(self) -> int:
        """Number of views ``V``."""
        return int(self.images.shape[0])

    @property
    def split_names(self) -> list[str]:
        """Available split names."""
        return list(self.splits)

    def split(self, name: str) -> NerfScene:
        """The views of one split as a new scene (whose only split is ``name``)."""
        if name not in self.splits:
            raise DataError(f"split '{name}' not in scene; available: {self.split_names}")
        idx = self.splits[name]
        sel = torch.as_tensor(idx, dtype=torch.long, device=self.images.device)
        return replace(
            self, images=self.images[sel], alphas=self.alphas[sel], c2w=self.c2w[sel],
            intrinsics=self.intrinsics[sel], names=[self.names[i] for i in idx],
            splits={name: list(range(len(idx)))},
            depths=None if self.depths is None else self.depths[sel])

    def to(self, device: torch.device | str) -> NerfScene:
        """A copy whose tensors live on ``device``."""
        return replace(
            self, images=self.images.to(device), alphas=self.alphas.to(device),
            c2w=self.c2w.to(device), intrinsics=self.intrinsics.to(device),
            depths=None if self.depths is None else self.depths.to(device))

    def view_rays(self, view: int) -> tuple[Tensor, Tensor]:
        """Rays of every pixel of one view: ``origins [H*W, 3]``, ``dirs [H*W, 3]``."""
        fx, fy, cx, cy = (float(v) for v in self.intrinsics[view])
        return generate_rays(self.c2w[view], fx, fy, cx, cy, self.H, self.W)

    def pixel_rays(self, view: Tensor, row: Tensor, col: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Rays and colours of chosen pixels (e.g. random training batches).

        Args:
            view, row, col: long tensors ``[N]``.

        Returns:
            ``origins [N, 3]``, ``dirs [N, 3]``, ``rgb [N, 3]``.
        """
        rgb = self.images[view, row, col]
        origins, dirs = camera_rays(self.c2w[view], self.intrinsics[view],
                                    col.float() + 0.5, row.float() + 0.5)
        return origins, dirs, rgb


def read_json(path: Path) -> Any:
    """Parse a JSON file, raising :class:`DataError` naming the file on failure."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: malformed JSON ({err})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read ({err})") from None


def area_downscale(img: Tensor, factor: int) -> Tensor:
    """Box-filter downscale ``[H, W, C]`` -> ``[H // factor, W // factor, C]``."""
    if factor == 1:
        return img
    H, W = img.shape[:2]
    out_hw = (max(H // factor, 1), max(W // factor, 1))
    chw = img.permute(2, 0, 1)[None]
    return F.interpolate(chw, size=out_hw, mode="area")[0].permute(1, 2, 0).contiguous()


def _read_rgba(path: Path) -> np.ndarray:
    """Read an RGB/RGBA image as float32 ``[H, W, 4]`` in [0, 1] (alpha 1 if absent)."""
    try:
        with Image.open(path) as im:
            if im.mode == "P":
                im = im.convert("RGBA")
            mode = im.mode
            arr = np.asarray(im)
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read image ({err})") from None
    channels = 1 if arr.ndim == 2 else arr.shape[-1]
    if channels not in (3, 4):
        raise DataError(f"{path}: unsupported image with {channels} channel(s) "
                        f"(mode {mode}); expected RGB or RGBA")
    if np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
    arr = arr.astype(np.float32)
    if channels == 3:
        arr = np.concatenate([arr, np.ones_like(arr[..., :1])], axis=-1)
    return arr


def load_view(path: Path, bg: Tensor, factor: int) -> tuple[Tensor, Tensor, tuple[int, int]]:
    """Composite and downscale one image: returns ``rgb [h, w, 3]``, ``alpha [h, w]``, full (H, W)."""
    rgba = torch.from_numpy(_read_rgba(path))
    alpha = rgba[..., 3:4]
    rgb = rgba[..., :3] * alpha + bg * (1.0 - alpha)
    small = area_downscale(torch.cat([rgb, alpha], dim=-1), factor)
    return small[..., :3].clamp(0.0, 1.0), small[..., 3], (rgba.shape[0], rgba.shape[1])


def _frame_path(root: Path, json_path: Path, frame: dict[str, Any], i: int) -> Path:
    """Image path of frame ``i``; raises if the entry or the file is missing."""
    rel = frame.get("file_path")
    if not isinstance(rel, str):
        raise DataError(f"{json_path}: frame {i} has no 'file_path' string")
    path = root / rel.replace("\\", "/")
    if path.suffix == "":
        path = path.with_name(path.name + ".png")
    if not path.is_file():
        raise DataError(f"{json_path}: frame {i} image {path} does not exist")
    return path


def frame_pose(json_path: Path, frame: dict[str, Any], i: int) -> Tensor:
    """``transform_matrix`` of frame ``i`` as ``[4, 4]`` float64."""
    try:
        mat = torch.tensor(frame["transform_matrix"], dtype=torch.float64)
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{json_path}: frame {i} has no numeric 'transform_matrix'") from None
    if mat.shape == (3, 4):
        mat = torch.cat([mat, torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=torch.float64)])
    if mat.shape != (4, 4) or not torch.isfinite(mat).all():
        raise DataError(f"{json_path}: frame {i} 'transform_matrix' must be a finite 4x4 "
                        f"matrix, got shape {tuple(mat.shape)}")
    return mat


def frame_intrinsics(meta: dict[str, Any], frame: dict[str, Any], full_hw: tuple[int, int],
                     out_hw: tuple[int, int], json_path: Path) -> list[float]:
    """``[fx, fy, cx, cy]`` for the downscaled image of one frame."""
    def get(key: str) -> float | None:
        val = frame.get(key, meta.get(key))
        return None if val is None else float(val)

    H, W = full_hw
    sx = W / get("w") if get("w") else 1.0
    sy = H / get("h") if get("h") else 1.0
    fx = get("fl_x")
    fx = fx * sx if fx is not None else None
    if fx is None and get("camera_angle_x") is not None:
        fx = 0.5 * W / math.tan(0.5 * get("camera_angle_x"))
    if fx is None:
        raise DataError(f"{json_path}: no 'camera_angle_x' or 'fl_x' for the focal length")
    fy = get("fl_y")
    fy = fy * sy if fy is not None else None
    if fy is None and get("camera_angle_y") is not None:
        fy = 0.5 * H / math.tan(0.5 * get("camera_angle_y"))
    fy = fx if fy is None else fy
    cx = get("cx") * sx if get("cx") is not None else 0.5 * W
    cy = get("cy") * sy if get("cy") is not None else 0.5 * H
    rx, ry = out_hw[1] / W, out_hw[0] / H
    return [fx * rx, fy * ry, cx * rx, cy * ry]


def _normalise_poses(poses: Tensor, meta: dict[str, Any], aabb_scale: float | None) -> Tensor:
    """Scale/offset translations and map Blender Z-up to Y-up: ``[V, 4, 4]`` -> same."""
    scale_div = aabb_scale if aabb_scale is not None else float(meta.get("aabb_scale", 1.25))
    poses = poses.clone()
    poses[:, :3, 3] /= scale_div
    poses[:, :3, 3] *= float(meta.get("scale", 1.0))
    poses[:, :3, 3] += torch.tensor(meta.get("offset", [0.0, 0.0, 0.0]), dtype=poses.dtype)
    return BLENDER_TO_YUP.to(poses.dtype) @ poses


def _find_transforms(root: Path) -> dict[str, Path]:
    """Map split name -> transforms JSON path."""
    if not root.is_dir():
        raise DataError(f"{root}: scene directory does not exist")
    found = {s: root / f"transforms_{s}.json" for s in SPLITS}
    found = {s: p for s, p in found.items() if p.is_file()}
    if found:
        if "train" not in found:
            raise DataError(f"{root}: has {sorted(p.name for p in found.values())} "
                            "but no transforms_train.json")
        return found
    single = root / "transforms.json"
    if single.is_file():
        return {"train": single}
    raise DataError(f"{root}: no transforms_train.json or transforms.json found")


@dataclass
class _SplitData:
    rgb: list[Tensor]
    alpha: list[Tensor]
    poses: list[Tensor]
    intr: list[list[float]]
    names: list[str]


def _load_split(root: Path, json_path: Path, bg: Tensor, mip: int,
                aabb_scale: float | None) -> _SplitData:
    """Load every frame listed in one transforms JSON."""
    meta = read_json(json_path)
    frames = meta.get("frames") if isinstance(meta, dict) else None
    if not isinstance(frames, list) or not frames:
        raise DataError(f"{json_path}: expected an object with a non-empty 'frames' list")
    data = _SplitData([], [], [], [], [])
    for i, frame in enumerate(frames):
        if not isinstance(frame, dict):
            raise DataError(f"{json_path}: frame {i} is not an object")
        path = _frame_path(root, json_path, frame, i)
        rgb, alpha, full_hw = load_view(path, bg, 2**mip)
        data.rgb.append(rgb)
        data.alpha.append(alpha)
        data.poses.append(frame_pose(json_path, frame, i))
        data.intr.append(frame_intrinsics(meta, frame, full_hw, tuple(rgb.shape[:2]), json_path))
        data.names.append(path.stem)
    poses = _normalise_poses(torch.stack(data.poses), meta, aabb_scale)
    data.poses = list(poses.unbind(0))
    return data


def _hold_out(splits: dict[str, list[int]], every: int | None, root: Path) -> None:
    """Move train views ``0, every, 2*every, ...`` to a new ``val`` split, in place."""
    train = splits["train"]
    if not every or every < 2 or len(train) < 2:
        return
    splits["val"] = [v for k, v in enumerate(train) if k % every == 0]
    splits["train"] = [v for k, v in enumerate(train) if k % every != 0]
    log.info("%s: no validation file; holding out every %d-th train view (%d views)",
             root, every, len(splits["val"]))


def load_nerf_synthetic(
    root: str | Path,
    mip: int = 0,
    bg_color: tuple[float, float, float] = (1.0, 1.0, 1.0),
    holdout_every: int | None = 8,
    aabb_scale: float | None = None,
) -> NerfScene:
    """Load a NeRF-synthetic / Blender scene (see the module docstring).

    Args:
        root: scene directory.
        mip: downscale images by ``2**mip`` per axis (box filter).
        bg_color: RGB in [0, 1] that transparent pixels are composited over.
        holdout_every: when there is no ``val`` file, views ``0, k, 2k, ...`` of train
            become ``val`` (None, 0 or 1 disables).
        aabb_scale: translation divisor; None uses the JSON's value or 1.25.

    Returns:
        A :class:`NerfScene` holding every split.
    """
    if mip < 0:
        raise DataError(f"mip must be >= 0, got {mip}")
    root = Path(root)
    bg = torch.tensor(bg_color, dtype=torch.float32)
    loaded = {s: _load_split(root, p, bg, mip, aabb_scale)
              for s, p in _find_transforms(root).items()}
    sizes = {tuple(img.shape[:2]) for d in loaded.values() for img in d.rgb}
    if len(sizes) != 1:
        raise DataError(f"{root}: images have different sizes {sorted(sizes)}")
    splits: dict[str, list[int]] = {}
    count = 0
    for name, d in loaded.items():
        splits[name] = list(range(count, count + len(d.rgb)))
        count += len(d.rgb)
    if "val" not in splits:
        _hold_out(splits, holdout_every, root)
    parts = list(loaded.values())
    H, W = sizes.pop()
    return NerfScene(
        images=torch.stack([x for d in parts for x in d.rgb]),
        alphas=torch.stack([x for d in parts for x in d.alpha]),
        c2w=torch.stack([x for d in parts for x in d.poses]).float(),
        intrinsics=torch.tensor([x for d in parts for x in d.intr], dtype=torch.float32),
        names=[x for d in parts for x in d.names],
        splits=splits, H=H, W=W, bg_color=tuple(float(c) for c in bg_color))
