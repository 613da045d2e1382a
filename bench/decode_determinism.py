"""Determinism matrix: the same file decoded under every thread count and encoding backend.

Each cell runs ``wisp-shacira decode FILE -o OUT`` in a fresh process with
``OMP_NUM_THREADS``/``NUMBA_NUM_THREADS`` = threads and ``WISP_SHACIRA_ENCODING`` =
backend, and hashes the bytes of everything it wrote (the PNG, or the frame folder of
a video or a scene's turntable). A row is ``identical`` when every cell has the same
hash. Usage::

    python bench/decode_determinism.py                      # the version-3 and -4 golden files
    python bench/decode_determinism.py runs/nerf-demo/scene.shac --threads 1 2
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

BACKENDS = ("auto", "reference", "torch", "numba", "plan")
GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden"
DEFAULT_FOLDERS = ("v3_baf8633", "v4_d42ec47")   # tables; the context model


def tree_digest(path: Path) -> str:
    """sha256 of a file's bytes, or of the names (relative to the folder) and bytes of
    every file in a folder."""
    digest = hashlib.sha256()
    if path.is_file():
        digest.update(path.read_bytes())
        return digest.hexdigest()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(item.relative_to(path).as_posix().encode() + item.read_bytes())
    return digest.hexdigest()


def decode_once(shac: Path, threads: int, backend: str, work: Path) -> str:
    """Digest of one decode in a fresh process, or ``error: ...``."""
    out = work / f"{shac.stem}_{threads}_{backend}"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "NUMBA_NUM_THREADS": str(threads),
           "WISP_SHACIRA_ENCODING": backend, "TQDM_DISABLE": "1"}
    result = subprocess.run([sys.executable, "-m", "wisp_shacira.cli.main", "decode", str(shac),
                             "-o", str(out)], env=env, capture_output=True, text=True)
    if result.returncode:
        return "error: " + result.stderr.strip().splitlines()[-1]
    written = next(p for p in work.iterdir() if p.name.startswith(out.name))
    return tree_digest(written)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS))
    parser.add_argument("--out", type=Path, default=Path("bench/results/decode_determinism.json"))
    args = parser.parse_args()
    files = args.files or [p for folder in DEFAULT_FOLDERS
                           for p in sorted((GOLDEN / folder).glob("*.shac"))]
    settings = [(t, b) for t in args.threads for b in args.backends]
    header = ["file"] + [f"{t}t/{b}" for t, b in settings] + ["result"]
    rows, report = [header], {}
    with tempfile.TemporaryDirectory() as tmp:
        for shac in files:
            cells = [decode_once(shac, t, b, Path(tmp)) for t, b in settings]
            same = len(set(cells)) == 1 and not cells[0].startswith("error")
            report[str(shac)] = {"cells": dict(zip(header[1:-1], cells)), "identical": same}
            rows.append([f"{shac.parent.name}/{shac.name}"] + [c[:8] for c in cells] + ["identical" if same else "DIFFERENT"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
