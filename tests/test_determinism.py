"""Decoding gives identical outputs under 1 and 2 threads and under every encoding
backend, each in a fresh process (``bench/decode_determinism.py`` prints the matrix)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden"
_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from digest import output_digest
print(json.dumps([output_digest(Path(p)) for p in sys.argv[2:]]))
"""
SETTINGS = [(1, "auto"), (2, "auto"), (1, "reference"), (2, "torch"), (2, "numba"), (1, "plan")]


def test_outputs_are_identical_across_threads_and_backends() -> None:
    files = [str(p) for folder in ("v3_baf8633", "v4_d42ec47")
             for p in sorted((GOLDEN / folder).glob("*.shac"))]
    results = {}
    for threads, backend in SETTINGS:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "NUMBA_NUM_THREADS": str(threads),
               "WISP_SHACIRA_ENCODING": backend}
        run = subprocess.run([sys.executable, "-c", _SCRIPT, str(GOLDEN), *files], env=env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        results[(threads, backend)] = json.loads(run.stdout.strip().splitlines()[-1])
    reference = results[SETTINGS[0]]
    for setting, digests in results.items():
        assert digests == reference, setting
