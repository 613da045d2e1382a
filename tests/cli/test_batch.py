"""``wisp-shacira batch``: plan, run, resume and report from the command line."""
from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from wisp_shacira.cli.main import main

TINY = ["--grid.num_levels", "3", "--grid.min_res", "4", "--grid.max_res", "16",
        "--nef.hidden_dim", "8", "--trainer.iterations", "10"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        iio.imwrite(inputs / f"{name}.png", rng.integers(0, 256, (12, 12, 3), dtype=np.uint8))
    return inputs


def test_batch_runs_every_input_at_every_point_then_reuses(folder: Path, tmp_path: Path,
                                                           capsys) -> None:
    out = tmp_path / "out"
    args = ["batch", "--config", "shacira_image", "--inputs", str(folder), "--out", str(out),
            "--point", "small:grid.log2_table_size=6", "--point", "grid.log2_table_size=8",
            "--threads", "1", *TINY]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "4 run, 0 reused, 0 failed" in text
    assert (out / "small" / "a" / "a.shac").is_file()
    assert (out / "log2_table_size-8" / "b" / "b.shac").is_file()
    report = json.loads((out / "metrics.json").read_text())
    assert report["executor"] == "sequential" and len(report["jobs"]) == 4
    assert main(args) == 0
    assert "0 run, 4 reused, 0 failed" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    ([], "needs --config"),
    (["--output", "x"], "give --out and --inputs"),
    (["--cpus", "2"], "add --ray"),
    (["--point", "grid.log2_table_size"], "expected [LABEL:]KEY=VALUE"),
    (["--grid.no_such_key", "1"], "unknown config key grid.no_such_key"),
])
def test_batch_errors_are_one_line_and_write_nothing(folder: Path, tmp_path: Path, capsys,
                                                     extra: list, message: str) -> None:
    config = [] if message == "needs --config" else ["--config", "shacira_image"]
    out = tmp_path / "out"
    assert main(["batch", *config, "--inputs", str(folder), "--out", str(out), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_ray_address_that_does_not_answer_writes_nothing(folder: Path, tmp_path: Path,
                                                           capsys) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed")
    out = tmp_path / "out"
    assert main(["batch", "--config", "shacira_image", "--inputs", str(folder), "--out", str(out),
                 "--ray", "127.0.0.1:9", "--connect-timeout", "2", *TINY]) == 2
    assert "no Ray cluster answers at 127.0.0.1:9" in capsys.readouterr().err
    assert not out.exists()
