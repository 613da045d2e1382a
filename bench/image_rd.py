"""Rate-distortion benchmark for images: SHACIRA vs JPEG, WebP and JPEG2000 (Pillow).

Every SHACIRA point is a real ``.shac`` file: BPP = file bytes * 8 / pixels and PSNR
is measured on the image decoded from that file. Each codec is then run on the same
image at the same BPP (closest setting not above it), and PSNR is averaged over the
images. With ``--entropy-models`` every rate point of every image is trained once per
entropy model (``grid.entropy_model``), each with its own output folder and its own
codec runs; two or more models also give the BD-rate of each model against the first
(``bench/bdrate.py``). Prints a table, saves a plot and a JSON file under
``bench/results/``. The points run as the jobs of a batch (``wisp_shacira.batch``, what
``wisp-shacira batch`` runs): one after another, or on Ray with ``--jobs N`` / ``--ray``;
each job's folder keeps a completion record, so a rerun of an interrupted benchmark
trains only the points that are missing.

    python bench/image_rd.py --images 4 --jobs 2     # configs/shacira_kodak.yaml: 4,000 steps
    python bench/image_rd.py --names kodim23 --points 10:2e-4,12:5e-5 --iterations 500
    python bench/image_rd.py --entropy-models factorized,context   # both models, BD-rate
    python bench/image_rd.py --points 15:1e-4 --merge earlier/image_rd.json --out both  # add a point
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np

ROOT = Path(__file__).resolve().parents[1]   # the repository: configs, results, ../shared

from baselines import pillow_codec_at_bpp  # noqa: E402  (bench/ is the script folder)
from bdrate import bd_psnr, bd_rate, model_labels, parse_models  # noqa: E402
from wisp_shacira.batch.jobs import Job, Point, plan_jobs  # noqa: E402
from wisp_shacira.batch.ray_pool import RayOptions, RayPool  # noqa: E402
from wisp_shacira.batch.runner import Sequential, run_batch  # noqa: E402
from wisp_shacira.cli.main import run_guarded  # noqa: E402
from wisp_shacira.tasks.report import format_table  # noqa: E402
from wisp_shacira.config import build_config, load_yaml, merge, parse_overrides  # noqa: E402
from wisp_shacira.tasks.image import AppConfig  # noqa: E402

CODECS = ("jpeg", "webp", "jpeg2000")
DEFAULT_POINTS = "11:1e-4,12:1e-4,13:1e-4,14:1e-4,15:1e-4"
DEFAULT_MODEL = "factorized"   # grid.entropy_model of files written before the key existed


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kodak", type=Path, default=ROOT.parent / "shared" / "data" / "kodak")
    parser.add_argument("--images", type=int, default=4, help="first N images of the folder")
    parser.add_argument("--names", default=None, help="comma-separated image stems instead")
    parser.add_argument("--iterations", type=int, default=None,
                        help="steps per point (default: the config's trainer.iterations)")
    parser.add_argument("--points", default=DEFAULT_POINTS,
                        help="rate points as log2_table_size:lambda_end, comma-separated")
    parser.add_argument("--entropy-models", default=DEFAULT_MODEL, metavar="LIST",
                        help="grid.entropy_model values, comma-separated (e.g. factorized,context); "
                             "every point runs once per model, BD-rates are against the first")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "shacira_kodak.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config override, e.g. --set nef.hidden_dim=32 (repeatable)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="jobs in parallel: above 1 they run on a local Ray instance of that "
                             "many CPUs (extra 'ray'), one CPU each")
    parser.add_argument("--ray", default=None, metavar="ADDRESS",
                        help="run the jobs on the Ray cluster at ADDRESS instead")
    parser.add_argument("--device", default="auto", help="trainer.device: auto, cpu or cuda")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "image_rd")
    parser.add_argument("--merge", type=Path, action="append", default=[], metavar="JSON",
                        help="an earlier run's image_rd.json (same images, steps and entropy "
                             "models) whose points join this table and plot (repeatable)")
    args = parser.parse_args(argv)
    args.models = parse_models(args.entropy_models)
    if any(item.partition("=")[0].strip() == "grid.entropy_model" for item in args.set):
        sys.exit("error: --set grid.entropy_model: give the models with --entropy-models")
    return args


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


def base_data(model: str, args) -> dict:
    """The benchmark config (``--config`` plus ``--set``) with one entropy model."""
    extra = parse_overrides([f"--{item}" for item in args.set])
    trainer = {"device": args.device}
    if args.iterations is not None:
        trainer["iterations"] = args.iterations
    return merge(merge(load_yaml(args.config), extra),
                 {"grid": {"entropy_model": model}, "trainer": trainer})


def rate_point(log2_t: int, lam: float) -> Point:
    """One rate point: table size 2^log2_t, lambda from 10 * ``lam`` down to ``lam``."""
    return Point(f"T{log2_t}_l{lam:g}", {"grid": {"log2_table_size": log2_t},
                                          "trainer": {"lambda_end": lam, "lambda_start": 10 * lam}})


def point_spec(point: Point) -> str:
    """``point`` as ``wisp-shacira batch --point`` takes it (``LABEL:KEY=VALUE,...``)."""
    items = [f"{section}.{key}={value!r}" for section, values in point.overrides.items()
             for key, value in values.items()]
    return f"{point.label}:{','.join(items)}"


def point_config(log2_t: int, lam: float, model: str, args) -> AppConfig:
    """The benchmark config at one rate point and entropy model."""
    return build_config(AppConfig, merge(base_data(model, args), rate_point(log2_t, lam).overrides))


def plan(args: argparse.Namespace) -> list[Job]:
    """Every image at every rate point with every entropy model, one batch job each
    (``OUT/LABEL/T<t>_l<lambda>/IMAGE/``)."""
    points = [rate_point(t, l) for t, l in parse_points(args.points)]
    jobs = []
    for model, label in zip(args.models, model_labels(args.models)):
        jobs += plan_jobs(base_data(model, args), select_images(args), points, args.out / label)
    return jobs


def with_codecs(row: dict, image: Path) -> dict:
    """A batch row of one image at one point, with the codecs at the same BPP."""
    if row["status"] == "failed":
        sys.exit(f"error: {row['job']} failed: {row.get('error')}")
    pixels = iio.imread(image)
    entry = {"name": image.stem, "shacira": (row["bpp"], row["psnr"]), "bytes": row["bytes"],
             "encode_seconds": row["encode_seconds"]}
    if "decode_seconds" in row:
        entry["decode_seconds"] = row["decode_seconds"]
    for codec in CODECS:
        bpp, psnr, _ = pillow_codec_at_bpp(pixels, codec, row["bpp"])
        entry[codec] = (bpp, psnr)
    print(f"{image.stem} {row['point']} [{row['output']}]: " + ", ".join(
        f"{m} {entry[m][1]:.2f} dB @ {entry[m][0]:.3f}" for m in ("shacira",) + CODECS), flush=True)
    return entry


def executor(args: argparse.Namespace):
    """One image after another (``--jobs 1``), else Ray: a local instance of ``--jobs`` CPUs
    or the cluster at ``--ray`` (one CPU a job)."""
    if args.jobs <= 1 and args.ray is None:
        return contextlib.nullcontext(Sequential())
    return RayPool(RayOptions(address=args.ray, cpus=None if args.ray else args.jobs))


def parse_points(text: str) -> list[tuple[int, float]]:
    """``"11:1e-4,12:5e-5"`` -> ``[(11, 1e-4), (12, 5e-5)]`` (log2 T, lambda_end)."""
    return [(int(t), float(l)) for t, l in (p.split(":") for p in text.split(","))]


def describe(args: argparse.Namespace) -> dict:
    """What a run of ``args`` is measured on: images, steps, batch, device, entropy models.

    Builds the config of every entropy model, so a bad model name stops before training."""
    first = parse_points(args.points)[0]
    configs = [point_config(*first, model, args) for model in args.models]
    config = configs[0]
    return {"images": [i.stem for i in select_images(args)], "iterations": config.trainer.iterations,
            "set": args.set, "batch_size": config.trainer.batch_size, "device": args.device,
            "entropy_models": args.models}


def run(args: argparse.Namespace) -> dict:
    jobs = plan(args)
    labels = model_labels(args.models)
    start = time.perf_counter()
    with executor(args) as pool:
        report = run_batch(jobs, args.out, pool)
    entries = [with_codecs(row, job.input) for row, job in zip(report["jobs"], jobs)]
    images, points = select_images(args), parse_points(args.points)
    per_label = len(points) * len(images)
    return {**describe(args), "wall_seconds": time.perf_counter() - start,
            "batch": {k: report[k] for k in ("executor", "counts", "wall_seconds", "cpu_seconds")},
            "points": [{"log2_table_size": t, "lambda_end": l,
                        "models": {label: entries[j * per_label + k * len(images):
                                                  j * per_label + (k + 1) * len(images)]
                                   for j, label in enumerate(labels)}}
                       for k, (t, l) in enumerate(points)]}


def upgrade(result: dict) -> dict:
    """A result written before ``--entropy-models`` (one ``rows`` list per point, the
    factorized model) in today's layout; today's results are returned as they are."""
    if "entropy_models" in result:
        return result
    points = [{key: value for key, value in point.items() if key != "rows"}
              | {"models": {DEFAULT_MODEL: point.get("rows", [])}}
              for point in result.get("points", [])]
    return {**result, "entropy_models": [DEFAULT_MODEL], "points": points}


def load_earlier(args: argparse.Namespace) -> list[dict]:
    """The ``--merge`` results, checked against this run before any training starts."""
    this, written = describe(args), (args.out / "image_rd.json").resolve()
    earlier = []
    for path in args.merge:
        if path.resolve() == written:
            sys.exit(f"error: --merge {path}: this run writes that file; use another --out")
        try:
            other = upgrade(json.loads(path.read_text()))
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            sys.exit(f"error: --merge {path}: cannot read a benchmark result ({exc})")
        for key in ("images", "iterations", "batch_size", "set"):
            if other.get(key) != this[key]:
                sys.exit(f"error: --merge {path}: {key} {other.get(key)} differs from this run's "
                         f"{this[key]}")
        if other["entropy_models"] != this["entropy_models"]:
            sys.exit(f"error: --merge {path}: entropy models {','.join(other['entropy_models'])} "
                     f"differ from this run's {','.join(this['entropy_models'])} (run with "
                     f"--entropy-models {','.join(other['entropy_models'])} to add points to it)")
        earlier.append(other)
    return earlier


def merge_results(result: dict, earlier: list[dict]) -> dict:
    """``result`` with the points of earlier runs added, sorted by table size."""
    for other in earlier:
        result["points"] += other["points"]
        result["wall_seconds"] += other["wall_seconds"]
    result["points"].sort(key=lambda p: (p["log2_table_size"], -p["lambda_end"]))
    return result


def mean_point(rows: list[dict], method: str) -> tuple[float, float]:
    """Mean (BPP, PSNR) over the images of ``method`` ("shacira" or a codec)."""
    return (float(np.mean([r[method][0] for r in rows])), float(np.mean([r[method][1] for r in rows])))


def mean_decode_seconds(rows: list[dict]) -> float | None:
    """Mean decode time over the images, None when the metrics had none."""
    times = [r["decode_seconds"] for r in rows if "decode_seconds" in r]
    return float(np.mean(times)) if times and len(times) == len(rows) else None


def labels_of(result: dict) -> list[str]:
    """The unique labels of a result's entropy-model runs (the keys of ``models``)."""
    return model_labels(result["entropy_models"])


def summarise(result: dict) -> str:
    """Per rate point: each model's mean BPP, PSNR, the codecs at its BPP and its decode
    time; with several models, one group of columns per model (its label heads the BPP)."""
    labels = labels_of(result)
    single = len(labels) == 1
    show_decode = any(mean_decode_seconds(p["models"][label]) is not None
                      for p in result["points"] for label in labels)
    header = ["T", "lambda"]
    for label in labels:
        header += ["BPP" if single else f"{label} BPP", "SHACIRA" if single else "PSNR",
                   *[c.upper() for c in CODECS]]
        header += ["vs JPEG"] if single else []
        header += ["decode s"] if show_decode else []
    table = []
    for point in result["points"]:
        line = [f"2^{point['log2_table_size']}", f"{point['lambda_end']:g}"]
        for label in labels:
            rows = point["models"][label]
            bpp, psnr = mean_point(rows, "shacira")
            codecs = [mean_point(rows, c)[1] for c in CODECS]
            line += [bpp, psnr, *codecs]
            line += [f"{psnr - codecs[0]:+.2f} dB"] if single else []
            line += [mean_decode_seconds(rows)] if show_decode else []
        table.append(line)
    return format_table(header, table)


def curve(result: dict, label: str, name: str | None, method: str = "shacira"
          ) -> list[tuple[float, float]]:
    """(BPP, PSNR) of ``label``'s points for image ``name`` (None: the mean over images)."""
    points = []
    for point in result["points"]:
        rows = [r for r in point["models"][label] if name is None or r["name"] == name]
        points.append(mean_point(rows, method))
    return points


def bd_text(function, anchor: list, test: list, unit: str) -> str:
    """``function(anchor, test)`` formatted with ``unit``, or ``n/a (why)``."""
    try:
        return f"{function(anchor, test):+.2f}{unit}"
    except ValueError as exc:
        return f"n/a ({exc})"


def bd_lines(result: dict) -> str:
    """BD-rate (and BD-PSNR) of every model against the first: per image, the mean over
    images of the per-image BD-rates, and the BD-rate of the mean curves."""
    labels = labels_of(result)
    anchor, lines = labels[0], []
    for label in labels[1:]:
        values = []
        for name in result["images"]:
            a, t = curve(result, anchor, name), curve(result, label, name)
            try:
                values.append(bd_rate(a, t))
            except ValueError:
                pass
            lines.append(f"  {label} vs {anchor}, {name}: BD-rate {bd_text(bd_rate, a, t, ' %')}, "
                         f"BD-PSNR {bd_text(bd_psnr, a, t, ' dB')}")
        mean = (f"{np.mean(values):+.2f} % ({len(values)} of {len(result['images'])} images)"
                if values else "n/a")
        a, t = curve(result, anchor, None), curve(result, label, None)
        lines.append(f"  {label} vs {anchor}, mean over images: BD-rate {mean}; of the mean "
                     f"curves: BD-rate {bd_text(bd_rate, a, t, ' %')}, "
                     f"BD-PSNR {bd_text(bd_psnr, a, t, ' dB')}")
    return "\n".join(lines)


def jpeg2000_lines(result: dict) -> str:
    """Per model: at how many rate points the mean PSNR is above JPEG2000's at the same BPP."""
    lines = []
    for label in labels_of(result):
        above = sum(mean_point(p["models"][label], "shacira")[1]
                    > mean_point(p["models"][label], "jpeg2000")[1] for p in result["points"])
        lines.append(f"  {label}: above JPEG2000 at {above} of {len(result['points'])} rate points")
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4.5))
    labels = labels_of(result)
    for label in labels:
        name = "SHACIRA (ours)" if len(labels) == 1 else f"SHACIRA {label}"
        ax.plot(*zip(*sorted(curve(result, label, None))), "o-", label=name)
    for codec in CODECS:   # each model's points lie on the codec's one curve
        pts = sorted(p for label in labels for p in curve(result, label, None, codec))
        ax.plot(*zip(*pts), "s--", markersize=4, label=codec.upper())
    ax.set_xlabel("bits per pixel (file bytes)")
    ax.set_ylabel("PSNR (dB), mean over images")
    ax.set_title(f"Kodak {', '.join(result['images'])} - {result['iterations']} iterations")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


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
          f"entropy models {', '.join(result['entropy_models'])}; "
          f"wall time {result['wall_seconds']:.0f} s; overrides {result['set'] or 'none'}")
    print("PSNR (dB) at matched BPP, mean over images; codecs run at each SHACIRA point's BPP"
          + ("" if len(result["entropy_models"]) == 1 else
             "; per entropy model: BPP, SHACIRA PSNR, the codecs at that BPP, decode s"))
    print(summarise(result))
    print("SHACIRA vs JPEG2000 (mean PSNR at the same BPP):")
    print(jpeg2000_lines(result))
    if len(result["entropy_models"]) > 1:
        print("BD-rate against the first entropy model (negative: fewer bits at equal PSNR; "
              "Akima interpolation):")
        print(bd_lines(result))
    print(f"plot: {args.out / 'image_rd.png'}")


if __name__ == "__main__":
    sys.exit(run_guarded(lambda: main(sys.argv[1:])))
