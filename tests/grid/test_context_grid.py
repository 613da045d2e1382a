"""A grid with the context entropy model: rate gradients, the rate it reports vs the file."""
from __future__ import annotations

import torch

from wisp_shacira.codec.container import unpack_sections
from wisp_shacira.codec.model_io import ShacModel, encode_model
from wisp_shacira.entropy.context import ContextPrior
from wisp_shacira.grid.shacira_grid import GridConfig, ShaciraGrid

CFG = GridConfig(num_levels=5, min_res=8, max_res=96, log2_table_size=12, feature_dim=2,
                 latent_dim=2, latent_init=2.0, entropy_model="context")


def test_the_context_grid_has_a_context_prior_with_gradients() -> None:
    torch.manual_seed(0)
    grid = ShaciraGrid(2, CFG)
    assert isinstance(grid.prior, ContextPrior)
    assert grid.layout.dense[0] and not grid.layout.dense[-1]
    grid.rate_bits().backward()
    assert grid.latents.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in grid.prior.parameters())
    sampled = grid.rate_bits(sample=2000).item()
    assert 0.5 < sampled / grid.rate_bits().item() < 2.0


def test_the_reported_rate_matches_the_written_bytes() -> None:
    """Train the prior on fixed latents (what the end of training sees) and compare the
    bits it reports with the bytes the coder writes for the same latents (within 2%)."""
    torch.manual_seed(0)
    grid = ShaciraGrid(2, CFG)
    with torch.no_grad():
        spread = torch.tensor([3.0, 2.0, 1.0, 0.6, 0.4]).repeat_interleave(
            torch.tensor(grid.layout.table_sizes))
        grid.latents.copy_(torch.round(torch.randn_like(grid.latents) * spread[:, None]))
        dense = grid.layout.offsets[1]
        grid.latents[:dense // 2] = 0                     # structure the contexts can use
    optimiser = torch.optim.Adam(grid.prior.parameters(), lr=0.05)
    for _ in range(300):
        optimiser.zero_grad()
        grid.rate_bits().backward()
        optimiser.step()
    levels = grid.integer_latents()
    model = ShacModel({"task": "image"}, [], {}, [len(l) for l in levels], levels,
                      context=grid.context_model())
    payload = sum(len(s.payload) for s in unpack_sections(encode_model(model)).sections[3:])
    reported = grid.model_bits() / 8
    assert payload > 2000 and abs(payload - reported) / payload < 0.02, (payload, reported)
