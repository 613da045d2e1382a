"""Gigapixel benchmark: SHACIRA on a real 258-Mpixel mosaic against JPEG / JPEG 2000
and an uncompressed float grid (``mosaic``), and memory and time of training and
decoding at 1/16, 1/4 and 1 Gpixel (``scale``).

Both build their inputs themselves and say what they built:

- ``mosaic``: all 280 frames of ``../shared/data/video/cockatoo.mp4`` (1280x720) tiled
  20 x 14 into one 25600x10080 RGB image (258 Mpixels), written as a strip TIFF (so it
  is memory-mapped). Every SHACIRA point is trained by ``wisp-shacira encode --config
  shacira_gigapixel`` in its own process (peak memory from ``wait4``); BPP is the file's
  bytes and PSNR/SSIM come from the decode of that file. JPEG (Pillow/libjpeg, quality
  binary-searched to the largest BPP not above SHACIRA's) and JPEG 2000 (Pillow/OpenJPEG,
  9/7 wavelet, one layer at ratio 24/BPP, 8192x8192 tiles so OpenJPEG's memory stays
  bounded) run on the same pixels. The float grid is the same grid with
  ``grid.compressed: false`` (its file is the float32 parameters).
- ``scale``: a 32768x32768 canvas (1.07 Gpixels): the mosaic in its top-left corner, the
  rest a procedural rendering with detail at every scale (16 octaves of oriented
  sinusoids, periods 2 px to 64 kpx); the 1/16 and 1/4 sizes are its top-left
  8192^2 and 16384^2 crops. Per size: a few training steps in a child process (peak RSS,
  seconds per step, pixels per second), then ``wisp-shacira decode`` of the whole image
  to a tiled BigTIFF, of a 1024x1024 region, and of a 1/64 preview (``--downscale 8``),
  each a fresh process timed from start to exit with its peak RSS; and the same region
  and preview rendered from a model already loaded (as in the viewer: best of 3).

Prints tables, saves JSON and plots under ``bench/results/gigapixel/``:

    python bench/gigapixel.py mosaic --steps 800 --points 23:1e-4,22:1e-4 --float-grid
    python bench/gigapixel.py scale --steps 10
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from gigapixel_inputs import build_canvas, build_mosaic, crop_tiff  # noqa: E402
from gigapixel_codecs import codec_point  # noqa: E402
from wisp_shacira.tasks.report import format_table  # noqa: E402

OUT = ROOT / "bench" / "results" / "gigapixel"
VIDEO = ROOT.parent / "shared" / "data" / "video" / "cockatoo.mp4"


def _peak_rss(pid: int) -> int:
    """``VmHWM`` of a running process in bytes (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def timed_process(argv: list[str]) -> dict:
    """Run ``argv``; its wall seconds, peak RSS and exit code.

    The peak is the child's own ``VmHWM`` (read every 50 ms until it exits): ``wait4``'s
    ``ru_maxrss`` would also count the memory this process had when it forked, since
    Linux carries it over ``exec``. Pages of a memory-mapped input count once touched.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak, chunks = 0, []
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()), daemon=True)
    reader.start()
    while proc.poll() is None:
        peak = max(peak, _peak_rss(proc.pid))
        time.sleep(0.05)
    reader.join()
    output = b"".join(chunks).decode(errors="replace")
    result = {"seconds": time.perf_counter() - start, "peak_rss": peak, "rc": proc.returncode}
    if proc.returncode != 0:
        tail = "\n".join(line for line in output.splitlines() if "it/s" not in line)[-2000:]
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{tail}")
    return result


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "wisp_shacira.cli.main", *args]


def encode_point(image: Path, out: Path, log2_t: int, lam: float, steps: int,
                 max_res: int) -> dict:
    """One SHACIRA point: train, write, decode, measure (``wisp-shacira encode``)."""
    args = ["encode", "--config", "shacira_gigapixel", "--dataset.path", str(image),
            "--grid.log2_table_size", str(log2_t), "--grid.max_res", str(max_res),
            "--trainer.iterations", str(steps), "--trainer.lambda_start", str(lam),
            "--trainer.lambda_end", str(lam), "--output", str(out)]
    proc = timed_process(_cli(*args))
    row = json.loads((out / "metrics.json").read_text())["images"][0]
    row.pop("rate", None)
    return {**row, **{f"process_{k}": v for k, v in proc.items()}, "log2_t": log2_t,
            "lambda": lam, "steps": steps, "compressed": True}


def train_child(image: Path, out: Path, steps: int, max_res: int, *extra: str) -> dict:
    """``bench/gigapixel_train.py`` in a child process: its stats and process figures."""
    proc = timed_process([sys.executable, str(ROOT / "bench" / "gigapixel_train.py"),
                          str(image), str(out), "--steps", str(steps), "--max-res",
                          str(max_res), *extra])
    stats = json.loads((out / "stats.json").read_text())
    return {**stats, **{f"process_{k}": v for k, v in proc.items()}}


def float_point(image: Path, out: Path, log2_t: int, steps: int, max_res: int) -> dict:
    """The uncompressed float grid of the same shape (size: float16 parameters)."""
    stats = train_child(image, out, steps, max_res, "--log2-t", str(log2_t), "--float-grid")
    return {**stats, "bytes": stats["bytes_fp16"], "train_pixels_per_second":
            stats["pixels_per_second"], "log2_t": log2_t, "lambda": 0.0, "compressed": False}


def run_mosaic(args: argparse.Namespace) -> None:
    out = args.out / "mosaic"
    image = build_mosaic(VIDEO, out / "inputs" / "cockatoo_mosaic.tif", args.frames)
    print(f"input: {image.description}")
    points = [(int(t), float(lam)) for t, lam in (p.split(":") for p in args.points.split(","))]
    rows = []
    for log2_t, lam in points:
        rows.append(encode_point(image.path, out / f"T{log2_t}_l{lam:g}", log2_t, lam,
                                 args.steps, image.max_res))
        for codec in ("jpeg", "jpeg2000"):
            rows[-1][codec] = codec_point(image.path, codec, rows[-1]["bpp"])
        (out / "mosaic.json").write_text(json.dumps(rows, indent=2))
    if args.float_grid:
        rows.append(float_point(image.path, out / "float_grid", points[0][0], args.steps,
                                image.max_res))
    (out / "mosaic.json").write_text(json.dumps({"input": image.description, "rows": rows},
                                                indent=2))
    print(mosaic_table(rows))
    plot_mosaic(rows, out / "mosaic_rd.png")


def mosaic_table(rows: list[dict]) -> str:
    table = []
    for r in rows:
        jpeg, j2k = r.get("jpeg", {}), r.get("jpeg2000", {})
        table.append(["float grid" if not r["compressed"] else f"2^{r['log2_t']} l{r['lambda']:g}",
                      r["steps"], r["bpp"], r["bytes"], r["psnr"], r["ssim"],
                      jpeg.get("bpp", "-"), jpeg.get("psnr", "-"), j2k.get("bpp", "-"),
                      j2k.get("psnr", "-"), r["train_pixels_per_second"], r["process_seconds"],
                      r["process_peak_rss"] / 2**30])
    return format_table(["point", "steps", "BPP", "bytes", "PSNR", "SSIM", "JPEG BPP", "JPEG PSNR",
                         "J2K BPP", "J2K PSNR", "train px/s", "wall s", "peak GiB"], table)


def run_scale(args: argparse.Namespace) -> None:
    out = args.out / "scale"
    canvas = build_canvas(VIDEO, out / "inputs", args.frames)
    print(f"input: {canvas.description}")
    rows = []
    for side in args.sizes:
        image = canvas.path if side == canvas.side else crop_tiff(canvas.path, side, out / "inputs")
        rows.append(scale_point(image, side, out / f"s{side}", args.steps))
        (out / "scale.json").write_text(json.dumps({"input": canvas.description, "rows": rows},
                                                   indent=2))
        print(scale_table(rows))
    plot_scale(rows, out / "scale.png")


def scale_point(image: Path, side: int, out: Path, steps: int) -> dict:
    """Training and decoding memory/time of one size (each step a fresh process)."""
    out.mkdir(parents=True, exist_ok=True)
    shac = out / "model.shac"
    stats = train_child(image, out, steps, side // 2)
    full = timed_process(_cli("decode", str(shac), "-o", str(out / "full.tif"), "--force"))
    region = timed_process(_cli("decode", str(shac), "-o", str(out / "region.png"), "--force",
                                "--region", f"{side // 2},{side // 2},1024,1024"))
    preview = timed_process(_cli("decode", str(shac), "-o", str(out / "preview.png"),
                                 "--force", "--downscale", "8"))
    (out / "full.tif").unlink(missing_ok=True)
    warm = subprocess.run([sys.executable, str(ROOT / "bench" / "gigapixel_warm.py"), str(shac)],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    return {"warm": json.loads(warm.stdout.strip().splitlines()[-1]),"side": side, "pixels": side * side, "uint8_bytes": side * side * 3,
            **stats, "decode_full": full, "decode_region": region,
            "decode_preview": preview}


def scale_table(rows: list[dict]) -> str:
    table = [[f"{r['side']}^2", r["pixels"] / 1e6, r["uint8_bytes"] / 2**30,
              r["process_peak_rss"] / 2**30, r["grid_state_bytes"] / 2**30,
              r["seconds_per_step"], r["pixels_per_second"],
              r["decode_full"]["seconds"], r["decode_full"]["peak_rss"] / 2**30,
              r["decode_region"]["seconds"], r["decode_preview"]["seconds"],
              r["warm"]["region_1024_seconds"], r["warm"]["preview_1_64_seconds"]] for r in rows]
    return format_table(["size", "Mpx", "uint8 GiB", "train peak GiB", "grid+Adam GiB",
                         "s/step", "train px/s", "full decode s", "decode peak GiB",
                         "1024^2 region s", "1/64 preview s", "warm region s",
                         "warm preview s"], table)


def plot_mosaic(rows: list[dict], path: Path) -> None:
    """PSNR vs BPP of SHACIRA, JPEG, JPEG 2000 and the float grid."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shac = [r for r in rows if r["compressed"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["bpp"] for r in shac], [r["psnr"] for r in shac], "o-", label="SHACIRA")
    for codec, label in (("jpeg", "JPEG"), ("jpeg2000", "JPEG 2000")):
        ax.plot([r[codec]["bpp"] for r in shac], [r[codec]["psnr"] for r in shac], "s--",
                label=label)
    for r in rows:
        if not r["compressed"]:
            ax.plot([r["bpp"]], [r["psnr"]], "k*", markersize=10, label="float grid (fp16)")
    ax.set(xlabel="bits per pixel", ylabel="PSNR (dB)", xscale="log",
           title="258-Mpixel cockatoo mosaic")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_scale(rows: list[dict], path: Path) -> None:
    """Peak memory and decode time against the pixel count."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pixels = [r["pixels"] / 1e6 for r in rows]
    fig, (mem, sec) = plt.subplots(1, 2, figsize=(10, 4))
    mem.plot(pixels, [r["process_peak_rss"] / 2**30 for r in rows], "o-", label="training peak")
    mem.plot(pixels, [r["decode_full"]["peak_rss"] / 2**30 for r in rows], "s-",
             label="full decode peak")
    mem.plot(pixels, [2 * r["uint8_bytes"] / 2**30 for r in rows], "k:", label="2x uint8 image")
    sec.plot(pixels, [r["decode_full"]["seconds"] for r in rows], "s-", label="full decode")
    sec.plot(pixels, [r["decode_region"]["seconds"] for r in rows], "o-", label="1024^2 region")
    sec.plot(pixels, [r["decode_preview"]["seconds"] for r in rows], "^-", label="1/64 preview")
    mem.set(xlabel="Mpixels", ylabel="GiB")
    sec.set(xlabel="Mpixels", ylabel="seconds (fresh process)")
    for ax in (mem, sec):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("mosaic", "scale"))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--frames", type=int, default=280, help="cockatoo frames in the mosaic")
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--points", default="23:1e-4,22:1e-4",
                        help="mosaic: rate points log2_table_size:lambda, comma-separated")
    parser.add_argument("--float-grid", action="store_true",
                        help="mosaic: also train the uncompressed float grid")
    parser.add_argument("--sizes", type=lambda s: [int(v) for v in s.split(",")],
                        default=[8192, 16384, 32768], help="scale: image sides")
    args = parser.parse_args(argv)
    (run_mosaic if args.mode == "mosaic" else run_scale)(args)


if __name__ == "__main__":
    main()
