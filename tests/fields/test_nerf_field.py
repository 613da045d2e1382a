"""Radiance field: encodings, activations, shapes, gradients and the .shac round trip."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from wisp_shacira.codec.model_io import read_shac, write_shac
from wisp_shacira.config import build_config
from wisp_shacira.errors import ConfigError
from wisp_shacira.fields.nerf import (NerfNefConfig, RadianceField, positional_encoding,
                                      spherical_harmonics, trunc_exp, view_encoding_dim)
from wisp_shacira.grid.shacira_grid import GridConfig

GRID = GridConfig(num_levels=4, min_res=4, max_res=16, log2_table_size=9, feature_dim=2)
NEF = NerfNefConfig(hidden_dim=16, geo_feat_dim=7, color_hidden_dim=16, color_num_layers=1)


def _unit(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=-1)


def test_spherical_harmonics_are_orthonormal_on_the_sphere() -> None:
    basis = spherical_harmonics(_unit(200_000).double(), 4)
    gram = 4 * np.pi * (basis.T @ basis) / basis.shape[0]
    assert basis.shape[1] == 16
    assert torch.allclose(gram, torch.eye(16, dtype=gram.dtype), atol=0.03)


def test_encoding_widths() -> None:
    dirs = _unit(5)
    assert spherical_harmonics(dirs, 2).shape == (5, 4)
    assert positional_encoding(dirs, 3).shape == (5, 3 + 18)
    assert view_encoding_dim(NerfNefConfig(view_encoding="positional", view_degree=3)) == 21


def test_trunc_exp_clamps_its_gradient() -> None:
    x = torch.tensor([0.0, 20.0], requires_grad=True)
    trunc_exp(x).sum().backward()
    assert torch.allclose(x.grad, torch.tensor([1.0, float(np.exp(15.0))]))


def test_nef_config_rejects_bad_values() -> None:
    with pytest.raises(ConfigError, match="view_degree"):
        build_config(NerfNefConfig, {"view_degree": 5}, "nef")


@pytest.mark.parametrize("compressed", [True, False])
def test_field_shapes_ranges_and_gradients(compressed: bool) -> None:
    torch.manual_seed(0)
    grid = GridConfig(**{**GRID.__dict__, "compressed": compressed})
    field = RadianceField(grid, NEF).train()
    points = torch.rand(50, 3) * 2.4 - 1.2           # some outside the box: clamped
    sigma, rgb = field(points, _unit(50))
    assert sigma.shape == (50,) and rgb.shape == (50, 3)
    assert (sigma >= 0).all() and ((rgb > 0) & (rgb < 1)).all()
    (sigma.sum() + rgb.sum()).backward()
    assert field.grid.latents.grad.abs().sum() > 0
    assert all(p.grad is not None for p in field.heads.parameters())


def test_query_matches_per_call_decoding_at_every_lod() -> None:
    torch.manual_seed(0)
    field = RadianceField(GRID, NEF).eval()
    points, dirs = torch.rand(40, 3) * 2 - 1, _unit(40)
    for lod in (None, 1, GRID.num_levels):
        sigma, rgb = field(points, dirs, lod)
        query = field.query(lod)
        sigma2, rgb2 = query(points, dirs)
        assert torch.equal(sigma, sigma2) and torch.equal(rgb, rgb2)
        assert torch.equal(query.density(points), sigma)
    assert not torch.equal(field(points, dirs, 1)[0], field(points, dirs)[0])


def test_tau_is_an_argument_of_the_forward_pass() -> None:
    torch.manual_seed(0)
    field = RadianceField(GRID, NEF)
    points, dirs = torch.rand(40, 3) * 2 - 1, _unit(40)
    hard = field(points, dirs)[0]
    assert torch.equal(hard, field(points, dirs, tau=None)[0])
    assert not torch.equal(hard, field(points, dirs, tau=0.5)[0])   # stochastic soft rounding
    with pytest.raises(ValueError, match="lod 0 is out of range"):
        field(points, dirs, lod=0)


def test_shac_round_trip_gives_the_same_field(tmp_path: Path) -> None:
    torch.manual_seed(0)
    field = RadianceField(GRID, NEF)
    with torch.no_grad():
        field.grid.latents.mul_(40)                    # spread the latents over a few integers
    field.eval().round_weights()
    path = tmp_path / "f.shac"
    write_shac(path, field.to_shac_model({"task": "nerf"}))
    other = RadianceField(GRID, NEF)
    other.load_shac_model(read_shac(path))
    points, dirs = torch.rand(64, 3) * 2 - 1, _unit(64)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(field(points, dirs), other.eval()(points, dirs)))
    assert {k.split(".")[1] for k in field._stored() if k.startswith("heads.")} == {"density", "color"}
