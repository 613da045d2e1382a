"""Generate a tiny NeRF-synthetic (Blender format) demo scene without downloads.

The scene is ray traced analytically: a rotated cube with checkered faces and two
textured spheres, lit by a fixed directional light plus ambient term (so the colours
are view-independent and a small NeRF learns them quickly), on a transparent
background. Cameras sit on a sphere of radius 2.8 around the origin in the Blender
Z-up world and look at it; images are RGBA PNGs (straight alpha, anti-aliased by
supersampling). Everything lies within radius 0.9 of the origin, i.e. inside
``[-1, 1]^3`` after the loader divides by ``aabb_scale = 1.25``.

Usage: ``python data/make_demo_scene.py [--out data/demo_scene] [--size 64] [--seed 0]``
"""
from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["make_demo_scene", "render_view", "look_at"]

log = logging.getLogger(__name__)

CAMERA_ANGLE_X = 0.6911112070083618
CAMERA_RADIUS = 2.8
LIGHT = np.array([0.4, -0.3, 0.85]) / np.linalg.norm([0.4, -0.3, 0.85])

CUBE_CENTRE = np.array([-0.2, 0.15, 0.0])
CUBE_HALF = 0.32
CUBE_YAW = math.radians(25.0)
CUBE_ROT = np.array([[math.cos(CUBE_YAW), -math.sin(CUBE_YAW), 0.0],
                     [math.sin(CUBE_YAW), math.cos(CUBE_YAW), 0.0],
                     [0.0, 0.0, 1.0]])
FACE_COLOURS = np.array([[0.85, 0.15, 0.15], [0.15, 0.65, 0.2], [0.2, 0.3, 0.85],
                         [0.9, 0.8, 0.1], [0.7, 0.2, 0.75], [0.1, 0.7, 0.75]])
SPHERES = ((np.array([0.45, -0.3, 0.05]), 0.3), (np.array([0.25, 0.55, 0.3]), 0.22))


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """OpenGL-axes camera-to-world ``[4, 4]`` (camera looks down -Z, +Y up)."""
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    cam_up = np.cross(right, forward)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, cam_up, -forward, eye
    return c2w


def _hit_sphere(o: np.ndarray, d: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """First positive hit distance ``[N]`` (inf on miss) of rays ``o, d [N, 3]``."""
    oc = o - centre
    b = np.einsum("ij,ij->i", d, oc)
    disc = b * b - (np.einsum("ij,ij->i", oc, oc) - radius * radius)
    t = -b - np.sqrt(np.maximum(disc, 0.0))
    return np.where((disc > 0) & (t > 1e-6), t, np.inf)


def _hit_cube(o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hit distance ``[N]`` (inf on miss) and entry axis ``[N]`` of the rotated cube."""
    ol = (o - CUBE_CENTRE) @ CUBE_ROT
    dl = d @ CUBE_ROT
    dl = np.where(np.abs(dl) < 1e-12, 1e-12, dl)
    t0, t1 = (-CUBE_HALF - ol) / dl, (CUBE_HALF - ol) / dl
    tmin, tmax = np.minimum(t0, t1), np.maximum(t0, t1)
    t_in, t_out = tmin.max(axis=1), tmax.min(axis=1)
    ok = (t_in < t_out) & (t_in > 1e-6)
    return np.where(ok, t_in, np.inf), tmin.argmax(axis=1)


def _cube_colour(p: np.ndarray, d: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Albedo ``[N, 3]`` and world normal ``[N, 3]`` at cube hits ``p [N, 3]``."""
    pl = (p - CUBE_CENTRE) @ CUBE_ROT
    dl = d @ CUBE_ROT
    rows = np.arange(len(p))
    sign = -np.sign(dl[rows, axis])
    normal_l = np.zeros_like(pl)
    normal_l[rows, axis] = sign
    face = axis * 2 + (sign > 0)
    uv = (pl / (2 * CUBE_HALF) + 0.5).clip(0, 0.999)
    cells = np.floor(uv * 4).astype(int)
    parity = (cells.sum(axis=1) - cells[rows, axis]) % 2
    base = FACE_COLOURS[face]
    albedo = np.where(parity[:, None] == 1, base, 0.45 * base + 0.55)
    return albedo, normal_l @ CUBE_ROT.T


def _sphere_colour(p: np.ndarray, idx: int) -> tuple[np.ndarray, np.ndarray]:
    """Albedo and normal ``[N, 3]`` at hits ``p [N, 3]`` on sphere ``idx``."""
    centre, radius = SPHERES[idx]
    n = (p - centre) / radius
    if idx == 0:
        lon = np.arctan2(n[:, 1], n[:, 0]) + np.pi
        lat = np.arcsin(n[:, 2].clip(-1, 1)) + np.pi / 2
        parity = (np.floor(lon / (2 * np.pi) * 8) + np.floor(lat / np.pi * 5)) % 2
        colours = (np.array([0.95, 0.55, 0.1]), np.array([0.98, 0.92, 0.7]))
    else:
        parity = np.floor((n[:, 2] + 1.0) * 3.0) % 2
        colours = (np.array([0.15, 0.35, 0.9]), np.array([0.3, 0.85, 0.9]))
    albedo = np.where(parity[:, None] == 1, colours[0], colours[1])
    return albedo, n


def _shade(o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Trace rays ``o, d [N, 3]``: colour ``[N, 3]`` and hit mask ``[N]``."""
    t_cube, axis = _hit_cube(o, d)
    ts = np.stack([t_cube] + [_hit_sphere(o, d, c, r) for c, r in SPHERES], axis=1)
    which = ts.argmin(axis=1)
    t = ts.min(axis=1)
    hit = np.isfinite(t)
    p = o + d * np.where(hit, t, 0.0)[:, None]
    colour = np.zeros_like(o)
    for k in range(ts.shape[1]):
        sel = hit & (which == k)
        if not sel.any():
            continue
        if k == 0:
            albedo, normal = _cube_colour(p[sel], d[sel], axis[sel])
        else:
            albedo, normal = _sphere_colour(p[sel], k - 1)
        light = 0.3 + 0.7 * np.clip(normal @ LIGHT, 0.0, None)
        colour[sel] = albedo * light[:, None]
    return colour, hit


def render_view(c2w: np.ndarray, size: int, supersample: int = 3) -> np.ndarray:
    """Render one RGBA view ``[size, size, 4]`` uint8 (straight alpha).

    Pixel ``(row, col)`` averages ``supersample^2`` rays spread over the pixel; the
    focal length follows ``CAMERA_ANGLE_X``.
    """
    focal = 0.5 * size / math.tan(0.5 * CAMERA_ANGLE_X)
    offs = (np.arange(supersample) + 0.5) / supersample
    coords = np.arange(size)
    py = (coords[:, None] + offs[None, :]).reshape(-1)
    px = py.copy()
    yy, xx = np.meshgrid(py, px, indexing="ij")
    dirs_cam = np.stack([(xx - size / 2) / focal, -(yy - size / 2) / focal,
                         -np.ones_like(xx)], axis=-1).reshape(-1, 3)
    dirs = dirs_cam @ c2w[:3, :3].T
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    origins = np.broadcast_to(c2w[:3, 3], dirs.shape)
    colour, hit = _shade(origins, dirs)
    s = supersample
    premult = (colour * hit[:, None]).reshape(size, s, size, s, 3).mean(axis=(1, 3))
    alpha = hit.astype(float).reshape(size, s, size, s).mean(axis=(1, 3))
    rgb = premult / np.maximum(alpha, 1e-8)[..., None]
    rgba = np.concatenate([rgb, alpha[..., None]], axis=-1)
    return np.round(rgba.clip(0.0, 1.0) * 255).astype(np.uint8)


def _camera_poses(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n`` cameras on the upper hemisphere (azimuth stratified, elevation 10-70 deg)."""
    poses = []
    for i in range(n):
        az = 2 * math.pi * (i + rng.uniform()) / n
        el = math.radians(rng.uniform(10.0, 70.0))
        eye = CAMERA_RADIUS * np.array([math.cos(el) * math.cos(az),
                                        math.cos(el) * math.sin(az), math.sin(el)])
        poses.append(look_at(eye, np.zeros(3), np.array([0.0, 0.0, 1.0])))
    return poses


def make_demo_scene(out_dir: str | Path, size: int = 64, n_train: int = 40, n_val: int = 8,
                    n_test: int = 8, seed: int = 0, supersample: int = 3) -> Path:
    """Write the demo scene (PNGs and ``transforms_{train,val,test}.json``) to ``out_dir``.

    Output is deterministic for a given ``seed`` and returns ``out_dir`` as a Path.
    """
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        (out / split).mkdir(parents=True, exist_ok=True)
        frames = []
        for i, c2w in enumerate(_camera_poses(n, rng)):
            rgba = render_view(c2w, size, supersample)
            Image.fromarray(rgba).save(out / split / f"r_{i}.png", optimize=True)
            frames.append({"file_path": f"./{split}/r_{i}", "rotation": 0.0,
                           "transform_matrix": np.round(c2w, 8).tolist()})
        meta = {"camera_angle_x": CAMERA_ANGLE_X, "frames": frames}
        (out / f"transforms_{split}.json").write_text(json.dumps(meta, indent=1) + "\n")
    log.info("wrote %d views of %dx%d to %s", n_train + n_val + n_test, size, size, out)
    return out


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "demo_scene"))
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--n-train", type=int, default=40)
    parser.add_argument("--n-val", type=int, default=8)
    parser.add_argument("--n-test", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    make_demo_scene(args.out, args.size, args.n_train, args.n_val, args.n_test, args.seed)


if __name__ == "__main__":
    main()
