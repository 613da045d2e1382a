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
        [--entropy-models factorized,context]

``--points`` trains one SHACIRA model per ``;``-separated setting (``,``-separated
``key=value`` overrides of the SHACIRA run only), each measured against the same
baseline; without it, one SHACIRA run with the config as it is. ``--entropy-models``
trains every setting once per ``grid.entropy_model`` (default ``factorized``), each in
its own folder ``shacira[_N]_MODEL``; with two or more, each model is compared with the
first at every setting (bytes in percent, PSNR in dB) and, over two or more settings,
by BD-rate (``bench/bdrate.py``).

Prints a table (method, held-out PSNR/SSIM, file bytes, size ratio, train wall time,
training steps per second), the models side by side, writes ``results.json`` and
``strip.png`` (ground truth | baseline | SHACIRA for a few held-out views) in the output
folder.

GPU: ``--device cuda`` trains on the GPU (``trainer.device``); ``--paper`` sets the
paper-scale configuration (:data:`PAPER`: full 800x800 views, T = 2^19, 16 levels up to
resolution 2048, F = 2, 4096 rays per step, a 128^3 occupancy grid; ``--set`` still
overrides it); ``--step-timing N`` only times N whole training steps, today's path
against the automatic one (``bench/nerf_step.py``), prints them and writes
``--json``::

    python bench/nerf_lego.py --device cuda --paper --step-timing 100 --json steps.json
    python bench/nerf_lego.py --device cuda --paper --iterations 3000
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

from bdrate import bd_psnr, bd_rate, model_labels, parse_models  # noqa: E402  (bench/ is the script folder)
from nerf_step import format_timing, step_timing  # noqa: E402
from wisp_shacira.cli.main import run_guarded  # noqa: E402
from wisp_shacira.tasks.report import format_table  # noqa: E402
from wisp_shacira.config import load_config  # noqa: E402
from wisp_shacira.errors import ConfigError  # noqa: E402
from wisp_shacira.tasks import nerf  # noqa: E402

ENTROPY_KEY = "grid.entropy_model"
PAPER = ["grid.num_levels=16", "grid.min_res=16", "grid.max_res=2048", "grid.log2_table_size=19",
         "grid.feature_dim=2", "grid.latent_dim=2", "trainer.rays_per_batch=4096",
         "trainer.occupancy_resolution=128", "trainer.occupancy_warmup=256",
         "trainer.val_every=0", "trainer.checkpoint_every=0", "trainer.log_every=100",
         "tracer.chunk_size=32768"]
"""Overrides of ``--paper`` (with ``dataset.mip`` 0): the paper's lego scale on a GPU."""


def _settings(points: str | None) -> list[str]:
    return [p.strip() for p in points.split(";") if p.strip()] if points else [""]


def _methods(points: str | None, models: list[str]
             ) -> list[tuple[str, str, bool, list[str], str | None, str]]:
    """(row label, folder, compressed, extra overrides, entropy model label, setting):
    the baseline, then each point with each entropy model."""
    methods = [("ingp (float grid)", "ingp", False, [], None, "")]
    settings = _settings(points)
    for index, setting in enumerate(settings):
        items = [item.strip() for item in setting.split(",") if item.strip()]
        if any(item.partition("=")[0].strip() == ENTROPY_KEY for item in items):
            raise ConfigError(f"--points {setting!r}: give the models with --entropy-models")
        for model, label in zip(models, model_labels(models)):
            name = "shacira" + (f" [{label}]" if len(models) > 1 else "")
            name += f" {setting}" if setting else ""
            folder = ("shacira" if len(settings) == 1 else f"shacira_{index}") + f"_{label}"
            methods.append((name, folder, True, [*items, f"{ENTROPY_KEY}={model}"], label,
                            setting))
    return methods


def _overrides(args: argparse.Namespace, compressed: bool, out: Path,
               point: list[str]) -> list[str]:
    preset = PAPER if args.paper else []
    device = [] if args.device is None else [f"trainer.device={args.device}"]
    extra = [f"--{item}" for item in [*preset, *device, *args.set, *point]]
    if args.iterations is not None:
        extra.insert(0, f"--trainer.iterations={args.iterations}")
    mip = args.mip if args.mip is not None else (0 if args.paper else 2)
    return [f"--dataset.path={args.data}", f"--dataset.mip={mip}",
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
                      rep["train_seconds"], rep["iterations"] / rep["train_seconds"]])
    return format_table(["method", "held-out PSNR", "SSIM", "file bytes", "smaller by",
                         "dPSNR", "train s", "steps/s"], lines)


def _by_model(rows: list[dict], settings: list[str]) -> dict:
    """``{setting: {label: report}}`` of the SHACIRA runs."""
    found = {setting: {} for setting in settings}
    for row in rows:
        if row["model"] is not None:
            found[row["setting"]][row["model"]] = row["report"]
    return found


def _models_table(runs: dict, labels: list[str]) -> str:
    """Per setting: bytes and PSNR of each model side by side, then each model against
    the first (bytes in percent: negative = smaller; PSNR in dB)."""
    first = labels[0]
    header = ["setting"]
    for label in labels:
        header += [f"{label} bytes", "PSNR"]
    for label in labels[1:]:
        header += [f"{label} vs {first}: bytes", "dPSNR"]
    lines = []
    for setting, reports in runs.items():
        line = [setting or "(config)"]
        for label in labels:
            line += [reports[label]["bytes"], reports[label]["psnr"]]
        for label in labels[1:]:
            line += [f"{100 * (reports[label]['bytes'] / reports[first]['bytes'] - 1):+.2f} %",
                     f"{reports[label]['psnr'] - reports[first]['psnr']:+.3f} dB"]
        lines.append(line)
    return format_table(header, lines)


def _bd_lines(runs: dict, labels: list[str]) -> str:
    """BD-rate / BD-PSNR of each model against the first over the settings (bytes, PSNR)."""
    lines = []
    anchor = [(r[labels[0]]["bytes"], r[labels[0]]["psnr"]) for r in runs.values()]
    for label in labels[1:]:
        test = [(r[label]["bytes"], r[label]["psnr"]) for r in runs.values()]
        parts = []
        for name, function, unit in (("BD-rate", bd_rate, "%"), ("BD-PSNR", bd_psnr, "dB")):
            try:
                parts.append(f"{name} {function(anchor, test):+.2f} {unit}")
            except ValueError as exc:
                parts.append(f"{name} n/a ({exc})")
        lines.append(f"{label} vs {labels[0]} over the {len(runs)} settings: " + ", ".join(parts))
    return "\n".join(lines)


def _timing(args: argparse.Namespace, out: Path) -> None:
    """``--step-timing``: the SHACIRA config's training step, before and after."""
    cfg = load_config(nerf.AppConfig, args.config, _overrides(args, True, out / "timing", []))
    report = step_timing(cfg, args.step_timing, args.warmup)
    print(format_timing(report), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "lego"))
    parser.add_argument("--config", default=str(ROOT / "configs" / "shacira_lego.yaml"))
    parser.add_argument("--iterations", type=int, default=None,
                        help="same for both methods (default: the config's)")
    parser.add_argument("--mip", type=int, default=None,
                        help="views downscaled by 2^mip (default 2; 0 with --paper)")
    parser.add_argument("--device", default=None, choices=["cpu", "cuda"],
                        help="trainer.device (default: the config's, auto)")
    parser.add_argument("--paper", action="store_true",
                        help="the paper-scale configuration (PAPER in this script)")
    parser.add_argument("--step-timing", type=int, default=None, metavar="STEPS",
                        help="only time STEPS training steps, before and after (nerf_step.py)")
    parser.add_argument("--warmup", type=int, default=300,
                        help="steps trained before --step-timing starts timing")
    parser.add_argument("--json", default=None, help="with --step-timing: write the timing here")
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench_nerf_lego"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config override for both methods, e.g. trainer.rays_per_batch=4096")
    parser.add_argument("--points", default=None, metavar="SETTINGS",
                        help="SHACIRA runs to compare, ';'-separated, each ','-separated "
                             "key=value overrides, e.g. 'grid.latent_step=0.5;grid.latent_step=1'")
    parser.add_argument("--entropy-models", default="factorized", metavar="LIST",
                        help="grid.entropy_model values of the SHACIRA runs, comma-separated "
                             "(e.g. factorized,context); each setting runs once per model")
    return parser


def _main(argv: list[str]) -> None:
    args = _parser().parse_args(argv)
    models = parse_models(args.entropy_models)
    if any(item.partition("=")[0].strip() == ENTROPY_KEY for item in args.set):
        raise ConfigError(f"--set {ENTROPY_KEY}: give the models with --entropy-models")
    out = Path(args.out)
    if args.step_timing is not None:
        _timing(args, out)
        return
    methods = _methods(args.points, models)
    configs = [load_config(nerf.AppConfig, args.config,
                           _overrides(args, compressed, out / name, point))
               for _, name, compressed, point, _, _ in methods]   # every config checked first
    rows = []
    for (method, name, _, _, label, setting), cfg in zip(methods, configs):
        start = time.perf_counter()
        report = nerf.run(cfg, out / name)
        print(f"{method}: {report['psnr']:.2f} dB, {report['bytes']} bytes, "
              f"{time.perf_counter() - start:.0f} s end to end", flush=True)
        rows.append({"method": method, "cfg": cfg, "report": report, "model": label,
                     "setting": setting})
    rep = rows[-1]["report"]
    print(f"\nlego, {rep['width']}x{rep['height']} views, {rep['iterations']} iterations "
          f"each; held out: every 8th view ({rep['views']} '{rep['split']}' views), "
          f"never trained on. PSNR/SSIM of 8-bit renders decoded from each saved file.")
    print(_table(rows))
    labels = model_labels(models)
    runs = _by_model(rows, _settings(args.points))
    print(f"\nentropy models ({ENTROPY_KEY}): file bytes and held-out PSNR"
          + (", each against the first (bytes saved at equal settings: negative %)"
             if len(labels) > 1 else ""))
    print(_models_table(runs, labels))
    if len(labels) > 1 and len(runs) > 1:
        print(_bd_lines(runs, labels))
    strip = _strip(rows, out)
    results = [{"method": r["method"], "setting": r["setting"], "model_label": r["model"],
                "entropy_model": (getattr(r["cfg"].grid, "entropy_model", None)
                                  if r["model"] is not None else None),
                **{k: r["report"][k] for k in
                   ("psnr", "ssim", "psnr_in_memory", "bytes", "grid_float_bytes", "train_seconds",
                    "iterations", "file")},
                "steps_per_s": r["report"]["iterations"] / r["report"]["train_seconds"]}
               for r in rows]
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out / 'results.json'} and {strip}")


if __name__ == "__main__":
    sys.exit(run_guarded(lambda: _main(sys.argv[1:])))
