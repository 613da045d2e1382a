"""Pure-PyTorch packed volume tracer (a CPU/CUDA stand-in for Wisp's PackedRFTracer).

For a batch of rays the tracer intersects the scene box ``[-1, 1]^3``, places
``num_samples`` stratified samples inside it, drops samples that fall in empty
occupancy cells, evaluates the field only on the kept ("packed") samples, and
composites them over the background. Rays are marched in ``segments`` rounds: after
each round, rays whose transmittance fell below ``early_stop_eps`` stop being
evaluated (early ray termination).

Field contract: ``field(points [M, 3], dirs [M, 3]) -> (sigma [M], rgb [M, 3])``
with ``points`` in ``[-1, 1]^3``, unit ``dirs`` and ``sigma >= 0``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from wisp_shacira.config import require
from wisp_shacira.grid import exact
from wisp_shacira.render.occupancy import OccupancyGrid
from wisp_shacira.render.rays import generate_rays, ray_aabb
from wisp_shacira.render.volume import composite, sample_along_rays

__all__ = ["TracerConfig", "Tracer", "Field"]

Field = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]

_BOX_EPS = 1e-5
MAX_SAMPLES = 2**15
_DEPTH_ONE = 2.0**32
"""Fixed-point unit of the optical depth the tracer sums while decoding (int64: samples
clamped to ``2^16`` each, so the ``MAX_SAMPLES`` of a ray cannot overflow)."""


def _depth_terms(tau: Tensor, dtype: torch.dtype) -> Tensor:
    """Per-sample optical depths ``[M]`` as the running total's terms: float, or (decoding:
    ``dtype`` int64) fixed-point integers, whose sums no summation order changes."""
    if dtype != torch.int64:
        return tau.to(dtype)
    return torch.round(tau.double().clamp(0.0, 2.0**16) * _DEPTH_ONE).to(torch.int64)


def _total_depth(total: Tensor) -> Tensor:
    """The running total of :func:`_depth_terms` as a float optical depth ``[R]``."""
    return total.double() / _DEPTH_ONE if total.dtype == torch.int64 else total


@dataclass
class TracerConfig:
    """Tracer settings.

    Attributes:
        num_samples: stratified samples per ray inside the box.
        bg_color: background RGB in ``[0, 1]``.
        use_occupancy: skip samples in empty cells when an occupancy grid is given.
        chunk_size: rays per chunk in :meth:`Tracer.render_image`.
        jitter: jitter samples within their bins while gradients are enabled.
        segments: marching rounds for early termination (1 disables it).
        early_stop_eps: transmittance below which a ray stops being evaluated.
    """

    num_samples: int = 64
    bg_color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    use_occupancy: bool = True
    chunk_size: int = 8192
    jitter: bool = True
    segments: int = 4
    early_stop_eps: float = 1e-4

    def check(self) -> None:
        require(1 <= self.num_samples <= MAX_SAMPLES,
                f"tracer.num_samples must be in 1..{MAX_SAMPLES}, got {self.num_samples}")
        require(self.chunk_size >= 64, f"tracer.chunk_size must be >= 64 (smaller chunks only "
                                       f"add per-call overhead), got {self.chunk_size}")
        require(self.segments >= 1, f"tracer.segments must be >= 1, got {self.segments}")
        require(0.0 <= self.early_stop_eps < 1.0,
                f"tracer.early_stop_eps must be in [0, 1), got {self.early_stop_eps}")
        require(all(0.0 <= c <= 1.0 for c in self.bg_color),
                f"tracer.bg_color must lie in [0, 1], got {list(self.bg_color)}")


class Tracer:
    """Renders radiance fields by packed ray marching; see the module docstring."""

    def __init__(self, config: TracerConfig | None = None) -> None:
        self.config = config if config is not None else TracerConfig()
        if self.config.num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {self.config.num_samples}")
        if self.config.segments < 1:
            raise ValueError(f"segments must be >= 1, got {self.config.segments}")

    def _sample_mask(self, points: Tensor, hit: Tensor,
                     occupancy: OccupancyGrid | None) -> Tensor:
        """Samples worth evaluating: ``points [R, S, 3]``, ``hit [R]`` -> bool ``[R, S]``."""
        R, S = points.shape[:2]
        keep = hit[:, None] & (points.abs() <= 1.0 + _BOX_EPS).all(dim=-1)
        if occupancy is not None and self.config.use_occupancy:
            flat = points.reshape(-1, 3).clamp(-1.0, 1.0)
            keep = keep & occupancy.query(flat).reshape(R, S).to(keep.device)
        return keep

    def _evaluate(self, field: Field, points: Tensor, dirs: Tensor, keep: Tensor,
                  deltas: Tensor) -> tuple[Tensor, Tensor]:
        """Packed field evaluation with early termination.

        Args:
            points: sample positions ``[R, S, 3]``; dirs: unit ray dirs ``[R, 3]``.
            keep: samples to evaluate ``[R, S]``; deltas: interval lengths ``[R, S]``.

        Returns:
            Dense ``sigma [R, S]`` and ``rgb [R, S, 3]`` (zero where not evaluated).
        """
        R, S = keep.shape
        seg_len = -(-S // self.config.segments)
        tau = torch.zeros(R, device=points.device,
                          dtype=torch.int64 if exact.decoding() else points.dtype)
        flat_ids: list[Tensor] = []
        sigmas: list[Tensor] = []
        colours: list[Tensor] = []
        for start in range(0, S, seg_len):
            stop = min(start + seg_len, S)
            alive = exact.exp(-_total_depth(tau)) >= self.config.early_stop_eps
            seg_keep = keep[:, start:stop] & alive[:, None]
            ray_i, s_i = torch.nonzero(seg_keep, as_tuple=True)
            if ray_i.numel() == 0:
                continue
            s_i = s_i + start
            pts = points[ray_i, s_i].clamp(-1.0, 1.0)
            sigma, rgb = field(pts, dirs[ray_i])
            sigma = sigma.reshape(-1)
            flat_ids.append(ray_i * S + s_i)
            sigmas.append(sigma)
            colours.append(rgb.reshape(-1, 3))
            tau = tau.index_add(0, ray_i, _depth_terms(sigma.detach() * deltas[ray_i, s_i],
                                                       tau.dtype))
        return self._scatter(flat_ids, sigmas, colours, R, S, points)

    @staticmethod
    def _scatter(flat_ids: list[Tensor], sigmas: list[Tensor], colours: list[Tensor],
                 R: int, S: int, like: Tensor) -> tuple[Tensor, Tensor]:
        """Scatter packed values into dense ``sigma [R, S]`` and ``rgb [R, S, 3]``."""
        if not flat_ids:
            return like.new_zeros(R, S), like.new_zeros(R, S, 3)
        ids = torch.cat(flat_ids)
        sig = torch.cat(sigmas)
        col = torch.cat(colours)
        sigma = sig.new_zeros(R * S).index_put((ids,), sig)
        rgb = col.new_zeros(R * S, 3).index_put((ids,), col)
        return sigma.reshape(R, S), rgb.reshape(R, S, 3)

    def render_rays(
        self,
        field: Field,
        origins: Tensor,
        dirs: Tensor,
        occupancy: OccupancyGrid | None = None,
        perturb: bool | None = None,
        bg_color: Tensor | None = None,
        jitter: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Render a batch of rays.

        Args:
            field: radiance field (see module docstring).
            origins: ray origins ``[R, 3]``.
            dirs: unit ray directions ``[R, 3]``.
            occupancy: optional grid whose empty cells are skipped.
            perturb: jitter samples; None means ``config.jitter`` while gradients are
                enabled and deterministic midpoints otherwise.
            bg_color: background ``[3]`` or ``[R, 3]``; defaults to ``config.bg_color``.
            jitter: ``[R, S]`` uniforms of the stratified jitter drawn by the caller
                (used when perturbing; None = drawn here): data-parallel training draws
                them for the global batch and gives each process its rows.

        Returns:
            ``{"rgb": [R, 3], "depth": [R], "opacity": [R]}``; depth is the expected
            distance along the ray (0 for empty rays), differentiable w.r.t. the field.
        """
        if perturb is None:
            perturb = self.config.jitter and torch.is_grad_enabled()
        t_near, t_far, hit = ray_aabb(origins, dirs)
        t, deltas = sample_along_rays(t_near, t_far, self.config.num_samples, jitter=perturb,
                                      uniform=jitter)
        points = origins[:, None, :] + dirs[:, None, :] * t[..., None]
        keep = self._sample_mask(points, hit, occupancy)
        sigma, rgb = self._evaluate(field, points, dirs, keep, deltas)
        bg = bg_color if bg_color is not None else torch.tensor(
            self.config.bg_color, device=origins.device, dtype=origins.dtype)
        result = composite(sigma, rgb, deltas.to(sigma.dtype), bg, t)
        return {"rgb": result.rgb, "depth": result.depth, "opacity": result.opacity}

    def render_image(
        self,
        field: Field,
        c2w: Tensor,
        fx: float,
        fy: float,
        cx: float,
        cy: float,
        H: int,
        W: int,
        occupancy: OccupancyGrid | None = None,
        chunk: int | None = None,
        grad: bool = False,
    ) -> dict[str, Tensor]:
        """Render a full image in ray chunks.

        Args:
            field: radiance field; c2w: camera-to-world ``[4, 4]`` (OpenGL axes).
            fx, fy, cx, cy: pinhole intrinsics in pixels; H, W: image size.
            occupancy: optional occupancy grid.
            chunk: rays per chunk (default ``config.chunk_size``).
            grad: keep the autograd graph (otherwise runs under ``torch.no_grad()``).

        Returns:
            ``{"rgb": [H, W, 3], "depth": [H, W], "opacity": [H, W]}``.
        """
        chunk = chunk or self.config.chunk_size
        with torch.set_grad_enabled(grad):
            origins, dirs = generate_rays(c2w, fx, fy, cx, cy, H, W)
            parts = [
                self.render_rays(field, origins[i:i + chunk], dirs[i:i + chunk], occupancy)
                for i in range(0, origins.shape[0], chunk)
            ]
        out = {key: torch.cat([p[key] for p in parts]) for key in parts[0]}
        return {
            "rgb": out["rgb"].reshape(H, W, 3),
            "depth": out["depth"].reshape(H, W),
            "opacity": out["opacity"].reshape(H, W),
        }
