"""``wisp-shacira render`` (and ``decode`` of a scene) on a tiny exported scene file."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from wisp_shacira.cli.main import main
from wisp_shacira.codec.model_io import write_shac
from wisp_shacira.config import build_config
from wisp_shacira.fields.image import ImageField, ImageNefConfig
from wisp_shacira.grid.shacira_grid import GridConfig
from wisp_shacira.metrics import psnr
from wisp_shacira.tasks.nerf import load_scene
from wisp_shacira.tasks.nerf_config import AppConfig
from wisp_shacira.tasks.nerf_eval import render_views, scene_model_from


def test_render_matches_the_in_memory_model(scene_dir: Path, exported, tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    path, field, config = exported
    assert main(["render", str(path), "--poses", str(scene_dir / "transforms_test.json"),
                 "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    scene, _, _ = load_scene(build_config(AppConfig, {"dataset": {"path": str(scene_dir)}}).dataset)
    test = scene.split("test")
    memory = render_views(scene_model_from(field, config, "memory"), test.c2w, test.intrinsics,
                          test.H, test.W)
    expected = np.mean([psnr(m / 255.0, g.numpy()) for m, g in zip(memory, test.images)])
    printed = re.search(r"mean \(3 views\)\s+([0-9.]+)", out)
    assert printed is not None and abs(float(printed.group(1)) - expected) < 0.01
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["r_0.png", "r_1.png", "r_2.png"]
    assert json.loads((tmp_path / "metrics.json").read_text())["views"][0]["name"] == "r_0"


def test_render_poses_without_images_and_video(scene_dir: Path, exported, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    poses = tmp_path / "poses.json"
    shutil.copy(scene_dir / "transforms_val.json", poses)
    assert main(["render", str(exported[0]), "--poses", str(poses), "-o", str(tmp_path / "o"),
                 "--video", "--frames", "4"]) == 0
    out = capsys.readouterr().out
    assert "PSNR" not in out and (tmp_path / "o" / "turntable.mp4").stat().st_size > 0
    assert (tmp_path / "o" / "r_0.png").is_file()


def test_decode_writes_a_turntable(exported, tmp_path: Path) -> None:
    assert main(["decode", str(exported[0]), "-o", str(tmp_path / "frames")]) == 0
    assert len(list((tmp_path / "frames").glob("*.png"))) == 60


def _image_shac(path: Path) -> Path:
    field = ImageField(GridConfig(num_levels=2, min_res=2, max_res=4, log2_table_size=6),
                       ImageNefConfig(), 3).eval()
    field.round_weights()
    write_shac(path, field.to_shac_model({"task": "image"}))
    return path


def test_user_errors_are_one_line(scene_dir: Path, exported, tmp_path: Path,
                                  capsys: pytest.CaptureFixture) -> None:
    poses = str(scene_dir / "transforms_test.json")
    image = _image_shac(tmp_path / "image.shac")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"frames": [')
    cases = [
        (["render", str(image), "--poses", poses, "-o", str(tmp_path / "a")],
         "image.shac: holds a 'image' model, not a nerf scene"),
        (["render", str(exported[0]), "--poses", str(bad_json), "-o", str(tmp_path / "b")],
         "bad.json: malformed JSON"),
        (["render", str(exported[0]), "--poses", poses, "-o", str(scene_dir / "test")],
         "refusing to overwrite input file"),
        (["render", str(tmp_path / "missing.shac"), "--poses", poses, "-o", str(tmp_path / "c")],
         "missing.shac: no such file"),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and err.count("\n") == 1, err
