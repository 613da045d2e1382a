"""Training encoding for tables much larger than a batch: decode only the rows looked up.

The table path (:meth:`ShaciraGrid.decoded_table`) rounds and decodes every row of
the latent table in every step. With the paper's gigapixel grid (16 levels,
T = 2^23, resolutions up to 12800: 41M rows) that is 0.66 GB of decoded features and
about 2 s a step on this 2-core CPU, for a batch of 2^18 pixels that reads 16.7M
corners. Here the latents of each corner
are gathered first, then rounded and decoded: the cost follows the batch, not the
table.

Soft rounding stays per *row*, as in the table path: the relaxed sample of a row is
drawn from a counter-based hash of (row, step seed), so every lookup of one row in a
step sees the same value, and the sample is the logistic form of the two-Gumbel
relaxation (the difference of two Gumbel variables is logistic, so the law is the
same; the random stream differs). Hard rounding (``tau=None``) is exactly the table
path's. On a CPU with numba (extra ``fast``) one fused kernel per level does it all
(:mod:`~wisp_shacira.grid.numba_gathered`, the same samples bit for bit); elsewhere,
and with ``WISP_SHACIRA_ENCODING=torch``, the torch path below.
"""
from __future__ import annotations

import importlib
import logging
from types import ModuleType

import torch
from torch import nn

from wisp_shacira.grid.fast import load_numba, numba_fits, requested_backend
from wisp_shacira.grid.fused_torch import group_corners, level_groups
from wisp_shacira.grid.hashing import GridLayout
from wisp_shacira.grid.quantize import soft_round_logistic, ste_round

_MIX = (0x9E3779B97F4A7C15 - (1 << 64), 0xBF58476D1CE4E5B9 - (1 << 64),
        0x94D049BB133111EB - (1 << 64))
"""splitmix64 constants as signed int64 (torch multiplies int64 modulo 2^64)."""
logger = logging.getLogger(__name__)
_numba_failed: list[bool] = []


def row_uniform(rows: torch.Tensor, seed: int) -> torch.Tensor:
    """Uniform samples in (0, 1) that depend only on (row, seed) (splitmix64 finaliser).

    Args:
        rows: [...] int64.
    Returns:
        [...] float32, 24-bit resolution, never 0 or 1.
    """
    z = rows * _MIX[0] + seed
    z = (z ^ ((z >> 30) & ((1 << 34) - 1))) * _MIX[1]
    z = (z ^ ((z >> 27) & ((1 << 37) - 1))) * _MIX[2]
    z = z ^ ((z >> 31) & ((1 << 33) - 1))
    return (((z >> 40) & 0xFFFFFF).to(torch.float32) + 0.5) / float(1 << 24)


def soft_round_rows(x: torch.Tensor, rows: torch.Tensor, tau: float, seed: int) -> torch.Tensor:
    """Annealed soft rounding with one relaxed sample per (row, latent dimension).

    Args:
        x: [..., D] gathered latents; rows: [...] their table rows.
    Returns:
        [..., D] ``floor(x) + p_ceil`` (see :func:`~wisp_shacira.grid.quantize.soft_round`).
    """
    dims = torch.arange(x.shape[-1], device=x.device)
    uniform = row_uniform(rows[..., None] * x.shape[-1] + dims, seed).to(x.dtype)
    return soft_round_logistic(x, tau, uniform)


def worth_gathering(layout: GridLayout, num_points: int) -> bool:
    """Whether a batch of ``num_points`` reads fewer corners than the table has rows (then
    gathering is cheaper than decoding the table: 2^18 points on the gigapixel grid,
    16.7M corners of 41M rows, took 4.4 s forward and backward with numba (9.3 s with
    torch) against 12.3 s for the table path, on 2 cores shared with a benchmark)."""
    return num_points * layout.num_levels * 2**layout.dim < layout.total_rows


def encode_gathered(latents: torch.Tensor, decoder: nn.Linear, coords: torch.Tensor,
                    layout: GridLayout, num_active: int, tau: float | None) -> torch.Tensor:
    """Multi-resolution features from the latents of the corners looked up.

    Args:
        latents: [total_rows, D] continuous proxies.
        decoder: the shared ``D -> F`` decoder.
        coords: [N, d] in [0, 1].
        num_active: levels used; finer levels give zeros.
        tau: soft-rounding temperature, or None for hard (straight-through) rounding.
    Returns:
        [N, L * F], equal to ``encode(decoder(quantize(latents, tau)), coords)`` for
        ``tau=None`` (to float rounding).
    """
    seed = int(torch.randint(0, 1 << 62, ()))
    kernels = _numba_kernels(latents, coords)
    if kernels is not None:
        meta = load_numba().level_meta(layout, num_active)
        try:
            return kernels.encode_gathered_numba(latents, decoder.weight, decoder.bias, coords,
                                                 meta, layout.num_levels, tau, seed)
        except load_numba().NumbaError as exc:
            logger.warning("numba gathered kernels failed (%s); using the torch path", exc)
            _numba_failed.append(True)
    return _encode_torch(latents, decoder, coords, layout, num_active, tau, seed)


def _numba_kernels(latents: torch.Tensor, coords: torch.Tensor) -> ModuleType | None:
    """The numba gathered kernels when they apply: float32 CPU tensors, numba installed,
    no other backend asked for (``WISP_SHACIRA_ENCODING``), no earlier failure."""
    if (_numba_failed or requested_backend() in ("torch", "reference")
            or not numba_fits(latents, coords) or load_numba() is None):
        return None
    return importlib.import_module("wisp_shacira.grid.numba_gathered")


def _encode_torch(latents: torch.Tensor, decoder: nn.Linear, coords: torch.Tensor,
                  layout: GridLayout, num_active: int, tau: float | None, seed: int
                  ) -> torch.Tensor:
    """The torch path of :func:`encode_gathered` (any device)."""
    num_points, feat = coords.shape[0], decoder.out_features
    out = latents.new_zeros(num_points, layout.num_levels, feat)
    for group in level_groups(layout, num_active, coords.device):
        rows, weights = group_corners(coords.detach(), group)
        values = latents[rows]
        values = ste_round(values) if tau is None else soft_round_rows(values, rows, tau, seed)
        feats = (weights.to(latents.dtype)[..., None] * decoder(values)).sum(-2)
        out = out.index_copy(1, group.levels, feats)
    return out.view(num_points, -1)
