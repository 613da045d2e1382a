"""Importing an optional kernel module (numba, Triton) without ever failing the caller."""
from __future__ import annotations

import importlib
import logging
from types import ModuleType

logger = logging.getLogger(__name__)


def import_kernels(module: str, backend: str) -> ModuleType | None:
    """``module``, or None (logged) when it or what it needs is missing or broken."""
    try:
        return importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any import failure means "no such backend"
        logger.info("%s backend unavailable (%s: %s); using the torch path",
                    backend, type(exc).__name__, exc)
        return None
