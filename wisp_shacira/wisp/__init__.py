"""Kaolin-Wisp adapter: SHACIRA's compressed grid as a Wisp feature grid.

The only part of ``wisp_shacira`` that imports Kaolin-Wisp. Importing it without
Wisp (and Kaolin) installed raises :class:`~wisp_shacira.fields.wisp_bridge.WispNotInstalled`,
an ``ImportError`` whose one-line message says what to install (see ``docs/wisp.md``).

Modules:
    grid: :class:`ShaciraGrid`, a ``wisp.models.grids.HashGrid`` subclass.
    trainer: ``ShaciraMultiviewTrainer`` (rate term, SHACIRA parameter groups, export).
    renderer: interactive renderer with an LOD slider (imports imgui; load it for the GUI).
    app_support: the configuration and main routine of ``app/main_wisp.py``.
"""
from wisp_shacira.fields.wisp_bridge import wisp_not_installed

try:
    import wisp.models.grids  # noqa: F401  (Kaolin-Wisp; also imports Kaolin's ops)
except (ImportError, OSError) as exc:
    raise wisp_not_installed(exc) from None

from wisp_shacira.wisp.grid import ShaciraGrid  # noqa: E402

__all__ = ["ShaciraGrid"]
