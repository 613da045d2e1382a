"""``NeuralRadianceFieldPackedRenderer`` (test double of ``radiance_pipeline_renderer.py``)."""
from __future__ import annotations

from wisp.core import RenderBuffer
from wisp.models.nefs import BaseNeuralField
from wisp.renderer.core.api import FramePayload, RayTracedRenderer, field_renderer
from wisp.tracers import PackedRFTracer


@field_renderer(BaseNeuralField, PackedRFTracer)
class NeuralRadianceFieldPackedRenderer(RayTracedRenderer):
    def __init__(self, nef, tracer, batch_size: int = 2**14, num_steps: int = None,
                 raymarch_type: str = None, *args, **kwargs):
        super().__init__(nef, tracer, batch_size, *args, **kwargs)
        self.num_steps = tracer.num_steps if num_steps is None else num_steps
        self.num_steps_interactive = max(self.num_steps // 4, 1)
        self.raymarch_type = tracer.raymarch_type if raymarch_type is None else raymarch_type
        self.bg_color = (0.0, 0.0, 0.0)
        self._last_state = dict()

    def pre_render(self, payload: FramePayload, *args, **kwargs) -> None:
        super().pre_render(payload)
        self.bg_color = (0.0, 0.0, 0.0) if payload.clear_color == (0.0, 0.0, 0.0) else (1.0, 1.0, 1.0)
        self.tracer.num_steps = self.num_steps_interactive if payload.interactive_mode else self.num_steps

    def needs_refresh(self, payload: FramePayload, *args, **kwargs) -> bool:
        return self._last_state.get('num_steps', 0) < self.num_steps or \
            self._last_state.get('channels') != self.channels

    def render(self, rays) -> RenderBuffer:
        rb = RenderBuffer(hit=None)
        for ray_batch in rays.split(self.batch_size):
            rb += self.tracer(self.nef, rays=ray_batch, channels=self.channels, lod_idx=None,
                              raymarch_type=self.raymarch_type, num_steps=self.num_steps,
                              bg_color=self.bg_color)
        rb = rb.reshape(self.render_res_y, self.render_res_x, -1)
        if self.render_res_x != self.output_width or self.render_res_y != self.output_height:
            rb = rb.scale(size=(self.output_height, self.output_width))
        return rb

    def post_render(self) -> None:
        self._last_state['num_steps'] = self.tracer.num_steps
        self._last_state['channels'] = self.channels
