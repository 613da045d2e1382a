"""Decode time of ``.shac`` files (any task) on one CPU core, each run in a fresh process.

For each file, ``--repeats`` times (default 3), each in a new process pinned to one core
with ``OMP_NUM_THREADS=1`` (and ``torch.set_num_threads(1)`` where this script runs the
Python code itself):

* end to end: wall time of the whole ``wisp-shacira decode FILE -o OUT`` command, Python
  start and imports included;
* decode: inside a fresh process, after the imports, the time of the task's
  ``decode(path, out, force=True)`` (read the file, entropy-decode the latents, rebuild
  the field, reconstruct the signal and write it: PNG, or a folder of frames for videos
  and scenes); then, in the same process, the time of one more ``read_shac`` (the
  container and the entropy decoding alone, with the coder already verified: the part
  an entropy model changes) and of a second, warm ``decode`` (without the one-time
  costs of the first: lazy imports inside torch, the coder check).

Import overhead is measured the same way as the end-to-end time, as the wall time of
``python -c "import wisp_shacira.cli.main"``. Outputs go to a temporary folder, never next
to the inputs. Prints a table (min / median seconds) and writes
``bench/results/decode_time/decode_time.json``::

    python bench/decode_time.py tests/golden/v3_baf8633/*.shac
    python bench/decode_time.py runs/image-*/demo_image.shac --repeats 5 --cpu 1
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from wisp_shacira.cli.main import run_guarded  # noqa: E402
from wisp_shacira.codec.model_io import read_shac  # noqa: E402  (no torch)
from wisp_shacira.errors import DataError  # noqa: E402
from wisp_shacira.tasks.report import format_table  # noqa: E402

IMPORT_CODE = "import wisp_shacira.cli.main"
CHILD_CODE = r"""
import json, sys, time
import torch
torch.set_num_threads(1)
from pathlib import Path
from wisp_shacira.codec.model_io import read_shac
from wisp_shacira.tasks import get_task
task = get_task(sys.argv[1])
path, out = Path(sys.argv[2]), Path(sys.argv[3])
start = time.perf_counter()
task.decode(path, out, force=True)
decode = time.perf_counter() - start
start = time.perf_counter()
read_shac(path)
read = time.perf_counter() - start
start = time.perf_counter()
task.decode(path, Path(str(out) + "_warm"), force=True)
warm = time.perf_counter() - start
print(json.dumps({"decode_seconds": decode, "read_seconds": read, "warm_decode_seconds": warm,
                  "threads": torch.get_num_threads()}))
"""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help=".shac files (image, video, nerf)")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per measure")
    parser.add_argument("--cpu", type=int, default=None,
                        help="the core the processes are pinned to (default: the first this "
                             "process may use; no pinning where the OS has no affinity call)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "decode_time",
                        help="folder of decode_time.json")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        sys.exit("error: --repeats must be at least 1")
    return args


def pick_cpu(wanted: int | None) -> int | None:
    """The core to pin the children to, None where affinity is not supported."""
    if not hasattr(os, "sched_getaffinity"):
        if wanted is not None:
            sys.exit("error: --cpu: this system cannot pin processes to a core")
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if wanted is None:
        return allowed[0]
    if wanted not in allowed:
        sys.exit(f"error: --cpu {wanted}: not one of the cores this process may use {allowed}")
    return wanted


def child_env() -> dict[str, str]:
    """The environment of every timed process: one thread everywhere, no progress bars."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "TQDM_DISABLE": "1"}


def timed_run(command: list[str], cpu: int | None) -> tuple[float, str]:
    """Wall seconds of ``command`` in a fresh process on core ``cpu``, and its stdout.

    Raises:
        DataError: the command failed (with the last line it printed to stderr).
    """
    pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    start = time.perf_counter()
    result = subprocess.run(command, env=child_env(), capture_output=True, text=True,
                            preexec_fn=pin, check=False)
    seconds = time.perf_counter() - start
    if result.returncode:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["(no output)"]
        raise DataError(f"{' '.join(command[:4])} ... failed ({result.returncode}): {lines[-1]}")
    return seconds, result.stdout


def cli_command() -> list[str]:
    """``wisp-shacira`` of this Python (the console script beside it), else ``python -m``."""
    script = Path(sys.executable).parent / "wisp-shacira"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("wisp-shacira")
    if found and Path(found).resolve().parent == Path(sys.executable).resolve().parent:
        return [found]
    return [sys.executable, "-m", "wisp_shacira.cli.main"]


def describe(path: Path) -> dict:
    """Task, bytes and entropy model of a file, from its header (no level decoded)."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    config = read_shac(path, max_lod=0, partial=True).config
    config = config if isinstance(config, dict) else {}
    grid = config.get("grid") if isinstance(config.get("grid"), dict) else {}
    return {"file": str(path), "task": config.get("task"), "bytes": path.stat().st_size,
            "entropy_model": grid.get("entropy_model")}


def stats(values: list[float]) -> dict:
    return {"min": min(values), "median": statistics.median(values), "all": values}


def time_file(path: Path, task: str, repeats: int, cpu: int | None, work: Path) -> dict:
    """The end-to-end and in-process decode times of one file."""
    cli, e2e, decode, read, warm, threads = cli_command(), [], [], [], [], set()
    for k in range(repeats):
        seconds, _ = timed_run([*cli, "decode", str(path), "-o", str(work / f"cli_{k}")], cpu)
        e2e.append(seconds)
        _, stdout = timed_run([sys.executable, "-c", CHILD_CODE, task, str(path),
                               str(work / f"child_{k}")], cpu)
        child = json.loads(stdout.strip().splitlines()[-1])
        decode.append(child["decode_seconds"])
        read.append(child["read_seconds"])
        warm.append(child["warm_decode_seconds"])
        threads.add(child["threads"])
    return {"end_to_end_seconds": stats(e2e), "decode_seconds": stats(decode),
            "read_seconds": stats(read), "warm_decode_seconds": stats(warm),
            "torch_threads": sorted(threads)}


def import_time(repeats: int, cpu: int | None) -> dict:
    """Wall seconds of ``python -c "import wisp_shacira.cli.main"`` in fresh processes."""
    return stats([timed_run([sys.executable, "-c", IMPORT_CODE], cpu)[0] for _ in range(repeats)])


def table(rows: list[dict]) -> str:
    header = ["file", "task", "bytes", "entropy model", "decode s min", "decode s median",
              "warm decode s median", "read s median", "end-to-end s min",
              "end-to-end s median"]
    return format_table(header, [
        [r["file"], r["task"], r["bytes"], r["entropy_model"], r["decode_seconds"]["min"],
         r["decode_seconds"]["median"], r["warm_decode_seconds"]["median"],
         r["read_seconds"]["median"], r["end_to_end_seconds"]["min"],
         r["end_to_end_seconds"]["median"]] for r in rows])


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    cpu = pick_cpu(args.cpu)
    files = [describe(path) for path in args.files]      # every header checked first
    for info in files:
        if info["task"] not in ("image", "video", "nerf"):
            raise DataError(f"{info['file']}: unknown task {info['task']!r} in the file")
    rows = []
    with tempfile.TemporaryDirectory(prefix="decode_time_") as tmp:
        imports = import_time(args.repeats, cpu)
        for index, info in enumerate(files):
            work = Path(tmp) / str(index)
            work.mkdir()
            rows.append({**info, **time_file(Path(info["file"]), info["task"], args.repeats,
                                             cpu, work)})
            print(f"{info['file']}: decode {rows[-1]['decode_seconds']['median']:.3f} s, "
                  f"end to end {rows[-1]['end_to_end_seconds']['median']:.3f} s (median)",
                  flush=True)
    where = f"core {cpu}" if cpu is not None else "not pinned"
    print(f"\n{args.repeats} fresh process(es) per measure, OMP_NUM_THREADS=1, {where}; "
          f"command: {' '.join(cli_command())} decode FILE -o OUT")
    print("decode: the first task.decode() in a fresh process, after the imports (read + "
          "entropy decode + reconstruct + write); warm decode: a second one; read: read_shac() "
          "alone, after the first; end-to-end: the whole command, imports included")
    print(table(rows))
    if any(r["entropy_model"] is None for r in rows):
        print("entropy model n/a: the file's CONFIG has no grid.entropy_model (written before "
              "the key existed: factorized)")
    print(f"import wisp_shacira.cli.main: {imports['min']:.3f} s min, "
          f"{imports['median']:.3f} s median (part of every end-to-end time)")
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"repeats": args.repeats, "cpu": cpu, "command": cli_command(),
              "python": platform.python_version(), "machine": platform.machine(),
              "import_seconds": imports, "files": rows}
    path = args.out / "decode_time.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(run_guarded(lambda: main(sys.argv[1:])))
