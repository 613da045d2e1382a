"""Fuzz campaign against the ``.shac`` decoder, with a time budget.

Mutates valid files (``wisp_shacira.codec.mutations``: checksums recomputed after each
content mutation, so the parser is exercised past the CRC) and decodes every case
with ``wisp-shacira decode`` inside a worker process, as a user would. A case ends
as one of:

- ``decoded``: exit 0 (a valid file, possibly with other content);
- ``error``: exit 2 with the one-line error;
- ``exception``: any other Python exception (a traceback for the user);
- ``oom``: a failed allocation (the worker's address space is capped at
  ``--address-space`` above what its imports use, so an unguarded allocation shows
  up here instead of swapping the machine);
- ``hang``: no answer within ``--timeout`` seconds (the worker is killed);
- ``crash``: the worker died.

``--decoder PATH`` decodes with another checkout of the package (for example the
code before a fix: ``git worktree add /tmp/old COMMIT``), so a before/after table
can be made from the same cases. Usage::

    python bench/fuzz_decoder.py --seconds 600 --seeds tests/golden/v2_5c596a8
    python bench/fuzz_decoder.py --seconds 600 --seeds tests/golden/v2_5c596a8 --decoder /tmp/old
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wisp_shacira.codec.model_io import read_shac
from wisp_shacira.codec.mutations import mutate

WORKER = r"""
import contextlib, io, json, logging, resource, sys, time, traceback
from pathlib import Path
import torch
from wisp_shacira.cli.main import main
torch.set_num_threads(1)
logging.disable(logging.CRITICAL)
status = open("/proc/self/status").read()
used = int(next(l for l in status.splitlines() if l.startswith("VmSize")).split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (used + int(sys.argv[1]), resource.RLIM_INFINITY))
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    path = line.strip()
    err, start, reply = io.StringIO(), time.perf_counter(), {}
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            reply["rc"] = main(["decode", path, "-o", path[:-len(".shac")] + "_out"])
    except MemoryError:
        reply["oom"] = "MemoryError"
    except BaseException as exc:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        text = str(exc).splitlines()[0][:80] if str(exc) else ""
        kind = "oom" if "alloc" in text.lower() or "memory" in text.lower() else "exc"
        reply[kind] = f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}: {text}"
    reply["seconds"] = time.perf_counter() - start
    lines = err.getvalue().strip().splitlines()
    reply["stderr_lines"], reply["last"] = len(lines), (lines[-1][:200] if lines else "")
    print(json.dumps(reply), flush=True)
"""

OUTCOMES = ("decoded", "error", "exception", "oom", "hang", "crash")


class Worker:
    """A decoding subprocess that answers one JSON line per case path."""

    def __init__(self, decoder: str | None, address_space: int, max_memory: str,
                 cwd: Path) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1",
               "WISP_SHACIRA_MAX_MEMORY": max_memory}
        if decoder:
            env["PYTHONPATH"] = decoder
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, str(address_space)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env, stderr=subprocess.DEVNULL, cwd=cwd)
        if self._read(120.0) is None:
            raise SystemExit("error: the decoding worker did not start")

    def _read(self, timeout: float) -> dict | None:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else {"crash": True}

    def decode(self, path: Path, timeout: float) -> dict:
        try:
            self.proc.stdin.write(f"{path}\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return {"crash": True}
        reply = self._read(timeout)
        return {"hang": True, "seconds": timeout} if reply is None else reply

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def classify(reply: dict) -> tuple[str, str | None]:
    """(outcome, signature) of a worker reply."""
    if reply.get("hang"):
        return "hang", None
    if reply.get("crash"):
        return "crash", None
    if "oom" in reply:
        return "oom", reply["oom"]
    if "exc" in reply:
        return "exception", reply["exc"]
    if reply.get("rc") == 0:
        return "decoded", None
    if reply.get("rc") == 2 and reply.get("stderr_lines") == 1:
        return "error", None
    return "exception", f"exit {reply.get('rc')} with {reply.get('stderr_lines')} stderr lines"


def load_seeds(paths: list[str]) -> list[tuple[str, bytes]]:
    """(task, bytes) of every ``.shac`` file named or inside a named folder."""
    files = []
    for item in paths:
        path = Path(item)
        files += sorted(path.glob("*.shac")) if path.is_dir() else [path]
    if not files:
        raise SystemExit("error: no seed .shac files")
    return [(str(read_shac(f, max_lod=0).config["task"]), f.read_bytes()) for f in files]


def campaign(args: argparse.Namespace) -> dict:
    """Run cases until the time budget is spent; returns counts and details."""
    seeds = load_seeds(args.seeds)
    rng = random.Random(args.seed)
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    signatures: collections.Counter = collections.Counter()
    kinds: collections.Counter = collections.Counter()
    longest, cases = (0.0, ""), 0
    work = Path(tempfile.mkdtemp(prefix="fuzz-"))
    worker = Worker(args.decoder, args.address_space << 20, args.max_memory, work)
    start = time.monotonic()
    try:
        while time.monotonic() - start < args.seconds and (not args.cases or cases < args.cases):
            task, seed = rng.choice(seeds)
            kind, data = mutate(seed, rng, [s for _, s in seeds])
            path = work / f"case{cases}.shac"
            path.write_bytes(data)
            reply = worker.decode(path, args.timeout)
            outcome, signature = classify(reply)
            counts[task][outcome] += 1
            if outcome in ("decoded", "error") and reply["seconds"] > longest[0]:
                longest = (reply["seconds"], f"{kind} on {task}")
            if signature:
                signatures[f"{signature} [{kind}]"] += 1
            if outcome not in ("decoded", "error"):
                kinds[kind] += 1
                (Path(args.out) / "failures").mkdir(parents=True, exist_ok=True)
                (Path(args.out) / "failures" / f"{outcome}{cases}_{task}.shac").write_bytes(data)
            if outcome in ("hang", "crash", "oom"):
                worker.close()
                worker = Worker(args.decoder, args.address_space << 20, args.max_memory, work)
            path.unlink()
            cases += 1
    finally:
        worker.close()
    return {"cases": cases, "seconds": time.monotonic() - start, "seed": args.seed,
            "decoder": args.decoder or "this checkout", "max_memory": args.max_memory,
            "timeout": args.timeout, "counts": {t: dict(c) for t, c in counts.items()},
            "signatures": dict(signatures.most_common()), "failing_mutations": dict(kinds),
            "longest_clean_case": {"seconds": longest[0], "case": longest[1]}}


def print_report(result: dict) -> None:
    rows = [["task", "cases", *OUTCOMES]]
    for task, count in sorted(result["counts"].items()):
        rows.append([task, str(sum(count.values()))] + [str(count.get(o, 0)) for o in OUTCOMES])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths)))
    print(f"{result['cases']} cases in {result['seconds']:.0f} s with {result['decoder']}; "
          f"longest clean case {result['longest_clean_case']['seconds']:.2f} s "
          f"({result['longest_clean_case']['case']})")
    for signature, count in list(result["signatures"].items())[:30]:
        print(f"{count:6d}  {signature}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", default=["tests/golden/v3_baf8633", "tests/golden/v4_d42ec47"],
                        help=".shac files or folders of them")
    parser.add_argument("--seconds", type=float, default=300.0, help="time budget")
    parser.add_argument("--cases", type=int, default=0, help="stop after N cases (0 = budget)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a hang")
    parser.add_argument("--max-memory", default="64M", help="the decoder's memory guard")
    parser.add_argument("--address-space", type=int, default=2048,
                        help="MiB of address space the worker may add after its imports")
    parser.add_argument("--decoder", default=None, help="checkout to decode with (PYTHONPATH)")
    parser.add_argument("--out", default="bench/results/fuzz", help="report and failing cases")
    args = parser.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    result = campaign(args)
    name = "before" if args.decoder else "after"
    (Path(args.out) / f"fuzz_{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print_report(result)


if __name__ == "__main__":
    main()
