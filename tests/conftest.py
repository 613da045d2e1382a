"""Test-wide settings (one torch thread: tiny tensors, and no OpenMP oversubscription on
small CI machines; no progress bars in captured output) and shared fixtures."""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: idle OpenMP threads must not spin

import dataclasses  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from wisp_shacira.codec.model_io import write_shac  # noqa: E402
from wisp_shacira.fields.image import ImageField, ImageNefConfig  # noqa: E402
from wisp_shacira.grid.shacira_grid import GridConfig  # noqa: E402

os.environ.setdefault("TQDM_DISABLE", "1")
torch.set_num_threads(1)


CHILD_VAR = "WISP_SHACIRA_TEST_CHILD"
REPO = Path(__file__).resolve().parents[1]


def in_child() -> bool:
    """Whether this pytest is a child started by :func:`child_pytest`."""
    return os.environ.get(CHILD_VAR) == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "child_only: runs only in a child pytest started by "
                                       "the child_pytest fixture")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``child_only`` tests skip in the main process; a child drops the parents."""
    if in_child():
        parents = [item for item in items if "child_pytest" in item.fixturenames]
        if parents:
            config.hook.pytest_deselected(items=parents)
            items[:] = [item for item in items if item not in parents]
        return
    skip = pytest.mark.skip(reason="runs in a child pytest (see the child_pytest fixture)")
    for item in items:
        if item.get_closest_marker("child_only"):
            item.add_marker(skip)


@pytest.fixture
def child_pytest() -> Callable[..., str]:
    """Runs tests of one file in a fresh pytest process and fails with its output if it fails.

    ``run(test_file, select, env=None, timeout=300) -> stdout``: ``select`` is a ``-k``
    expression; the child sees ``WISP_SHACIRA_TEST_CHILD=1`` (see :func:`in_child`), the
    repository on ``PYTHONPATH`` and ``env``. For what must not live in the main test
    process: libraries whose state cannot be reset (Ray's core worker after a
    shutdown) or that read a variable once at import (``TRITON_INTERPRET``). The exit
    status counts, interpreter shutdown included, and every selected test must pass.
    """
    def run(test_file: str | Path, select: str, env: dict[str, str] | None = None,
            timeout: float = 300) -> str:
        path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        child_env = {**os.environ, **(env or {}), CHILD_VAR: "1", "PYTHONPATH": path}
        cmd = [sys.executable, "-X", "faulthandler", "-m", "pytest", "-q", "-p",
               "no:cacheprovider", "-k", select, str(test_file)]
        result = subprocess.run(cmd, capture_output=True, text=True, env=child_env,
                                timeout=timeout, cwd=REPO)
        tail = result.stdout[-4000:] + result.stderr[-2000:]
        assert result.returncode == 0, f"child pytest exited {result.returncode}:\n{tail}"
        last = result.stdout.strip().splitlines()[-1]
        assert " passed" in last and "skipped" not in last, tail
        return result.stdout

    return run


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
