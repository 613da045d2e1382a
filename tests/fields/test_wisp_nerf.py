"""The pure-PyTorch rebuild of Kaolin-Wisp's NeRF (no Wisp needed)."""
from __future__ import annotations

import math

import pytest
import torch

from wisp_shacira.errors import ConfigError
from wisp_shacira.fields.wisp_nerf import (PositionalEmbedding, WispNefConfig, WispRadianceField,
                                           make_embedder)
from wisp_shacira.grid.shacira_grid import GridConfig

GRID = GridConfig(num_levels=3, min_res=2, max_res=8, log2_table_size=8, feature_dim=2,
                  latent_dim=1, compressed=True)


def test_parameter_names_are_wisps():
    field = WispRadianceField(GRID, WispNefConfig(view_embedder="positional", hidden_dim=8,
                                                  layer_type="frobenius_norm", bias=True))
    names = {k for k, _ in field.heads.named_parameters()}
    assert "decoder_density.layers.0.linear.weight" in names
    assert "decoder_color.lout.linear.bias" in names and "view_embedder.bands" in names
    assert field.heads["decoder_density"].lout.linear.weight.shape == (16, 8)
    assert field.heads["decoder_color"].layers[0].linear.weight.shape == (8, 15 + 3 + 6 * 4)
    assert len(field.heads["decoder_color"].layers) == 2          # num_layers + 1


def test_positional_embedding_formula():
    emb = PositionalEmbedding(3, include_input=True)
    assert torch.equal(emb.bands, torch.tensor([1.0, 2.0, 4.0])) and not emb.bands.requires_grad
    x = torch.tensor([[0.5, -1.0, 0.25]])
    out = emb(x)
    assert out.shape == (1, 3 + 18) and torch.equal(out[:, :3], x)
    assert out[0, 3].item() == pytest.approx(math.sin(0.5)) and out[0, 12].item() == pytest.approx(math.cos(0.5))
    assert make_embedder("none", 4, False) == (None, 0)
    assert make_embedder("none", 4, True)[1] == 3


@pytest.mark.parametrize("key,value,needle", [
    ("layer_type", "spectral_norm", "spectral_norm"), ("view_embedder", "tcnn", "tiny-cuda-nn"),
    ("activation_type", "swish", "activation_type"), ("pos_multires", 0, "pos_multires")])
def test_config_refuses_what_cannot_be_rebuilt(key, value, needle):
    with pytest.raises(ConfigError, match=needle):
        WispNefConfig(**{key: value}).check()


def test_density_is_relu_and_colour_in_unit_interval():
    torch.manual_seed(0)
    field = WispRadianceField(GRID, WispNefConfig(hidden_dim=8)).eval()
    with torch.no_grad():
        field.grid.latents.uniform_(-3, 3)
        sigma, rgb = field(torch.rand(20, 3) * 2 - 1, torch.zeros(20, 3))
        query = field.query(2)
        assert torch.equal(query.density(torch.zeros(4, 3)), query(torch.zeros(4, 3), torch.ones(4, 3))[0])
    assert sigma.shape == (20,) and bool((sigma >= 0).all())
    assert bool(((rgb > 0) & (rgb < 1)).all())
