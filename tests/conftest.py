"""Test-wide settings (one torch thread: tiny tensors, and no OpenMP oversubscription on
small CI machines; no progress bars in captured output) and shared fixtures."""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: idle OpenMP threads must not spin

import dataclasses  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from wisp_shacira.codec.model_io import write_shac  # noqa: E402
from wisp_shacira.fields.image import ImageField, ImageNefConfig  # noqa: E402
from wisp_shacira.grid.shacira_grid import GridConfig  # noqa: E402

os.environ.setdefault("TQDM_DISABLE", "1")
torch.set_num_threads(1)


@pytest.fixture
def random_image_shac() -> Callable[..., Path]:
    """Factory writing an image ``.shac`` with seeded random integer latents (every LOD differs).

    ``make(path, height, width, channels=3, num_levels=4, max_res=32, spread=3,
    decoder_weight=None) -> path``.
    """
    def make(path: Path, height: int, width: int, channels: int = 3, num_levels: int = 4,
             max_res: int = 32, spread: int = 3, decoder_weight: float | None = None) -> Path:
        torch.manual_seed(0)
        grid = GridConfig(num_levels=num_levels, min_res=4, max_res=max_res, log2_table_size=8)
        nef = ImageNefConfig(hidden_dim=8)
        field = ImageField(grid, nef, channels=channels)
        with torch.no_grad():
            field.grid.latents.copy_(torch.randint(-spread, spread + 1,
                                                   field.grid.latents.shape).float())
            if decoder_weight is not None:
                field.grid.decoder.weight.fill_(decoder_weight)
        field.round_weights()
        config = {"task": "image", "grid": dataclasses.asdict(grid), "nef": dataclasses.asdict(nef),
                  "image": {"name": path.stem, "height": height, "width": width,
                            "channels": channels, "bit_depth": 8}}
        write_shac(path, field.to_shac_model(config))
        return path

    return make
