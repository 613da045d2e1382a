"""Viewer internals without a browser: camera and window math, the progressive render
loop, and the render/status of :class:`ViewerModel`. Zoom, pan and auto LOD of the
planar view: ``test_viewer_planar.py``."""
from __future__ import annotations

import dataclasses
import math
import threading
import time

import numpy as np
import pytest
import torch

from wisp_shacira.codec.model_io import write_shac
from wisp_shacira.grid.shacira_grid import GridConfig
from wisp_shacira.tasks.image import pixel_coords
from wisp_shacira.viewer.camera import c2w_from_viser, fov_from_focal, pinhole, viewport_size
from wisp_shacira.tasks.image_tiles import pixel_centres
from wisp_shacira.viewer.planar import PlanarWindow
from wisp_shacira.viewer.worker import ProgressiveRenderer


def test_window_at_zoom_one_is_the_pixel_grid() -> None:
    rows, cols = PlanarWindow(6, 10, 6, 10).pixel_indices()
    assert rows.tolist() == list(range(6)) and cols.tolist() == list(range(10))
    assert torch.equal(pixel_centres(rows, cols, 6, 10), pixel_coords(6, 10))


def test_window_zoom_pan_and_letterbox() -> None:
    window = PlanarWindow(8, 8, 8, 8, zoom=2.0)
    rows, cols = window.pixel_indices()
    assert rows.tolist() == cols.tolist() == [2, 2, 3, 3, 4, 4, 5, 5]
    assert window.scale == 2.0 and window.region() == (2, 2, 4, 4)
    assert window.panned(0.5, -0.25) == (0.75, 0.375)
    assert window.panned(5.0, 0.0) == (1.0, 0.5)
    left = PlanarWindow(8, 8, 8, 8, zoom=2.0, center=(0.0, 0.5))
    assert left.pixel_indices()[1].tolist() == [-2, -2, -1, -1, 0, 0, 1, 1]
    assert left.region() == (0, 2, 2, 4)
    _, cols = PlanarWindow(4, 16, 4, 4).pixel_indices()
    assert cols[6:10].tolist() == [0, 1, 2, 3] and (cols[:6] < 0).all() and (cols[10:] > 3).all()
    assert PlanarWindow(4, 4, 4, 4, zoom=2.0, center=(3.0, 0.5)).region()[2] == 0


def test_viser_camera_to_opengl_c2w() -> None:
    # viser (OpenCV axes) camera at +Z looking at the origin, image up = +Y: a half
    # turn about x. In OpenGL axes that is the identity rotation.
    c2w = c2w_from_viser(np.array([0.0, 1.0, 0.0, 0.0]), np.array([0.0, 0.0, 3.0]))
    assert torch.allclose(c2w, torch.tensor([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 3], [0, 0, 0, 1]]))


def test_intrinsics_and_viewport() -> None:
    fx, fy, cx, cy = pinhole(math.radians(60), 100, 150)
    assert fx == fy and (cx, cy) == (75.0, 50.0)
    assert fov_from_focal(fy, 100) == pytest.approx(math.radians(60))
    assert viewport_size(64, 1.5) == (64, 96)
    assert viewport_size(64, 100.0) == (64, 256)


def test_progressive_renderer_previews_then_refines_the_latest_request() -> None:
    shown: list[tuple[int, float]] = []
    done = threading.Event()

    def render(request: int, scale: float, cancelled) -> np.ndarray:
        time.sleep(0.01)
        return np.zeros((2, 2, 3), np.uint8)

    def show(image: np.ndarray, request: int, scale: float, seconds: float) -> None:
        shown.append((request, scale))
        if request == 9 and scale == 1.0:
            done.set()

    renderer = ProgressiveRenderer(render, show, preview_scale=0.25, idle_s=0.2)
    try:
        for request in range(10):
            renderer.request(request)
        assert done.wait(10)
    finally:
        renderer.stop()
    assert shown[-2:] == [(9, 0.25), (9, 1.0)]
    assert all(scale == 0.25 for _, scale in shown[:-1])


def test_viewer_model_renders_the_requested_lod(random_image_shac, tmp_path) -> None:
    pytest.importorskip("viser", reason="the viewer needs viser (pip install viser)")
    from wisp_shacira.lod import open_source, open_stream
    from wisp_shacira.viewer.app import ViewerModel, ViewRequest

    random_image_shac(tmp_path / "g.shac", 8, 8, channels=1, num_levels=3, max_res=16)
    stream = open_stream(tmp_path / "g.shac")
    model = ViewerModel(stream, open_source(stream))
    assert model.default_resolution() == 256
    coarse = model.render(ViewRequest(lod=1, resolution=8, aspect=1.0))
    fine = model.render(ViewRequest(lod=3, resolution=8, aspect=1.0))
    assert coarse.shape == (8, 8, 3) and coarse.dtype == np.uint8
    assert not np.array_equal(coarse, fine)
    expected = np.round(model.source.full_frame(3)[..., 0] * 255)
    assert np.abs(fine[..., 0].astype(int) - expected).max() <= 1
    assert model.render(ViewRequest(lod=3, resolution=32, aspect=2.0), 0.5).shape == (16, 32, 3)
    text = model.status(ViewRequest(lod=1, resolution=8), coarse, 1.0, 0.012)
    assert f"{stream.lod_bytes[0]:,}" in text and "12 ms" in text and "refined" in text


def test_scene_renders_in_bands_like_one_image_and_can_be_cancelled(tmp_path) -> None:
    pytest.importorskip("viser", reason="the viewer needs viser (pip install viser)")
    from wisp_shacira.fields.nerf import NerfNefConfig, RadianceField
    from wisp_shacira.lod import open_source, open_stream
    from wisp_shacira.render.tracer import TracerConfig
    from wisp_shacira.viewer.app import CHUNK, ViewerModel, ViewRequest

    torch.manual_seed(0)
    grid = GridConfig(num_levels=3, min_res=4, max_res=16, log2_table_size=10, feature_dim=2)
    nef = NerfNefConfig(hidden_dim=8, geo_feat_dim=3, color_hidden_dim=8, color_num_layers=1,
                        view_degree=2)
    field = RadianceField(grid, nef)
    with torch.no_grad():
        field.grid.latents.copy_(torch.randint(-3, 4, field.grid.latents.shape).float())
    field.round_weights()
    config = {"task": "nerf", "grid": dataclasses.asdict(grid), "nef": dataclasses.asdict(nef),
              "tracer": dataclasses.asdict(TracerConfig(num_samples=16)),
              "occupancy": {"resolution": 8, "subsamples": 2, "threshold": 0.01},
              "scene": {"name": "s", "format": "blender", "mip": 0, "height": 10, "width": 10,
                        "scale": 0.8, "offset": [0.0, 0.0, 0.0]},
              "camera": {"fx": 14.0, "fy": 14.0, "cx": 5.0, "cy": 5.0, "orbit_radius": 2.5,
                         "orbit_height": 1.0}}
    write_shac(tmp_path / "s.shac", field.to_shac_model(config))
    stream = open_stream(tmp_path / "s.shac")
    model = ViewerModel(stream, open_source(stream))
    _, fov = model.initial_camera()
    request = ViewRequest(lod=2, resolution=240, aspect=0.25, wxyz=(0.0, 1.0, 0.0, 0.0),
                          position=(0.0, 0.0, 2.5), fov=fov)
    banded = model.render(request)
    height, width = banded.shape[:2]
    c2w = c2w_from_viser(np.array(request.wxyz), np.array(request.position))[None]
    whole = model.source.render(2, c2w, torch.tensor([pinhole(fov, height, width)]), height, width)[0]
    assert (height, width) == (240, 60) and CHUNK // width < height
    assert np.abs(banded.astype(int) - whole).max() <= 1
    assert model.render(request, cancelled=lambda: True) is None
