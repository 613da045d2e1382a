"""Tests of the video field: shapes, plan path, config checks, export round trip."""
from __future__ import annotations

import pytest
import torch

from wisp_shacira.config import build_config
from wisp_shacira.errors import ConfigError
from wisp_shacira.fields.video import VideoField, VideoNefConfig
from wisp_shacira.grid.fast import build_plan
from wisp_shacira.grid.shacira_grid import GridConfig

GRID = GridConfig(num_levels=4, min_res=2, max_res=16, log2_table_size=8, feature_dim=2)


def make_field(seed: int = 0) -> VideoField:
    torch.manual_seed(seed)
    return VideoField(GRID, VideoNefConfig(hidden_dim=8, num_layers=1))


def test_output_shape_and_grid_is_3d() -> None:
    field = make_field()
    assert field.grid.dim == 3
    assert field(torch.rand(17, 3)).shape == (17, 3)


def test_plan_path_matches_reference() -> None:
    field = make_field().eval()
    coords = torch.rand(64, 3, generator=torch.Generator().manual_seed(1))
    plan = build_plan(coords, field.grid.layout)
    torch.testing.assert_close(field(None, plan=plan), field(coords), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("key,value", [("hidden_dim", 0), ("num_layers", -1)])
def test_bad_nef_config(key: str, value: int) -> None:
    with pytest.raises(ConfigError, match=f"nef.{key}"):
        build_config(VideoNefConfig, {key: value}, "nef")


def test_export_round_trip_is_exact() -> None:
    field = make_field()
    with torch.no_grad():
        field.grid.latents.uniform_(-3, 3)
    field.eval()
    field.round_weights()
    model = field.to_shac_model({"task": "video"})
    other = make_field(seed=1).eval()
    other.load_shac_model(model)
    coords = torch.rand(100, 3)
    assert torch.equal(field(coords), other(coords))
    assert torch.equal(field(coords, lod=2), other(coords, lod=2))
