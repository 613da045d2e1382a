"""Kaolin-Wisp NeRF app with a SHACIRA-compressed grid (``ShaciraGrid.from_geometric``).

Usage (on a CUDA machine with Kaolin and Kaolin-Wisp installed, see docs/wisp.md)::

    WISP_HEADLESS=1 python app/main_wisp.py --config configs/wisp/shacira_nerf.yaml \
        --dataset-path /path/to/lego

Arguments follow Wisp's config system: command line > YAML > defaults; ``--help``
lists every option. After training, the compressed model is written as a ``.shac``
file (``trainer.shac_path``, default ``<log dir>/model.shac``). Without Wisp
installed, the script prints one ``error:`` line saying what to install and exits 2.
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
