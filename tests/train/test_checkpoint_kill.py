"""SIGKILL while a checkpoint-sized file is being written with ``write_atomic``: the final
file is intact (the old or the new content), and the next run's
``remove_stale_temporaries`` leaves no temporary behind."""
from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wisp_shacira.outputs import remove_stale_temporaries

SIZE = 600_000
"""Bytes per write: the size of the demo scene's checkpoints."""

WRITER = textwrap.dedent("""
    import hashlib, os, stat, sys, time
    import wisp_shacira.outputs as outputs

    path, size = sys.argv[1], int(sys.argv[2])
    stall_at = 1 if sys.argv[3] == "stall" else -1
    real_fsync, version = os.fsync, 0

    def fsync(fd):
        # announce each file write; in "stall" mode block inside the second one, so the
        # kill lands while the temporary exists and the final name holds version 0
        if stat.S_ISREG(os.fstat(fd).st_mode):
            print("writing", flush=True)
            if version == stall_at:
                time.sleep(60)
        real_fsync(fd)

    outputs.os.fsync = fsync
    while True:
        body = hashlib.sha256(str(version).encode()).digest() * (size // 32)
        outputs.write_atomic(path, version.to_bytes(8, "little")
                             + hashlib.sha256(body).digest() + body)
        print("wrote", version, flush=True)
        version += 1
""")


def _intact_version(path: Path) -> int:
    data = path.read_bytes()
    version, digest, body = int.from_bytes(data[:8], "little"), data[8:40], data[40:]
    assert hashlib.sha256(body).digest() == digest, "final file is damaged"
    return version


@pytest.mark.parametrize("mode", ["stall", "random"])
def test_sigkill_during_write_leaves_an_intact_file_and_cleanable_temporary(
        tmp_path: Path, mode: str) -> None:
    target = tmp_path / "checkpoint.pt"
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(SIZE), mode],
                             stdout=subprocess.PIPE, text=True)
    written = -1
    try:
        for line in child.stdout:
            if line.startswith("wrote"):
                written = int(line.split()[1])
            elif written >= (0 if mode == "stall" else 3):
                break  # inside the next write (stalled, or wherever it has got to)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    version = _intact_version(target)
    assert version == written if mode == "stall" else version >= written
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    if mode == "stall":
        assert len(leftovers) == 1 and leftovers[0].name.startswith(".checkpoint.pt.")
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted(leftovers)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]
