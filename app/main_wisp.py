"""Kaolin-Wisp NeRF app with a SHACIRA-compressed grid (``ShaciraGrid.from_geometric``).

Usage (on a CUDA machine with Kaolin and Kaolin-Wisp installed, see docs/wisp.md)::

    WISP_HEADLESS=1 python app/main_wisp.py --config configs/wisp/shacira_nerf.yaml \
        --dataset-path /path/to/lego

Arguments follow Wisp's config system: command line > YAML > defaults; ``--help``
lists every option. After training, the compressed model is written as a ``.shac``
file (``trainer.shac_path``, default ``<log dir>/model.shac``) that ``wisp-shacira
render|lod|view|decode|info`` read without Wisp. Without Wisp, with torch < 2.0 or a
Wisp older than ``main`` at 99639ae (v0.1.x, ``stable``, the SHACIRA fork), with a YAML
of the paper's code or a constructor the app does not offer, the script prints one
``error:`` line saying what was found and what is needed, and exits 2.
"""
from __future__ import annotations

import sys

from wisp_shacira.cli.main import run_guarded
from wisp_shacira.fields.wisp_bridge import WispNotInstalled


def main() -> int:
    """Run the Wisp app; exit status 2 with one ``error:`` line on user errors."""
    try:
        from wisp_shacira.wisp import app_support
    except WispNotInstalled as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run_guarded(app_support.main)


if __name__ == "__main__":
    sys.exit(main())
