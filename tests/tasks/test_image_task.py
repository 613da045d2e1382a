"""Image task end to end on tiny generated images, decoded in a fresh process."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import png
import pytest
import torch

from wisp_shacira.cli.main import main as cli_main
from wisp_shacira.codec.model_io import read_shac
from wisp_shacira.config import build_config
from wisp_shacira.datasets.image import load_image
from wisp_shacira.errors import ConfigError
from wisp_shacira.fields.image import ImageField, ImageNefConfig
from wisp_shacira.grid.shacira_grid import GridConfig
from wisp_shacira.tasks.image import AppConfig, compress_one, decode_pixels

ROOT = Path(__file__).resolve().parents[2]
TINY = {"grid": {"num_levels": 4, "min_res": 4, "max_res": 32, "log2_table_size": 8},
        "nef": {"hidden_dim": 8}, "trainer": {"iterations": 150, "log_every": 1000}}


def _image(path: Path, channels: int, dtype=np.uint8, size=(24, 32)) -> Path:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    base = (np.sin(xx / 3.0) + np.cos(yy / 4.0) + 2) / 4
    peak = np.iinfo(dtype).max
    chans = [np.clip(base * (0.5 + 0.5 * c / 3) + rng.normal(0, 0.02, size), 0, 1)
             for c in range(channels)]
    array = (np.stack(chans, -1) * peak).astype(dtype)
    writer = png.Writer(size[1], size[0], greyscale=channels <= 2, alpha=channels in (2, 4),
                        bitdepth=8 * array.itemsize)
    with open(path, "wb") as handle:
        writer.write_array(handle, array.reshape(-1))
    return path


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


def test_compress_then_decode_in_a_fresh_process_matches(tmp_path, capsys) -> None:
    src = _image(tmp_path / "tiny.png", 3)
    cfg = build_config(AppConfig, TINY)
    metrics = compress_one(src, cfg, tmp_path / "out")
    shac = tmp_path / "out" / "tiny.shac"
    assert metrics["bytes"] == shac.stat().st_size
    assert metrics["bpp"] == pytest.approx(shac.stat().st_size * 8 / (24 * 32))
    tried = metrics["rate"]["file_bytes"]                      # grid.latent_coder: auto
    assert set(tried) == {"factorized", "context"} and metrics["bytes"] == min(tried.values())
    assert tried[metrics["rate"]["latent_coder"]] == metrics["bytes"]
    assert metrics["decode_matches"]
    assert abs(metrics["psnr"] - metrics["psnr_before_export"]) < 0.01
    assert metrics["psnr"] > 20
    result = _cli("-m", "wisp_shacira.cli.main", "decode", str(shac), "-o", str(tmp_path / "d.png"))
    assert result.returncode == 0, result.stderr
    fresh = iio.imread(tmp_path / "d.png")
    assert np.array_equal(fresh, iio.imread(tmp_path / "out" / "tiny.png"))
    capsys.readouterr()
    assert cli_main(["info", str(shac)]) == 0 and "level 3" in capsys.readouterr().out


@pytest.mark.parametrize("channels, dtype", [(1, np.uint8), (4, np.uint8), (1, np.uint16),
                                             (3, np.uint16)])
def test_gray_alpha_and_16_bit_images(tmp_path, channels: int, dtype) -> None:
    src = _image(tmp_path / "img.png", channels, dtype)
    cfg = build_config(AppConfig, {**TINY, "trainer": {**TINY["trainer"], "iterations": 20}})
    compress_one(src, cfg, tmp_path / "out")
    pixels, meta, _ = decode_pixels(tmp_path / "out" / "img.shac")
    assert pixels.shape == (24, 32, channels)
    assert meta.bit_depth == (16 if dtype == np.uint16 else 8)
    out = load_image(tmp_path / "out" / "img.png")
    assert out.bit_depth == 8 * np.dtype(dtype).itemsize and out.channels == channels
    assert np.array_equal(out.pixels, pixels)


def test_app_reports_user_errors_in_one_line(tmp_path, capsys) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("task: image\ntrainer:\n  iterations: 5\n")
    missing = _cli("app/main.py", "--config", str(cfg), "--dataset.path", str(tmp_path / "no.png"),
                   "--output", str(tmp_path / "o"))          # the wrapper, in a fresh process
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1].startswith("error:")
    assert "no.png" in missing.stderr and "Traceback" not in missing.stderr
    assert cli_main(["encode", "--config", str(cfg), "--trainer.bogus", "1"]) == 2
    assert "trainer.bogus" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_decode_rejects_corrupt_truncated_and_foreign_files(tmp_path, capsys) -> None:
    src = _image(tmp_path / "t.png", 3)
    compress_one(src, build_config(AppConfig, {**TINY, "trainer": {"iterations": 5}}), tmp_path / "o")
    data = (tmp_path / "o" / "t.shac").read_bytes()
    cases = {"trunc.shac": (data[:-7], "truncated"),
             "flip.shac": (data[:-3] + bytes([data[-3] ^ 1]) + data[-2:], "checksum"),
             "png.shac": (src.read_bytes(), "not a .shac")}
    capsys.readouterr()
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        code = cli_main(["decode", str(tmp_path / name), "-o", str(tmp_path / f"{name}.png")])
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, name
        assert not (tmp_path / f"{name}.png").exists()


def test_outputs_never_overwrite_the_input_image(tmp_path) -> None:
    src = _image(tmp_path / "t.png", 3)
    before = src.read_bytes()
    with pytest.raises(ConfigError, match="refusing to overwrite input"):
        compress_one(src, build_config(AppConfig, {**TINY, "trainer": {"iterations": 5}}), tmp_path)
    assert src.read_bytes() == before
    assert not (tmp_path / "t.shac").exists()



@pytest.mark.parametrize("batch_size", [0, 7, 40, 1000])
def test_planned_mini_batches_visit_every_pixel_once_per_epoch(batch_size: int) -> None:
    from wisp_shacira.tasks.image import _distortion, pixel_coords
    torch.manual_seed(0)
    field_ = ImageField(GridConfig(num_levels=3, min_res=4, max_res=16, log2_table_size=6),
                        ImageNefConfig(hidden_dim=8), 3).eval()
    coords = pixel_coords(9, 11)
    target = torch.rand(len(coords), 3)
    errors = ((field_(coords) - target) ** 2).mean(dim=1).detach()
    step = _distortion(field_, coords, target, batch_size, seed=3)
    subsets = getattr(step, "subsets", [torch.arange(len(coords))])
    assert torch.equal(torch.sort(torch.cat(subsets)).values, torch.arange(len(coords)))
    assert len(subsets) == (1 if batch_size in (0, 1000) else -(-len(coords) // batch_size))
    expected = sorted(round(float(errors[idx].mean()), 5) for idx in subsets)
    with torch.no_grad():
        for _ in range(2):  # each epoch visits every subset once, in some order
            assert sorted(round(float(step(None)), 5) for _ in subsets) == expected


def test_context_model_files_decode_exactly(tmp_path) -> None:
    src = _image(tmp_path / "tiny.png", 3, size=(40, 48))
    cfg = build_config(AppConfig, {**TINY, "grid": {**TINY["grid"], "entropy_model": "context",
                                                    "latent_coder": "context", "latent_dim": 2}})
    metrics = compress_one(src, cfg, tmp_path / "out")
    shac = tmp_path / "out" / "tiny.shac"
    assert (shac.read_bytes()[4], metrics["bytes"]) == (5, shac.stat().st_size)
    assert read_shac(shac, max_lod=0).context is not None
    assert metrics["decode_matches"] and metrics["psnr"] > 20
    assert metrics["rate"]["entropy_model"] == metrics["rate"]["latent_coder"] == "context"
    assert metrics["rate"]["latent_bytes"] > 0
    result = _cli("-m", "wisp_shacira.cli.main", "decode", str(shac), "-o", str(tmp_path / "d.png"))
    assert result.returncode == 0, result.stderr
    assert np.array_equal(iio.imread(tmp_path / "d.png"), iio.imread(tmp_path / "out" / "tiny.png"))
