"""Issue 16 in one GPU session: kernel tests, encoding speed, NeRF step, paper-scale lego.

Usage, on the device machine from the repository root (docs/gpu.md: what to carry)::

    python3 bench/gpu_check.py --data runs/gpu_data/lego --out "$OUT" [--budget-s 420]

and on any machine, every stage at tiny sizes on the CPU (Triton's interpreter for the
kernel), to check the script itself::

    python bench/gpu_check.py --dry-run

Stages, each a subprocess with its own time limit inside ``--budget-s`` (a failing or
skipped stage is reported and the next one runs):

1. ``tests``: ``tests/grid/test_triton.py`` (the kernel against ``encode_reference``:
   outputs bit for bit against the CPU reference, table gradients, LOD masks,
   deterministic mode, fallbacks) and ``tests/grid/test_latents_first.py``;
2. ``encoding``: ``bench/encoding_speed.py --device cuda --cases b,c``: reference, torch
   path and fused kernel side by side, bandwidth against the device's;
3. ``steps``: ``bench/nerf_lego.py --paper --step-timing``: whole training steps per
   second, the path before issue 16 against the automatic one;
4. ``lego``: ``bench/nerf_lego.py --paper --iterations K``: the uncompressed grid and
   SHACIRA on the full 800x800 views, 10 held-out views; K is what fits in the time
   left, from stage 3's steps per second and render time (``--iterations`` fixes it).

Ends with one summary table (and the issue's targets); writes ``gpu_check.json``,
``stages.log`` and each stage's JSON (``encoding.json``, ``steps.json``,
``lego_results.json``, ``lego_strip.png``) into ``--out``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
TEST_FILES = ["tests/grid/test_triton.py", "tests/grid/test_latents_first.py"]
TINY_NERF = ["trainer.rays_per_batch=256", "trainer.occupancy_warmup=8", "trainer.val_every=0",
             "trainer.checkpoint_every=0", "grid.log2_table_size=12", "grid.num_levels=6"]
"""Dry-run overrides of the bundled demo scene's config (64x64 views)."""
TARGETS = {"encoding_x_ref": 20.0, "step_speedup": 10.0, "lego_minutes": 8.0,
           "lego_db": 0.5, "lego_ratio": 30.0}


class Run:
    """The session: options, deadline, log file and results."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.deadline = time.monotonic() + args.budget_s
        self.log = (self.out / "stages.log").open("w")
        self.results: dict = {"dry_run": args.dry_run, "stages": {}}

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def stage(self, name: str, cmd: list[str], cap_s: float, env: dict | None = None) -> dict:
        """Run ``cmd`` (echoed and logged) for at most ``cap_s`` or the time left."""
        limit = min(cap_s, self.left() - 5)
        if limit < 10:
            return self._record(name, {"status": "skipped", "reason": "no time left"})
        print(f"\n=== {name}: {' '.join(cmd)} (limit {limit:.0f} s)", flush=True)
        self.log.write(f"\n=== {name}: {' '.join(cmd)}\n")
        start = time.monotonic()
        lines: list[str] = []
        try:
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, env=child_env(env))
            self._echo(proc, lines, start + limit)
            status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
        except (OSError, TimeoutError) as exc:
            status = f"failed ({exc})"
        seconds = time.monotonic() - start
        return self._record(name, {"status": status, "seconds": seconds,
                                   "tail": "".join(lines[-15:])})

    def _echo(self, proc: subprocess.Popen, lines: list[str], deadline: float) -> None:
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), True)
        for line in proc.stdout:
            lines.append(line)
            sys.stdout.write(line)
            self.log.write(line)
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise TimeoutError("time limit reached")
        proc.wait()

    def _record(self, name: str, result: dict) -> dict:
        self.results["stages"][name] = result
        return result


def child_env(extra: dict | None) -> dict:
    """The environment of a stage: the checkout importable without installing it."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.update(extra or {})
    return env


def run_tests(run: Run) -> None:
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *TEST_FILES]
    result = run.stage("tests", cmd, 240)
    counts = {key: int(value) for value, key in
              re.findall(r"(\d+) (passed|failed|skipped|error)", result.get("tail", ""))}
    result["counts"] = counts


def run_encoding(run: Run) -> None:
    path = run.out / "encoding.json"
    if run.args.dry_run:
        cmd = ["--device", "cpu", "--cases", "tiny", "--fast", "triton", "--repeats", "1",
               "--no-memory", "--no-e2e"]
        env = {"TRITON_INTERPRET": "1"}
    else:
        cmd, env = ["--device", "cuda", "--cases", "b,c", "--repeats", "5"], None
    result = run.stage("encoding", [sys.executable, str(BENCH / "encoding_speed.py"), *cmd,
                                    "--no-plot", "--json", str(path)], 180, env)
    if path.exists():
        result["rows"] = json.loads(path.read_text())["rows"]


def nerf_args(run: Run) -> list[str]:
    """Data, device and scale arguments of ``bench/nerf_lego.py``."""
    if run.args.dry_run:
        sets = [item for s in TINY_NERF for item in ("--set", s)]
        config = ROOT / "configs" / "shacira_nerf.yaml"
        return ["--data", str(run.args.data), "--config", str(config), "--mip", "0",
                "--device", "cpu", *sets]
    return ["--data", str(run.args.data), "--device", "cuda", "--paper"]


def run_steps(run: Run) -> None:
    path = run.out / "steps.json"
    steps, warmup = (10, 10) if run.args.dry_run else (100, 300)
    cmd = [sys.executable, str(BENCH / "nerf_lego.py"), *nerf_args(run), "--step-timing",
           str(steps), "--warmup", str(warmup), "--json", str(path)]
    result = run.stage("steps", cmd, 240)
    if path.exists():
        result["timing"] = json.loads(path.read_text())


def lego_iterations(run: Run) -> tuple[int | None, str]:
    """Steps per method that fit in the time left (see the module docstring)."""
    if run.args.iterations is not None:
        return run.args.iterations, "--iterations"
    if run.args.dry_run:
        return 20, "dry run"
    timing = run.results["stages"].get("steps", {}).get("timing")
    if timing is None:
        return None, "no step timing (stage steps failed)"
    renders = 2 * timing["held_out_views"] * timing["render_s_per_view"] * 1.5 + 20
    per_method = (run.left() - 40 - 2 * renders) / 2
    steps = int(per_method * timing["after"]["steps_per_s"] * 0.85) // 100 * 100
    if steps < 100:
        return None, f"only {per_method:.0f} s per method left"
    return min(steps, run.args.max_iterations), (
        f"{per_method:.0f} s per method at {timing['after']['steps_per_s']:.1f} steps/s, "
        f"{renders:.0f} s of renders each")


def run_lego(run: Run) -> None:
    iterations, why = lego_iterations(run)
    if iterations is None:
        run._record("lego", {"status": "skipped", "reason": why})
        return
    print(f"\nlego: {iterations} iterations per method ({why})", flush=True)
    work = Path(tempfile.mkdtemp(prefix="gpu_check_lego_"))
    cmd = [sys.executable, str(BENCH / "nerf_lego.py"), *nerf_args(run), "--iterations",
           str(iterations), "--out", str(work)]
    result = run.stage("lego", cmd, run.left())
    result["iterations"], result["why"] = iterations, why
    if (work / "results.json").exists():
        result["methods"] = json.loads((work / "results.json").read_text())
        shutil.copy(work / "results.json", run.out / "lego_results.json")
    if (work / "strip.png").exists():
        shutil.copy(work / "strip.png", run.out / "lego_strip.png")
    shutil.rmtree(work, ignore_errors=True)


def _encoding_lines(stages: dict) -> list[str]:
    lines = []
    for row in stages.get("encoding", {}).get("rows", []):
        fast = row["fast"]
        vs_ref, vs_torch = row["ref_s"] / row["fast_s"], row["torch_s"] / row["fast_s"]
        peak = f", {100 * row['peak_fraction']:.1f}% of peak" if "peak_fraction" in row else ""
        lines.append(f"encoding {row['case']}: ref {1e3 * row['ref_s']:.2f} ms, torch "
                     f"{1e3 * row['torch_s']:.2f} ms, {fast} {1e3 * row['fast_s']:.2f} ms "
                     f"(x{vs_ref:.1f} ref, x{vs_torch:.1f} torch; target x"
                     f"{TARGETS['encoding_x_ref']:.0f}); {row.get('gbps', 0):.0f} GB/s{peak}; "
                     f"forward bit-equal to the CPU reference: {row.get(f'equal_cpu_{fast}')} "
                     f"(torch path: {row.get('equal_cpu_torch')}); grads match: {row['match']}")
    return lines


def _lego_lines(stages: dict) -> list[str]:
    lego = stages.get("lego", {})
    methods = lego.get("methods")
    if not methods:
        return [f"lego: {lego.get('status', 'not run')} {lego.get('reason', '')}".rstrip()]
    base = methods[0]
    lines = [f"lego ({lego['iterations']} iterations each, {lego['seconds'] / 60:.1f} min "
             f"for both; target < {TARGETS['lego_minutes']:.0f} min for one paper-scale run):"]
    for m in methods:
        ratio, delta = base["bytes"] / m["bytes"], m["psnr"] - base["psnr"]
        lines.append(f"  {m['method']:28s} {m['psnr']:6.2f} dB  {m['bytes']:>10,d} bytes  "
                     f"x{ratio:5.1f} smaller  dPSNR {delta:+.2f}  {m['steps_per_s']:.1f} "
                     f"steps/s, train {m['train_seconds']:.0f} s")
    return lines


def summary(run: Run) -> str:
    stages = run.results["stages"]
    lines = ["", "=" * 30 + " summary " + "=" * 30]
    for name, result in stages.items():
        extra = f" {result.get('counts', '')}" if name == "tests" else ""
        lines.append(f"{name:9s} {result['status']}{extra} ({result.get('seconds', 0):.0f} s)"
                     + (f": {result['reason']}" if "reason" in result else ""))
    lines += _encoding_lines(stages)
    timing = stages.get("steps", {}).get("timing")
    if timing is not None:
        lines.append(f"NeRF step: before {timing['before']['steps_per_s']:.1f} steps/s, after "
                     f"{timing['after']['steps_per_s']:.1f} steps/s: x{timing['speedup']:.2f} "
                     f"(target x{TARGETS['step_speedup']:.0f}); one held-out view "
                     f"{timing['render_s_per_view']:.2f} s")
    lines += _lego_lines(stages)
    return "\n".join(lines)


def check_setup(run: Run) -> None:
    """Fail clearly without CUDA (unless dry run); note missing data (stages 3-4 skip)."""
    if not run.args.dry_run:
        import torch

        if not torch.cuda.is_available():
            sys.exit("gpu_check: no CUDA device here; run it on the GPU machine, or "
                     "--dry-run for the CPU check of this script")
        run.results["device"] = torch.cuda.get_device_name()
        print(f"device {run.results['device']}, torch {torch.__version__}", flush=True)
    if not (Path(run.args.data) / "transforms_train.json").exists():
        run.results["data_missing"] = str(run.args.data)
        print(f"gpu_check: no NeRF-synthetic scene at {run.args.data} (transforms_train.json); "
              f"stages steps and lego are skipped. Copy ../shared/data/lego into an ignored "
              f"folder of the checkout and carry it (docs/gpu.md)", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None,
                        help="the lego scene (default ../shared/data/lego; dry run: the "
                             "bundled demo scene)")
    parser.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "runs" / "gpu_check"))
    parser.add_argument("--budget-s", type=float, default=420.0,
                        help="wall time for all stages (the device's command limit is 600 s)")
    parser.add_argument("--iterations", type=int, default=None, help="lego steps per method")
    parser.add_argument("--max-iterations", type=int, default=20000)
    parser.add_argument("--dry-run", action="store_true",
                        help="every stage tiny, on the CPU (the kernel under Triton's interpreter)")
    args = parser.parse_args(argv)
    if args.data is None:
        args.data = (ROOT / "data" / "demo_scene" if args.dry_run
                     else ROOT.parent / "shared" / "data" / "lego")
    run = Run(args)
    check_setup(run)
    run_tests(run)
    run_encoding(run)
    if "data_missing" not in run.results:
        run_steps(run)
        run_lego(run)
    text = summary(run)
    print(text, flush=True)
    run.log.write(text + "\n")
    run.log.close()
    (run.out / "gpu_check.json").write_text(json.dumps(run.results, indent=2, default=str) + "\n")
    print(f"wrote {run.out / 'gpu_check.json'}")
    return 0 if all(r["status"] == "ok" for r in run.results["stages"].values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
