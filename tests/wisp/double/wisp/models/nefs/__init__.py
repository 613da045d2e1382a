"""``wisp.models.nefs`` (test double): ``BaseNeuralField`` (channel dispatch) and
``NeuralRadianceField`` (``wisp/models/nefs/nerf.py``: same constructor, decoders,
embedders, ``prune`` and ``rgba``; the prune runs on the grid's device, not ``.cuda()``)."""
from __future__ import annotations

import inspect
from abc import abstractmethod
from typing import Any, Dict, Optional

import numpy as np
import torch

from wisp.core import WispModule
from wisp.models.activations import get_activation_class
from wisp.models.decoders import BasicDecoder
from wisp.models.embedders import get_positional_embedder
from wisp.models.grids import BLASGrid, HashGrid, TriplanarGrid
from wisp.models.layers import get_layer_class


class BaseNeuralField(WispModule):
    """``forward(channels=None, **kwargs)`` calls the registered functions that produce the
    requested channels with the keyword arguments they accept (``base_nef.py:120``)."""

    def __init__(self):
        super().__init__()
        self._forward_functions = {}
        self.register_forward_functions()
        self.supported_channels = {c for cs in self._forward_functions.values() for c in cs}

    @property
    def device(self):
        return next(self.parameters()).device

    def _register_forward_function(self, fn, channels):
        self._forward_functions[fn] = {channels} if isinstance(channels, str) else set(channels)

    @abstractmethod
    def register_forward_functions(self):
        pass

    def get_supported_channels(self):
        return self.supported_channels

    def prune(self):
        pass

    def forward(self, channels=None, **kwargs):
        requested = (self.supported_channels if channels is None else
                     {channels} if isinstance(channels, str) else set(channels))
        unsupported = requested - self.supported_channels
        if unsupported:
            raise Exception(f"Channels {unsupported} are not supported in {type(self).__name__}")
        out = {}
        for fn, produced in self._forward_functions.items():
            if not produced & requested:
                continue
            spec = inspect.getfullargspec(fn)
            names = spec.args[1:]
            optional = names[len(names) - len(spec.defaults or ()):]
            for name in names:
                if name not in optional and name not in kwargs:
                    raise Exception(f"Argument {name} not found as input to {fn.__name__}()")
            result = fn(**{k: v for k, v in kwargs.items() if k in names})
            out.update({c: result[c] for c in produced & requested})
        if isinstance(channels, str):
            return out.get(channels)
        if isinstance(channels, list):
            return [out[c] for c in channels]
        return out

    def public_properties(self) -> Dict[str, Any]:
        return dict()


def sample_unif_sphere(n):
    """Random unit vectors ``[n, 3]`` (``wisp/ops/geometric.py``)."""
    u = np.random.rand(2, n)
    z = 1 - 2 * u[0, :]
    r = np.sqrt(1. - z * z)
    phi = 2 * np.pi * u[1, :]
    return np.stack([r * np.cos(phi), r * np.sin(phi), z]).transpose()


class NeuralRadianceField(BaseNeuralField):
    def __init__(self, grid: BLASGrid, pos_embedder: str = 'none', view_embedder: str = 'none',
                 pos_multires: int = 10, view_multires: int = 4, position_input: bool = False,
                 activation_type: str = 'relu', layer_type: str = 'linear', hidden_dim: int = 128,
                 num_layers: int = 1, bias: bool = False,
                 prune_density_decay: Optional[float] = (0.01 * 512) / np.sqrt(3),
                 prune_min_density: Optional[float] = 0.6):
        super().__init__()
        self.grid = grid
        self.pos_embedder_type, self.view_embedder_type = pos_embedder, view_embedder
        self.pos_embedder, self.pos_embed_dim = self.init_embedder(pos_embedder, pos_multires,
                                                                   include_input=position_input)
        self.view_embedder, self.view_embed_dim = self.init_embedder(view_embedder, view_multires,
                                                                     include_input=True)
        self.activation_type, self.layer_type = activation_type, layer_type
        self.hidden_dim, self.num_layers, self.bias = hidden_dim, num_layers, bias
        self.decoder_density, self.decoder_color = self.init_decoders(
            activation_type, layer_type, num_layers, hidden_dim)
        self.prune_density_decay, self.prune_min_density = prune_density_decay, prune_min_density

    def init_embedder(self, embedder_type, frequencies=None, include_input=False):
        if embedder_type == 'none' and not include_input:
            return None, 0
        if embedder_type == 'identity' or (embedder_type == 'none' and include_input):
            return torch.nn.Identity(), 3
        if embedder_type == 'positional':
            return get_positional_embedder(frequencies=frequencies, include_input=include_input)
        raise NotImplementedError(f'Unsupported embedder type for NeuralRadianceField: {embedder_type}')

    def init_decoders(self, activation_type, layer_type, num_layers, hidden_dim):
        density = BasicDecoder(self.density_net_input_dim(), 16, get_activation_class(activation_type),
                               self.bias, get_layer_class(layer_type), num_layers, hidden_dim, [])
        if density.lout.bias is not None:
            density.lout.bias.data[0] = 1.0
        color = BasicDecoder(self.color_net_input_dim(), 3, get_activation_class(activation_type),
                             self.bias, get_layer_class(layer_type), num_layers + 1, hidden_dim, [])
        return density, color

    def prune(self):
        if self.prune_density_decay is None or self.prune_min_density is None or self.grid is None:
            return
        if not isinstance(self.grid, (HashGrid, TriplanarGrid)):
            raise NotImplementedError(f'Pruning not implemented for grid type {type(self.grid).__name__}')
        self.grid.occupancy = self.grid.occupancy * self.prune_density_decay
        points = self.grid.dense_points
        res = 2.0**self.grid.blas.max_level
        samples = ((points.float() + torch.rand(points.shape[0], 3)) / res) * 2.0 - 1.0
        views = torch.FloatTensor(sample_unif_sphere(samples.shape[0]))
        with torch.no_grad():
            density = self.forward(coords=samples, ray_d=views, channels="density")
        self.grid.occupancy = torch.stack([density[:, 0], self.grid.occupancy], -1).max(dim=-1)[0]
        kept = points[self.grid.occupancy > self.prune_min_density]
        if kept.shape[0] == 0:
            return
        self.grid.blas = self.grid.blas.__class__.from_quantized_points(kept, self.grid.blas.max_level)

    def register_forward_functions(self):
        self._register_forward_function(self.rgba, ["density", "rgb"])

    def rgba(self, coords, ray_d, lod_idx=None):
        if lod_idx is None:
            lod_idx = len(self.grid.active_lods) - 1
        batch, _ = coords.shape
        feats = self.grid.interpolate(coords, lod_idx).reshape(batch, self.effective_feature_dim())
        if self.pos_embedder is not None:
            feats = torch.cat([feats, self.pos_embedder(coords).view(batch, self.pos_embed_dim)], dim=-1)
        density_feats = self.decoder_density(feats)
        if self.view_embedder is not None:
            fdir = torch.cat([density_feats, self.view_embedder(ray_d).view(batch, self.view_embed_dim)], dim=-1)
        else:
            fdir = density_feats
        colors = torch.sigmoid(self.decoder_color(fdir[..., 1:]))
        return dict(rgb=colors, density=torch.relu(density_feats[..., 0:1]))

    def effective_feature_dim(self):
        if self.grid.multiscale_type == 'cat':
            return self.grid.feature_dim * self.grid.num_lods
        return self.grid.feature_dim

    def density_net_input_dim(self):
        return self.effective_feature_dim() + self.pos_embed_dim

    def color_net_input_dim(self):
        return 15 + self.view_embed_dim

    def public_properties(self) -> Dict[str, Any]:
        return {"Grid": self.grid, "Decoder (density)": self.decoder_density}
