"""``wisp.models.pipeline.Pipeline`` (test double): a nef and a tracer; calling it traces."""
from __future__ import annotations

from torch import nn


class Pipeline(nn.Module):
    def __init__(self, nef, tracer=None):
        super().__init__()
        self.nef = nef
        self.tracer = tracer

    def forward(self, *args, **kwargs):
        return self.tracer(self.nef, *args, **kwargs)
