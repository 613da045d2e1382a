"""``wisp.models.embedders`` (test double): positional embedding with frozen ``bands``."""
from typing import Any, Dict

import torch
import torch.nn as nn

from wisp.core import WispModule


class PositionalEmbedder(WispModule):
    def __init__(self, num_freq, max_freq_log2, log_sampling=True, include_input=True, input_dim=3):
        super().__init__()
        self.num_freq, self.max_freq_log2 = num_freq, max_freq_log2
        self.log_sampling, self.include_input = log_sampling, include_input
        self.out_dim = input_dim if include_input else 0
        if log_sampling:
            bands = 2.0**torch.linspace(0.0, max_freq_log2, steps=num_freq)
        else:
            bands = torch.linspace(1, 2.0**max_freq_log2, steps=num_freq)
        self.out_dim += bands.shape[0] * input_dim * 2
        self.bands = nn.Parameter(bands).requires_grad_(False)

    def forward(self, coords):
        N = coords.shape[0]
        winded = (coords[:, None] * self.bands[None, :, None]).reshape(N, coords.shape[1] * self.num_freq)
        encoded = torch.cat([torch.sin(winded), torch.cos(winded)], dim=-1)
        return torch.cat([coords, encoded], dim=-1) if self.include_input else encoded

    def public_properties(self) -> Dict[str, Any]:
        return {"Output Dim": self.out_dim}


def get_positional_embedder(frequencies, input_dim=3, include_input=True):
    encoder = PositionalEmbedder(frequencies, frequencies - 1, input_dim=input_dim,
                                 include_input=include_input)
    return encoder, encoder.out_dim
