"""Data-parallel training benchmark: 1 process against N processes (torchrun, gloo) at
equal total samples per step (the same config: every process draws the same global
batch and trains on its slice), same steps.

Per run: PSNR and bytes of the decoded file, wall time, training time, median time per
step, and what was all-reduced each step (bytes, the dense alternative, steps that sent
only touched rows). Prints a table and writes ``bench/results/distributed/<label>.json``.
The processes share the cores: the single process gets ``--threads`` torch threads, each
of the N processes ``--threads / N``.

    python bench/distributed.py                           # kodim23, shacira_kodak, 500 steps
    python bench/distributed.py --iterations 2000 --repeats 3
    python bench/distributed.py --set grid.log2_table_size=16     # a larger table
    python bench/distributed.py --large --iterations 20   # shacira_gigapixel (2^23, 41M rows)
                                                          # on a generated 2048^2 image

The bench reads ``../shared`` and writes only its JSON (runs go to a temporary folder
unless ``--keep DIR``).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]   # the repository: configs, results, ../shared
DEFAULT_IMAGE = ROOT.parent / "shared" / "data" / "kodak" / "kodim23.png"
WARMUP_STEPS = 3
"""Steps left out of the median step time (plans, numba compilation, allocator)."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, default=None,
                        help=f"input image (default {DEFAULT_IMAGE.name}; --large: generated)")
    parser.add_argument("--config", default=None,
                        help="config (default configs/shacira_kodak.yaml; --large: "
                             "configs/shacira_gigapixel.yaml)")
    parser.add_argument("--iterations", type=int, default=None,
                        help="steps per run (default 500; --large: 20)")
    parser.add_argument("--processes", type=int, default=2, help="N, the data-parallel run")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each, for the spread")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch threads in all (split among the N processes)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for both runs (repeatable)")
    parser.add_argument("--large", action="store_true",
                        help="the gigapixel config (2^23 table, 41M rows) on a generated image")
    parser.add_argument("--large-size", type=int, default=2048, help="side of that image")
    parser.add_argument("--label", default=None, help="JSON name (default from the settings)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "distributed")
    parser.add_argument("--keep", type=Path, default=None, help="keep the runs' outputs here")
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    default = "shacira_gigapixel.yaml" if args.large else "shacira_kodak.yaml"
    args.config = args.config or str(ROOT / "configs" / default)
    args.iterations = args.iterations or (20 if args.large else 500)
    return args


def overrides(args: argparse.Namespace, image: Path, out: Path) -> list[str]:
    """The config overrides of every run: input, output, steps, ``--set`` pairs."""
    pairs = [("dataset.path", str(image)), ("output", str(out)),
             ("trainer.iterations", str(args.iterations))]
    if args.large:
        pairs.append(("dataset.out_of_core", "always"))
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item}: expected KEY=VALUE")
        pairs.append((key, value))
    return [part for key, value in pairs for part in (f"--{key}", value)]


def worker(args: argparse.Namespace, rest: list[str]) -> None:
    """One process of a run (under torchrun when WORLD_SIZE > 1): train, export, decode;
    rank 0 writes ``bench.json`` into the output folder."""
    import torch

    from wisp_shacira.cli.encode import load_run_config
    from wisp_shacira.train.distributed import process_group, world_from_env
    from wisp_shacira.train.rd import RDTrainer, resolve_device

    torch.set_num_threads(args.worker_threads)
    task, cfg = load_run_config(args.config, rest)
    durations: list[float] = []
    step = RDTrainer.step

    def timed_step(self: RDTrainer, distortion):  # noqa: ANN001, ANN202
        start = time.perf_counter()
        stats = step(self, distortion)
        durations.append(time.perf_counter() - start)
        return stats

    RDTrainer.step = timed_step  # type: ignore[method-assign]
    if world_from_env() > 1:
        with process_group(resolve_device(cfg.trainer.device)) as parallel:
            report, main = task.run(cfg, args.worker, parallel=parallel), parallel.is_main
    else:
        report, main = task.run(cfg, args.worker), True
    if main:
        row = report["images"][0]
        timing = {"train_seconds": sum(durations), "steps": len(durations),
                  "median_step_seconds": statistics.median(durations[WARMUP_STEPS:]
                                                           or durations)}
        data = {"psnr": row["psnr"], "bytes": row["bytes"], "bpp": row["bpp"],
                "encode_seconds": row["encode_seconds"], **timing,
                "distributed": report.get("distributed")}
        (args.worker / "bench.json").write_text(json.dumps(data, indent=2))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_one(args: argparse.Namespace, world: int, image: Path, out: Path) -> dict:
    """One run of ``world`` processes; its ``bench.json`` plus the wall time."""
    threads = max(1, args.threads // world)
    script = [str(Path(__file__).resolve()), "--worker", str(out),
              "--worker-threads", str(threads), "--config", args.config,
              *(["--large"] if args.large else []), "--iterations", str(args.iterations)]
    launcher = [sys.executable] if world == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(world),
        "--master-port", str(_free_port())]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TQDM_DISABLE": "1"}
    start = time.perf_counter()
    done = subprocess.run([*launcher, *script, "--", *overrides(args, image, out)], env=env,
                          cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"run with {world} process(es) failed:\n{done.stderr[-4000:]}")
    return {"world": world, "threads_per_process": threads, "wall_seconds": wall,
            **json.loads((out / "bench.json").read_text())}


def generated_image(folder: Path, side: int) -> Path:
    """A ``side x side`` RGB PNG: smooth gradients, stripes and a little noise."""
    from PIL import Image
    yy, xx = np.mgrid[0:side, 0:side] / side
    rng = np.random.default_rng(0)
    base = 0.5 + 0.25 * np.sin(40 * xx * (1 + yy)) * np.cos(25 * yy)
    pixels = np.stack([base, 0.5 + 0.4 * (xx - yy), 1 - base], -1)
    pixels += rng.normal(0, 0.02, pixels.shape)
    path = folder / f"generated_{side}.png"
    Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8)).save(path)
    return path


def _spread(values: list[float]) -> str:
    mean = statistics.fmean(values)
    return f"{mean:.4g}" if len(values) < 2 else f"{mean:.4g} ± {statistics.stdev(values):.2g}"


def table(rows: list[dict]) -> str:
    """One line per world size: means (± std over repeats)."""
    from wisp_shacira.tasks.report import format_table
    lines = []
    for world in sorted({r["world"] for r in rows}):
        mine = [r for r in rows if r["world"] == world]
        dist = [r["distributed"] or {} for r in mine]
        lines.append([world, mine[0]["threads_per_process"],
                      _spread([r["psnr"] for r in mine]), _spread([r["bytes"] for r in mine]),
                      _spread([r["wall_seconds"] for r in mine]),
                      _spread([r["train_seconds"] for r in mine]),
                      _spread([r["median_step_seconds"] for r in mine]),
                      _spread([d.get("reduced_bytes_per_step", 0) for d in dist]),
                      _spread([d.get("dense_bytes_per_step", 0) for d in dist]),
                      _spread([d.get("sparse_steps", 0) for d in dist]),
                      _spread([d.get("reduce_seconds_per_step", 0) for d in dist])])
    return format_table(["procs", "threads", "PSNR", "bytes", "wall s", "train s", "s/step",
                         "reduced B/step", "dense B/step", "sparse steps", "reduce s/step"],
                        lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    own, rest = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv \
        else (argv, [])
    args = parse_args(own)
    if args.worker is not None:
        worker(args, rest)
        return
    with tempfile.TemporaryDirectory(prefix="bench_distributed_") as tmp:
        runs = args.keep or Path(tmp)
        image = args.image or (generated_image(Path(tmp), args.large_size) if args.large
                               else DEFAULT_IMAGE)
        rows = [run_one(args, world, image, runs / f"p{world}_r{repeat}")
                for repeat in range(args.repeats) for world in (1, args.processes)]
    label = args.label or "_".join([("large" if args.large else Path(image).stem),
                                    f"it{args.iterations}", *(s.replace("=", "")
                                                              for s in args.set)])
    print(table(rows))
    summary = {"args": {k: str(v) for k, v in vars(args).items()}, "image": str(image),
               "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{label}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.out / (label + '.json')}")


if __name__ == "__main__":
    main()
