"""Coverage-guided fuzzing of the decoder with atheris (libFuzzer), optional extra ``fuzz``.

Complements ``bench/fuzz_decoder.py``: libFuzzer keeps the inputs that reach new code
in ``wisp_shacira`` and mutates those further, with the structure-aware mutations of
``wisp_shacira.codec.mutations`` (checksums recomputed) mixed with libFuzzer's own byte
mutations. A case fails when ``wisp-shacira decode`` raises anything or exits with a
code other than 0 (decoded) or 2 (one-line error); libFuzzer then stops and writes the
input as ``crash-*``. Usage::

    pip install -e ".[fuzz]"
    python bench/fuzz_atheris.py -max_total_time=300 -timeout=10 -rss_limit_mb=4096

Seeds are the golden files of every version (``tests/golden/v*/``); libFuzzer prints
its statistics (executions, coverage) at the end.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import random
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["wisp_shacira"]):
    from wisp_shacira.cli.main import main as cli_main
    from wisp_shacira.codec.mutations import mutate

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden"
SEEDS = [p.read_bytes() for p in sorted(GOLDEN.glob("v*/*.shac"))]
WORK = Path(tempfile.mkdtemp(prefix="atheris-"))


def decode_one(data: bytes) -> None:
    """Decode ``data`` with the CLI; raise unless it decodes or fails in one line."""
    path = WORK / "case.shac"
    path.write_bytes(data)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli_main(["decode", str(path), "-o", str(WORK / "out"), "--force"])
    lines = err.getvalue().strip().splitlines()
    if code not in (0, 2) or (code == 2 and len(lines) != 1):
        raise RuntimeError(f"decode exited {code} with {len(lines)} error lines: {lines[-1:]}")


def structure_aware(data: bytes, max_size: int, seed: int) -> bytes:
    """A mutation of ``data`` from ``codec.mutations`` when it is still a container,
    otherwise one of libFuzzer's byte mutations."""
    rng = random.Random(seed)
    if rng.random() < 0.7:
        try:
            return mutate(data, rng, SEEDS)[1][:max_size]
        except Exception:  # noqa: BLE001 - not a valid container any more: mutate bytes
            pass
    return atheris.Mutate(data, max_size)


def main() -> None:
    os.environ.setdefault("WISP_SHACIRA_MAX_MEMORY", "64M")
    logging.disable(logging.CRITICAL)
    corpus = WORK / "corpus"
    corpus.mkdir()
    for index, seed in enumerate(SEEDS):
        (corpus / f"seed{index}.shac").write_bytes(seed)
    argv = sys.argv + [str(corpus)] if not any(Path(a).is_dir() for a in sys.argv[1:]) else sys.argv
    atheris.Setup(argv, decode_one, custom_mutator=structure_aware)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
