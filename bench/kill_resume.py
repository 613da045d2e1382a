"""SIGKILL during NeRF training, then ``--resume``: is the result the uninterrupted one?

Trains a tiny generated scene once without interruption, then ``--trials`` times: start
the same run, SIGKILL it at a random moment (often inside a checkpoint write), resume
until it finishes. Reports, per trial, the step reached at the kill, the step the
resume restarted from (steps lost), the temporaries left before and after the resume,
and whether ``scene.shac`` is byte-identical to the uninterrupted run's. Usage::

    python bench/kill_resume.py --trials 5
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _make_scene(folder: Path) -> Path:
    spec = importlib.util.spec_from_file_location("make_demo_scene", ROOT / "data" / "make_demo_scene.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_demo_scene(folder, size=16, n_train=8, n_val=2, n_test=2, seed=3,
                                  supersample=1)


def _config(scene: Path, iterations: int, every: int) -> dict:
    return {"task": "nerf",
            "grid": {"num_levels": 4, "min_res": 4, "max_res": 32, "log2_table_size": 10,
                     "feature_dim": 2},
            "nef": {"hidden_dim": 16, "geo_feat_dim": 7, "color_hidden_dim": 16,
                    "color_num_layers": 1},
            "tracer": {"num_samples": 16, "chunk_size": 1024},
            "dataset": {"path": str(scene)},
            "trainer": {"iterations": iterations, "rays_per_batch": 128, "occupancy_resolution": 8,
                        "occupancy_every": 4, "occupancy_warmup": 8, "val_every": 0,
                        "checkpoint_every": every, "rate_sample": 512}}


def _run(config: Path, out: Path, resume: bool = False, kill_after: float | None = None
         ) -> tuple[int, str]:
    cmd = [sys.executable, str(ROOT / "app" / "main.py"), "--config", str(config),
           "--output", str(out)] + (["--resume"] if resume else [])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if kill_after is not None:
        time.sleep(kill_after)
        proc.send_signal(signal.SIGKILL)
    stdout, stderr = proc.communicate()
    return proc.returncode, stdout + stderr


def _last_step(log: str, total: int) -> int:
    steps = [int(m) for m in re.findall(rf"(\d+)/{total}\b", log)]
    return max(steps) if steps else 0


def _temporaries(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob(".*.tmp"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--checkpoint-every", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="kill-resume-"))
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump(_config(_make_scene(work / "scene"), args.iterations,
                                             args.checkpoint_every)))
    start = time.perf_counter()
    rc, _ = _run(config, work / "clean")
    duration = time.perf_counter() - start
    if rc:
        raise SystemExit(f"error: the uninterrupted run failed (exit {rc})")
    clean = (work / "clean" / "scene.shac").read_bytes()
    rows = []
    for trial in range(args.trials):
        out = work / f"trial{trial}"
        kill_after = rng.uniform(0.4, 0.9) * duration
        _, log = _run(config, out, kill_after=kill_after)
        reached = _last_step(log, args.iterations)
        left = _temporaries(out)
        has_checkpoint = (out / "checkpoint.pt").is_file()
        rc, log = _run(config, out, resume=has_checkpoint)
        resumed = json.loads((out / "metrics.json").read_text()).get("resumed_from") if rc == 0 else None
        same = rc == 0 and (out / "scene.shac").read_bytes() == clean
        rows.append({"trial": trial, "killed_after_s": round(kill_after, 2), "last_step_shown": reached,
                     "resumed_from": resumed,
                     "checkpoint_at_kill": has_checkpoint,
                     "temporaries_before_resume": left, "temporaries_after": _temporaries(out),
                     "identical": same, "exit": rc})
        print(json.dumps(rows[-1]))
    identical = sum(r["identical"] for r in rows)
    starts = [r["resumed_from"] for r in rows]
    print(f"{identical}/{len(rows)} resumed runs byte-identical to the uninterrupted run; "
          f"resumed from steps {starts} (checkpoint every {args.checkpoint_every} steps: at "
          f"most that many lost per kill); uninterrupted run {duration:.1f} s")


if __name__ == "__main__":
    main()
