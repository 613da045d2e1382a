"""The out-of-core image path: same files whatever the input layout, tiled decode equal
to the whole decode, regions and previews equal to crops of it."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import png
import pytest
import tifffile

from wisp_shacira.cli.main import main as cli_main
from wisp_shacira.config import build_config
from wisp_shacira.datasets import tiled_output
from wisp_shacira.datasets.image import load_image
from wisp_shacira.metrics import psnr, ssim
from wisp_shacira.tasks.image import AppConfig, compress_one, decode_pixels

TINY = {"grid": {"num_levels": 4, "min_res": 4, "max_res": 32, "log2_table_size": 8},
        "nef": {"hidden_dim": 8},
        "trainer": {"iterations": 150, "log_every": 1000, "batch_size": 256}}


def _array(size=(40, 56)) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    base = (np.sin(xx / 3.0) + np.cos(yy / 4.0) + 2) / 4
    chans = [np.clip(base * (0.5 + 0.5 * c / 3) + rng.normal(0, 0.02, size), 0, 1) for c in range(3)]
    return (np.stack(chans, -1) * 255).astype(np.uint8)


def _png(path: Path, array: np.ndarray) -> Path:
    writer = png.Writer(array.shape[1], array.shape[0], greyscale=False, bitdepth=8)
    with open(path, "wb") as handle:
        writer.write_array(handle, array.reshape(-1))
    return path


def _config(**dataset) -> AppConfig:
    return build_config(AppConfig, {**TINY, "dataset": {"out_of_core": "always", "tile": 16,
                                                        **dataset}})


@pytest.fixture(scope="module")
def large_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, np.ndarray]:
    root = tmp_path_factory.mktemp("large")
    array = _array()
    tifffile.imwrite(root / "img.tif", array)  # strips: memory-mapped
    metrics = compress_one(root / "img.tif", _config(), root / "out")
    return root, metrics, array


def test_out_of_core_files_do_not_depend_on_the_input_layout(large_run, tmp_path: Path) -> None:
    root, metrics, array = large_run
    assert metrics["out_of_core"] and metrics["decode_matches"]
    assert metrics["bytes"] == (root / "out" / "img.shac").stat().st_size
    _png(tmp_path / "img.png", array)
    again = compress_one(tmp_path / "img.png", _config(tile=32), tmp_path / "out")
    assert (tmp_path / "out" / "img.shac").read_bytes() == (root / "out" / "img.shac").read_bytes()
    assert again["psnr"] == pytest.approx(metrics["psnr"], rel=1e-12)   # float sums per tile
    in_memory = compress_one(tmp_path / "img.png", build_config(AppConfig, TINY), tmp_path / "mem")
    assert not in_memory.get("out_of_core") and abs(in_memory["psnr"] - metrics["psnr"]) < 2.0


def test_tiled_decode_and_metrics_equal_the_whole_decode(large_run) -> None:
    root, metrics, array = large_run
    whole, meta, _ = decode_pixels(root / "out" / "img.shac")
    written = load_image(root / "out" / "img.png").pixels
    assert np.array_equal(written, whole)
    original = array.astype(np.float32) / 255
    assert metrics["psnr"] == pytest.approx(psnr(whole, original), abs=1e-6)
    assert metrics["ssim"] == pytest.approx(ssim(whole, original), abs=1e-6)
    assert metrics["psnr"] > 20


def test_regions_and_previews_equal_crops_of_the_full_decode(large_run, tmp_path: Path) -> None:
    root, _, _ = large_run
    shac = str(root / "out" / "img.shac")
    assert cli_main(["decode", shac, "-o", str(tmp_path / "full.tif")]) == 0
    with tifffile.TiffFile(tmp_path / "full.tif") as tif:
        assert tif.is_bigtiff and tif.pages[0].is_tiled
        full = tif.asarray()
    assert np.array_equal(full, np.round(decode_pixels(Path(shac))[0] * 255).astype(np.uint8))
    assert cli_main(["decode", shac, "-o", str(tmp_path / "r.png"), "--region", "5,7,33,20"]) == 0
    assert np.array_equal(load_image(tmp_path / "r.png").pixels * 255, full[7:27, 5:38])
    for step, lod in ((3, 2), (4, None), (8, 4)):
        args = ["decode", shac, "-o", str(tmp_path / "p.tif"), "--downscale", str(step), "--force"]
        assert cli_main(args + ([] if lod is None else ["--max-lod", str(lod)])) == 0
        coarse = np.round(decode_pixels(Path(shac), max_lod=lod)[0] * 255).astype(np.uint8)
        assert np.array_equal(tifffile.imread(tmp_path / "p.tif"),
                              coarse[step // 2::step, step // 2::step])


def test_bad_windows_and_full_disks_are_one_line_and_leave_nothing(
        large_run, tmp_path: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    root, _, _ = large_run
    shac = str(root / "out" / "img.shac")
    cases = [(["--region", "50,0,10,10"], "lies outside the 56x40 image"),
             (["--region", "0,0,0,10"], "width and height must be > 0"),
             (["--region", "0,0,-4,10"], "width and height must be > 0"),
             (["--region", "1,2,3"], "expected X,Y,W,H"),
             (["--downscale", "0"], "downscale 0 must be >= 1"),
             (["--region", "0,0,4,4", "--partial"], "drop --partial")]
    for extra, message in cases:
        capsys.readouterr()
        assert cli_main(["decode", shac, "-o", str(tmp_path / "x.tif"), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(tiled_output.shutil, "disk_usage",
                        lambda _: usage._replace(free=100))
    assert cli_main(["decode", shac, "-o", str(tmp_path / "x.tif")]) == 2
    assert "needs up to 6.6 KiB on disk; 100 B are free" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
