"""Tests of stratified sampling and volume compositing against closed forms."""
from __future__ import annotations

import math

import torch

from wisp_shacira.render.volume import (
    composite,
    sample_along_rays,
    termination_mask,
    transmittance,
)

torch.set_num_threads(1)


def test_midpoint_sampling_is_deterministic_and_covers_segment() -> None:
    t_near = torch.tensor([0.5, 1.0, 2.0])
    t_far = torch.tensor([2.0, 1.0, 6.0])
    t, deltas = sample_along_rays(t_near, t_far, 4, jitter=False)
    assert torch.allclose(t[0], torch.tensor([0.6875, 1.0625, 1.4375, 1.8125]))
    assert torch.allclose(deltas.sum(-1), t_far - t_near)
    assert torch.all(deltas[1] == 0) and torch.all(t[1] == 1.0)
    t2, _ = sample_along_rays(t_near, t_far, 4, jitter=False)
    assert torch.equal(t, t2)


def test_jittered_samples_stay_in_their_bins() -> None:
    g = torch.Generator().manual_seed(0)
    t_near, t_far = torch.zeros(64), torch.full((64,), 2.0)
    t, deltas = sample_along_rays(t_near, t_far, 8, jitter=True, generator=g)
    lower = torch.arange(8) * 0.25
    assert torch.all(t >= lower) and torch.all(t <= lower + 0.25)
    assert not torch.allclose(t, lower + 0.125)
    assert torch.allclose(deltas, torch.full_like(deltas, 0.25))


def test_constant_density_matches_closed_form() -> None:
    sigma0, length, S = 2.0, 1.5, 16
    t, deltas = sample_along_rays(torch.tensor([0.5]), torch.tensor([0.5 + length]), S)
    sigma = torch.full((1, S), sigma0)
    colour = torch.tensor([0.2, 0.4, 0.8])
    rgb = colour.expand(1, S, 3)
    bg = torch.tensor([1.0, 0.5, 0.0])
    out_rgb, depth, opacity, weights = composite(sigma, rgb, deltas, bg, t)
    expected_op = 1.0 - math.exp(-sigma0 * length)
    assert torch.allclose(opacity, torch.tensor([expected_op]), atol=1e-6)
    assert torch.allclose(weights.sum(-1), opacity, atol=1e-6)
    assert torch.allclose(out_rgb[0], colour * expected_op + bg * (1 - expected_op), atol=1e-6)
    # expected depth of a homogeneous slab, sum over bins of w_i * t_i ~ integral
    a, L = 0.5, length
    exact = (a * (1 - math.exp(-sigma0 * L)) + (1 - math.exp(-sigma0 * L)) / sigma0
             - L * math.exp(-sigma0 * L))
    assert abs(float(depth) - exact) < 1e-2


def test_opaque_sample_gives_its_depth_and_colour() -> None:
    t, deltas = sample_along_rays(torch.zeros(1), torch.full((1,), 1.0), 10)
    sigma = torch.zeros(1, 10)
    sigma[0, 3] = 1e4
    rgb = torch.rand(1, 10, 3, generator=torch.Generator().manual_seed(0))
    res = composite(sigma, rgb, deltas)  # black background
    assert torch.allclose(res.opacity, torch.ones(1))
    assert torch.allclose(res.depth, t[:, 3])
    assert torch.allclose(res.rgb, rgb[:, 3])


def test_transmittance_and_termination_mask() -> None:
    deltas = torch.full((2, 5), 0.1)
    sigma = torch.tensor([[0.0, 200.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0]])
    T = transmittance(sigma, deltas)
    assert torch.allclose(T[:, 0], torch.ones(2))
    assert torch.allclose(T[1], torch.exp(-0.1 * torch.arange(5.0)))
    mask = termination_mask(sigma, deltas, eps=1e-4)
    assert mask.tolist() == [[False, False, True, True, True], [False] * 5]


def test_composite_gradients() -> None:
    g = torch.Generator().manual_seed(0)
    sigma = torch.rand(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    rgb = torch.rand(3, 5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    deltas = torch.full((3, 5), 0.3, dtype=torch.float64)
    bg = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)

    def fn(s: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = composite(s, c, deltas, bg)
        return out.rgb, out.depth, out.opacity

    assert torch.autograd.gradcheck(fn, (sigma, rgb))
