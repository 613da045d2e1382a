"""``wisp-shacira encode``: the installed entry point of every task, in process."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import png
import pytest

from wisp_shacira.cli.main import main

TINY = ["--grid.num_levels", "4", "--grid.min_res", "4", "--grid.max_res", "32",
        "--grid.log2_table_size", "8", "--nef.hidden_dim", "8", "--trainer.log_every", "10"]


def _png(path: Path, size: tuple[int, int] = (24, 32)) -> Path:
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    base = (np.sin(xx / 3.0) + np.cos(yy / 4.0) + 2) / 4
    array = (np.stack([base, base[::-1], 1 - base], -1) * 255).astype(np.uint8)
    with open(path, "wb") as handle:
        png.Writer(size[1], size[0], greyscale=False).write_array(handle, array.reshape(-1))
    return path


def test_encode_runs_a_bundled_config_end_to_end(tmp_path: Path, capsys) -> None:
    src = _png(tmp_path / "tiny.png")
    out = tmp_path / "out"
    assert main(["encode", "--config", "shacira_image", "--dataset.path", str(src),
                 "--output", str(out), "--trainer.iterations", "20", *TINY]) == 0
    printed = capsys.readouterr().out
    assert "tiny" in printed and f"outputs in {out}" in printed
    report = json.loads((out / "metrics.json").read_text())
    assert report["images"][0]["bytes"] == (out / "tiny.shac").stat().st_size
    assert report["images"][0]["rate_control"] is None


def test_help_lists_every_key_with_type_default_and_meaning(capsys) -> None:
    assert main(["encode", "--help"]) == 0
    text = capsys.readouterr().out
    for task in ("image", "video", "nerf"):
        assert f"config keys of the {task} task" in text
    line = next(l for l in text.splitlines() if l.strip().startswith("trainer.target_bpp"))
    assert "float | null" in line and "None" in line and "bits per pixel" in line
    assert "shacira_nerf" in text   # the bundled configs


def test_help_with_a_config_shows_its_values(capsys) -> None:
    assert main(["encode", "--config", "shacira_nerf", "--trainer.iterations", "7", "--help"]) == 0
    text = capsys.readouterr().out
    assert "config keys of the nerf task" in text and "image task" not in text
    line = next(l for l in text.splitlines() if l.strip().startswith("trainer.iterations "))
    assert " 7 " in line and "value" in text


@pytest.mark.parametrize("args, message", [
    (["--trainer.lr_latent", "0.1"], "did you mean trainer.lr_latents?"),
    (["--trainer.rays_per_batch", "64"], "trainer.rays_per_batch is a key of the nerf task"),
    (["--tracer.num_samples", "8"], "key of the nerf task"),
    (["--trainer.target_bpp", "0.5", "--trainer.target_bytes", "100"], "not both"),
    (["--trainer.target_bytes", "10"], "below the"),
    (["--trainer.target_bytes", "100000000"], "beyond the largest file"),
])
def test_bad_keys_and_targets_are_one_line_errors(tmp_path: Path, capsys, args: list[str],
                                                  message: str) -> None:
    src = _png(tmp_path / "tiny.png")
    argv = ["encode", "--config", "shacira_image", "--dataset.path", str(src),
            "--output", str(tmp_path / "o"), *TINY, *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1


def test_missing_or_unknown_config(tmp_path: Path, capsys) -> None:
    assert main(["encode"]) == 2
    assert "encode needs --config" in capsys.readouterr().err
    assert main(["encode", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "not a file and not a bundled config" in capsys.readouterr().err
    with pytest.raises(SystemExit):                  # other commands take no overrides
        main(["info", "x.shac", "--bogus"])
