"""A bounded fuzz run of the decoder (``bench/fuzz_decoder.py`` runs long campaigns).

Seeded mutations of the golden files of every format version, with checksums
recomputed so the parser is exercised past the CRC, each read by the CLI as a user
would (``decode``, ``info``, ``decode --partial``, ``lod``). Every case must be a clean decode (exit 0) or the one-line error (exit 2): no
other exception, no decode longer than a few seconds, and no allocation above the
memory guard (set to 256 MiB here).
"""
from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from wisp_shacira.cli.main import main
from wisp_shacira.codec.mutations import mutate

GOLDEN = Path(__file__).resolve().parent / "golden"
COMMANDS = {"decode": (300, []), "info": (150, None), "decode --partial": (100, ["--partial"]),
            "lod": (60, [])}


def _argv(command: str, path: Path, out: Path) -> list[str]:
    if command == "info":
        return ["info", str(path)]
    return [command.split()[0], str(path), "-o", str(out)] + COMMANDS[command][1]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_mutated_files_decode_cleanly_or_fail_in_one_line(command: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WISP_SHACIRA_MAX_MEMORY", "256M")
    seeds = [p.read_bytes() for p in sorted(GOLDEN.glob("v*/*.shac"))]
    rng = random.Random(12)
    outcomes = {0: 0, 2: 0}
    slowest = 0.0
    cases = COMMANDS[command][0]
    for case in range(cases):
        kind, data = mutate(rng.choice(seeds), rng, seeds)
        path = tmp_path / f"case{case}.shac"
        path.write_bytes(data)
        start = time.perf_counter()
        rc = main(_argv(command, path, tmp_path / f"out{case}"))
        slowest = max(slowest, time.perf_counter() - start)
        err = capsys.readouterr().err.strip()
        assert rc in outcomes, (case, kind, err)
        assert rc == 0 or (len(err.splitlines()) == 1 and err.startswith("error:")), err
        outcomes[rc] += 1
    assert outcomes[2] > cases // 4 and outcomes[0] > 0, outcomes
    assert slowest < 10.0
