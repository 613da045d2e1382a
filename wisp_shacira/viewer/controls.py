"""Zoom, pan and automatic-LOD controls of the planar view (images and video frames).

The zoom slider runs over log2 of the zoom (0 = the whole image fits, up to
:func:`~wisp_shacira.viewer.planar.max_log2_zoom`), with buttons for one octave out
and in, ``1:1`` (one image pixel per render pixel) and ``fit``. Pan buttons move the
view by half the visible window; the centre can be typed in image pixels, and a
click in the viewport centres the view there. "Auto LOD" (images: on) picks the LOD
from the sampling density (:func:`~wisp_shacira.viewer.planar.auto_lod`); moving the
LOD slider by hand turns it off. The GUI is viser's (``client.gui``), passed in; this
module imports no viser.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from wisp_shacira.viewer.planar import ZOOM_STEP

PAN = {"←": (-0.5, 0.0), "→": (0.5, 0.0), "↑": (0.0, -0.5), "↓": (0.0, 0.5)}
ZOOM_ACTIONS = ("−", "+", "1:1", "fit")
CENTRE_STEP = 0.5


def _round_centre(value: float) -> float:
    return round(value / CENTRE_STEP) * CENTRE_STEP


class PlanarControls:
    """The planar controls of one browser tab.

    Args:
        gui: the tab's viser GUI API. model: the :class:`~wisp_shacira.viewer.app.ViewerModel`.
        window: ``window() -> PlanarWindow | None``, the refined render's window now.
        changed: called after a control set several values at once (while it sets
            them, :attr:`quiet` is true: the single updates are not worth a render).
    """

    def __init__(self, gui: Any, model: Any, window: Callable[[], Any],
                 changed: Callable[[], None]) -> None:
        self.model, self._window, self._changed = model, window, changed
        self.quiet = False
        height, width = model.source.height, model.source.width
        self.auto = gui.add_checkbox("Auto LOD", initial_value=model.resolutions is not None,
                                     disabled=model.resolutions is None,
                                     hint="LOD from the zoom: skip levels finer than the samples")
        self.zoom = gui.add_slider("Zoom (log2)", min=0.0, max=model.max_log2_zoom, step=ZOOM_STEP,
                                   initial_value=0.0)
        self.zoom_buttons = gui.add_button_group("Zoom", ZOOM_ACTIONS)
        self.pan = gui.add_button_group("Pan (half view)", tuple(PAN))
        self.centre_x = gui.add_number("Centre x (px)", initial_value=_round_centre(width / 2),
                                       min=0.0, max=float(width), step=CENTRE_STEP)
        self.centre_y = gui.add_number("Centre y (px)", initial_value=_round_centre(height / 2),
                                       min=0.0, max=float(height), step=CENTRE_STEP)
        self.zoom_buttons.on_click(lambda event: self.zoom_action(event.target.value))
        self.pan.on_click(lambda event: self.pan_by(*PAN[event.target.value]))

    @property
    def inputs(self) -> tuple[Any, ...]:
        """Handles whose change asks for a new render."""
        return self.auto, self.zoom, self.centre_x, self.centre_y

    def zoom_value(self) -> float:
        return float(2.0 ** float(self.zoom.value))

    def center(self) -> tuple[float, float]:
        """The centre as fractions of the image (x, y in [0, 1])."""
        return (float(self.centre_x.value) / self.model.source.width,
                float(self.centre_y.value) / self.model.source.height)

    def set_view(self, log2_zoom: float | None = None,
                 center: tuple[float, float] | None = None) -> None:
        """Set the zoom (log2, clamped to the slider) and/or centre (fractions), then
        ``changed()`` once."""
        self.quiet = True
        try:
            if log2_zoom is not None:
                self.zoom.value = min(max(float(log2_zoom), 0.0), self.model.max_log2_zoom)
            if center is not None:
                self.centre_x.value = _round_centre(center[0] * self.model.source.width)
                self.centre_y.value = _round_centre(center[1] * self.model.source.height)
        finally:
            self.quiet = False
        self._changed()

    def zoom_action(self, action: str) -> None:
        """One of :data:`ZOOM_ACTIONS`: an octave out or in, 1:1, or fit the image."""
        zoom = float(self.zoom.value)
        if action == "fit":
            self.set_view(0.0, (0.5, 0.5))
        elif action == "1:1":
            window = self._window()
            if window is not None:
                self.set_view(zoom - math.log2(window.scale))
        else:
            self.set_view(zoom + (1.0 if action == "+" else -1.0))

    def pan_by(self, dx: float, dy: float) -> None:
        """Move the centre by ``dx, dy`` visible windows (widths, heights)."""
        window = self._window()
        if window is not None:
            self.set_view(center=window.panned(dx, dy))

    def clicked(self, screen_pos: tuple[float, float]) -> None:
        """Centre the view on the clicked point (``screen_pos``: x, y in [0, 1] of the viewport)."""
        self.pan_by(float(screen_pos[0]) - 0.5, float(screen_pos[1]) - 0.5)
