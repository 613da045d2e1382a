"""When the Triton kernels run, and their first-use checks (for :mod:`~wisp_shacira.grid.fast`).

Nothing here imports Triton: :func:`load_triton` imports
:mod:`~wisp_shacira.grid.triton_kernels` (and so Triton) on the first call that could
use it. Before a kernel pair is first used for an input dimension and feature width,
:func:`triton_ready` compiles and runs both on a few points; any failure there (no
driver, an unsupported GPU, a compiler error) is logged once and the torch path takes
over for the rest of the process.
"""
from __future__ import annotations

import logging
import os
from functools import lru_cache
from types import ModuleType

import torch

from wisp_shacira.grid.optional_kernels import import_kernels

logger = logging.getLogger(__name__)

TRITON_FOR_EVALUATION = False
"""Whether automatic selection also takes Triton without gradients (evaluation,
decoding). Off until a GPU run shows the Triton forward bit-identical to the CPU
reference (``bench/gpu_check.py`` reports it): decoding must not depend on the backend."""

_failed: set[str] = set()
_ready: set[tuple[int, int, str]] = set()
_announced: set[str] = set()


def interpreter_on() -> bool:
    """Whether ``TRITON_INTERPRET`` asks for Triton's CPU interpreter."""
    return os.environ.get("TRITON_INTERPRET", "").strip().lower() in ("1", "true", "on", "yes")


@lru_cache(maxsize=1)
def load_triton() -> ModuleType | None:
    """The Triton kernels module, or None (logged once) when Triton is missing or broken."""
    return import_kernels("wisp_shacira.grid.triton_kernels", "triton")


def tensors_fit(table: torch.Tensor, coords: torch.Tensor, forced: bool) -> bool:
    """float32 tensors on one CUDA device; CPU ones too when ``forced`` under the interpreter."""
    if table.dtype != torch.float32 or coords.dtype != torch.float32:
        return False
    if table.device != coords.device:
        return False
    return table.device.type == "cuda" or (forced and table.device.type == "cpu"
                                           and interpreter_on())


def triton_wanted(table: torch.Tensor, coords: torch.Tensor, wanted: str | None) -> bool:
    """Whether :func:`~wisp_shacira.grid.fast.select_backend` picks ``triton``.

    Automatic (``wanted`` None): CUDA float32 tensors, a table that takes a gradient
    (or :data:`TRITON_FOR_EVALUATION`), Triton importable, no earlier failure. Forced
    (``wanted == "triton"``): the tensors fit (see :func:`tensors_fit`); otherwise one
    log line and False.
    """
    if wanted not in (None, "triton") or "triton" in _failed:
        return False
    forced = wanted == "triton"
    fits = tensors_fit(table, coords, forced)
    if not forced:
        training = torch.is_grad_enabled() and table.requires_grad
        return fits and (training or TRITON_FOR_EVALUATION) and load_triton() is not None
    if fits and load_triton() is not None:
        return True
    _announce("triton-missing", "triton backend requested but not usable for %s %s tensors "
              "(needs Triton and float32 CUDA tensors, or TRITON_INTERPRET=1 for CPU ones); "
              "using torch", table.device, table.dtype)
    return False


def triton_ready(kernels: ModuleType, dim: int, feat: int, device: torch.device) -> bool:
    """Compile and run both kernels once for ``(dim, feat, device)``; False (logged once,
    Triton off for the process) when that fails."""
    key = (dim, feat, str(device))
    if key in _ready:
        return True
    if "triton" in _failed:
        return False
    try:
        kernels.probe(dim, feat, device)
    except Exception as exc:  # noqa: BLE001 - compiler, driver or launch errors alike
        logger.warning("triton kernels failed to compile or run (%s: %s); using the torch path",
                       type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        _failed.add("triton")
        return False
    _ready.add(key)
    return True


def reset() -> None:
    """Forget failures, checks and the loaded module (tests)."""
    _failed.clear()
    _ready.clear()
    _announced.clear()
    load_triton.cache_clear()


def _announce(key: str, message: str, *args: object) -> None:
    if key not in _announced:
        _announced.add(key)
        logger.info(message, *args)
