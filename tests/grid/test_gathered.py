"""The gathered training encoding equals the table path (hard rounding) and keeps soft
rounding per row."""
from __future__ import annotations

import sys

import pytest
import torch

from wisp_shacira.grid.fast import encode
from wisp_shacira.grid.gathered import encode_gathered, row_uniform, soft_round_rows, worth_gathering
from wisp_shacira.grid.quantize import soft_round
from wisp_shacira.grid.shacira_grid import GridConfig, ShaciraGrid


def _grid(dim: int = 2) -> ShaciraGrid:
    torch.manual_seed(0)
    config = GridConfig(num_levels=5, min_res=4, max_res=64, log2_table_size=8, feature_dim=2,
                        latent_dim=2, latent_init=3.0)
    return ShaciraGrid(dim, config)


def test_hard_rounding_equals_the_table_path_with_gradients() -> None:
    for dim in (2, 3):
        grid = _grid(dim)
        coords = torch.rand(300, dim)
        weights = torch.randn(300, grid.output_dim)
        for lod in (2, 5):
            grid.zero_grad()
            (encode_gathered(grid.latents, grid.decoder, coords, grid.layout, lod, None)
             * weights).sum().backward()
            gathered = [p.grad.clone() for p in (grid.latents, grid.decoder.weight, grid.decoder.bias)]
            grid.zero_grad()
            out = encode(grid.decoded_table(None), coords, grid.layout, lod)
            (out * weights).sum().backward()
            table = [p.grad for p in (grid.latents, grid.decoder.weight, grid.decoder.bias)]
            expected = encode(grid.decoded_table(None), coords, grid.layout, lod)
            got = encode_gathered(grid.latents, grid.decoder, coords, grid.layout, lod, None)
            assert torch.allclose(got, expected, atol=1e-5)
            for a, b in zip(gathered, table):
                assert torch.allclose(a, b, atol=1e-4)


def test_soft_rounding_is_one_sample_per_row_and_unbiased() -> None:
    rows = torch.tensor([5, 9, 5, 5, 9, 11])
    x = torch.full((6, 1), 2.3)
    out = soft_round_rows(x, rows, 0.5, seed=3)
    assert out[0] == out[2] == out[3] and out[1] == out[4]
    assert not torch.equal(soft_round_rows(x, rows, 0.5, seed=4), out)
    for tau in (0.05, 0.5, 1.0):  # the same law as the table path's two-Gumbel relaxation
        x = torch.full((200_000, 1), 2.3)
        torch.manual_seed(0)
        gathered = soft_round_rows(x, torch.arange(200_000), tau, seed=1)
        table = soft_round(x, tau)
        assert abs(float(gathered.mean() - table.mean())) < 0.005
        assert abs(float(gathered.std() - table.std())) < 0.005
    u = row_uniform(torch.arange(1 << 20), 0)
    assert 0 < float(u.min()) and float(u.max()) < 1 and abs(float(u.mean()) - 0.5) < 1e-3


def test_the_grid_gathers_only_when_training_a_table_much_larger_than_the_batch() -> None:
    config = GridConfig(num_levels=4, min_res=4, max_res=256, log2_table_size=14)
    big = ShaciraGrid(2, config)
    assert worth_gathering(big.layout, 16) and not worth_gathering(big.layout, 1 << 16)
    coords = torch.rand(16, 2)
    with torch.no_grad():
        evaluated = big.interpolate(coords)
    trained = big.interpolate(coords, tau=None)
    assert trained.grad_fn is not None
    assert torch.allclose(trained, evaluated, atol=1e-6)


@pytest.mark.parametrize("dim", [2, 3])
def test_numba_kernel_equals_the_torch_path_in_outputs_and_gradients(dim: int,
                                                                     monkeypatch) -> None:
    pytest.importorskip("numba")
    grid = _grid(dim)
    coords, weights = torch.rand(400, dim), torch.randn(400, grid.output_dim)
    for tau in (None, 0.5, 0.05):
        results = []
        for backend in ("torch", "auto"):
            monkeypatch.setenv("WISP_SHACIRA_ENCODING", backend)
            grid.zero_grad()
            torch.manual_seed(1)  # the same step seed: the same per-row samples
            out = encode_gathered(grid.latents, grid.decoder, coords, grid.layout, 4, tau)
            (out * weights).sum().backward()
            grads = [p.grad.clone() for p in (grid.latents, grid.decoder.weight, grid.decoder.bias)]
            results.append((out.detach(), grads))
        (ref, ref_grads), (fast, fast_grads) = results
        assert torch.allclose(fast, ref, atol=2e-6)
        for a, b in zip(fast_grads, ref_grads):
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-5 * float(b.abs().max()))
    assert "wisp_shacira.grid.numba_gathered" in sys.modules  # the auto run took the kernel
