"""Tests of the RTMV loader on tiny scenes written with OpenEXR."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from wisp_shacira.datasets.rtmv import (
    linear_to_srgb,
    load_rtmv,
    look_at_c2w,
    rtmv_split_indices,
)
from wisp_shacira.errors import DataError

OpenEXR = pytest.importorskip("OpenEXR")
torch.set_num_threads(1)

SIZE = 5  # odd, so the centre pixel's ray passes exactly through the look-at point
P = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # Blender -> Y up


def write_exr(path: Path, channels: dict[str, np.ndarray]) -> None:
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    OpenEXR.File(header, {k: v.astype(np.float32) for k, v in channels.items()}).write(str(path))


def write_view(root: Path, idx: int, eye: list[float], at: list[float],
               rgb: float = 0.5, alpha: float = 1.0, depth: str | None = "channel",
               width: int = SIZE, height: int = SIZE) -> None:
    """One RTMV view whose only valid depth is the centre pixel, hitting ``at``."""
    meta = {"camera_data": {
        "camera_look_at": {"eye": eye, "at": at, "up": [0.0, 0.0, 1.0]},
        "intrinsics": {"fx": 4.0, "fy": 4.0, "cx": width / 2, "cy": height / 2},
        "width": width, "height": height}}
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{idx:05d}.json").write_text(json.dumps(meta))
    shape = (height, width)
    ch = {c: np.full(shape, rgb) for c in "RGB"}
    ch["A"] = np.full(shape, alpha)
    d = np.full(shape, 1e10)
    d[height // 2, width // 2] = float(np.linalg.norm(np.subtract(eye, at)))
    if depth == "channel":
        ch["depth.R"] = d
    write_exr(root / f"{idx:05d}.exr", ch)
    if depth == "sidecar":
        write_exr(root / f"{idx:05d}.depth.exr", {"R": d})


EYES = [[4.0, 0.0, 1.0], [0.0, 4.0, 1.0], [-4.0, 0.0, 2.0], [0.0, -4.0, 1.0],
        [3.0, 3.0, 3.0], [-3.0, 2.0, 1.0]]
ATS = [[1.0, 1.0, 1.0], [3.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 2.0],
       [2.0, 2.0, 1.5], [1.5, 1.0, 1.0]]


def write_scene(root: Path, depth: str | None = "channel") -> None:
    for i, (eye, at) in enumerate(zip(EYES, ATS)):
        write_view(root, i, eye, at, depth=depth)


def test_split_rule() -> None:
    s = rtmv_split_indices(150)
    assert (len(s["train"]), len(s["val"]), len(s["test"])) == (100, 5, 45)
    assert s["val"] == list(range(100, 105))
    s = rtmv_split_indices(6)
    assert (s["train"], s["val"], s["test"]) == ([0, 1, 2, 3], [], [4, 5])


def test_look_at_matches_opengl_axes() -> None:
    c2w = look_at_c2w(torch.tensor([0.0, -3.0, 0.0], dtype=torch.float64),
                      torch.zeros(3, dtype=torch.float64),
                      torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    # looks along +Y (Blender) with Z up: right = +X, up = +Z, back = -Y
    expected = torch.tensor([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]], dtype=torch.float64)
    assert torch.allclose(c2w[:3, :3], expected)


@pytest.mark.parametrize("depth", ["channel", "sidecar"])
def test_depth_normalisation(tmp_path: Path, depth: str) -> None:
    write_scene(tmp_path, depth=depth)
    scene = load_rtmv(tmp_path)
    assert scene.names == [f"{i:05d}" for i in range(6)]
    assert scene.splits == {"train": [0, 1, 2, 3], "val": [], "test": [4, 5]}
    pts = torch.tensor(ATS) @ P.T
    centre = (pts.amax(0) + pts.amin(0)) / 2
    scale = 1.0 / float((pts.amax(0) - centre).max())
    eyes = torch.tensor(EYES) @ P.T
    assert torch.allclose(scene.c2w[:, :3, 3], (eyes - centre) * scale, atol=1e-5)
    assert scene.depths is not None
    c = SIZE // 2
    dist = (torch.tensor(EYES) - torch.tensor(ATS)).norm(dim=-1)
    assert torch.allclose(scene.depths[:, c, c], dist * scale, atol=1e-5)
    assert float(scene.depths.sum()) == pytest.approx(float((dist * scale).sum()), rel=1e-5)
    cloud = []
    for v in range(6):
        o, d = scene.view_rays(v)
        cloud.append(o[c * SIZE + c] + d[c * SIZE + c] * scene.depths[v, c, c])
    cloud_t = torch.stack(cloud)
    assert torch.allclose(cloud_t, (pts - centre) * scale, atol=1e-4)
    assert cloud_t.abs().max() == pytest.approx(1.0, abs=1e-4)


def test_normalise_by_cameras_without_depth(tmp_path: Path) -> None:
    write_scene(tmp_path, depth=None)
    scene = load_rtmv(tmp_path)
    t = scene.c2w[:, :3, 3]
    assert t.abs().max() == pytest.approx(1.0, abs=1e-5)
    assert torch.allclose((t.amax(0) + t.amin(0)) / 2, torch.zeros(3), atol=1e-5)


def test_linear_compositing_then_srgb(tmp_path: Path) -> None:
    write_view(tmp_path, 0, EYES[0], ATS[0], rgb=0.5, alpha=1.0)
    write_view(tmp_path, 1, EYES[1], ATS[1], rgb=0.5, alpha=0.0)
    write_view(tmp_path, 2, EYES[2], ATS[2], rgb=0.5, alpha=0.5)
    white = load_rtmv(tmp_path)
    black = load_rtmv(tmp_path, bg_color=(0.0, 0.0, 0.0))
    srgb_half = float(linear_to_srgb(torch.tensor(0.5)))
    assert srgb_half == pytest.approx(0.7354, abs=1e-3)
    assert torch.allclose(white.images[0], torch.full((SIZE, SIZE, 3), srgb_half), atol=1e-5)
    assert torch.allclose(white.images[1], torch.ones(SIZE, SIZE, 3))
    assert torch.allclose(black.images[1], torch.zeros(SIZE, SIZE, 3))
    mixed = float(linear_to_srgb(torch.tensor(0.25 + 0.5)))
    assert float(white.images[2, 0, 0, 0]) == pytest.approx(mixed, abs=1e-5)
    assert float(black.images[2, 0, 0, 0]) == pytest.approx(float(linear_to_srgb(torch.tensor(0.25))), abs=1e-5)
    assert torch.allclose(white.alphas[2], torch.full((SIZE, SIZE), 0.5))


def test_mip_rescales_intrinsics(tmp_path: Path) -> None:
    for i in range(3):
        write_view(tmp_path, i, EYES[i], ATS[i], width=8, height=8)
    scene = load_rtmv(tmp_path, mip=1)
    assert scene.images.shape == (3, 4, 4, 3)
    assert torch.allclose(scene.intrinsics[0], torch.tensor([2.0, 2.0, 2.0, 2.0]))


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_rtmv(tmp_path / "nope")
    with pytest.raises(DataError, match="no RTMV view JSON"):
        load_rtmv(tmp_path)
    write_view(tmp_path, 0, EYES[0], ATS[0], width=6, height=4)
    with pytest.raises(DataError, match=r"00000\.json: image is 6x4; RTMV views must be square"):
        load_rtmv(tmp_path)
    write_view(tmp_path, 0, EYES[0], ATS[0])
    (tmp_path / "00000.exr").unlink()
    with pytest.raises(DataError, match=r"00000\.exr does not exist"):
        load_rtmv(tmp_path)
    write_exr(tmp_path / "00000.exr", {c: np.zeros((SIZE, SIZE)) for c in "RGB"})
    with pytest.raises(DataError, match=r"00000\.exr: missing channel\(s\) \['A'\]"):
        load_rtmv(tmp_path)
    (tmp_path / "00000.exr").write_bytes(b"not an exr")
    with pytest.raises(DataError, match="cannot read EXR"):
        load_rtmv(tmp_path)
    (tmp_path / "00000.json").write_text("{oops")
    with pytest.raises(DataError, match=r"00000\.json: malformed JSON"):
        load_rtmv(tmp_path)
    (tmp_path / "00000.json").write_text(json.dumps({"camera_data": {}}))
    with pytest.raises(DataError, match="camera_data"):
        load_rtmv(tmp_path)
