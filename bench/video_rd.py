"""Video rate-distortion: SHACIRA vs H.264 and H.265 at the same bits per pixel.

For each SHACIRA rate point (a grid table size, ``--tables``) the video task trains on
the clip, writes the ``.shac`` file, decodes it from the file and measures PSNR (mean
over frames of the per-frame RGB PSNR), SSIM and BPP (file bytes * 8 / (T * H * W)).
H.264 and H.265 (libx264/libx265 from ``imageio-ffmpeg``, preset medium, yuv420p,
CRF searched for the best quality whose bitstream is not above SHACIRA's BPP) are
measured on the same frames with the same PSNR function.

Usage::

    python bench/video_rd.py [--video ../shared/data/video/cockatoo.mp4] [--frames 16]
        [--downscale 4] [--iterations 1500] [--points 262144] [--tables 12,14,16]

Prints a table, writes ``bench/results/video_rd.png`` (plot) and ``video_rd.json``.
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
from wisp_shacira.cli.main import run_guarded  # noqa: E402
from wisp_shacira.tasks.report import format_table  # noqa: E402
from wisp_shacira.config import load_config  # noqa: E402
from wisp_shacira.datasets.video import load_video_with_info  # noqa: E402
from wisp_shacira.tasks import video  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "video" / "cockatoo.mp4"
CODECS = ("h264", "h265")


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
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "video_rd")
    return parser.parse_args()


def shacira_point(args: argparse.Namespace, log2_table: int, max_res: int) -> dict:
    """Train, export and decode one rate point; returns the video task's report."""
    overrides = {
        "dataset.path": str(args.video), "dataset.frame_end": args.frames,
        "dataset.downscale": args.downscale, "trainer.iterations": args.iterations,
        "trainer.batch_size": args.points, "trainer.rate_sample": args.rate_sample,
        "trainer.log_every": 100,
        "grid.log2_table_size": log2_table, "grid.num_levels": args.levels,
        "grid.min_res": args.min_res, "grid.max_res": max_res,
    }
    cfg = load_config(video.AppConfig, args.config,
                      [f"--{key}={value}" for key, value in overrides.items()])
    return video.run(cfg, args.out / f"t{log2_table}")


def plot(rows: list[dict], title: str, path: Path) -> None:
    """PSNR vs BPP of every method."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for method, marker in (("shacira", "o-"), ("h264", "s--"), ("h265", "^--")):
        points = sorted((r[method]["bpp"], r[method]["psnr"]) for r in rows)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker,
                label={"shacira": "SHACIRA (ours)", "h264": "H.264 (x264)",
                       "h265": "H.265 (x265)"}[method])
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel("PSNR (dB, mean over frames)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


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
    rows = []
    for log2_table in (int(t) for t in args.tables.split(",")):
        report = shacira_point(args, log2_table, max_res)
        row = {"log2_table": log2_table,
               "shacira": {k: report[k] for k in ("bpp", "psnr", "ssim", "bytes",
                                                  "encode_seconds_per_frame", "decode_seconds",
                                                  "decode_matches")}}
        for codec in CODECS:
            bpp, psnr_db, ssim_value = ffmpeg_codec_at_bpp(frames, codec, report["bpp"], info.fps)
            row[codec] = {"bpp": bpp, "psnr": psnr_db, "ssim": ssim_value}
        rows.append(row)
        print(f"T=2^{log2_table}: SHACIRA {report['psnr']:.2f} dB at {report['bpp']:.4f} bpp, "
              f"H.264 {row['h264']['psnr']:.2f} dB, H.265 {row['h265']['psnr']:.2f} dB", flush=True)
    wall = time.perf_counter() - start
    header = ["T", "BPP", "SHACIRA PSNR", "SSIM", "enc s/frame", "H.264 BPP", "H.264 PSNR",
              "H.265 BPP", "H.265 PSNR", "gap to H.265 dB"]
    table = [[f"2^{r['log2_table']}", r["shacira"]["bpp"], r["shacira"]["psnr"],
              r["shacira"]["ssim"], r["shacira"]["encode_seconds_per_frame"], r["h264"]["bpp"],
              r["h264"]["psnr"], r["h265"]["bpp"], r["h265"]["psnr"],
              r["shacira"]["psnr"] - r["h265"]["psnr"]] for r in rows]
    print()
    print(setting)
    print(format_table(header, table))
    print(f"wall time {wall:.0f} s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    plot(rows, setting.split(";")[0], RESULTS / "video_rd.png")
    (RESULTS / "video_rd.json").write_text(json.dumps(
        {"setting": setting, "wall_seconds": wall, "rows": rows}, indent=2) + "\n")
    print(f"plot: {RESULTS / 'video_rd.png'}")


if __name__ == "__main__":
    sys.exit(run_guarded(main))
