"""ShaciraGrid: gradients reach every trained part; LOD zeroing; integer export."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from wisp_shacira.config import build_config
from wisp_shacira.errors import ConfigError
from wisp_shacira.fields.image import ImageField, ImageNefConfig
from wisp_shacira.grid.shacira_grid import GridConfig, ShaciraGrid

CFG = GridConfig(num_levels=4, min_res=4, max_res=32, log2_table_size=8, feature_dim=2,
                 latent_dim=2, latent_init=2.0)


def test_rate_term_alone_gives_latents_and_prior_a_gradient() -> None:
    torch.manual_seed(0)
    grid = ShaciraGrid(2, CFG)
    grid.rate_bits().backward()
    assert grid.latents.grad is not None and grid.latents.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in grid.prior.parameters())
    assert grid.decoder.weight.grad is None


def test_distortion_reaches_latents_decoder_and_mlp_in_soft_and_hard_phases() -> None:
    torch.manual_seed(0)
    field = ImageField(CFG, ImageNefConfig(8, 1), channels=3)
    coords = torch.rand(64, 2)
    for tau in (0.5, None):
        field.zero_grad()
        field(coords, tau=tau).square().mean().backward()
        assert field.grid.latents.grad.abs().sum() > 0
        assert field.grid.decoder.weight.grad.abs().sum() > 0
        assert all(p.grad.abs().sum() > 0 for p in field.heads.parameters())


def test_lod_zeroes_finer_levels() -> None:
    torch.manual_seed(0)
    grid = ShaciraGrid(3, CFG).eval()
    coords = torch.rand(32, 3)
    full = grid.interpolate(coords)
    coarse = grid.interpolate(coords, lod=2)
    feat = CFG.feature_dim
    assert full.shape == (32, CFG.num_levels * feat)
    assert torch.equal(coarse[:, :2 * feat], full[:, :2 * feat])
    assert torch.all(coarse[:, 2 * feat:] == 0)


def test_no_tau_gives_hard_integers_and_export_matches() -> None:
    torch.manual_seed(0)
    grid = ShaciraGrid(2, CFG)
    q = grid.quantized_latents()
    assert torch.equal(q, torch.round(grid.latents))
    assert not torch.equal(grid.quantized_latents(0.3), q)
    levels = grid.integer_latents()
    assert [len(l) for l in levels] == list(grid.layout.table_sizes)
    tables = grid.frequency_tables()
    for dim, table in enumerate(tables):
        column = torch.round(grid.latents[:, dim])
        assert table.low == column.min() and table.high == column.max()


def test_uncompressed_grid_is_a_float_table_without_rate() -> None:
    grid = ShaciraGrid(2, GridConfig(num_levels=2, min_res=4, max_res=8, log2_table_size=6,
                                     feature_dim=2, compressed=False))
    assert grid.rate_bits().item() == 0
    assert grid.decoded_table() is grid.latents


def test_frequency_tables_follow_the_symbol_counts() -> None:
    grid = ShaciraGrid(2, CFG)
    with torch.no_grad():
        values = torch.tensor([-2.0, 0.0, 0.0, 0.0, 1.0, 1.0])
        grid.latents.copy_(values.repeat(grid.latents.numel() // 6 + 1)[:grid.latents.numel()]
                           .reshape(grid.latents.shape))
    table = grid.frequency_tables()[0]
    counts = np.bincount((torch.round(grid.latents[:, 0]).long() + 2).numpy())
    assert table.low == -2 and table.num_symbols == 4
    assert table.freqs[1] == 1  # -1 never occurs: the smallest frequency
    assert np.allclose(table.freqs / table.freqs.sum(), counts / counts.sum(), atol=1e-3)


@pytest.mark.parametrize("bad, message", [
    ({"num_levels": 0}, "grid.num_levels"),
    ({"min_res": 64, "max_res": 32}, "grid.min_res"),
    ({"log2_table_size": 0}, "grid.log2_table_size"),
    ({"latent_dim": 0}, "grid.latent_dim"),
    ({"latent_init": 0.0}, "grid.latent_init"),
    ({"decoder_init": -1.0}, "grid.decoder_init"),
    ({"latent_step": 0.0}, "grid.latent_step"),
    ({"latent_step": 0.1, "decoder_init": 0.1}, "exclude each other"),
])
def test_out_of_range_grid_values_are_config_errors(bad: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config(GridConfig, bad, "grid")


def test_decoder_init_starts_features_near_zero() -> None:
    torch.manual_seed(0)
    grid = ShaciraGrid(2, dataclasses.replace(CFG, decoder_init=1e-3))
    assert torch.all(grid.decoder.bias == 0)
    assert grid.decoded_table().abs().max() < 0.05


@pytest.mark.parametrize("latent_dim, feature_dim", [(2, 2), (1, 3), (2, 3)])
def test_latent_step_makes_one_latent_unit_one_step(latent_dim: int, feature_dim: int) -> None:
    cfg = dataclasses.replace(CFG, latent_dim=latent_dim, feature_dim=feature_dim, latent_step=0.05)
    grid = ShaciraGrid(2, cfg)
    with torch.no_grad():
        grid.latents.copy_(torch.randint(-40, 41, grid.latents.shape).float())
    expected = 0.05 * grid.latents[:, torch.arange(feature_dim) % latent_dim]
    assert torch.allclose(grid.decoded_table(), expected)
