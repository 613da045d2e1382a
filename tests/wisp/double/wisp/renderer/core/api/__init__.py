"""``wisp.renderer.core.api`` (test double): ``field_renderer`` registry keyed by class
names (``renderers_factory.py:25``), ``FramePayload`` and ``RayTracedRenderer``'s lifecycle
(``pre_render`` stores the payload's resolution and channels, ``raytraced_renderer.py:106``)."""
from __future__ import annotations

import dataclasses
from collections import defaultdict


REGISTERED = defaultdict(dict)


def field_renderer(field_type, tracer_type):
    def register(renderer_class):
        REGISTERED[field_type.__name__][tracer_type.__name__] = renderer_class
        return renderer_class
    return register


@dataclasses.dataclass
class Camera:
    width: int
    height: int
    far: float = 10.0


@dataclasses.dataclass
class FramePayload:
    camera: Camera
    render_res_x: int
    render_res_y: int
    channels: set
    clear_color: tuple = (0.0, 0.0, 0.0)
    interactive_mode: bool = False


class RayTracedRenderer:
    def __init__(self, nef, tracer, batch_size=None, *args, **kwargs):
        self.nef = nef.eval()
        self.tracer = tracer
        self.batch_size = batch_size
        self.render_res_x = self.render_res_y = None
        self.output_width = self.output_height = None
        self.channels = None

    def pre_render(self, payload: FramePayload, *args, **kwargs) -> None:
        self.render_res_x, self.render_res_y = payload.render_res_x, payload.render_res_y
        self.output_width, self.output_height = payload.camera.width, payload.camera.height
        self.far_clipping = payload.camera.far
        self.channels = payload.channels

    def needs_refresh(self, payload: FramePayload, *args, **kwargs) -> bool:
        return True

    def post_render(self) -> None:
        pass
