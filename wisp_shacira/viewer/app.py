"""Browser viewer of ``.shac`` files, built on viser (runs on a CPU, works over SSH
port forwarding).

Every browser tab gets its own controls and render thread: an LOD slider (levels
1..l of the stream), a resolution slider and a panel with the bytes a stream needs
for that LOD and the last render time. Images and videos are shown through a
zoomable window (:mod:`~wisp_shacira.viewer.controls`: a log2 zoom slider from the
whole picture to single pixels, pan by half a view, a centre in image pixels, click
to centre; the panel shows the region seen and the magnification). Each render pixel
shows the image pixel under it (:mod:`~wisp_shacira.viewer.planar`), each visible
pixel evaluated once, so only the visible window is computed, at the zoom's density;
for images "auto LOD" uses the coarse levels only when zoomed out. Videos also get a
frame slider. Scenes are rendered by the project's tracer from the browser's orbit
camera: at a quarter of the resolution while the camera moves, refined once it rests
(a refined frame in progress is abandoned as soon as the view changes). Renders are
shown as the viewport background.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from wisp_shacira.errors import ConfigError
from wisp_shacira.extras import require
from wisp_shacira.lod import LodStream, open_source, open_stream
from wisp_shacira.tasks.protocol import LodSource
from wisp_shacira.viewer import check_port
from wisp_shacira.viewer.camera import c2w_from_viser, fov_from_focal, pinhole, viewport_size
from wisp_shacira.viewer.controls import PlanarControls
from wisp_shacira.tasks.image_tiles import pixel_centres
from wisp_shacira.viewer.planar import PlanarWindow, auto_lod, grid_resolutions, max_log2_zoom
from wisp_shacira.viewer.worker import ProgressiveRenderer

viser = require("viser", "viewer", "the browser viewer (wisp-shacira view)")

BACKGROUND = 0.18
SCENE_RESOLUTION = 256
MAX_RESOLUTION = 1024
PLANAR_MIN_RESOLUTION = 256
CHUNK = 1 << 13


@dataclass(frozen=True)
class ViewRequest:
    """Everything one render depends on (equal requests give equal renders).

    Attributes:
        lod: 1..levels held. resolution: full render height in pixels.
        aspect: viewport width / height. frame: video frame.
        zoom, center: window on an image/video (x, y of the centre in [0, 1]).
        auto_lod: ``lod`` was chosen from the zoom (shown in the panel).
        wxyz, position, fov: browser camera (scenes; viser's OpenCV convention).
    """

    lod: int
    resolution: int
    aspect: float = 1.0
    frame: int = 0
    zoom: float = 1.0
    center: tuple[float, float] = (0.5, 0.5)
    auto_lod: bool = False
    wxyz: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    position: tuple[float, float, float] = (0.0, 0.0, 1.0)
    fov: float = 1.0


class ViewerModel:
    """The rendering side of the viewer (no viser): a decoded stream and its source."""

    def __init__(self, stream: LodStream, source: LodSource) -> None:
        self.stream, self.source = stream, source
        self.is_scene = source.view == "scene"
        self.resolutions = None if self.is_scene else grid_resolutions(source)
        self.max_log2_zoom = 0.0 if self.is_scene else max_log2_zoom(source.height, source.width)

    def default_resolution(self) -> int:
        if self.is_scene:
            return SCENE_RESOLUTION
        return int(min(max(self.source.height, PLANAR_MIN_RESOLUTION), MAX_RESOLUTION))

    def render(self, request: ViewRequest, scale: float = 1.0,
               cancelled: Callable[[], bool] = lambda: False) -> np.ndarray | None:
        """The view of ``request`` at ``scale`` of its resolution: [h, w, 3] uint8.

        Rendered in pieces of about ``CHUNK`` rays/pixels; returns None as soon as
        ``cancelled()`` is true between two pieces.
        """
        height, width = viewport_size(max(8, round(request.resolution * scale)), request.aspect)
        if self.is_scene:
            return self._render_scene(request, height, width, cancelled)
        return self._render_planar(request, height, width, cancelled)

    def _render_scene(self, request: ViewRequest, height: int, width: int,
                      cancelled: Callable[[], bool]) -> np.ndarray | None:
        c2w = c2w_from_viser(np.array(request.wxyz), np.array(request.position))[None]
        fx, fy, cx, cy = pinhole(request.fov, height, width)
        band = max(1, CHUNK // width)
        out = np.empty((height, width, 3), np.uint8)
        for top in range(0, height, band):
            if cancelled():
                return None
            rows = min(band, height - top)
            intrinsics = torch.tensor([[fx, fy, cx, cy - top]])
            out[top:top + rows] = self.source.render(request.lod, c2w, intrinsics, rows, width)[0]
        return out

    def window(self, request: ViewRequest, height: int | None = None,
               width: int | None = None) -> PlanarWindow:
        """The window ``request`` shows (images/videos), rendered at ``height x width``
        (default: the refined render's size)."""
        if height is None or width is None:
            height, width = viewport_size(request.resolution, request.aspect)
        return PlanarWindow(height, width, self.source.height, self.source.width,
                            request.zoom, request.center)

    def auto_lod(self, request: ViewRequest) -> int | None:
        """The LOD :func:`~wisp_shacira.viewer.planar.auto_lod` picks for the refined
        render of ``request``; None without grid resolutions (videos, scenes)."""
        if self.resolutions is None:
            return None
        side = max(self.source.height, self.source.width)
        return auto_lod(self.resolutions, side, self.window(request).screen_px_across_image(),
                        self.stream.available)

    @torch.no_grad()
    def _render_planar(self, request: ViewRequest, height: int, width: int,
                       cancelled: Callable[[], bool]) -> np.ndarray | None:
        """Each render pixel shows the image pixel under it; each distinct visible pixel
        is evaluated once, at its centre (memory: per render pixel, never per image pixel)."""
        source = self.source
        rows, cols = self.window(request, height, width).pixel_indices()
        rows, row_of = torch.unique(rows, return_inverse=True)
        cols, col_of = torch.unique(cols, return_inverse=True)
        row_in = torch.nonzero((rows >= 0) & (rows < source.height))[:, 0]
        col_in = torch.nonzero((cols >= 0) & (cols < source.width))[:, 0]
        points = pixel_centres(rows[row_in], cols[col_in], source.height, source.width)
        parts = []
        for start in range(0, len(points), CHUNK):
            if cancelled():
                return None
            parts.append(source.colours(points[start:start + CHUNK], request.lod, request.frame))
        pixels = torch.full((len(rows), len(cols), 3), BACKGROUND)
        if parts:
            rgb = torch.cat(parts).float()
            rgb = rgb[:, :1].expand(-1, 3) if rgb.shape[1] < 3 else rgb[:, :3]
            pixels[row_in[:, None], col_in[None, :]] = rgb.reshape(len(row_in), len(col_in), 3)
        out = pixels[row_of[:, None], col_of[None, :]]
        return torch.round(out * 255).to(torch.uint8).numpy()

    def status(self, request: ViewRequest, image: np.ndarray, scale: float, seconds: float,
               screen_height: int | None = None) -> str:
        """Panel text (markdown) for a finished render (``screen_height``: the browser
        viewport's height in pixels, for the magnification on screen)."""
        stream = self.stream
        needed = stream.lod_bytes[request.lod - 1]
        held = "" if stream.available == stream.num_levels else \
            f" (stream holds {stream.available})"
        auto = " (auto)" if request.auto_lod else ""
        quality = "refined" if scale >= 1.0 else "preview"
        lines = [f"**LOD {request.lod} / {stream.num_levels}**{auto}{held}",
                 f"bytes loaded: **{needed:,}** of {stream.total_bytes:,} "
                 f"({100 * needed / stream.total_bytes:.0f}%)"]
        if not self.is_scene:
            lines += self.view_lines(request, screen_height)
        lines.append(f"render: **{1000 * seconds:.0f} ms** at {image.shape[1]}x{image.shape[0]} "
                     f"({quality})")
        return "  \n".join(lines)

    def view_lines(self, request: ViewRequest, screen_height: int | None = None) -> list[str]:
        """The image region a planar ``request`` shows and its magnification."""
        window = self.window(request)
        x, y, width, height = window.region()
        on_screen = "" if not screen_height else \
            f" = {window.scale * screen_height / window.out_height:.3g} screen px"
        return [f"view: x {x:,} y {y:,}, {width:,} x {height:,} px of "
                f"{self.source.width:,} x {self.source.height:,}",
                f"zoom 2^{math.log2(request.zoom):.2f}: 1 image px = "
                f"**{window.scale:.3g} render px**{on_screen}"]

    def initial_camera(self) -> tuple[np.ndarray, float]:
        """Scenes: the first turntable camera position and its vertical field of view."""
        camera = self.source.camera()
        eye = np.array([0.0, float(camera["orbit_height"]), float(camera["orbit_radius"])])
        return eye, fov_from_focal(float(camera["fy"]), self.source.height)


class ClientSession:
    """Controls, render thread and panel of one browser tab."""

    def __init__(self, client: viser.ClientHandle, model: ViewerModel) -> None:
        self.client, self.model = client, model
        stream, gui = model.stream, client.gui
        self.lod = gui.add_slider("LOD", min=1, max=max(stream.available, 2), step=1,
                                  initial_value=stream.available,
                                  disabled=stream.available == 1)
        self.frame = self.planar = None
        if not model.is_scene:
            frames = model.source.num_frames
            if frames > 1:
                self.frame = gui.add_slider("Frame", min=0, max=frames - 1, step=1, initial_value=0)
            self.planar = PlanarControls(gui, model, self._window, self.update)
        self.resolution = gui.add_slider("Resolution", min=32, max=MAX_RESOLUTION, step=32,
                                         initial_value=model.default_resolution())
        self.panel = gui.add_markdown("waiting for the browser's camera...")
        self._camera: tuple | None = None
        self._screen_height: int | None = None
        self._last: ViewRequest | None = None
        self._closed = False
        self._lock = threading.RLock()
        self.renderer: ProgressiveRenderer[ViewRequest] = ProgressiveRenderer(
            model.render, self._show, preview_scale=0.25 if model.is_scene else 0.5)
        self._connect_inputs()

    def _connect_inputs(self) -> None:
        self.lod.on_update(self._lod_moved)
        inputs = (self.frame, self.resolution, *(self.planar.inputs if self.planar else ()))
        for handle in inputs:
            if handle is not None:
                handle.on_update(lambda _event: self.update())
        self.client.camera.on_update(self._camera_moved)
        if self.planar is not None:
            planar = self.planar
            self.client.scene.on_click()(lambda event: planar.clicked(event.screen_pos))

    def _lod_moved(self, event: viser.GuiEvent) -> None:
        """The LOD slider moved: by the user (turns auto LOD off) or by :meth:`update`."""
        if event.client is not None and self.planar is not None and self.planar.auto.value:
            self.planar.auto.value = False
        self.update()

    def _camera_moved(self, camera: viser.CameraHandle) -> None:
        self._camera = (tuple(float(v) for v in camera.wxyz),
                        tuple(float(v) for v in camera.position), float(camera.fov),
                        float(camera.aspect))
        self._screen_height = int(camera.image_height)
        self.update()

    def request(self) -> ViewRequest | None:
        """The view the controls and camera describe now (None before the first camera)."""
        if self._camera is None:
            return None
        wxyz, position, fov, aspect = self._camera
        request = ViewRequest(lod=int(self.lod.value), resolution=int(self.resolution.value),
                              aspect=aspect)
        if self.planar is None:
            return replace(request, wxyz=wxyz, position=position, fov=fov)
        request = replace(request, frame=int(self.frame.value) if self.frame else 0,
                          zoom=self.planar.zoom_value(), center=self.planar.center())
        lod = self.model.auto_lod(request) if self.planar.auto.value else None
        return request if lod is None else replace(request, lod=lod, auto_lod=True)

    def _window(self) -> PlanarWindow | None:
        request = self.request()
        return None if request is None else self.model.window(request)

    def update(self) -> None:
        """Queue a render when the view changed; with auto LOD, move the LOD slider to
        the LOD used."""
        if self.planar is not None and self.planar.quiet:
            return
        with self._lock:
            request = self.request()
            if request is None or request == self._last:
                return
            self._last = request
            self.renderer.request(request)
            if request.auto_lod:
                self.lod.value = request.lod

    def _show(self, image: np.ndarray, request: ViewRequest, scale: float, seconds: float) -> None:
        if self._closed:
            return
        self.client.scene.set_background_image(image, format="jpeg", jpeg_quality=90)
        self.panel.content = self.model.status(request, image, scale, seconds, self._screen_height)

    def close(self) -> None:
        self._closed = True
        self.renderer.stop()


class ViewerServer:
    """A viser server showing ``model`` to every browser that connects."""

    def __init__(self, model: ViewerModel, host: str, port: int) -> None:
        self.model = model
        self.sessions: dict[int, ClientSession] = {}
        self.server = viser.ViserServer(host=host, port=port, verbose=False,
                                        label=f"wisp-shacira: {Path(model.stream.name).name}")
        if model.is_scene:
            eye, fov = model.initial_camera()
            self.server.scene.set_up_direction("+y")
            self.server.initial_camera.position = eye
            self.server.initial_camera.look_at = (0.0, 0.0, 0.0)
            self.server.initial_camera.fov = fov
        self.server.on_client_connect(self._connect)
        self.server.on_client_disconnect(self._disconnect)

    @property
    def port(self) -> int:
        return self.server.get_port()

    def _connect(self, client: viser.ClientHandle) -> None:
        self.sessions[client.client_id] = ClientSession(client, self.model)

    def _disconnect(self, client: viser.ClientHandle) -> None:
        session = self.sessions.pop(client.client_id, None)
        if session is not None:
            session.close()

    def stop(self) -> None:
        for session in list(self.sessions.values()):
            session.close()
        self.server.stop()


def open_viewer(path: str, host: str = "127.0.0.1", port: int = 8080) -> ViewerServer:
    """Decode ``path`` (a truncated stream: the levels it holds; the returned server's
    ``model.stream.warning()`` says what was missing) and serve it.

    Raises:
        ConfigError: ``port`` busy or invalid. BitstreamError: not a usable .shac file.
    """
    stream = open_stream(path, partial=True)
    model = ViewerModel(stream, open_source(stream))
    check_port(host, port)
    viewer = ViewerServer(model, host, port)
    if viewer.port != port:
        viewer.stop()
        raise ConfigError(f"port {port} on {host} was taken while starting; choose another with --port")
    return viewer
