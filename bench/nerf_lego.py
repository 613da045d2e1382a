"""SHACIRA vs the uncompressed Instant-NGP-style grid on NeRF-synthetic lego.

Both methods train the same radiance field (``configs/shacira_lego.yaml``; the
baseline sets ``grid.compressed: false``) for the same number of iterations on the
same views, then are measured on held-out views rendered from their saved file
(SHACIRA: ``scene.shac``; baseline: ``model.pt``, ``torch.save`` of its float32
weights). Views: mip 2 (200x200 from 800x800); ``lego`` here has only a train split,
so every 8th view (r_0, r_8, ...) is held out and never trained on.

Usage::

    python bench/nerf_lego.py [--data ../shared/data/lego] [--iterations N]
        [--out runs/bench_nerf_lego] [--set trainer.rays_per_batch=4096 ...]
        [--points "grid.latent_step=0.5;grid.latent_step=1.0"]

``--points`` trains one SHACIRA model per ``;``-separated setting (``,``-separated
``key=value`` overrides of the SHACIRA run only), each measured against the same
baseline; without it, one SHACIRA run with the config as it is.

Prints a table (method, held-out PSNR/SSIM, file bytes, size ratio, train wall time),
writes ``results.json`` and ``strip.png`` (ground truth | baseline | SHACIRA for a few
held-out views) in the output folder.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]   # the repository: configs, runs, ../shared

from wisp_shacira.cli.main import run_guarded  # noqa: E402
from wisp_shacira.tasks.report import format_table  # noqa: E402
from wisp_shacira.config import load_config  # noqa: E402
from wisp_shacira.tasks import nerf  # noqa: E402


def _methods(points: str | None) -> list[tuple[str, str, bool, list[str]]]:
    """(row label, folder, compressed, extra overrides): the baseline, then each point."""
    methods = [("ingp (float grid)", "ingp", False, [])]
    settings = [p.strip() for p in points.split(";") if p.strip()] if points else [""]
    for index, setting in enumerate(settings):
        items = [item.strip() for item in setting.split(",") if item.strip()]
        label = "shacira" + (f" {setting}" if setting else "")
        folder = "shacira" if len(settings) == 1 else f"shacira_{index}"
        methods.append((label, folder, True, items))
    return methods


def _overrides(args: argparse.Namespace, compressed: bool, out: Path,
               point: list[str]) -> list[str]:
    extra = [f"--{item}" for item in [*args.set, *point]]
    if args.iterations is not None:
        extra.insert(0, f"--trainer.iterations={args.iterations}")
    return [f"--dataset.path={args.data}", f"--dataset.mip={args.mip}",
            f"--grid.compressed={str(compressed).lower()}", f"--output={out}", *extra]


def _strip(rows: list[dict], out: Path, views: int = 3) -> Path:
    """Ground truth | baseline | SHACIRA for the first ``views`` held-out views."""
    scene, _, _ = nerf.load_scene(rows[0]["cfg"].dataset)
    held = scene.split(rows[0]["report"]["split"])
    tiles = []
    for name, gt in list(zip(held.names, held.images.numpy()))[:views]:
        cells = [np.round(gt * 255).astype(np.uint8)]
        cells += [np.asarray(Image.open(Path(r["report"]["file"]).parent / "renders" / f"{name}.png"))
                  for r in rows]
        tiles.append(np.concatenate(cells, axis=1))
    path = out / "strip.png"
    Image.fromarray(np.concatenate(tiles, axis=0)).save(path)
    return path


def _table(rows: list[dict]) -> str:
    base = rows[0]["report"]
    lines = []
    for row in rows:
        rep = row["report"]
        lines.append([row["method"], rep["psnr"], rep["ssim"], rep["bytes"],
                      f"{base['bytes'] / rep['bytes']:.1f}x", rep["psnr"] - base["psnr"],
                      rep["train_seconds"]])
    return format_table(["method", "held-out PSNR", "SSIM", "file bytes", "smaller by",
                         "dPSNR", "train s"], lines)


def _main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "lego"))
    parser.add_argument("--config", default=str(ROOT / "configs" / "shacira_lego.yaml"))
    parser.add_argument("--iterations", type=int, default=None,
                        help="same for both methods (default: the config's)")
    parser.add_argument("--mip", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench_nerf_lego"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config override for both methods, e.g. trainer.rays_per_batch=4096")
    parser.add_argument("--points", default=None, metavar="SETTINGS",
                        help="SHACIRA runs to compare, ';'-separated, each ','-separated "
                             "key=value overrides, e.g. 'grid.latent_step=0.5;grid.latent_step=1'")
    args = parser.parse_args(argv)
    out = Path(args.out)
    rows = []
    for method, name, compressed, point in _methods(args.points):
        folder = out / name
        cfg = load_config(nerf.AppConfig, args.config, _overrides(args, compressed, folder, point))
        start = time.perf_counter()
        report = nerf.run(cfg, folder)
        print(f"{method}: {report['psnr']:.2f} dB, {report['bytes']} bytes, "
              f"{time.perf_counter() - start:.0f} s end to end", flush=True)
        rows.append({"method": method, "cfg": cfg, "report": report})
    rep = rows[-1]["report"]
    print(f"\nlego, mip {args.mip} ({rep['width']}x{rep['height']}), {rep['iterations']} iterations "
          f"each; held out: every 8th view ({rep['views']} '{rep['split']}' views), "
          f"never trained on. PSNR/SSIM of 8-bit renders decoded from each saved file.")
    print(_table(rows))
    strip = _strip(rows, out)
    results = [{"method": r["method"], **{k: r["report"][k] for k in
                ("psnr", "ssim", "psnr_in_memory", "bytes", "grid_float_bytes", "train_seconds",
                 "iterations", "file")}} for r in rows]
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out / 'results.json'} and {strip}")


if __name__ == "__main__":
    sys.exit(run_guarded(lambda: _main(sys.argv[1:])))
