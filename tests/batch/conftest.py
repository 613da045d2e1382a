"""Tiny images and a tiny config for batch tests."""
from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from wisp_shacira.batch.jobs import Point
from wisp_shacira.config import load_yaml, merge
from wisp_shacira.resources import resolve_config

TINY = {"grid": {"num_levels": 3, "min_res": 4, "max_res": 16, "log2_table_size": 8},
        "nef": {"hidden_dim": 8}, "trainer": {"iterations": 12}}


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """Three seeded 16x16 RGB images in a folder."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        iio.imwrite(folder / f"img{i}.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    return folder


@pytest.fixture
def base_config() -> dict:
    """The bundled image config made tiny (a few milliseconds of training a job)."""
    return merge(load_yaml(resolve_config("shacira_image")), TINY)


@pytest.fixture
def points() -> list[Point]:
    """Two rate points (table sizes 2^7 and 2^8)."""
    return [Point("T7", {"grid": {"log2_table_size": 7}}),
            Point("T8", {"grid": {"log2_table_size": 8}})]
