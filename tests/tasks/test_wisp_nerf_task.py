"""Task ``wisp_nerf``: Kaolin-Wisp scenes decode, render and refuse bad files without Wisp."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from wisp_shacira.codec.model_io import read_shac, write_shac
from wisp_shacira.errors import BitstreamError, ConfigError
from wisp_shacira.fields.wisp_bridge import export_wisp_nerf
from wisp_shacira.fields.wisp_nerf import WispNefConfig, WispRadianceField
from wisp_shacira.grid.shacira_grid import GridConfig
from wisp_shacira.resources import demo_data
from wisp_shacira.tasks import get_task
from wisp_shacira.tasks.nerf_config import NerfDatasetConfig
from wisp_shacira.tasks.nerf_eval import load_scene_model
from wisp_shacira.tasks.wisp_nerf import file_sections, scene_sections

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "wisp_nerf_v3_43c22df" / "scene.shac"
GRID = GridConfig(num_levels=3, min_res=2, max_res=8, log2_table_size=8, feature_dim=2,
                  latent_dim=1, compressed=True)


def write_scene(path: Path, **nef) -> Path:
    """A wisp_nerf file written from the rebuilt field (the adapter's module names)."""
    torch.manual_seed(0)
    cfg = WispNefConfig(hidden_dim=8, view_embedder="positional", view_multires=2, **nef)
    field = WispRadianceField(GRID, cfg)
    scene = scene_sections(NerfDatasetConfig(path=str(demo_data("demo_scene")), mip=2))
    sections = file_sections(cfg, "cat", {}, (1.0, 1.0, 1.0), 16, scene)
    sections["occupancy"]["resolution"] = 8
    export_wisp_nerf(field.grid, field.heads, path, sections)
    return path


def test_golden_decodes_to_a_turntable(tmp_path):
    out = get_task("wisp_nerf").decode(GOLDEN, tmp_path / "frames", max_lod=2)
    assert len(list(out.glob("*.png"))) == 60


def test_info_reads_a_wisp_file():
    result = subprocess.run([sys.executable, "-m", "wisp_shacira.cli.main", "info", str(GOLDEN)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "task wisp_nerf, 4 levels" in result.stdout


def test_format_1_files_are_refused_with_a_clear_line(tmp_path):
    model = read_shac(write_scene(tmp_path / "new.shac"))
    old = dataclasses.replace(model, config={"task": "wisp_nerf", "grid": model.config["grid"],
                                             "wisp": {"multiscale_type": "cat",
                                                      "nef": {"hidden_dim": 8}}})
    write_shac(tmp_path / "old.shac", old)
    with pytest.raises(BitstreamError, match="earlier Kaolin-Wisp adapter"):
        load_scene_model(tmp_path / "old.shac")
    result = subprocess.run([sys.executable, "-m", "wisp_shacira.cli.main", "decode",
                             str(tmp_path / "old.shac"), "-o", str(tmp_path / "f")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


def test_files_of_other_tasks_and_broken_architectures(tmp_path, random_image_shac):
    from wisp_shacira.tasks.wisp_nerf import wisp_scene_field
    image = random_image_shac(tmp_path / "image.shac", 8, 8)
    with pytest.raises(BitstreamError, match="not a Kaolin-Wisp nerf scene"):
        wisp_scene_field(read_shac(image), "image.shac")
    model = read_shac(write_scene(tmp_path / "scene.shac"))
    model.config["nef"]["hidden_dim"] = 9
    with pytest.raises(BitstreamError, match="shape"):
        wisp_scene_field(model, "scene.shac")
    model.config["nef"]["hidden_dim"] = 8
    model.config["nef"]["layer_type"] = "spectral_norm"
    with pytest.raises(BitstreamError, match="spectral_norm"):
        wisp_scene_field(model, "scene.shac")


def test_encode_points_to_the_wisp_app(tmp_path):
    with pytest.raises(ConfigError, match="app/main_wisp.py"):
        get_task("wisp_nerf").run(get_task("wisp_nerf").config_type(), tmp_path)
