"""Video rate-distortion: SHACIRA vs H.264 and H.265 at the same bits per pixel.

For each SHACIRA rate point (a grid table size, ``--tables``) the video task trains on
the clip, writes the ``.shac`` file, decodes it from the file and measures PSNR (mean
over frames of the per-frame RGB PSNR), SSIM and BPP (file bytes * 8 / (T * H * W)).
H.264 and H.265 (libx264/libx265 from ``imageio-ffmpeg``, preset medium, yuv420p,
CRF searched for the best quality whose bitstream is not above SHACIRA's BPP) are
measured on the same frames with the same PSNR function, at each SHACIRA point's BPP.
``--entropy-models`` trains every rate point once per ``grid.entropy_model`` (default
``factorized``; each in its own folder); with two or more, each model's curve is compared
with the first's by BD-rate and BD-PSNR (``bench/bdrate.py``).

Usage::

    python bench/video_rd.py [--video ../shared/data/video/cockatoo.mp4] [--frames 16]
        [--downscale 4] [--iterations 1500] [--points 262144] [--tables 12,14,16]
        [--entropy-models factorized,context]

Prints a table, writes ``bench/results/video_rd.png`` (plot) and ``video_rd.json``
(``--results`` elsewhere).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from baselines import ffmpeg_codec_at_bpp  # noqa: E402
from bdrate import bd_psnr, bd_rate, model_labels, parse_models  # noqa: E402
from wisp_shacira.cli.main import run_guarded  # noqa: E402
from wisp_shacira.tasks.report import format_table  # noqa: E402
from wisp_shacira.config import load_config  # noqa: E402
from wisp_shacira.datasets.video import load_video_with_info  # noqa: E402
from wisp_shacira.tasks import video  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "video" / "cockatoo.mp4"
CODECS = ("h264", "h265")
LABELS = {"h264": "H.264 (x264)", "h265": "H.265 (x265)"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--frames", type=int, default=16, help="first N frames of the clip")
    parser.add_argument("--downscale", type=int, default=4, help="integer area downscale")
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--points", type=int, default=1 << 18,
                        help="random (x, y, t) samples per step (2^18 in the paper)")
    parser.add_argument("--rate-sample", type=int, default=1 << 16,
                        help="latent rows scored for the rate term per step")
    parser.add_argument("--tables", default="12,14,16",
                        help="log2 table sizes, one SHACIRA rate point each")
    parser.add_argument("--levels", type=int, default=16)
    parser.add_argument("--min-res", type=int, default=8)
    parser.add_argument("--max-res", type=int, default=0,
                        help="finest grid resolution; 0 = the larger frame side")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "shacira_video.yaml",
                        help="base config; the options above override it")
    parser.add_argument("--entropy-models", default="factorized", metavar="LIST",
                        help="grid.entropy_model values, comma-separated (e.g. factorized,context); "
                             "every rate point runs once per model, BD-rates are against the first")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "video_rd",
                        help="training runs (one folder per entropy model and table size)")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="where video_rd.json and video_rd.png go")
    args = parser.parse_args()
    args.models = parse_models(args.entropy_models)
    return args


def point_config(args: argparse.Namespace, log2_table: int, max_res: int, model: str
                 ) -> video.AppConfig:
    """The config of one rate point with one entropy model."""
    overrides = {
        "dataset.path": str(args.video), "dataset.frame_end": args.frames,
        "dataset.downscale": args.downscale, "trainer.iterations": args.iterations,
        "trainer.batch_size": args.points, "trainer.rate_sample": args.rate_sample,
        "trainer.log_every": 100,
        "grid.log2_table_size": log2_table, "grid.num_levels": args.levels,
        "grid.min_res": args.min_res, "grid.max_res": max_res, "grid.entropy_model": model,
    }
    return load_config(video.AppConfig, args.config,
                       [f"--{key}={value}" for key, value in overrides.items()])


def shacira_point(args: argparse.Namespace, log2_table: int, max_res: int, model: str,
                  label: str) -> dict:
    """Train, export and decode one rate point; returns the video task's report."""
    cfg = point_config(args, log2_table, max_res, model)
    return video.run(cfg, args.out / label / f"t{log2_table}")


def measure(args: argparse.Namespace, frames, fps: float, log2_table: int, max_res: int,
            model: str, label: str) -> dict:
    """One SHACIRA point and the codecs at its BPP."""
    report = shacira_point(args, log2_table, max_res, model, label)
    entry = {"shacira": {k: report[k] for k in ("bpp", "psnr", "ssim", "bytes",
                                                "encode_seconds_per_frame", "decode_seconds",
                                                "decode_matches")}}
    for codec in CODECS:
        bpp, psnr_db, ssim_value = ffmpeg_codec_at_bpp(frames, codec, report["bpp"], fps)
        entry[codec] = {"bpp": bpp, "psnr": psnr_db, "ssim": ssim_value}
    print(f"T=2^{log2_table} [{label}]: SHACIRA {report['psnr']:.2f} dB at {report['bpp']:.4f} "
          f"bpp ({report['bytes']} bytes), H.264 {entry['h264']['psnr']:.2f} dB, "
          f"H.265 {entry['h265']['psnr']:.2f} dB", flush=True)
    return entry


def plot(rows: list[dict], labels: list[str], title: str, path: Path) -> None:
    """PSNR vs BPP of every entropy model and codec (a codec's points at every model's BPP
    form its one curve)."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for label in labels:
        points = sorted((r["models"][label]["shacira"]["bpp"], r["models"][label]["shacira"]["psnr"])
                        for r in rows)
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-",
                label="SHACIRA (ours)" if len(labels) == 1 else f"SHACIRA {label}")
    for codec, marker in zip(CODECS, ("s--", "^--")):
        points = sorted((m[codec]["bpp"], m[codec]["psnr"]) for r in rows
                        for m in r["models"].values())
        ax.plot([p[0] for p in points], [p[1] for p in points], marker, label=LABELS[codec])
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel("PSNR (dB, mean over frames)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def codec_table(rows: list[dict], labels: list[str]) -> str:
    """One line per rate point and model: SHACIRA and the codecs at its BPP."""
    header = ["T", "model", "BPP", "SHACIRA PSNR", "SSIM", "enc s/frame", "dec s", "H.264 BPP",
              "H.264 PSNR", "H.265 BPP", "H.265 PSNR", "gap to H.265 dB"]
    table = []
    for r in rows:
        for label in labels:
            m = r["models"][label]
            sh = m["shacira"]
            table.append([f"2^{r['log2_table']}", label, sh["bpp"], sh["psnr"], sh["ssim"],
                          sh["encode_seconds_per_frame"], sh["decode_seconds"], m["h264"]["bpp"],
                          m["h264"]["psnr"], m["h265"]["bpp"], m["h265"]["psnr"],
                          sh["psnr"] - m["h265"]["psnr"]])
    return format_table(header, table)


def models_table(rows: list[dict], labels: list[str]) -> str:
    """Per rate point: file bytes and PSNR of each entropy model side by side."""
    header = ["T"]
    for label in labels:
        header += [f"{label} bytes", "PSNR"]
    table = []
    for r in rows:
        line = [f"2^{r['log2_table']}"]
        for label in labels:
            line += [r["models"][label]["shacira"]["bytes"], r["models"][label]["shacira"]["psnr"]]
        table.append(line)
    return format_table(header, table)


def bd_lines(rows: list[dict], labels: list[str]) -> tuple[str, dict]:
    """BD-rate (bytes saved at equal PSNR) and BD-PSNR of each model against the first,
    as text and as ``{label: {"bd_rate_percent": .., "bd_psnr_db": ..}}`` (None: n/a)."""
    def curve(label: str) -> list[tuple[float, float]]:
        return [(r["models"][label]["shacira"]["bpp"], r["models"][label]["shacira"]["psnr"])
                for r in rows]

    lines, values = [], {}
    for label in labels[1:]:
        parts, values[label] = [], {}
        for key, name, function, unit in (("bd_rate_percent", "BD-rate", bd_rate, "%"),
                                          ("bd_psnr_db", "BD-PSNR", bd_psnr, "dB")):
            try:
                values[label][key] = function(curve(labels[0]), curve(label))
                parts.append(f"{name} {values[label][key]:+.2f} {unit}")
            except ValueError as exc:
                values[label][key] = None
                parts.append(f"{name} n/a ({exc})")
        lines.append(f"{label} vs {labels[0]}: " + ", ".join(parts))
    return "\n".join(lines), values


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    frames, info = load_video_with_info(args.video, 0, args.frames, 1, args.downscale)
    num_frames, height, width, _ = frames.shape
    max_res = args.max_res or max(height, width)
    setting = (f"{args.video.name}: frames 0..{num_frames - 1}, downscale {args.downscale} "
               f"-> {width}x{height} at {info.fps:g} fps; {args.iterations} iterations of "
               f"{args.points} random points, rate sampled on {args.rate_sample} latent rows; "
               f"grid L={args.levels}, res {args.min_res}..{max_res}; "
               f"{torch.get_num_threads()} torch threads")
    print(setting, flush=True)
    tables = [int(t) for t in args.tables.split(",")]
    labels = model_labels(args.models)
    for model in args.models:                  # every config checked before any training
        point_config(args, tables[0], max_res, model)
    rows = [{"log2_table": log2_table,
             "models": {label: measure(args, frames, info.fps, log2_table, max_res, model, label)
                        for model, label in zip(args.models, labels)}}
            for log2_table in tables]
    wall = time.perf_counter() - start
    print()
    print(setting + f"; entropy models {', '.join(args.models)}")
    print(codec_table(rows, labels))
    bd, bd_values = "", {}
    if len(labels) > 1:
        print("\nentropy models (grid.entropy_model): file bytes and PSNR")
        print(models_table(rows, labels))
        bd, bd_values = bd_lines(rows, labels)
        print("bytes saved at equal PSNR (BD-rate, negative: fewer bytes) and BD-PSNR, Akima "
              "interpolation:")
        print(bd)
    print(f"wall time {wall:.0f} s")
    args.results.mkdir(parents=True, exist_ok=True)
    plot(rows, labels, setting.split(";")[0], args.results / "video_rd.png")
    (args.results / "video_rd.json").write_text(json.dumps(
        {"setting": setting, "entropy_models": args.models, "wall_seconds": wall, "rows": rows,
         "bd_vs_first": bd_values}, indent=2) + "\n")
    print(f"plot: {args.results / 'video_rd.png'}")


if __name__ == "__main__":
    sys.exit(run_guarded(main))
