"""Rate-distortion benchmark for images: SHACIRA vs JPEG, WebP and JPEG2000 (Pillow).

Every SHACIRA point is a real ``.shac`` file: BPP = file bytes * 8 / pixels and PSNR
is measured on the image decoded from that file. Each codec is then run on the same
image at the same BPP (closest setting not above it), and PSNR is averaged over the
images. Prints a table, saves a plot and a JSON file under ``bench/results/``.

    python bench/image_rd.py --images 4 --jobs 2     # configs/shacira_kodak.yaml: 4,000 steps
    python bench/image_rd.py --names kodim23 --points 10:2e-4,12:5e-5 --iterations 500
    python bench/image_rd.py --points 15:1e-4 --merge earlier/image_rd.json --out both  # add a point
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import imageio.v3 as iio
import numpy as np

ROOT = Path(__file__).resolve().parents[1]   # the repository: configs, results, ../shared

from baselines import pillow_codec_at_bpp  # noqa: E402  (bench/ is the script folder)
from wisp_shacira.tasks.report import format_table  # noqa: E402
from wisp_shacira.config import build_config, load_yaml, merge, parse_overrides  # noqa: E402
from wisp_shacira.tasks.image import AppConfig, compress_one  # noqa: E402

CODECS = ("jpeg", "webp", "jpeg2000")
DEFAULT_POINTS = "11:1e-4,12:1e-4,13:1e-4,14:1e-4,15:1e-4"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kodak", type=Path, default=ROOT.parent / "shared" / "data" / "kodak")
    parser.add_argument("--images", type=int, default=4, help="first N images of the folder")
    parser.add_argument("--names", default=None, help="comma-separated image stems instead")
    parser.add_argument("--iterations", type=int, default=None,
                        help="steps per point (default: the config's trainer.iterations)")
    parser.add_argument("--points", default=DEFAULT_POINTS,
                        help="rate points as log2_table_size:lambda_end, comma-separated")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "shacira_kodak.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config override, e.g. --set nef.hidden_dim=32 (repeatable)")
    parser.add_argument("--jobs", type=int, default=1, help="images compressed in parallel")
    parser.add_argument("--device", default="auto", help="trainer.device: auto, cpu or cuda")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "image_rd")
    parser.add_argument("--merge", type=Path, action="append", default=[], metavar="JSON",
                        help="an earlier run's image_rd.json (same images and steps) whose "
                             "points join this table and plot (repeatable)")
    return parser.parse_args(argv)


def select_images(args: argparse.Namespace) -> list[Path]:
    if not args.kodak.is_dir():
        sys.exit(f"error: {args.kodak}: no such folder (benchmark data lives in ../shared/data)")
    files = sorted(args.kodak.glob("*.png"))
    if args.names:
        wanted = args.names.split(",")
        files = [f for f in files if f.stem in wanted]
        if len(files) != len(wanted):
            sys.exit(f"error: not all of {wanted} are in {args.kodak}")
    return files if args.names else files[:args.images]


def point_config(log2_t: int, lam: float, args) -> AppConfig:
    """The benchmark config (``--config`` plus ``--set``) at one rate point."""
    extra = parse_overrides([f"--{item}" for item in args.set])
    trainer = {"lambda_end": lam, "lambda_start": 10 * lam, "device": args.device}
    if args.iterations is not None:
        trainer["iterations"] = args.iterations
    data = merge(merge(load_yaml(args.config), extra),
                 {"grid": {"log2_table_size": log2_t}, "trainer": trainer})
    return build_config(AppConfig, data)


def one_point(image: Path, log2_t: int, lam: float, args) -> dict:
    """One rate point of one image, with the codecs at the same BPP."""
    metrics = compress_one(image, point_config(log2_t, lam, args), args.out / f"T{log2_t}_l{lam:g}")
    pixels = iio.imread(image)
    entry = {"name": image.stem, "shacira": (metrics["bpp"], metrics["psnr"]),
             "encode_seconds": metrics["encode_seconds"]}
    for codec in CODECS:
        bpp, psnr, _ = pillow_codec_at_bpp(pixels, codec, metrics["bpp"])
        entry[codec] = (bpp, psnr)
    print(f"{image.stem} T=2^{log2_t} lambda={lam:g}: " + ", ".join(
        f"{m} {entry[m][1]:.2f} dB @ {entry[m][0]:.3f}" for m in ("shacira",) + CODECS), flush=True)
    return entry


def parse_points(text: str) -> list[tuple[int, float]]:
    """``"11:1e-4,12:5e-5"`` -> ``[(11, 1e-4), (12, 5e-5)]`` (log2 T, lambda_end)."""
    return [(int(t), float(l)) for t, l in (p.split(":") for p in text.split(","))]


def describe(args: argparse.Namespace) -> dict:
    """What a run of ``args`` is measured on: images, steps, batch, device."""
    config = point_config(*parse_points(args.points)[0], args)
    return {"images": [i.stem for i in select_images(args)], "iterations": config.trainer.iterations,
            "set": args.set, "batch_size": config.trainer.batch_size, "device": args.device}


def run(args: argparse.Namespace) -> dict:
    images = select_images(args)
    points = parse_points(args.points)
    jobs = [(image, t, l) for t, l in points for image in images]
    start = time.perf_counter()
    if args.jobs > 1:
        # each spawned worker imports torch afresh: share the cores instead of oversubscribing
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // args.jobs))
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            entries = list(pool.map(one_point, *zip(*jobs), [args] * len(jobs)))
    else:
        entries = [one_point(image, t, l, args) for image, t, l in jobs]
    return {**describe(args), "wall_seconds": time.perf_counter() - start,
            "points": [{"log2_table_size": t, "lambda_end": l,
                        "rows": entries[k * len(images):(k + 1) * len(images)]}
                       for k, (t, l) in enumerate(points)]}


def load_earlier(args: argparse.Namespace) -> list[dict]:
    """The ``--merge`` results, checked against this run before any training starts."""
    this, written = describe(args), (args.out / "image_rd.json").resolve()
    earlier = []
    for path in args.merge:
        if path.resolve() == written:
            sys.exit(f"error: --merge {path}: this run writes that file; use another --out")
        try:
            other = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            sys.exit(f"error: --merge {path}: cannot read a benchmark result ({exc})")
        for key in ("images", "iterations", "batch_size", "set"):
            if other.get(key) != this[key]:
                sys.exit(f"error: --merge {path}: {key} {other.get(key)} differs from this run's "
                         f"{this[key]}")
        earlier.append(other)
    return earlier


def merge_results(result: dict, earlier: list[dict]) -> dict:
    """``result`` with the points of earlier runs added, sorted by table size."""
    for other in earlier:
        result["points"] += other["points"]
        result["wall_seconds"] += other["wall_seconds"]
    result["points"].sort(key=lambda p: (p["log2_table_size"], -p["lambda_end"]))
    return result


def summarise(result: dict) -> str:
    header = ["T", "lambda", "BPP", "SHACIRA", *[c.upper() for c in CODECS], "vs JPEG"]
    table = []
    for point in result["points"]:
        mean = {m: np.mean([r[m][1] for r in point["rows"]]) for m in ("shacira",) + CODECS}
        bpp = float(np.mean([r["shacira"][0] for r in point["rows"]]))
        table.append([f"2^{point['log2_table_size']}", f"{point['lambda_end']:g}", bpp,
                      float(mean["shacira"]), *[float(mean[c]) for c in CODECS],
                      f"{mean['shacira'] - mean['jpeg']:+.2f} dB"])
    return format_table(header, table)


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for method in ("shacira",) + CODECS:
        pts = [(np.mean([r[method][0] for r in p["rows"]]), np.mean([r[method][1] for r in p["rows"]]))
               for p in result["points"]]
        pts.sort()
        ax.plot(*zip(*pts), "o-", label=method.upper() if method != "shacira" else "SHACIRA (ours)")
    ax.set_xlabel("bits per pixel (file bytes)")
    ax.set_ylabel("PSNR (dB), mean over images")
    ax.set_title(f"Kodak {', '.join(result['images'])} - {result['iterations']} iterations")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    earlier = load_earlier(args)
    result = merge_results(run(args), earlier)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "image_rd.json").write_text(json.dumps(result, indent=2))
    plot(result, args.out / "image_rd.png")
    batch = (f"mini-batches of {result['batch_size']} pixels" if result["batch_size"]
             else "full-image batch")
    print(f"\nKodak images: {', '.join(result['images'])}; {result['iterations']} iterations per "
          f"point ({batch}, trainer.device={result['device']}); "
          f"wall time {result['wall_seconds']:.0f} s; overrides {result['set'] or 'none'}")
    print("PSNR (dB) at matched BPP, mean over images; codecs run at each SHACIRA point's BPP")
    print(summarise(result))
    print(f"plot: {args.out / 'image_rd.png'}")


if __name__ == "__main__":
    main(sys.argv[1:])
