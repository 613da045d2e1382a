"""The pure-PyTorch rebuild (``fields.wisp_nerf``) computes what Wisp's
``NeuralRadianceField`` (the double's, with the real module layout) computes, for every
architecture option the file can record. (The normalised layer types cannot be tested
here: Wisp's ``NeuralRadianceField.init_decoders`` reads ``lout.bias``, which those
layers do not have, so Wisp itself fails to build them, ``nerf.py:162``.)"""
from __future__ import annotations

import pytest
import torch

from wisp_shacira.fields import wisp_bridge as wb
from wisp_shacira.fields.wisp_nerf import WispRadianceField

OPTIONS = [
    {},
    {"activation_type": "gelu", "bias": True},
    {"activation_type": "minmax", "num_layers": 2},
    {"activation_type": "fullsort", "view_embedder": "identity", "layer_type": "none"},
    {"pos_embedder": "positional", "position_input": True, "view_embedder": "positional",
     "pos_multires": 3, "view_multires": 2, "activation_type": "sin"},
    {"pos_embedder": "identity", "view_embedder": "none", "activation_type": "none"},
]


def test_normalised_layers_fail_in_wisp_itself(double):
    from wisp.accelstructs import OctreeAS
    from wisp.models.nefs import NeuralRadianceField
    grid = double.grid.ShaciraGrid.from_geometric(OctreeAS.make_dense(1), feature_dim=2,
                                                  num_lods=2, codebook_bitwidth=6, min_grid_res=2,
                                                  max_grid_res=4)
    with pytest.raises(AttributeError, match="bias"):
        NeuralRadianceField(grid, layer_type="frobenius_norm")


@pytest.mark.parametrize("multiscale", ["cat", "sum"])
@pytest.mark.parametrize("options", OPTIONS)
def test_rebuild_matches_wisps_radiance_field(double, tmp_path, options, multiscale):
    from wisp.accelstructs import OctreeAS
    from wisp.models.nefs import NeuralRadianceField
    torch.manual_seed(0)
    grid = double.grid.ShaciraGrid.from_geometric(
        OctreeAS.make_dense(2), feature_dim=2, num_lods=3, codebook_bitwidth=8, min_grid_res=2,
        max_grid_res=8, latent_init=0.6, prior_init_scale=4.0, multiscale_type=multiscale)
    nef = NeuralRadianceField(grid, hidden_dim=8, **options).eval()
    cfg = wb.nef_config_of(nef)
    heads = wb.heads_of(nef)
    wb.check_rebuildable(grid.core.config, cfg, multiscale, heads)
    path = tmp_path / "scene.shac"
    wb.export_wisp_nerf(grid.core, heads, path, {})
    rebuilt = WispRadianceField(grid.core.config, cfg, multiscale)
    from wisp_shacira.codec.model_io import read_shac
    rebuilt.load_shac_model(read_shac(path))
    rebuilt.eval()
    points = torch.rand(64, 3) * 2 - 1
    dirs = torch.nn.functional.normalize(torch.randn(64, 3), dim=-1)
    for lod in (1, 3):
        want = nef.rgba(points, dirs, lod - 1)
        with torch.no_grad():
            sigma, rgb = rebuilt(points, dirs, lod)
        assert torch.equal(rgb, want["rgb"]) and torch.equal(sigma, want["density"][:, 0])
