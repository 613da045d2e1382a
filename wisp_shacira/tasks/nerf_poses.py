"""Camera poses for rendering a scene file: any NeRF-synthetic ``transforms*.json``.

Poses are normalised into the model's box with the file's ``scene`` section (the
normalisation of the training data), not with the JSON's own ``aabb_scale``, so the
cameras of any split of the training scene line up with the model. A frame whose
image exists is loaded as ground truth (composited over the model's background,
downscaled by the model's ``mip``); frames without images are rendered only. The
output size is that of the images, else the JSON's ``w``/``h`` divided by
``2^mip``, else the training resolution stored in the file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wisp_shacira.datasets.nerf_synthetic import frame_intrinsics, frame_pose, load_view, read_json
from wisp_shacira.errors import BitstreamError, DataError
from wisp_shacira.tasks.nerf_eval import box_poses


@dataclass
class PoseSet:
    """Cameras (and optional ground truth) read from a transforms JSON.

    Attributes:
        c2w: [V, 4, 4] camera-to-world in the model's box (OpenGL axes, Y up).
        intrinsics: [V, 4] (fx, fy, cx, cy) in pixels at ``height x width``.
        height, width: output size.
        names: output name of each view (unique).
        images: per view ``[H, W, 3]`` float32 ground truth, or None when absent.
        image_paths: per view the ground-truth path (None when absent).
    """

    c2w: torch.Tensor
    intrinsics: torch.Tensor
    height: int
    width: int
    names: list[str]
    images: list[np.ndarray | None] = field(default_factory=list)
    image_paths: list[Path | None] = field(default_factory=list)


def _scene_meta(meta: dict) -> tuple[int, int, int, tuple[float, ...]]:
    try:
        scene = meta["scene"]
        bg = tuple(float(c) for c in meta["tracer"]["bg_color"])
        return int(scene["mip"]), int(scene["height"]), int(scene["width"]), bg
    except (KeyError, TypeError, ValueError) as exc:
        raise BitstreamError(f"malformed scene section in the file ({exc})") from exc


def _image_path(root: Path, frame: dict[str, Any]) -> Path | None:
    rel = frame.get("file_path")
    if not isinstance(rel, str):
        return None
    path = root / rel.replace("\\", "/")
    if path.suffix == "":
        path = path.with_name(path.name + ".png")
    return path


def _full_size(json_meta: dict, frame: dict, default: tuple[int, int],
               json_path: Path) -> tuple[int, int]:
    h, w = frame.get("h", json_meta.get("h")), frame.get("w", json_meta.get("w"))
    if h is None or w is None:
        return default
    try:
        size = int(h), int(w)
    except (TypeError, ValueError):
        raise DataError(f"{json_path}: 'w'/'h' must be integers, got {w!r}, {h!r}") from None
    if min(size) < 1:
        raise DataError(f"{json_path}: 'w'/'h' must be positive, got {w!r}, {h!r}")
    return size


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name] - 1}")
    return out


def read_poses(json_path: Path, meta: dict) -> PoseSet:
    """Read the cameras of ``json_path`` for the model described by ``meta`` (file CONFIG)."""
    mip, height, width, bg = _scene_meta(meta)
    doc = read_json(json_path)
    frames = doc.get("frames") if isinstance(doc, dict) else None
    if not isinstance(frames, list) or not frames:
        raise DataError(f"{json_path}: expected an object with a non-empty 'frames' list")
    factor, bg_t = 2**mip, torch.tensor(bg, dtype=torch.float32)
    poses, intrs, names, images, paths, sizes = [], [], [], [], [], set()
    for i, frame in enumerate(frames):
        if not isinstance(frame, dict):
            raise DataError(f"{json_path}: frame {i} is not an object")
        poses.append(frame_pose(json_path, frame, i))
        path = _image_path(json_path.parent, frame)
        if path is not None and path.is_file():
            rgb, _, full_hw = load_view(path, bg_t, factor)
            images.append(rgb.numpy())
            paths.append(path)
            out_hw = tuple(rgb.shape[:2])
        else:
            full_hw = _full_size(doc, frame, (height * factor, width * factor), json_path)
            out_hw = (max(full_hw[0] // factor, 1), max(full_hw[1] // factor, 1))
            images.append(None)
            paths.append(None)
        sizes.add(out_hw)
        intrs.append(frame_intrinsics(doc, frame, full_hw, out_hw, json_path))
        names.append(path.stem if path is not None else f"view_{i:03d}")
    if len(sizes) != 1:
        raise DataError(f"{json_path}: views have different sizes {sorted(sizes)}")
    out_h, out_w = sizes.pop()
    c2w = box_poses(torch.stack(poses), meta["scene"])
    return PoseSet(c2w, torch.tensor(intrs, dtype=torch.float32), out_h, out_w, _unique(names),
                   images, paths)
