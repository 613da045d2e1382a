"""What occupancy pruning (``trainer.prune_empty_space``) saves on trained scene files.

For each scene ``.shac`` written without pruning (``--trainer.prune_empty_space false``,
or by a version before it), the same latents are coded again: unpruned and pruned, each
with the histograms and with the context model (the export keeps the smallest), and
the pruned file is checked to render what the unpruned one renders, bit for bit (a
three-view turntable at the training resolution). Prints a table and writes
``--json``::

    wisp-shacira encode --config shacira_lego --dataset.path ../shared/data/lego \\
        --trainer.prune_empty_space false --output runs/lego_unpruned
    python bench/scene_pruning.py runs/lego_unpruned/scene.shac
"""
from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from wisp_shacira.codec.model_io import decode_model, read_shac
from wisp_shacira.tasks.nerf import prune_empty_space
from wisp_shacira.tasks.nerf_eval import load_scene_model, render_turntable
from wisp_shacira.tasks.report import format_table

VIEWS = 3


def measure(path: Path) -> dict:
    """Sizes of ``path``'s latents coded unpruned and pruned, and the render check."""
    model = read_shac(path, max_lod=0)
    if model.config.get("task") != "nerf" or "cells" in model.config["occupancy"]:
        raise SystemExit(f"{path}: not an unpruned scene file")
    scene = load_scene_model(path)
    pruned = prune_empty_space(scene.field, model.config)
    sizes = {}
    for coder in ("factorized", "context"):
        sizes[f"unpruned {coder}"] = len(scene.field.encode_shac(model.config, coder=coder)[0])
        sizes[f"pruned {coder}"] = len(pruned.field.encode_shac(
            pruned.config, coder=coder, row_masks=pruned.row_masks)[0])
    data = pruned.encode()
    decoded = decode_model(data, str(path))
    reference = render_turntable(scene, VIEWS)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pruned.shac"
        out.write_bytes(data)
        again = render_turntable(load_scene_model(out), VIEWS)
    unpruned = min(v for k, v in sizes.items() if k.startswith("unpruned"))
    best = min(v for k, v in sizes.items() if k.startswith("pruned"))
    return {"file": str(path), **sizes, "unpruned": unpruned, "pruned": best,
            "change_percent": 100.0 * (best / unpruned - 1.0),
            "cells_bytes": len(base64.b64decode(pruned.config["occupancy"]["cells"])),
            "occupied_cells": pruned.occupied_cells, "zeroed_rows": pruned.zeroed_rows,
            "masked_levels": sum(m is not None for m in decoded.row_masks),
            "renders_equal": bool(np.array_equal(reference, again))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = [measure(path) for path in args.files]
    print(format_table(
        ["file", "unpruned B (hist / ctx)", "pruned B (hist / ctx)", "change", "cells B",
         "occupied", "rows zeroed", "renders equal"],
        [[Path(r["file"]).parent.name + "/" + Path(r["file"]).name,
          f"{r['unpruned factorized']:,} / {r['unpruned context']:,}",
          f"{r['pruned factorized']:,} / {r['pruned context']:,}",
          f"{r['change_percent']:+.1f}%", r["cells_bytes"], f"{100 * r['occupied_cells']:.1f}%",
          f"{100 * r['zeroed_rows']:.1f}%", r["renders_equal"]] for r in rows]))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    if not all(r["renders_equal"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
