"""Generate the small deterministic demo clip used by examples and smoke runs.

Run ``python data/make_demo_video.py`` to (re)write ``data/demo_video/frame_00000.png``
... (16 frames of 64x64: a striped square and a checkered disk moving over a slowly
shifting colour gradient). Only numpy and Pillow are needed.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_OUT = Path(__file__).resolve().parent / "demo_video"


def make_demo_frames(num_frames: int = 16, size: int = 64) -> np.ndarray:
    """Render the demo clip: ``frames: [T, size, size, 3] uint8`` (no randomness)."""
    yy, xx = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5, indexing="ij")
    u, v = xx / size, yy / size
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    for t in range(num_frames):
        phase = t / num_frames
        blue = 0.6 - 0.3 * u * (0.5 + 0.5 * np.cos(2 * np.pi * phase))
        image = np.stack([0.25 + 0.5 * u, 0.3 + 0.4 * v, blue], axis=-1)
        left = size * (0.1 + 0.5 * phase)
        top = size * (0.15 + 0.3 * phase)
        side = size * 0.3
        square = (xx >= left) & (xx < left + side) & (yy >= top) & (yy < top + side)
        stripes = ((xx - left + yy - top) // 4 % 2 == 0)[..., None]
        image[square] = np.where(stripes[square], [0.95, 0.85, 0.2], [0.7, 0.2, 0.1])
        cx = size * (0.75 - 0.4 * phase)
        cy = size * (0.7 - 0.15 * np.sin(2 * np.pi * phase))
        disk = (xx - cx) ** 2 + (yy - cy) ** 2 < (0.16 * size) ** 2
        checker = (((xx - cx) // 3 + (yy - cy) // 3) % 2 == 0)[..., None]
        image[disk] = np.where(checker[disk], [0.1, 0.3, 0.9], [0.9, 0.95, 1.0])
        frames[t] = np.clip(np.round(image * 255), 0, 255).astype(np.uint8)
    return frames


def write_demo_video(
    out_dir: str | os.PathLike[str] = DEFAULT_OUT, num_frames: int = 16, size: int = 64
) -> Path:
    """Write the demo clip as ``out_dir/frame_00000.png``, ... (replacing the folder atomically)."""
    target = Path(out_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for index, frame in enumerate(make_demo_frames(num_frames, size)):
            Image.fromarray(frame).save(tmp_dir / f"frame_{index:05d}.png", optimize=True)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp_dir, target)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return target


def main() -> None:
    """Command line: ``python data/make_demo_video.py [--out DIR] [--frames T] [--size S]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    write_demo_video(args.out, args.frames, args.size)


if __name__ == "__main__":
    main()
