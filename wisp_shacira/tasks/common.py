"""Helpers shared by the task pipelines: output folders, timing, JSON reports."""
from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from wisp_shacira.codec.container import write_atomic
from wisp_shacira.errors import ConfigError


def default_output_dir(task: str) -> Path:
    """``runs/<task>-<timestamp>`` under the current directory."""
    return Path("runs") / f"{task}-{time.strftime('%Y%m%d-%H%M%S')}"


def check_not_input(out: Path, inputs: list[Path]) -> None:
    """Refuse to write an output over one of the inputs."""
    target = out.resolve()
    for path in inputs:
        if path.exists() and path.resolve() == target:
            raise ConfigError(f"refusing to overwrite input file {path} with an output")


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as indented JSON, atomically."""
    write_atomic(path, (json.dumps(data, indent=2) + "\n").encode())


@contextmanager
def timed() -> Iterator[list[float]]:
    """``with timed() as t: ...`` leaves the elapsed seconds in ``t[0]``."""
    box = [0.0]
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    try:
        yield box
    finally:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        box[0] = time.perf_counter() - start


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) for a reproducible run."""
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def tensorboard_writer(enabled: bool, logdir: Path):
    """A TensorBoard ``SummaryWriter`` when enabled and installed, else None."""
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ConfigError("trainer.tensorboard needs the tensorboard package "
                          "(pip install tensorboard)") from exc
    return SummaryWriter(str(logdir))
