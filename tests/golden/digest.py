"""Checksums of what a ``.shac`` file decodes to, for the golden-file test and manifest.

``model_digest`` covers what the bitstream itself defines (configuration, integer
latents, stored weights): integers and stored floats, identical on every machine.
``output_digest`` covers the reconstruction the CLI writes (image pixels, video
frames, a scene's 60-frame turntable) as integer arrays. The reconstruction is float
arithmetic (the MLP heads go through the BLAS library, which picks its kernels by CPU),
so where one class of CPU decodes a file to other pixels than the recording machine,
the manifest lists that class's digest under ``output_sha256_by_cpu`` (see
:func:`cpu_class`); every other machine must match ``output_sha256``.
"""
from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path

import numpy as np

from wisp_shacira.codec.model_io import read_shac
from wisp_shacira.tasks import image, nerf, video
from wisp_shacira.tasks.nerf_eval import load_scene_model, render_turntable


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


def cpu_class() -> str:
    """``VENDOR/CAPABILITY`` of this machine, e.g. ``AuthenticAMD/AVX2``: the CPU vendor
    (``vendor_id`` of ``/proc/cpuinfo``, else ``platform.processor()``) and the vector
    capability torch dispatches to."""
    import torch

    vendor = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("vendor_id"):
                vendor = line.split(":", 1)[1].strip()
                break
    return f"{vendor}/{torch.backends.cpu.get_cpu_capability()}"


def expected_output_digest(entry: dict) -> str:
    """The output digest a manifest entry records for this machine's :func:`cpu_class`."""
    return entry.get("output_sha256_by_cpu", {}).get(cpu_class(), entry["output_sha256"])
