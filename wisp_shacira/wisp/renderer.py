"""LOD control for Wisp's interactive renderer.

Wisp's radiance-field renderer always traces with ``lod_idx=None`` (all levels).
``ShaciraRadianceRenderer`` keeps a ``lod_idx`` chosen in the GUI and passes it to
the tracer, which hands it to the neural field and on to the grid: with a
ShaciraGrid, levels finer than the slider's value are zeroed, exactly what a
``.shac`` file truncated after that level decodes to.

Importing this module registers the renderer for the ``NeuralRadianceField`` +
``PackedRFTracer`` pair (``@field_renderer``) and its widget (``@widget``); import
it before the interactive app builds its renderers. It needs Wisp's GUI extras
(imgui, glumpy, OpenGL).
"""
from __future__ import annotations

from typing import Any

import imgui
from wisp.core import RenderBuffer, Rays
from wisp.framework import WispState
from wisp.models.nefs import NeuralRadianceField
from wisp.renderer.core.api import FramePayload, field_renderer
from wisp.renderer.core.renderers import NeuralRadianceFieldPackedRenderer
from wisp.renderer.gui import WidgetNeuralRadianceFieldRenderer, widget
from wisp.tracers import PackedRFTracer

from wisp_shacira.fields.wisp_bridge import lod_from_slider


@field_renderer(NeuralRadianceField, PackedRFTracer)
class ShaciraRadianceRenderer(NeuralRadianceFieldPackedRenderer):
    """Wisp's packed radiance renderer with a level-of-detail setting.

    Attributes:
        lod_idx: finest grid level used for rendering; None renders all levels.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lod_idx: int | None = None

    @property
    def num_lods(self) -> int:
        """Levels of the rendered field's grid (1 when it has none)."""
        grid = getattr(self.nef, "grid", None)
        return int(getattr(grid, "num_lods", 1))

    def needs_refresh(self, payload: FramePayload, *args: Any, **kwargs: Any) -> bool:
        return super().needs_refresh(payload, *args, **kwargs) or \
            self._last_state.get("lod_idx", self.lod_idx) != self.lod_idx

    def render(self, rays: Rays) -> RenderBuffer:
        """Trace ``rays`` in batches at ``self.lod_idx``; returns the frame's buffer."""
        rb = RenderBuffer(hit=None)
        for ray_batch in rays.split(self.batch_size):
            rb += self.tracer(self.nef, rays=ray_batch, channels=self.channels,
                              lod_idx=self.lod_idx, raymarch_type=self.raymarch_type,
                              num_steps=self.num_steps, bg_color=self.bg_color)
        rb = rb.reshape(self.render_res_y, self.render_res_x, -1)
        if self.render_res_x != self.output_width or self.render_res_y != self.output_height:
            rb = rb.scale(size=(self.output_height, self.output_width))
        return rb

    def post_render(self) -> None:
        super().post_render()
        self._last_state["lod_idx"] = self.lod_idx


@widget(ShaciraRadianceRenderer)
class WidgetShaciraRadianceRenderer(WidgetNeuralRadianceFieldRenderer):
    """Wisp's radiance renderer widget with an LOD slider on top."""

    def paint_lod(self, renderer: ShaciraRadianceRenderer) -> None:
        """Slider over the grid levels; the rightmost position renders all of them."""
        top = max(renderer.num_lods - 1, 0)
        value = top if renderer.lod_idx is None else renderer.lod_idx
        changed, value = imgui.core.slider_int("LOD##shacira_lod", value=value,
                                               min_value=0, max_value=top)
        if changed:
            renderer.lod_idx = lod_from_slider(value, renderer.num_lods)
        imgui.text(f"levels used: {value + 1} of {renderer.num_lods}")

    def paint(self, state: WispState, renderer: ShaciraRadianceRenderer | None = None,
              *args: Any, **kwargs: Any) -> None:
        if renderer is not None:
            self.paint_lod(renderer)
        super().paint(state, renderer, *args, **kwargs)
