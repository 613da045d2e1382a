"""Tests of the packed tracer on an analytic sphere of constant density and colour."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from wisp_shacira.render.rays import generate_rays
from wisp_shacira.render.tracer import Tracer, TracerConfig

torch.set_num_threads(1)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
RADIUS = 0.5


class SphereField(nn.Module):
    """Constant density and colour inside a sphere of radius 0.5, counting evaluations."""

    def __init__(self, sigma: float = 1.5, colour: tuple[float, ...] = (0.2, 0.4, 0.6)) -> None:
        super().__init__()
        self.sigma = nn.Parameter(torch.tensor(sigma))
        self.colour = nn.Parameter(torch.tensor(colour))
        self.calls = 0

    def forward(self, points: torch.Tensor, dirs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += points.shape[0]
        inside = (points.norm(dim=-1) < RADIUS).to(points.dtype)
        return inside * self.sigma, self.colour.expand(points.shape[0], 3)


def look_down_z(distance: float = 3.0) -> torch.Tensor:
    """Camera on +Z looking at the origin (identity rotation): [4, 4]."""
    c2w = torch.eye(4)
    c2w[2, 3] = distance
    return c2w


@pytest.mark.parametrize("device", DEVICES)
def test_central_ray_matches_closed_form(device: str) -> None:
    field = SphereField().to(device)
    tracer = Tracer(TracerConfig(num_samples=256, bg_color=(1.0, 1.0, 1.0)))
    origins = torch.tensor([[0.0, 0.0, 3.0], [0.0, 0.9, 3.0], [0.0, 3.0, 3.0]], device=device)
    dirs = torch.tensor([[0.0, 0.0, -1.0]] * 3, device=device)
    with torch.no_grad():
        out = tracer.render_rays(field, origins, dirs)
    op = 1 - math.exp(-1.5 * 2 * RADIUS)
    colour = torch.tensor([0.2, 0.4, 0.6], device=device)
    expected = torch.stack([colour * op + (1 - op), torch.ones(3, device=device),
                            torch.ones(3, device=device)])
    assert torch.allclose(out["rgb"], expected, atol=1e-4)
    assert torch.allclose(out["opacity"], torch.tensor([op, 0.0, 0.0], device=device), atol=1e-4)
    assert out["depth"][1:].abs().max() == 0
    assert 2.5 < float(out["depth"][0] / out["opacity"][0]) < 3.0


def test_image_matches_analytic_opacity() -> None:
    field = SphereField(sigma=3.0)
    tracer = Tracer(TracerConfig(num_samples=128, bg_color=(0.0, 0.0, 0.0)))
    H = W = 16
    c2w = look_down_z()
    out = tracer.render_image(field, c2w, 20.0, 20.0, 8.0, 8.0, H, W, chunk=50)
    assert out["rgb"].shape == (H, W, 3) and out["opacity"].shape == (H, W)
    assert not out["rgb"].requires_grad
    origins, dirs = generate_rays(c2w, 20.0, 20.0, 8.0, 8.0, H, W)
    b = torch.linalg.cross(origins, dirs).norm(dim=-1)  # distance of the ray to the centre
    chord = 2 * torch.sqrt((RADIUS**2 - b**2).clamp_min(0))
    expected = (1 - torch.exp(-3.0 * chord)).reshape(H, W)
    assert (out["opacity"] - expected).abs().max() < 0.05
    assert (out["opacity"] - expected).abs().mean() < 0.01
    colour = torch.tensor([0.2, 0.4, 0.6])
    assert torch.allclose(out["rgb"], out["opacity"][..., None] * colour, atol=1e-5)


def test_packed_evaluation_only_inside_box() -> None:
    field = SphereField(sigma=0.01)
    tracer = Tracer(TracerConfig(num_samples=16))
    origins = torch.tensor([[0.0, 0.0, 3.0], [0.0, 5.0, 3.0], [0.3, 0.2, 3.0]])
    dirs = torch.tensor([[0.0, 0.0, -1.0]] * 3)
    tracer.render_rays(field, origins, dirs, perturb=False)
    assert field.calls == 2 * 16  # the ray missing the box is never evaluated


def test_early_termination_skips_hidden_samples() -> None:
    origins = torch.tensor([[0.0, 0.0, 3.0], [0.1, -0.1, 3.0]])
    dirs = torch.tensor([[0.0, 0.0, -1.0]] * 2)
    full, early = SphereField(sigma=1e3), SphereField(sigma=1e3)
    out_full = Tracer(TracerConfig(num_samples=64, segments=1)).render_rays(
        full, origins, dirs, perturb=False)
    out_early = Tracer(TracerConfig(num_samples=64, segments=8)).render_rays(
        early, origins, dirs, perturb=False)
    assert early.calls < full.calls
    for key in ("rgb", "opacity", "depth"):
        assert torch.allclose(out_full[key], out_early[key], atol=1e-3)


def test_gradients_flow_to_field_parameters() -> None:
    field = SphereField()
    tracer = Tracer(TracerConfig(num_samples=32))
    origins, dirs = generate_rays(look_down_z(), 8.0, 8.0, 4.0, 4.0, 8, 8)
    out = tracer.render_rays(field, origins, dirs)
    loss = ((out["rgb"] - 0.5) ** 2).mean()
    loss.backward()
    assert field.sigma.grad is not None and field.sigma.grad.abs() > 0
    assert field.colour.grad is not None and field.colour.grad.abs().sum() > 0


def test_jitter_follows_grad_mode() -> None:
    field = SphereField()
    tracer = Tracer(TracerConfig(num_samples=16))
    origins, dirs = generate_rays(look_down_z(), 8.0, 8.0, 4.0, 4.0, 8, 8)
    with torch.no_grad():
        a = tracer.render_rays(field, origins, dirs)["rgb"]
        b = tracer.render_rays(field, origins, dirs)["rgb"]
    assert torch.equal(a, b)
    torch.manual_seed(0)
    c = tracer.render_rays(field, origins, dirs)["rgb"]
    assert not torch.equal(a, c) and torch.allclose(a, c, atol=0.1)
