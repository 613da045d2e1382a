"""``wisp.models.decoders.BasicDecoder`` (test double)."""
from typing import Any, Dict

import torch
import torch.nn as nn

from wisp.core import WispModule


class BasicDecoder(WispModule):
    """``layers`` (ModuleList) then ``lout``; the activation after every hidden layer."""

    def __init__(self, input_dim, output_dim, activation, bias, layer=nn.Linear, num_layers=1,
                 hidden_dim=128, skip=[]):
        super().__init__()
        self.input_dim, self.output_dim, self.activation, self.bias = input_dim, output_dim, activation, bias
        self.layer, self.num_layers, self.hidden_dim = layer, num_layers, hidden_dim
        self.skip = [] if skip is None else skip
        self.make()

    def make(self):
        layers = []
        for i in range(self.num_layers):
            if i == 0:
                layers.append(self.layer(self.input_dim, self.hidden_dim, bias=self.bias))
            elif i in self.skip:
                layers.append(self.layer(self.hidden_dim + self.input_dim, self.hidden_dim, bias=self.bias))
            else:
                layers.append(self.layer(self.hidden_dim, self.hidden_dim, bias=self.bias))
        self.layers = nn.ModuleList(layers)
        self.lout = self.layer(self.hidden_dim, self.output_dim, bias=self.bias)

    def forward(self, x, return_h=False):
        for i, l in enumerate(self.layers):
            if i == 0:
                h = self.activation(l(x))
            elif i in self.skip:
                h = torch.cat([x, self.activation(l(h))], dim=-1)
            else:
                h = self.activation(l(h))
        out = self.lout(h)
        return (out, h) if return_h else out

    def public_properties(self) -> Dict[str, Any]:
        return {"Input Dim": self.input_dim, "Hidden Dim": self.hidden_dim}
