"""Pan and zoom of the planar view without a browser: the zoom range, the automatic LOD
rule, renders of a 65536 x 65536 image that evaluate only the visible window, pixel
zoom equal to the decoded pixels, and the zoom/pan controls on a fake GUI."""
from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import pytest
import torch

from wisp_shacira.grid.hashing import make_layout
from wisp_shacira.viewer.planar import (MAX_MAGNIFICATION, REFERENCE_SIDE, PlanarWindow, auto_lod,
                                        grid_resolutions, max_log2_zoom)

SIDE = 1 << 16
GOLDEN_VIDEO = sorted(Path(__file__).parents[1].glob("golden/v3_*/video.shac"))[-1]
RESOLUTIONS = (4, 16, 64, 256, 1024)


def test_auto_lod_keeps_levels_at_most_twice_the_samples() -> None:
    assert auto_lod(RESOLUTIONS, 4096, 100.0, 5) == 3  # 2 x 100 samples: levels 4, 16, 64
    assert auto_lod(RESOLUTIONS, 4096, 128.0, 5) == 4  # 256 <= 2 x 128
    assert auto_lod(RESOLUTIONS, 4096, 1.0, 5) == 1  # at least one level
    assert auto_lod(RESOLUTIONS, 4096, 1e6, 5) == 5
    assert auto_lod(RESOLUTIONS, 4096, 1e6, 2) == 2  # no more than the stream holds
    # magnified, the samples are the image's pixels: a 300-pixel image uses R <= 600
    assert auto_lod(RESOLUTIONS, 300, 3000.0, 5) == 4
    lods = [auto_lod(RESOLUTIONS, 4096, 2.0**k, 5) for k in range(14)]
    assert lods == sorted(lods) and lods[0] == 1 and lods[-1] == 5


def test_zoom_reaches_several_screen_pixels_per_image_pixel() -> None:
    assert max_log2_zoom(48, 64) == 4.0
    for side in (1 << 12, 1 << 16, 1 << 20):
        top = max_log2_zoom(side, side // 2)
        assert top <= math.log2(side) and (top / 0.125).is_integer()
        for aspect_width in (REFERENCE_SIDE // 4, REFERENCE_SIDE, 4 * REFERENCE_SIDE):
            window = PlanarWindow(REFERENCE_SIDE, aspect_width, side, side // 2, zoom=2.0**top)
            assert window.scale >= MAX_MAGNIFICATION / 4 >= 2
        assert PlanarWindow(REFERENCE_SIDE, REFERENCE_SIDE, side, side, 2.0**top).scale >= 8
    assert max_log2_zoom(1 << 20, 1 << 20) == 15.0


class RecordingSource:
    """A 65536 x 65536 planar source that records the coordinates it is asked for and
    colours pixel (row, col) by (col mod 5, row mod 5)."""

    view = "planar"
    height = width = SIDE
    channels, num_frames, num_levels = 3, 1, 12

    def __init__(self) -> None:
        self.field = SimpleNamespace(grid=SimpleNamespace(layout=make_layout(2, 16, SIDE, 12, 12)))
        self.calls: list[tuple[torch.Tensor, int]] = []

    def colours(self, coords: torch.Tensor, lod: int, frame: int = 0) -> torch.Tensor:
        self.calls.append((coords, lod))
        pixel = torch.floor(coords.double() * SIDE)
        return torch.stack([pixel[:, 0] % 5 / 4, pixel[:, 1] % 5 / 4, 0 * pixel[:, 0]], 1).float()

    def requested(self) -> torch.Tensor:
        """Pixel (x, y) of every coordinate asked for: [N, 2] float64; clears the record."""
        coords = torch.cat([c for c, _ in self.calls]).double()
        self.calls.clear()
        return coords * SIDE - 0.5


def _fake_model() -> Any:
    pytest.importorskip("viser", reason="the viewer needs viser (pip install viser)")
    from wisp_shacira.lod import LodStream
    from wisp_shacira.viewer.app import ViewerModel

    levels = SimpleNamespace(num_levels=12, levels=[None] * 12)
    stream = LodStream("fake.shac", levels, [100 * (k + 1) for k in range(12)], 1200)
    return ViewerModel(stream, RecordingSource())


def test_a_65536_pixel_image_renders_only_the_visible_window() -> None:
    from wisp_shacira.viewer.app import ViewRequest

    model = _fake_model()
    source = model.source
    assert model.resolutions == grid_resolutions(source) and model.max_log2_zoom == 11.0
    whole = ViewRequest(lod=12, resolution=256, aspect=1.5)
    image = model.render(whole)
    pixels = source.requested()
    assert image.shape == (256, 384, 3) and len(pixels) == 256 * 256  # the letterboxed square
    assert torch.equal(pixels, torch.round(pixels))  # pixel centres
    assert pixels.min() >= 0 and pixels.max() < SIDE
    assert pixels[:, 0].max() - pixels[:, 0].min() > 65000  # spread over the whole image
    assert (image[:, :64] == round(0.18 * 255)).all()  # letterbox background
    coarse = model.auto_lod(whole)
    assert coarse == auto_lod(model.resolutions, SIDE, 256.0, 12) < 12

    # 4 render pixels per image pixel around pixel (16384, 49152): 96 x 64 pixels seen
    close = ViewRequest(lod=12, resolution=256, aspect=1.5, zoom=1024.0, center=(0.25, 0.75))
    image = model.render(close)
    pixels = source.requested()
    xs, ys = torch.arange(16384 - 48, 16384 + 48), torch.arange(49152 - 32, 49152 + 32)
    expected = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], -1).reshape(-1, 2)
    assert torch.equal(pixels, expected.double())  # each visible pixel once, at its centre
    cols = np.arange(384) // 4 + 16384 - 48
    assert np.array_equal(image[0, :, 0], np.round(cols % 5 / 4 * 255).astype(np.uint8))
    assert model.window(close).region() == (16384 - 48, 49152 - 32, 96, 64)
    assert model.auto_lod(close) == 12 > coarse
    text = model.status(close, image, 1.0, 0.01, screen_height=512)
    assert "x 16,336 y 49,120, 96 x 64 px of 65,536 x 65,536" in text
    assert "1 image px = **4 render px** = 8 screen px" in text


def test_pixel_zoom_shows_the_decoded_pixels(random_image_shac, tmp_path) -> None:
    pytest.importorskip("viser", reason="the viewer needs viser (pip install viser)")
    from wisp_shacira.lod import open_source, open_stream
    from wisp_shacira.tasks.image_tiles import Window
    from wisp_shacira.viewer.app import ViewerModel, ViewRequest

    random_image_shac(tmp_path / "p.shac", 40, 56, num_levels=3, max_res=64)
    stream = open_stream(tmp_path / "p.shac")
    model = ViewerModel(stream, open_source(stream))
    # render 32 x 48 at 4 render pixels per image pixel: pixels 22..34 x 16..24
    request = ViewRequest(lod=3, resolution=32, aspect=1.5, zoom=4 * 40 / 32,
                          center=(28 / 56, 20 / 40))
    assert model.window(request).region() == (22, 16, 12, 8)
    image = model.render(request)
    decoded = model.source.window(Window(22, 16, 12, 8), 3)
    assert np.array_equal(image[::4, ::4], image[3::4, 3::4])
    assert np.abs(image[::4, ::4].astype(int) - decoded).max() <= 1


class FakeHandle:
    """A viser GUI handle: ``value``; assigning it calls the update callbacks."""

    def __init__(self, value: Any) -> None:
        self._value, self.callbacks = value, []

    @property
    def value(self) -> Any:
        return self._value

    @value.setter
    def value(self, value: Any) -> None:
        self._value = value
        for callback in self.callbacks:
            callback(SimpleNamespace(client=None, target=self))

    def on_update(self, func: Callable) -> None:
        self.callbacks.append(func)

    on_click = on_update


class FakeGui:
    def __init__(self) -> None:
        self.handles: dict[str, FakeHandle] = {}

    def _add(self, label: str, value: Any) -> FakeHandle:
        self.handles[label] = FakeHandle(value)
        return self.handles[label]

    def add_checkbox(self, label: str, initial_value: bool, **_: Any) -> FakeHandle:
        return self._add(label, initial_value)

    def add_slider(self, label: str, initial_value: float, **_: Any) -> FakeHandle:
        return self._add(label, initial_value)

    add_number = add_slider

    def add_button_group(self, label: str, options: tuple[str, ...], **_: Any) -> FakeHandle:
        return self._add(label, options[0])


def test_zoom_and_pan_controls_move_by_octaves_and_half_windows() -> None:
    from wisp_shacira.viewer.app import ViewRequest
    from wisp_shacira.viewer.controls import PlanarControls

    model, gui, renders = _fake_model(), FakeGui(), []

    def request() -> ViewRequest:
        return ViewRequest(lod=12, resolution=256, aspect=1.0, zoom=controls.zoom_value(),
                           center=controls.center())

    controls = PlanarControls(gui, model, lambda: model.window(request()),
                              lambda: renders.append(request()))
    for handle in controls.inputs:  # as the session does: a render per single change
        handle.on_update(lambda _e: None if controls.quiet else renders.append(request()))
    assert controls.auto.value and controls.center() == (0.5, 0.5)
    controls.zoom_action("1:1")
    assert model.window(request()).scale == pytest.approx(1.0) and len(renders) == 1
    controls.zoom_action("+")
    assert model.window(request()).scale == pytest.approx(2.0)
    controls.pan_by(0.5, 0.0)  # half of 128 visible pixels
    assert float(controls.centre_x.value) == SIDE / 2 + 64 and len(renders) == 3
    controls.clicked((0.0, 1.0))  # the bottom-left corner of the view becomes its centre
    assert (controls.centre_x.value, controls.centre_y.value) == (SIDE / 2, SIDE / 2 + 64)
    controls.zoom_action("fit")
    assert controls.zoom_value() == 1.0 and controls.center() == (0.5, 0.5)
    controls.set_view(100.0)
    assert float(controls.zoom.value) == model.max_log2_zoom and len(renders) == 6


def test_videos_zoom_without_auto_lod() -> None:
    pytest.importorskip("viser", reason="the viewer needs viser (pip install viser)")
    from wisp_shacira.lod import open_source, open_stream
    from wisp_shacira.viewer.app import ViewerModel, ViewRequest

    stream = open_stream(GOLDEN_VIDEO)
    model = ViewerModel(stream, open_source(stream))
    source = model.source
    request = ViewRequest(lod=stream.available, resolution=4 * source.height,
                          aspect=source.width / source.height, zoom=2.0, frame=1)
    assert model.resolutions is None and model.auto_lod(request) is None
    image = model.render(request)
    assert image.shape == (4 * source.height, 4 * source.width, 3)
    assert np.array_equal(image[::8, ::8], image[7::8, 7::8])  # 8 x 8 render px per pixel
    assert model.window(request).region() == (source.width // 4, source.height // 4,
                                              source.width // 2, source.height // 2)
