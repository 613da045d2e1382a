"""``wisp.tracers`` (test double): ``BaseTracer.forward`` fills ``trace`` arguments from the
call, else from the tracer's attributes (``base_tracer.py:99``); ``PackedRFTracer.trace``
marches the grid's blas, calls the nef with ``lod_idx`` and integrates (``packed_rf_tracer.py:84``)."""
from __future__ import annotations

import inspect
from typing import Any, Dict, Tuple

import torch
import kaolin.render.spc as spc_render

from wisp.core import RenderBuffer, WispModule


class BaseTracer(WispModule):
    def __init__(self, bg_color: Tuple[float, float, float] = (0.0, 0.0, 0.0)):
        super().__init__()
        self.bg_color = bg_color

    def get_supported_channels(self):
        return set()

    def get_required_nef_channels(self):
        return set()

    def trace(self, nef, rays, channels, extra_channels, *args, **kwargs):
        raise NotImplementedError

    def forward(self, nef, rays, channels=None, **kwargs):
        missing = self.get_required_nef_channels() - nef.get_supported_channels()
        if missing:
            raise Exception(f"The neural field class {type(nef)} does not output {missing}.")
        requested = (self.get_supported_channels() if channels is None else
                     {channels} if isinstance(channels, str) else set(channels))
        extra = requested - self.get_supported_channels()
        fixed = set(inspect.signature(BaseTracer.trace).parameters) - {"args", "kwargs"}
        args = {}
        for name in inspect.signature(self.trace).parameters:
            if name in fixed or name in ("args", "kwargs"):
                continue
            if name in kwargs:
                args[name] = kwargs[name]
            elif getattr(self, name, None) is not None:
                args[name] = getattr(self, name)
        return self.trace(nef, rays, requested, extra, **args)

    def public_properties(self) -> Dict[str, Any]:
        return {}


class PackedRFTracer(BaseTracer):
    def __init__(self, raymarch_type: str = 'ray', num_steps: int = 1024, step_size: float = 1.0,
                 bg_color: Tuple[float, float, float] = (1.0, 1.0, 1.0)):
        super().__init__(bg_color=bg_color)
        self.raymarch_type, self.num_steps, self.step_size = raymarch_type, num_steps, step_size
        self.bg_color = torch.tensor(bg_color, dtype=torch.float32)
        self.prev_num_samples = None
        self.lods: list = []
        """Every ``lod_idx`` the tracer was called with (test instrumentation)."""

    def get_prev_num_samples(self):
        return self.prev_num_samples

    def get_supported_channels(self):
        return {"depth", "hit", "rgb", "alpha"}

    def get_required_nef_channels(self):
        return {"rgb", "density"}

    def trace(self, nef, rays, channels, extra_channels, lod_idx=None, raymarch_type='voxel',
              num_steps=64, step_size=1.0, bg_color='white'):
        self.lods.append(lod_idx)
        N = rays.origins.shape[0]
        if lod_idx is None:
            lod_idx = nef.grid.num_lods - 1
        result = nef.grid.raymarch(rays, level=nef.grid.active_lods[lod_idx], num_samples=num_steps,
                                   raymarch_type=raymarch_type)
        self.prev_num_samples = result.samples.shape[0]
        hit_ray_d = rays.dirs.index_select(0, result.ridx)
        color, density = nef(coords=result.samples, ray_d=hit_ray_d, lod_idx=lod_idx,
                             channels=["rgb", "density"])
        tau = density.reshape(-1, 1) * result.deltas
        bg = self.bg_color.to(rays.origins.device)
        rgb = torch.zeros(N, 3) + bg
        hit = torch.zeros(N, dtype=torch.bool)
        out_alpha = torch.zeros(N, 1)
        ridx_hit = result.ridx[result.boundary]
        ray_colors, transmittance = spc_render.exponential_integration(color, tau, result.boundary,
                                                                        exclusive=True)
        alpha = spc_render.sum_reduce(transmittance, result.boundary)
        out_alpha[ridx_hit] = alpha
        hit[ridx_hit] = alpha[..., 0] > 0.0
        rgb[ridx_hit] = bg * (1.0 - alpha) + ray_colors
        return RenderBuffer(depth=None, hit=hit, rgb=rgb, alpha=out_alpha)
