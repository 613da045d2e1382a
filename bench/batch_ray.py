"""Batch compression through Ray against one job after another, and resuming a killed run.

The Kodak benchmark's images x rate points (``configs/shacira_kodak.yaml``, the points of
``bench/image_rd.py``) run as ``wisp-shacira batch`` commands in subprocesses:

1. one after another in one process, one torch thread (the files Ray must reproduce);
2. one after another with every core's threads (the usual way to run one job at a time);
3. on a local Ray instance of every core, one CPU a job (``--ray``);
4. on Ray again, the driver killed (SIGKILL to its process group: driver, Ray and its
   workers) once ``--kill-after`` jobs have finished, then rerun: the rerun must reuse
   every finished job and recompute only the rest.

Wall time, CPU use (the CPU seconds the jobs' processes spent / (wall time x cores)) and
whether each run's files are byte-identical to run 1's are printed as a table and saved
(JSON, bar plot) under ``bench/results/batch_ray/``.

    python bench/batch_ray.py                     # 4 images x 5 points, 100 steps a job
    python bench/batch_ray.py --images 2 --points 11:1e-4,12:1e-4 --iterations 20   # smoke
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from image_rd import DEFAULT_POINTS, parse_points, point_spec, rate_point  # noqa: E402
from wisp_shacira.batch.jobs import MARKER  # noqa: E402
from wisp_shacira.tasks.report import format_table  # noqa: E402

CORES = len(os.sched_getaffinity(0))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kodak", type=Path, default=ROOT.parent / "shared" / "data" / "kodak")
    parser.add_argument("--images", type=int, default=4, help="first N images of the folder")
    parser.add_argument("--points", default=DEFAULT_POINTS, help="log2_T:lambda_end, comma-separated")
    parser.add_argument("--iterations", type=int, default=100, help="training steps a job")
    parser.add_argument("--kill-after", type=int, default=None,
                        help="jobs finished before the Ray run is killed (default: half)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "batch_ray")
    return parser.parse_args(argv)


def batch_command(args: argparse.Namespace, inputs: list[Path], out: Path,
                  extra: list[str]) -> list[str]:
    points = [point_spec(rate_point(t, lam)) for t, lam in parse_points(args.points)]
    return [sys.executable, "-m", "wisp_shacira.cli.main", "batch",
            "--config", str(ROOT / "configs" / "shacira_kodak.yaml"),
            "--inputs", *map(str, inputs), "--out", str(out),
            *[arg for p in points for arg in ("--point", p)],
            "--trainer.iterations", str(args.iterations), *extra]


def run(command: list[str], log: Path) -> float:
    """Run ``command`` to the end (output to ``log``); its wall time."""
    start = time.perf_counter()
    with open(log, "wb") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT,
                              env={**os.environ, "TQDM_DISABLE": "1"})
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(command[3:6])} ... exited {done.returncode}; see {log}")
    return time.perf_counter() - start


def run_killed(command: list[str], out: Path, after: int, log: Path) -> float:
    """Start ``command``, kill its whole process group once ``after`` jobs have finished."""
    start = time.perf_counter()
    with open(log, "wb") as handle:
        proc = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, "TQDM_DISABLE": "1"})
        while len(list(out.glob(f"*/*/{MARKER}"))) < after and proc.poll() is None:
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    time.sleep(2.0)                       # Ray's processes outside the group notice and exit
    return time.perf_counter() - start


def files_of(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.glob("*/*/*.shac"))}


def measure(name: str, out: Path, wall: float, reference: dict[str, bytes] | None) -> dict:
    report = json.loads((out / "metrics.json").read_text())
    files = files_of(out)
    same = None if reference is None else files == reference
    return {"run": name, "wall_seconds": wall, "cpu_seconds": report["cpu_seconds"],
            "cpu_use": report["cpu_seconds"] / (wall * CORES), "counts": report["counts"],
            "files": len(files), "identical": same}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.barh([r["run"] for r in rows][::-1], [r["wall_seconds"] for r in rows][::-1])
    ax.set_xlabel("wall time (s)")
    ax.set_title(f"{rows[0]['files']} jobs on {CORES} cores")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    inputs = sorted(args.kodak.glob("*.png"))[:args.images]
    if not inputs:
        sys.exit(f"error: no PNG images in {args.kodak} (benchmark data lives in ../shared/data)")
    total = len(inputs) * len(parse_points(args.points))
    after = args.kill_after if args.kill_after is not None else total // 2
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    runs = [("sequential, 1 thread", ["--threads", "1"]),
            (f"sequential, {CORES} threads", ["--threads", str(CORES)]),
            (f"Ray, {CORES} CPUs", ["--ray", "--cpus", str(CORES)])]
    rows, reference = [], None
    for k, (name, extra) in enumerate(runs):
        out = args.out / f"run{k + 1}"
        wall = run(batch_command(args, inputs, out, extra), args.out / f"run{k + 1}.log")
        rows.append(measure(name, out, wall, reference))
        reference = reference or files_of(out)
        print(f"{name}: {wall:.1f} s", flush=True)
    out = args.out / "run4"
    command = batch_command(args, inputs, out, ["--ray", "--cpus", str(CORES)])
    killed = run_killed(command, out, after, args.out / "run4-killed.log")
    finished = len(list(out.glob(f"*/*/{MARKER}")))
    wall = run(command, args.out / "run4.log")
    row = measure(f"Ray, rerun after a kill at {finished}/{total} jobs", out, wall, reference)
    rows.append({**row, "killed_after_seconds": killed, "finished_before_kill": finished})
    table = [[r["run"], r["wall_seconds"], r["cpu_seconds"], f"{100 * r['cpu_use']:.0f}%",
              r["counts"]["done"], r["counts"]["reused"], r["counts"]["failed"],
              {None: "(reference)", True: "yes", False: "NO"}[r["identical"]]] for r in rows]
    print(f"\n{len(inputs)} Kodak images x {len(parse_points(args.points))} points, "
          f"{args.iterations} steps a job, {CORES} cores")
    print(format_table(["run", "wall s", "CPU s", "CPU use", "run", "reused", "failed",
                        "files = run 1"], table))
    (args.out / "batch_ray.json").write_text(json.dumps(
        {"images": [p.stem for p in inputs], "points": args.points,
         "iterations": args.iterations, "cores": CORES, "runs": rows}, indent=1))
    plot(rows, args.out / "batch_ray.png")
    print(f"results: {args.out / 'batch_ray.json'}, plot {args.out / 'batch_ray.png'}")


if __name__ == "__main__":
    main(sys.argv[1:])
