"""``wisp.renderer.gui`` (test double): ``widget`` registry and the radiance renderer widget."""
from __future__ import annotations

from wisp.renderer.core.renderers import NeuralRadianceFieldPackedRenderer

WIDGETS = {}


def widget(wisp_block):
    def register(cls):
        WIDGETS[wisp_block] = cls
        return cls
    return register


@widget(NeuralRadianceFieldPackedRenderer)
class WidgetNeuralRadianceFieldRenderer:
    def __init__(self):
        self.painted = None

    def paint(self, state, renderer=None, *args, **kwargs):
        self.painted = renderer
