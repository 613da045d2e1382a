"""Fixtures shared by the CLI tests: a tiny synthetic scene and a scene file exported
from an untrained (random) field."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from wisp_shacira.codec.model_io import write_shac
from wisp_shacira.config import build_config
from wisp_shacira.fields.nerf import RadianceField
from wisp_shacira.tasks.nerf import file_config, load_scene
from wisp_shacira.tasks.nerf_config import AppConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 16x16 synthetic NeRF-synthetic scene (4 train, 1 val, 3 test views)."""
    spec = importlib.util.spec_from_file_location("make_demo_scene",
                                                  ROOT / "data" / "make_demo_scene.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    return demo.make_demo_scene(tmp_path_factory.mktemp("scene"), size=16, n_train=4, n_val=1,
                                n_test=3, seed=5, supersample=1)


@pytest.fixture(scope="module")
def exported(scene_dir: Path,
             tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RadianceField, dict]:
    """An untrained (random) field exported to a scene file, and the field itself."""
    cfg = build_config(AppConfig, {
        "grid": {"num_levels": 3, "min_res": 4, "max_res": 16, "log2_table_size": 9,
                 "feature_dim": 2, "latent_init": 3.0},
        "nef": {"hidden_dim": 8, "geo_feat_dim": 3, "color_hidden_dim": 8},
        "tracer": {"num_samples": 12}, "dataset": {"path": str(scene_dir)},
        "trainer": {"occupancy_resolution": 8}})
    torch.manual_seed(0)
    field = RadianceField(cfg.grid, cfg.nef).eval()
    field.round_weights()
    scene, norm, _ = load_scene(cfg.dataset)
    config = file_config(cfg, scene, norm, "tiny")
    path = tmp_path_factory.mktemp("model") / "scene.shac"
    write_shac(path, field.to_shac_model(config))
    return path, field, config
