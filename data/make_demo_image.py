"""Make ``data/demo_image.png``: the public-domain NASA "astronaut" photo shipped with
scikit-image, area-downscaled to 256x256. Run: ``python data/make_demo_image.py``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data


def make_demo_image(out: Path, size: int = 256) -> Path:
    """Write the demo image to ``out`` and return it."""
    image = Image.fromarray(np.asarray(data.astronaut(), dtype=np.uint8))
    image.resize((size, size), Image.Resampling.BOX).save(out, optimize=True)
    return out


if __name__ == "__main__":
    make_demo_image(Path(__file__).resolve().parent / "demo_image.png")
