"""Interpolate first, decode after: the same features and gradients as decoding every row."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from wisp_shacira.codec.model_io import read_shac, write_shac
from wisp_shacira.fields.nerf import NerfNefConfig, RadianceField
from wisp_shacira.grid import latents_first, shacira_grid
from wisp_shacira.grid.fast import build_plan, encode
from wisp_shacira.grid.hashing import make_layout
from wisp_shacira.grid.latents_first import (StepLatents, encode_latents_first,
                                             latents_first_pays, table_cost)
from wisp_shacira.grid.shacira_grid import GridConfig, ShaciraGrid

# (dim, levels, log2 T, F, D): dense and hashed levels, D < F, D = F, D > F.
CONFIGS = [(2, 4, 7, 2, 1), (3, 3, 9, 2, 2), (3, 4, 8, 1, 3), (2, 3, 8, 4, 1)]


def _grid(dim: int, levels: int, log2_t: int, feat: int, latent: int) -> ShaciraGrid:
    torch.manual_seed(dim + 10 * levels + feat)
    grid = ShaciraGrid(dim, GridConfig(num_levels=levels, min_res=2, max_res=30,
                                       log2_table_size=log2_t, feature_dim=feat,
                                       latent_dim=latent, latent_init=3.0))
    with torch.no_grad():
        grid.decoder.bias.uniform_(-1.0, 1.0)          # a bias that would show in masked levels
    return grid


def _grads(grid: ShaciraGrid, out: torch.Tensor, grad_out: torch.Tensor) -> list[torch.Tensor]:
    params = [grid.latents, grid.decoder.weight, grid.decoder.bias]
    return list(torch.autograd.grad(out, params, grad_out))


def _both(grid: ShaciraGrid, coords: torch.Tensor | None, active: int, tau: float | None,
          plan=None) -> tuple[torch.Tensor, torch.Tensor, list, list]:
    """(table-path output, latents-first output, their gradients), same rounding draws."""
    torch.manual_seed(1)
    want = encode(grid.decoded_table(tau), coords, grid.layout, active, plan)
    torch.manual_seed(1)
    got = encode_latents_first(grid.quantized_latents(tau), grid.decoder, coords, grid.layout,
                               active, plan)
    grad_out = torch.randn_like(want)
    return want, got, _grads(grid, want, grad_out), _grads(grid, got, grad_out)


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("lod", [None, 2])
@pytest.mark.parametrize("tau", [None, 0.4])
def test_latents_first_equals_decoding_every_row(config: tuple, lod: int | None,
                                                 tau: float | None) -> None:
    grid = _grid(*config)
    coords = torch.rand(300, config[0]) * 1.1 - 0.05
    active = grid.num_levels if lod is None else lod
    want, got, want_grads, got_grads = _both(grid, coords, active, tau)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for g, w in zip(got_grads, want_grads):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)
    assert torch.all(got[:, active * config[3]:] == 0)    # masked levels: zeros, not the bias


def test_latents_first_with_a_plan() -> None:
    grid = _grid(*CONFIGS[0])
    coords = torch.rand(200, 2)
    want, got, want_grads, got_grads = _both(grid, None, 3, None, build_plan(coords, grid.layout))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for g, w in zip(got_grads, want_grads):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)


def test_cost_model() -> None:
    nerf = make_layout(3, 16, 512, 16, 19)
    assert latents_first_pays(nerf, 1 << 18, 16, 1, 2)          # 4.2M point-levels, 5.2M rows
    assert not latents_first_pays(nerf, 1 << 20, 16, 2, 2)      # D = F: 16.8M > 5.2M
    image = make_layout(2, 16, 512, 24, 11)
    assert not latents_first_pays(image, 768 * 512, 24, 1, 1)   # the image task's full plan


def _spy(monkeypatch: pytest.MonkeyPatch, pays: bool) -> list[int]:
    calls: list[int] = []
    real = latents_first.encode_latents_first

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(shacira_grid, "latents_first_pays", lambda *args: pays)
    monkeypatch.setattr(shacira_grid, "encode_latents_first", spy)
    monkeypatch.setattr(latents_first, "encode_latents_first", spy)
    return calls


def test_interpolate_takes_it_only_when_training(monkeypatch: pytest.MonkeyPatch) -> None:
    grid = _grid(*CONFIGS[1])
    coords = torch.rand(100, 3)
    calls = _spy(monkeypatch, pays=True)
    with torch.no_grad():
        evaluated = grid.interpolate(coords, lod=2)
        assert torch.equal(evaluated, encode(grid.decoded_table(), coords, grid.layout, 2))
    assert not calls                                           # evaluation decodes first
    trained = grid.interpolate(coords, lod=2)
    assert calls and trained.requires_grad
    torch.testing.assert_close(trained.detach(), evaluated, rtol=1e-5, atol=1e-5)


def test_eval_mode_with_gradients_decodes_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """``eval()`` keeps evaluation's arithmetic even with gradients on (e.g. a Wisp render)."""
    grid = _grid(*CONFIGS[1]).eval()
    coords = torch.rand(100, 3)
    calls = _spy(monkeypatch, pays=True)
    out = grid.interpolate(coords, lod=2)
    assert not calls and out.requires_grad
    assert torch.equal(out.detach(), encode(grid.decoded_table(), coords, grid.layout, 2).detach())
    assert not isinstance(grid.step_table(), StepLatents)


def test_every_lod_takes_the_same_path() -> None:
    """The cost model counts all levels, so a LOD's features are the full grid's, bit for bit."""
    grid = _grid(*CONFIGS[1])
    coords = torch.rand(600, 3)            # would pay for one level, not for all three
    assert latents_first_pays(grid.layout, 600, 1, 2, 2)
    assert not latents_first_pays(grid.layout, 600, grid.num_levels, 2, 2)
    full = grid.interpolate(coords)
    for lod in (1, 2):
        assert torch.equal(grid.interpolate(coords, lod=lod)[:, :2 * lod], full[:, :2 * lod])


def test_step_latents_decode_the_table_once_when_that_is_cheaper(
        monkeypatch: pytest.MonkeyPatch) -> None:
    grid = _grid(*CONFIGS[1])
    calls = _spy(monkeypatch, pays=True)
    step = grid.step_table()
    assert isinstance(step, StepLatents)
    budget = table_cost(grid.layout, 2, 2)
    points = budget // (grid.num_levels * 4) // 2 + 1         # each call costs just over half
    coords = torch.rand(points, 3)
    want = encode(grid.decoded_table(), coords, grid.layout).detach()
    outs = [grid.interpolate(coords, table=step) for _ in range(3)]
    assert len(calls) == 1 and step.table is not None          # then the table, decoded once
    for out in outs:
        torch.testing.assert_close(out.detach(), want, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        assert torch.equal(grid.step_table(), grid.decoded_table())


def test_shac_after_training_latents_first_decodes_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A few optimiser steps on the latents-first path, then export: the decoded file is
    the field in memory, bit for bit."""
    calls = _spy(monkeypatch, pays=True)
    torch.manual_seed(0)
    grid_cfg = GridConfig(num_levels=4, min_res=4, max_res=16, log2_table_size=9,
                          feature_dim=2, latent_dim=1, latent_init=2.0)
    nef = NerfNefConfig(hidden_dim=16, geo_feat_dim=7, color_hidden_dim=16, color_num_layers=1)
    field = RadianceField(grid_cfg, nef)
    optimizer = torch.optim.Adam(field.parameters(), lr=0.05)
    points, dirs = torch.rand(256, 3) * 2 - 1, torch.nn.functional.normalize(torch.randn(256, 3))
    for _ in range(5):
        optimizer.zero_grad()
        sigma, rgb = field.query(tau=0.3)(points, dirs)
        (rgb.mean() + sigma.mean()).backward()
        optimizer.step()
    assert calls
    field.eval().round_weights()
    path = tmp_path / "f.shac"
    write_shac(path, field.to_shac_model({"task": "nerf"}))
    other = RadianceField(grid_cfg, nef)
    other.load_shac_model(read_shac(path))
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(field(points, dirs),
                                                     other.eval()(points, dirs)))
