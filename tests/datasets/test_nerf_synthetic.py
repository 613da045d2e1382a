"""Tests of the NeRF-synthetic loader on tiny generated scenes (and of the demo scene)."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from wisp_shacira.datasets.nerf_synthetic import BLENDER_TO_YUP, load_nerf_synthetic
from wisp_shacira.errors import DataError

torch.set_num_threads(1)

ANGLE = 0.8


def pose(tx: float = 0.0, ty: float = 0.0, tz: float = 2.5) -> list[list[float]]:
    """Blender pose with identity rotation (camera looks down -Z, i.e. down)."""
    return [[1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1]]


def write_png(path: Path, rgba: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgba).save(path)


def checker_rgba(size: int = 8) -> np.ndarray:
    """Opaque red everywhere except: top-left pixel transparent, pixel (0, 1) half red."""
    img = np.zeros((size, size, 4), np.uint8)
    img[..., 0] = 255
    img[..., 3] = 255
    img[0, 0] = (0, 255, 0, 0)
    img[0, 1] = (255, 0, 0, 128)
    return img


def write_scene(root: Path, splits: dict[str, int], single: bool = False,
                extra: dict[str, Any] | None = None) -> None:
    for split, n in splits.items():
        frames = []
        for i in range(n):
            write_png(root / split / f"r_{i}.png", checker_rgba())
            frames.append({"file_path": f"./{split}/r_{i}", "transform_matrix": pose(tx=0.1 * i)})
        meta = {"camera_angle_x": ANGLE, "frames": frames, **(extra or {})}
        name = "transforms.json" if single else f"transforms_{split}.json"
        (root / name).write_text(json.dumps(meta))


def test_loads_splits_images_and_intrinsics(tmp_path: Path) -> None:
    write_scene(tmp_path, {"train": 3, "val": 2, "test": 1})
    scene = load_nerf_synthetic(tmp_path)
    assert scene.split_names == ["train", "val", "test"]
    assert scene.images.shape == (6, 8, 8, 3) and scene.images.dtype == torch.float32
    assert (scene.H, scene.W) == (8, 8)
    fx = 0.5 * 8 / math.tan(0.5 * ANGLE)
    assert torch.allclose(scene.intrinsics[0], torch.tensor([fx, fx, 4.0, 4.0]))
    img = scene.images[0]
    assert torch.allclose(img[0, 0], torch.ones(3))  # transparent -> white
    a = 128 / 255
    assert torch.allclose(img[0, 1], torch.tensor([1.0, 1 - a, 1 - a]), atol=1e-6)
    assert torch.allclose(img[3, 3], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.isclose(scene.alphas[0, 0, 1], torch.tensor(a))
    val = scene.split("val")
    assert val.images.shape[0] == 2 and val.names == ["r_0", "r_1"]
    assert torch.equal(val.to("cpu").c2w, scene.c2w[3:5])
    with pytest.raises(DataError, match="available"):
        scene.split("bogus")


def test_black_background(tmp_path: Path) -> None:
    write_scene(tmp_path, {"train": 1})
    scene = load_nerf_synthetic(tmp_path, bg_color=(0.0, 0.0, 0.0), holdout_every=None)
    assert torch.allclose(scene.images[0, 0, 0], torch.zeros(3))
    assert torch.allclose(scene.images[0, 0, 1], torch.tensor([128 / 255, 0, 0]), atol=1e-6)


def test_normalisation_maps_blender_z_up_to_y_up(tmp_path: Path) -> None:
    write_scene(tmp_path, {"train": 2})
    scene = load_nerf_synthetic(tmp_path, holdout_every=None)
    # Blender camera at (0.1, 0, 2.5) looking down -Z -> Y-up world (0.08, 2, 0) looking down -Y
    assert torch.allclose(scene.c2w[1, :3, 3], torch.tensor([0.08, 2.0, 0.0]), atol=1e-6)
    _, dirs = scene.view_rays(0)
    assert torch.allclose(dirs.mean(0) / dirs.mean(0).norm(), torch.tensor([0.0, -1.0, 0.0]),
                          atol=1e-5)
    assert torch.allclose(BLENDER_TO_YUP[:3, :3] @ torch.tensor([0.0, 0.0, 1.0]),
                          torch.tensor([0.0, 1.0, 0.0]))


def test_aabb_scale_and_offset_from_json(tmp_path: Path) -> None:
    write_scene(tmp_path, {"train": 1}, extra={"aabb_scale": 2.0, "offset": [0.0, 0.0, 1.0]})
    scene = load_nerf_synthetic(tmp_path, holdout_every=None)
    assert torch.allclose(scene.c2w[0, :3, 3], torch.tensor([0.0, 2.25, 0.0]))


def test_mip_area_downscale(tmp_path: Path) -> None:
    write_scene(tmp_path, {"train": 1})
    scene = load_nerf_synthetic(tmp_path, mip=1, holdout_every=None)
    assert scene.images.shape == (1, 4, 4, 3)
    a = 128 / 255
    expected_g = (1.0 + (1 - a)) / 4  # mean of the composited 2x2 block
    assert torch.isclose(scene.images[0, 0, 0, 1], torch.tensor(expected_g), atol=1e-6)
    fx = 0.5 * 8 / math.tan(0.5 * ANGLE) / 2
    assert torch.allclose(scene.intrinsics[0], torch.tensor([fx, fx, 2.0, 2.0]))


def test_per_frame_intrinsics_override(tmp_path: Path) -> None:
    write_scene(tmp_path, {"train": 1})
    meta = json.loads((tmp_path / "transforms_train.json").read_text())
    meta["frames"][0].update({"fl_x": 30.0, "fl_y": 40.0, "cx": 3.0, "cy": 5.0, "w": 16, "h": 16})
    (tmp_path / "transforms_train.json").write_text(json.dumps(meta))
    scene = load_nerf_synthetic(tmp_path, holdout_every=None)
    assert torch.allclose(scene.intrinsics[0], torch.tensor([15.0, 20.0, 1.5, 2.5]))


def test_single_transforms_file_with_holdout(tmp_path: Path) -> None:
    write_scene(tmp_path, {"images": 10}, single=True)
    scene = load_nerf_synthetic(tmp_path)
    assert set(scene.split_names) == {"train", "val"}
    assert scene.split("val").names == ["r_0", "r_8"]
    assert len(scene.split("train").names) == 8


def test_pixel_rays_match_view_rays(tmp_path: Path) -> None:
    write_scene(tmp_path, {"train": 2})
    scene = load_nerf_synthetic(tmp_path, holdout_every=None)
    view, row, col = torch.tensor([1, 0]), torch.tensor([2, 7]), torch.tensor([5, 0])
    o, d, rgb = scene.pixel_rays(view, row, col)
    o1, d1 = scene.view_rays(1)
    assert torch.allclose(d[0], d1[2 * 8 + 5], atol=1e-6) and torch.allclose(o[0], o1[0])
    assert torch.equal(rgb, scene.images[view, row, col])


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_nerf_synthetic(tmp_path / "nope")
    with pytest.raises(DataError, match="no transforms"):
        load_nerf_synthetic(tmp_path)
    (tmp_path / "transforms_train.json").write_text('{"frames": [}')
    with pytest.raises(DataError, match=r"transforms_train\.json: malformed JSON"):
        load_nerf_synthetic(tmp_path)


def test_missing_image_and_bad_frames(tmp_path: Path) -> None:
    write_scene(tmp_path, {"train": 2})
    (tmp_path / "train" / "r_1.png").unlink()
    with pytest.raises(DataError, match=r"frame 1 image .*r_1\.png does not exist"):
        load_nerf_synthetic(tmp_path)
    write_png(tmp_path / "train" / "r_1.png", checker_rgba())
    meta = json.loads((tmp_path / "transforms_train.json").read_text())
    del meta["frames"][0]["transform_matrix"]
    (tmp_path / "transforms_train.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="transform_matrix"):
        load_nerf_synthetic(tmp_path)


def test_unsupported_channels(tmp_path: Path) -> None:
    write_scene(tmp_path, {"train": 1})
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "train" / "r_0.png")
    with pytest.raises(DataError, match=r"r_0\.png: unsupported image with 1 channel"):
        load_nerf_synthetic(tmp_path)


def _demo_module() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "data" / "make_demo_scene.py"
    spec = importlib.util.spec_from_file_location("make_demo_scene", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_scene_is_deterministic_and_consistent_with_loader(tmp_path: Path) -> None:
    demo = _demo_module()
    a = demo.make_demo_scene(tmp_path / "a", size=16, n_train=3, n_val=1, n_test=1, seed=1)
    b = demo.make_demo_scene(tmp_path / "b", size=16, n_train=3, n_val=1, n_test=1, seed=1)
    for f in sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file()):
        assert (a / f).read_bytes() == (b / f).read_bytes()
    scene = load_nerf_synthetic(a)
    assert scene.split_names == ["train", "val", "test"] and scene.images.shape[0] == 5
    assert scene.c2w[:, :3, 3].abs().max() < 3.0
    # rays of the loaded (normalised, Y-up) cameras, mapped back to the Blender world,
    # must hit the generator's geometry exactly where the images are opaque
    origins, dirs = scene.view_rays(2)
    back = BLENDER_TO_YUP[:3, :3].T
    o_b = (origins @ back.T * 1.25).double().numpy()
    d_b = (dirs @ back.T).double().numpy()
    _, hit = demo._shade(o_b, d_b)
    alpha = scene.alphas[2].reshape(-1).numpy()
    solid = (alpha > 0.99) | (alpha < 0.01)
    assert hit.any() and (~hit).any()
    assert np.array_equal(hit[solid], alpha[solid] > 0.5)
