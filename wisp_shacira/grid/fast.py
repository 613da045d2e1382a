"""Fast paths for the multi-resolution encoding, and the one dispatch point.

:func:`encode` picks a backend (explicit ``backend=`` argument, else the environment
variable ``WISP_SHACIRA_ENCODING=reference|torch|numba|triton|plan``, else automatic):

- ``plan``: for a batch of coordinates that is reused (the full-image batch of the
  image task, full-frame batches of video) corner rows and weights never change, so
  the encoding is a fixed sparse matrix ``A`` of shape ``[N * L, rows]``:
  ``features = A @ table`` and the table gradient is ``A^T @ grad``. An
  :class:`EncodingPlan` holds ``A`` and ``A^T`` in CSR form, built once. Used
  whenever a plan is passed (and always when ``coords`` is None).
- ``numba``: fused CPU kernels (:mod:`wisp_shacira.grid.numba_kernels`) for float32
  tensors, compiled on first use and cached on disk; needs the optional extra ``fast``.
- ``triton``: fused GPU kernels (:mod:`wisp_shacira.grid.triton_kernels`) for float32
  CUDA tensors, compiled by Triton on first use and cached; chosen automatically when
  the table takes a gradient (training), forced for any CUDA float32 call with
  ``backend="triton"`` (CPU tensors too when ``TRITON_INTERPRET=1``: Triton's
  interpreter). Missing Triton or a kernel that fails to compile: one log line, then the
  torch path. Evaluation and decoding keep the torch path until a GPU run has shown the
  Triton forward bit-identical to the CPU reference (``TRITON_FOR_EVALUATION``).
- ``torch``: the vectorised PyTorch path (:mod:`wisp_shacira.grid.fused_torch`), on
  any device; the CUDA path without Triton, and the CPU fallback when numba is missing
  or fails.
- ``reference``: :func:`~wisp_shacira.grid.encoding.encode_reference`; also taken
  whenever ``coords`` requires a gradient (the fast paths differentiate w.r.t. the
  table only).

tiny-cuda-nn's grid encoding is not used: it samples level ``l`` at
``x * (base * s^l - 1) + 0.5`` on a grid of ``ceil(scale) + 1`` vertices, while our
levels sample at ``x * R_l`` with integer ``R_l = floor(min_res * b^l)``; the half-cell
shift differs per level, so our layout cannot be mapped onto it exactly.

The chosen backend is logged once per backend name (logger ``wisp_shacira.grid.fast``).
"""
from __future__ import annotations

import importlib.util
import logging
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType

import torch

from wisp_shacira.errors import ConfigError
from wisp_shacira.grid.encoding import encode_reference
from wisp_shacira.grid.fused_torch import encode_fused
from wisp_shacira.grid.hashing import GridLayout, level_corners
from wisp_shacira.grid.optional_kernels import import_kernels
from wisp_shacira.grid.triton_select import load_triton, triton_ready, triton_wanted

logger = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("reference", "torch", "numba", "triton", "plan")
ENV_VAR = "WISP_SHACIRA_ENCODING"
_announced: set[str] = set()
_failed: set[str] = set()


@dataclass
class EncodingPlan:
    """Precomputed sparse interpolation operator for fixed coordinates.

    Attributes:
        num_points: N.
        num_levels: L.
        matrix: CSR [N * L, total_rows] (row ``n * L + l``).
        matrix_t: CSR [total_rows, N * L], the transpose, for the backward pass.
    """

    num_points: int
    num_levels: int
    matrix: torch.Tensor
    matrix_t: torch.Tensor

    @property
    def nbytes(self) -> int:
        """Memory held by the plan in bytes."""
        total = 0
        for mat in (self.matrix, self.matrix_t):
            for part in (mat.crow_indices(), mat.col_indices(), mat.values()):
                total += part.numel() * part.element_size()
        return total


def _csr(crow_counts: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor,
         shape: tuple[int, int]) -> torch.Tensor:
    index_dtype = torch.int32 if max(shape) < 2**31 and cols.numel() < 2**31 else torch.int64
    crow = torch.zeros(shape[0] + 1, dtype=torch.int64, device=cols.device)
    crow[1:] = torch.cumsum(crow_counts, 0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow.to(index_dtype), cols.to(index_dtype), vals,
                                       size=shape, check_invariants=False)


def build_plan(coords: torch.Tensor, layout: GridLayout, chunk: int = 1 << 18) -> EncodingPlan:
    """Precompute the interpolation operator for ``coords``.

    Args:
        coords: [N, d] in [0, 1].
    """
    num_points, num_levels = coords.shape[0], layout.num_levels
    corners = 2**layout.dim
    cols = torch.empty(num_points, num_levels, corners, dtype=torch.int64, device=coords.device)
    vals = torch.empty(num_points, num_levels, corners, dtype=torch.float32, device=coords.device)
    with torch.no_grad():
        for start in range(0, num_points, chunk):
            part = coords[start:start + chunk].float()
            for level in range(num_levels):
                rows, weights = level_corners(part, layout, level)
                cols[start:start + chunk, level] = rows
                vals[start:start + chunk, level] = weights
    cols, vals = cols.reshape(-1), vals.reshape(-1)
    num_rows = num_points * num_levels
    counts = torch.full((num_rows,), corners, dtype=torch.int64, device=coords.device)
    matrix = _csr(counts, cols, vals, (num_rows, layout.total_rows))
    order = torch.argsort(cols, stable=True)
    counts_t = torch.bincount(cols, minlength=layout.total_rows)
    matrix_t = _csr(counts_t, torch.div(order, corners, rounding_mode="floor"), vals[order],
                    (layout.total_rows, num_rows))
    return EncodingPlan(num_points, num_levels, matrix, matrix_t)


class _PlannedEncode(torch.autograd.Function):
    @staticmethod
    def forward(ctx, table: torch.Tensor, plan: EncodingPlan) -> torch.Tensor:  # type: ignore[override]
        ctx.plan = plan
        out = torch.sparse.mm(plan.matrix, table.float().contiguous())
        return out.view(plan.num_points, -1).to(table.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        plan: EncodingPlan = ctx.plan
        feat = grad.shape[1] // plan.num_levels
        grad_rows = grad.float().contiguous().view(plan.num_points * plan.num_levels, feat)
        return torch.sparse.mm(plan.matrix_t, grad_rows).to(grad.dtype), None


def requested_backend(backend: str | None = None) -> str | None:
    """The backend asked for: ``backend``, else ``$WISP_SHACIRA_ENCODING``; None = automatic."""
    name = backend if backend is not None else os.environ.get(ENV_VAR, "")
    name = name.strip().lower()
    if name in ("", "auto"):
        return None
    if name not in BACKENDS:
        source = "backend" if backend is not None else ENV_VAR
        raise ConfigError(f"{source}={name!r}: unknown encoding backend, expected auto or one of "
                          f"{', '.join(BACKENDS)}")
    return name


@lru_cache(maxsize=1)
def load_numba() -> ModuleType | None:
    """The numba kernels module, or None (logged once) when numba is missing or broken."""
    return import_kernels("wisp_shacira.grid.numba_kernels", "numba")


def numba_fits(table: torch.Tensor, coords: torch.Tensor) -> bool:
    """Whether the numba kernels take these tensors (float32, on the CPU)."""
    return (table.device.type == "cpu" and coords.device.type == "cpu"
            and table.dtype == torch.float32 and coords.dtype == torch.float32)


def select_backend(table: torch.Tensor, coords: torch.Tensor | None, plan: EncodingPlan | None,
                   backend: str | None = None) -> str:
    """Name of the backend :func:`encode` uses for these arguments (see the module docstring)."""
    wanted = requested_backend(backend)
    if coords is None:
        if plan is None:
            raise ValueError("encode needs coords when no plan is given")
        return "plan"
    if plan is not None and wanted in (None, "plan"):
        return "plan"
    if wanted == "plan":
        _announce("plan-missing", "encoding backend plan needs fixed coordinates (a plan); "
                  "choosing automatically for these calls")
        wanted = None
    if wanted == "reference" or coords.requires_grad:
        return "reference"
    if (wanted in (None, "numba") and numba_fits(table, coords) and "numba" not in _failed
            and load_numba() is not None):
        return "numba"
    if wanted == "numba":
        _announce("numba-missing", "numba backend requested but not usable for %s %s tensors "
                  "(needs numba and float32 CPU tensors); using torch", table.device, table.dtype)
    if triton_wanted(table, coords, wanted):
        return "triton"
    return "torch"


def _announce(key: str, message: str, *args: object) -> None:
    if key not in _announced:
        _announced.add(key)
        logger.info(message, *args)


def _tcnn_note(table: torch.Tensor) -> str:
    if table.device.type == "cuda" and importlib.util.find_spec("tinycudann") is not None:
        return " (tinycudann is installed but its grid convention differs from ours; not used)"
    return ""


def _run_triton(table: torch.Tensor, coords: torch.Tensor, layout: GridLayout,
                active: int) -> torch.Tensor | None:
    """The Triton encoding, or None (then the torch path runs) when it does not apply."""
    kernels = load_triton()
    if not kernels.fits_layout(layout):
        _announce("triton-layout", "triton kernels take 1-3 dimensions and hashed tables of "
                  "2^k rows; using the torch path for this %d-D grid", layout.dim)
        return None
    if not triton_ready(kernels, layout.dim, table.shape[1], table.device):
        return None
    return kernels.encode_triton(table, coords, layout, active)


def _run_numba(table: torch.Tensor, coords: torch.Tensor, layout: GridLayout,
               active: int) -> torch.Tensor | None:
    kernels = load_numba()
    try:
        return kernels.encode_numba(table, coords, kernels.level_meta(layout, active),
                                    layout.num_levels)
    except kernels.NumbaError as exc:
        logger.warning("numba kernels failed to compile (%s); using the torch path", exc)
        _failed.add("numba")
        return None


def _planned(table: torch.Tensor, layout: GridLayout, num_active: int | None,
             plan: EncodingPlan) -> torch.Tensor:
    out = _PlannedEncode.apply(table, plan)
    if num_active is not None and num_active < layout.num_levels:
        feat = table.shape[1]
        mask = torch.zeros(layout.num_levels, feat, dtype=out.dtype, device=out.device)
        mask[:max(0, num_active)] = 1.0
        out = out * mask.view(1, -1)
    return out


def encode(table: torch.Tensor, coords: torch.Tensor | None, layout: GridLayout,
           num_active: int | None = None, plan: EncodingPlan | None = None,
           backend: str | None = None) -> torch.Tensor:
    """Interpolate and concatenate level features, by the fastest available path.

    Args:
        table: [total_rows, F].
        coords: [N, d] in [0, 1]; may be None when ``plan`` is given.
        num_active: levels ``>= num_active`` give zeros; None = all.
        plan: precomputed operator for these coordinates (see :func:`build_plan`).
        backend: force ``reference``, ``torch``, ``numba``, ``triton`` or ``plan``; None = the
            environment variable ``WISP_SHACIRA_ENCODING``, else automatic.
    Returns:
        [N, L * F], identical (to float rounding) whichever backend runs.
    """
    name = select_backend(table, coords, plan, backend)
    _announce(name, "grid encoding backend: %s%s", name, _tcnn_note(table))
    if name == "plan":
        return _planned(table, layout, num_active, plan)
    active = layout.num_levels if num_active is None else max(0, min(num_active, layout.num_levels))
    if name == "reference":
        return encode_reference(table, coords, layout, num_active)
    if name in ("numba", "triton"):
        run = _run_numba if name == "numba" else _run_triton
        out = run(table, coords, layout, active)
        if out is not None:
            return out
    return encode_fused(table, coords, layout, active)
