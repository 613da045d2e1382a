"""Checksums of what a ``.shac`` file decodes to, for the golden-file test and manifest.

``model_digest`` covers what the bitstream itself defines (configuration, integer
latents, stored weights): integers and stored floats. ``output_digest`` covers the
reconstruction the CLI writes (image pixels, video frames, a scene's 60-frame
turntable) as integer arrays. ``field_digest`` covers the decoded field's float32
outputs at fixed probe points (and, for a scene, one rendered view's float colour,
opacity and depth): every bit of the decode arithmetic, below the rounding to 8 or 16
bits that the output digest sees. Decoding evaluates with the machine-independent
arithmetic of :mod:`wisp_shacira.grid.exact`, so all three digests are one value on
every machine, thread count and backend.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from wisp_shacira.codec.model_io import read_shac
from wisp_shacira.grid.exact import normalize
from wisp_shacira.tasks import image, nerf, video
from wisp_shacira.tasks.image_file import decode_field
from wisp_shacira.tasks.nerf_eval import load_scene_model, render_turntable, turntable_poses

PROBES = 4096
PROBE_GRID = 1 << 16
PROBE_STRIDES = (1, 40503, 12289, 24593, 49157, 6151)


def model_digest(path: Path) -> str:
    model = read_shac(path)
    digest = hashlib.sha256(json.dumps(model.config, sort_keys=True).encode())
    for level in model.levels:
        digest.update(np.ascontiguousarray(level, dtype="<i4").tobytes())
    for name in sorted(model.weights):
        array = model.weights[name]
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode() + array.tobytes())
    return digest.hexdigest()


def decoded_array(path: Path) -> np.ndarray:
    """The reconstruction as integers: [H, W, C] pixels, [T, H, W, 3] frames or turntable."""
    task = read_shac(path, max_lod=0).config["task"]
    if task == "image":
        pixels, meta, _ = image.decode_pixels(path)
        peak = 2**meta.bit_depth - 1
        return np.round(pixels * peak).astype(np.uint16 if meta.bit_depth > 8 else np.uint8)
    if task == "video":
        return video.decode_frames(path)[0]
    model = load_scene_model(path, views=nerf.TURNTABLE_FRAMES)
    return render_turntable(model, nerf.TURNTABLE_FRAMES)


def output_digest(path: Path) -> str:
    array = decoded_array(path)
    return hashlib.sha256(f"{array.dtype.str}:{array.shape}".encode() + array.tobytes()).hexdigest()


def _probes(count: int, dim: int) -> torch.Tensor:
    """``[count, dim]`` dyadic points in (0, 1), exact in float32 (integer arithmetic)."""
    steps = torch.arange(count, dtype=torch.int64)[:, None] * torch.tensor(PROBE_STRIDES[:dim])
    return ((steps % PROBE_GRID).double() + 0.5).div(PROBE_GRID).float()


def _field_outputs(path: Path) -> list[torch.Tensor]:
    task = read_shac(path, max_lod=0).config["task"]
    if task == "image":
        field_, _, model = decode_field(path)
        return [field_(_probes(PROBES, 2), len(model.levels))]
    if task == "video":
        model = read_shac(path)
        field_, _ = video.field_from_model(model, str(path))
        return [field_(_probes(PROBES, 3), len(model.levels))]
    scene = load_scene_model(path, views=1)
    points = _probes(PROBES, 3) * 2.0 - 1.0
    dirs = normalize(_probes(PROBES, 6)[:, 3:] - 0.5)
    sigma, rgb = scene.field(points, dirs, scene.lod)
    cam, meta = scene.meta["camera"], scene.meta["scene"]
    view = scene.tracer.render_image(
        scene.field.query(scene.lod), turntable_poses(cam, nerf.TURNTABLE_FRAMES)[0],
        *(float(cam[k]) for k in ("fx", "fy", "cx", "cy")), int(meta["height"]),
        int(meta["width"]), scene.occupancy)
    return [sigma, rgb, view["rgb"], view["opacity"], view["depth"]]


def field_digest(path: Path) -> str:
    """sha256 of the decoded field's float32 outputs at :data:`PROBES` fixed points."""
    digest = hashlib.sha256()
    with torch.no_grad():
        for out in _field_outputs(path):
            array = out.detach().float().contiguous().numpy()
            digest.update(f"{array.shape}".encode() + array.tobytes())
    return digest.hexdigest()
