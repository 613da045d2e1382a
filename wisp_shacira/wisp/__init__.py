"""Kaolin-Wisp adapter: SHACIRA's compressed grid as a Wisp feature grid.

The only part of ``wisp_shacira`` that imports Kaolin-Wisp. Importing it checks the
versions first and raises one :class:`~wisp_shacira.fields.wisp_bridge.WispNotInstalled`
(an ``ImportError`` and a user error: one line, exit 2 in the apps) naming what was
found and what is needed (see ``docs/wisp.md``):

* torch >= 2.0 (``Optimizer.register_step_pre_hook``, ``torch.load(weights_only=...)``);
* Kaolin-Wisp ``main`` from commit 99639ae (2023-05-22) or later: ``wisp.config`` and
  the config-driven trainers with ``wisp.trainers.tracker``. Wisp v0.1.x, its ``stable``
  branch and the official SHACIRA fork (Wisp 0.1.0) are refused.

Modules:
    grid: :class:`ShaciraGrid`, a ``wisp.models.grids.HashGrid`` subclass.
    trainer: ``ShaciraMultiviewTrainer`` (rate term, SHACIRA parameter groups, export).
    renderer: interactive renderer with an LOD slider (imports imgui; load it for the GUI).
    app_support: the configuration and main routine of ``app/main_wisp.py``.
"""
import importlib.util

import torch

from wisp_shacira.fields.wisp_bridge import (WISP_MAIN_NEEDED, WispVersionError, torch_problem,
                                             wisp_not_installed, wisp_version_error)


def _found_wisp(wisp_module: object) -> str:
    """'wisp 0.1.0 at /path' for messages (the version from the installed metadata)."""
    from importlib import metadata
    try:
        version = metadata.version("wisp")
    except metadata.PackageNotFoundError:
        version = "of unknown version"
    return f"wisp {version} at {getattr(wisp_module, '__file__', None) or '?'}"


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def check_versions() -> None:
    """Raise the one-line version error if torch or Wisp cannot run the adapter."""
    problem = torch_problem(torch.__version__)
    if problem is not None:
        raise WispVersionError(problem)
    try:
        import wisp
    except (ImportError, OSError) as exc:
        raise wisp_not_installed(exc) from None
    if not _has("wisp.config") or not _has("wisp.trainers.tracker"):
        detail = ("no wisp.config; it has the argparse wisp.config_parser of Wisp v0.1.x, "
                  "its stable branch and the SHACIRA fork" if _has("wisp.config_parser")
                  else "no wisp.config or wisp.trainers.tracker")
        raise wisp_version_error(_found_wisp(wisp), WISP_MAIN_NEEDED, detail)


check_versions()
try:
    import wisp.models.grids  # noqa: F401  (Kaolin-Wisp; also imports Kaolin's ops)
except (ImportError, OSError) as exc:
    raise wisp_not_installed(exc) from None

from wisp_shacira.wisp.grid import ShaciraGrid  # noqa: E402

__all__ = ["ShaciraGrid", "check_versions"]
