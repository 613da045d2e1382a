"""Tests of pinhole ray generation and ray/box intersection."""
from __future__ import annotations

import math

import pytest
import torch

from wisp_shacira.render.rays import camera_rays, generate_rays, ray_aabb

torch.set_num_threads(1)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def rot_y(deg: float) -> torch.Tensor:
    """Homogeneous rotation about +Y: [4, 4]."""
    a = math.radians(deg)
    m = torch.eye(4)
    m[0, 0], m[0, 2], m[2, 0], m[2, 2] = math.cos(a), math.sin(a), -math.sin(a), math.cos(a)
    return m


@pytest.mark.parametrize("device", DEVICES)
def test_identity_pose_gives_known_directions(device: str) -> None:
    c2w = torch.eye(4, device=device)
    origins, dirs = generate_rays(c2w, 10.0, 10.0, 2.0, 2.0, H=4, W=4)
    assert origins.shape == (16, 3) and dirs.shape == (16, 3)
    assert origins.device.type == device
    assert torch.allclose(origins, torch.zeros_like(origins))
    expected = torch.tensor([-0.15, 0.15, -1.0], device=device)  # pixel (row 0, col 0)
    assert torch.allclose(dirs[0], expected / expected.norm(), atol=1e-6)
    expected = torch.tensor([-0.05, -0.15, -1.0], device=device)  # row 3, col 1 -> index 13
    assert torch.allclose(dirs[13], expected / expected.norm(), atol=1e-6)
    assert torch.allclose(dirs.norm(dim=-1), torch.ones(16, device=device), atol=1e-6)


def test_rotated_translated_pose() -> None:
    c2w = rot_y(90.0)
    c2w[:3, 3] = torch.tensor([1.0, 2.0, 3.0])
    origins, dirs = generate_rays(c2w, 5.0, 5.0, 1.5, 1.5, H=3, W=3)
    centre = 1 * 3 + 1
    assert torch.allclose(origins, torch.tensor([1.0, 2.0, 3.0]).expand(9, 3))
    assert torch.allclose(dirs[centre], torch.tensor([-1.0, 0.0, 0.0]), atol=1e-6)
    # top row looks up (+Y), left column looks towards camera-left (world +Z here)
    assert dirs[1, 1] > 0 and dirs[3, 2] > 0


def test_camera_rays_matches_generate_rays() -> None:
    g = torch.Generator().manual_seed(0)
    c2w = rot_y(30.0)
    c2w[:3, 3] = torch.randn(3, generator=g)
    o_img, d_img = generate_rays(c2w, 7.0, 8.0, 2.5, 3.0, H=5, W=6)
    rows = torch.tensor([0, 4, 2])
    cols = torch.tensor([5, 0, 3])
    intr = torch.tensor([7.0, 8.0, 2.5, 3.0]).expand(3, 4)
    o, d = camera_rays(c2w.expand(3, 4, 4), intr, cols + 0.5, rows + 0.5)
    idx = rows * 6 + cols
    assert torch.allclose(o, o_img[idx]) and torch.allclose(d, d_img[idx], atol=1e-6)


def test_ray_aabb_known_cases() -> None:
    origins = torch.tensor([[-3.0, 0.0, 0.0], [0.0, 0.0, 0.0], [-3.0, 2.0, 0.0],
                            [3.0, 0.0, 0.0], [0.5, 0.5, 5.0]])
    dirs = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0],
                         [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
    t_near, t_far, hit = ray_aabb(origins, dirs)
    assert hit.tolist() == [True, True, False, False, True]
    assert torch.allclose(t_near, torch.tensor([2.0, 0.0, 0.0, 0.0, 4.0]))
    assert torch.allclose(t_far, torch.tensor([4.0, 1.0, 0.0, 0.0, 6.0]))


def test_ray_aabb_entry_exit_on_box_surface() -> None:
    g = torch.Generator().manual_seed(1)
    origins = torch.randn(500, 3, generator=g) * 3
    dirs = torch.nn.functional.normalize(torch.randn(500, 3, generator=g), dim=-1)
    t_near, t_far, hit = ray_aabb(origins, dirs, lo=-0.5, hi=torch.tensor([0.5, 1.0, 0.7]))
    hi = torch.tensor([0.5, 1.0, 0.7])
    eps = 1e-4
    mid = origins + dirs * ((t_near + t_far) / 2)[:, None]
    inside = ((mid >= -0.5 - eps) & (mid <= hi + eps)).all(-1)
    assert inside[hit].all()
    exit_pts = origins + dirs * (t_far + 1e-3)[:, None]
    outside = ((exit_pts < -0.5) | (exit_pts > hi)).any(-1)
    assert outside[hit].all()
    # missed rays: densely sample the ray and find no point inside the box
    ts = torch.linspace(0, 12, 2000)
    pts = origins[~hit, None, :] + dirs[~hit, None, :] * ts[None, :, None]
    assert not ((pts > -0.5 + eps) & (pts < hi - eps)).all(-1).any()
