"""Browser viewer of ``.shac`` files, built on viser (runs on a CPU, works over SSH
port forwarding).

Every browser tab gets its own controls and render thread: an LOD slider (levels
1..l of the stream), a resolution slider and a panel with the bytes a stream needs
for that LOD and the last render time. Images and videos are shown through a
zoomable window (zoom and pan sliders; the field is re-evaluated at the zoomed
coordinates), videos also get a frame slider. Scenes are rendered by the project's
tracer from the browser's orbit camera: at a quarter of the resolution while the
camera moves, refined once it rests (a refined frame in progress is abandoned as soon
as the view changes). Renders are shown as the viewport background.
"""
from __future__ import annotations

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
from wisp_shacira.viewer.camera import (c2w_from_viser, fov_from_focal, pinhole,
                                        viewport_size, window_coords)
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
        wxyz, position, fov: browser camera (scenes; viser's OpenCV convention).
    """

    lod: int
    resolution: int
    aspect: float = 1.0
    frame: int = 0
    zoom: float = 1.0
    center: tuple[float, float] = (0.5, 0.5)
    wxyz: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    position: tuple[float, float, float] = (0.0, 0.0, 1.0)
    fov: float = 1.0


class ViewerModel:
    """The rendering side of the viewer (no viser): a decoded stream and its source."""

    def __init__(self, stream: LodStream, source: LodSource) -> None:
        self.stream, self.source = stream, source
        self.is_scene = source.view == "scene"

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

    @torch.no_grad()
    def _render_planar(self, request: ViewRequest, height: int, width: int,
                       cancelled: Callable[[], bool]) -> np.ndarray | None:
        source = self.source
        coords, inside = window_coords(height, width, source.height, source.width,
                                       request.zoom, request.center)
        points, parts = coords[inside], []
        for start in range(0, len(points), CHUNK):
            if cancelled():
                return None
            parts.append(source.colours(points[start:start + CHUNK], request.lod, request.frame))
        out = torch.full((height * width, 3), BACKGROUND)
        if parts:
            rgb = torch.cat(parts)
            out[inside] = rgb[:, :1].expand(-1, 3) if rgb.shape[1] < 3 else rgb[:, :3]
        return torch.round(out * 255).to(torch.uint8).reshape(height, width, 3).numpy()

    def status(self, request: ViewRequest, image: np.ndarray, scale: float, seconds: float) -> str:
        """Panel text (markdown) for a finished render."""
        stream = self.stream
        needed = stream.lod_bytes[request.lod - 1]
        held = "" if stream.available == stream.num_levels else \
            f" (stream holds {stream.available})"
        quality = "refined" if scale >= 1.0 else "preview"
        return (f"**LOD {request.lod} / {stream.num_levels}**{held}  \n"
                f"bytes loaded: **{needed:,}** of {stream.total_bytes:,} "
                f"({100 * needed / stream.total_bytes:.0f}%)  \n"
                f"render: **{1000 * seconds:.0f} ms** at {image.shape[1]}x{image.shape[0]} "
                f"({quality})")

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
        self.frame = self.zoom = self.pan_x = self.pan_y = None
        if not model.is_scene:
            frames = model.source.num_frames
            if frames > 1:
                self.frame = gui.add_slider("Frame", min=0, max=frames - 1, step=1, initial_value=0)
            self.zoom = gui.add_slider("Zoom", min=1.0, max=16.0, step=0.25, initial_value=1.0)
            self.pan_x = gui.add_slider("Pan x", min=0.0, max=1.0, step=0.01, initial_value=0.5)
            self.pan_y = gui.add_slider("Pan y", min=0.0, max=1.0, step=0.01, initial_value=0.5)
        self.resolution = gui.add_slider("Resolution", min=32, max=MAX_RESOLUTION, step=32,
                                         initial_value=model.default_resolution())
        self.panel = gui.add_markdown("waiting for the browser's camera...")
        self._camera: tuple | None = None
        self._last: ViewRequest | None = None
        self._closed = False
        self.renderer: ProgressiveRenderer[ViewRequest] = ProgressiveRenderer(
            model.render, self._show, preview_scale=0.25 if model.is_scene else 0.5)
        for handle in (self.lod, self.frame, self.zoom, self.pan_x, self.pan_y, self.resolution):
            if handle is not None:
                handle.on_update(lambda _event: self.update())
        client.camera.on_update(self._camera_moved)

    def _camera_moved(self, camera: viser.CameraHandle) -> None:
        self._camera = (tuple(float(v) for v in camera.wxyz),
                        tuple(float(v) for v in camera.position), float(camera.fov),
                        float(camera.aspect))
        self.update()

    def request(self) -> ViewRequest | None:
        """The view the controls and camera describe now (None before the first camera)."""
        if self._camera is None:
            return None
        wxyz, position, fov, aspect = self._camera
        request = ViewRequest(lod=int(self.lod.value), resolution=int(self.resolution.value),
                              aspect=aspect)
        if self.model.is_scene:
            return replace(request, wxyz=wxyz, position=position, fov=fov)
        return replace(request, frame=int(self.frame.value) if self.frame else 0,
                       zoom=float(self.zoom.value),
                       center=(float(self.pan_x.value), float(self.pan_y.value)))

    def update(self) -> None:
        """Queue a render when the view changed."""
        request = self.request()
        if request is not None and request != self._last:
            self._last = request
            self.renderer.request(request)

    def _show(self, image: np.ndarray, request: ViewRequest, scale: float, seconds: float) -> None:
        if self._closed:
            return
        self.client.scene.set_background_image(image, format="jpeg", jpeg_quality=90)
        self.panel.content = self.model.status(request, image, scale, seconds)

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
