"""Rate control: reach a requested file size in one training run by adapting lambda.

Every ``every`` steps the trainer measures the exact size of the file the field would
be written as (:func:`file_size_probe`: rounded latents coded with their own
tables, plus weights and headers) and :meth:`RateController.update` moves the rate
weight multiplicatively: ``scale *= (size / target) ** (gain * progress step)``. The configured lambda
schedule keeps its shape; only its level changes. A size above the target raises
lambda (fewer bits), below lowers it, until the end of training, where the file is the
measured model. Chosen over a search of short runs because it costs one run, and over a
table-size search because lambda moves the size continuously.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from wisp_shacira.codec.model_io import encode_model
from wisp_shacira.codec.tables import histogram_table
from wisp_shacira.errors import ConfigError
from wisp_shacira.fields.base import CompressedField
from wisp_shacira.train.config import TrainerConfig

MIN_SCALE, MAX_SCALE = 1e-4, 1e4
GAIN = 80.0
"""Change of ``log(scale)`` per unit of training progress and unit of log size error
(80 = the gain of 1 per measurement that reached +2.4% on the demo image with 80
measurements)."""
MAX_BITS_PER_LATENT = 16
"""A latent coded with 16-bit frequencies costs at most 16 bits."""


@dataclass
class RateController:
    """Adapts the rate weight so that the file reaches ``target_bytes``.

    Attributes:
        target_bytes: requested file size.
        every: steps between measurements.
        gain: exponent of the multiplicative update.
        scale: current multiplier of the lambda schedule.
    """

    target_bytes: int
    every: int = 25
    gain: float = GAIN
    scale: float = 1.0
    last_bytes: int | None = None
    last_progress: float = 0.0

    def update(self, size: int, progress: float) -> None:
        """Account for a measured ``size`` at ``progress`` (0..1) of training: the log of
        the scale moves by ``gain * log(size / target)`` per unit of progress, so the
        response does not depend on how often the size is measured."""
        self.last_bytes = size
        error = math.log(max(size, 1) / self.target_bytes)
        step = self.gain * error * max(0.0, progress - self.last_progress)
        self.last_progress = progress
        self.scale = min(MAX_SCALE, max(MIN_SCALE, self.scale * math.exp(step)))

    def state_dict(self) -> dict:
        return {"scale": self.scale, "last_bytes": self.last_bytes,
                "last_progress": self.last_progress}

    def load_state_dict(self, state: dict) -> None:
        self.scale = float(state["scale"])
        self.last_bytes = state.get("last_bytes")
        self.last_progress = float(state.get("last_progress", 0.0))

    def report(self, reached: int) -> dict:
        """What was asked and reached (for the run's report)."""
        error = reached / self.target_bytes - 1.0
        return {"target_bytes": self.target_bytes, "reached_bytes": reached,
                "error": error, "within_5_percent": abs(error) <= 0.05,
                "lambda_scale": self.scale}


def target_bytes_of(target_bpp: float | None, target_bytes: int | None,
                    pixels: int | None) -> int | None:
    """The byte target of a run: ``target_bytes``, or ``target_bpp * pixels / 8``."""
    if target_bpp is not None and target_bytes is not None:
        raise ConfigError("give trainer.target_bpp or trainer.target_bytes, not both")
    if target_bpp is None:
        return target_bytes
    if pixels is None:
        raise ConfigError("trainer.target_bpp is for images and videos; give a scene "
                          "trainer.target_bytes")
    return max(1, round(target_bpp * pixels / 8))


def check_reachable(target: int, floor_bytes: int, num_latents: int, what: str) -> None:
    """Refuse a target below the file's fixed part (weights, headers, tables with all
    latents zero) or above what the table can hold (16 bits per latent).

    Raises:
        ConfigError: naming the target, the bound and the knob to turn.
    """
    if target < floor_bytes:
        raise ConfigError(f"{what}: target of {target} bytes is below the {floor_bytes} bytes "
                          f"of weights, headers and tables alone; lower nef/grid sizes "
                          f"(e.g. grid.log2_table_size, nef.hidden_dim) or raise the target")
    ceiling = floor_bytes + num_latents * MAX_BITS_PER_LATENT // 8
    if target > ceiling:
        raise ConfigError(f"{what}: target of {target} bytes is beyond the largest file this "
                          f"table can give ({num_latents} latents: at most {ceiling} bytes); "
                          f"raise grid.log2_table_size or lower the target")


def file_size_probe(field: CompressedField, config: dict) -> Callable[[], int]:
    """``probe() -> bytes`` of the ``.shac`` file the field would be written as now (its
    rounded latents coded with their own tables, CONFIG ``config``); for an uncompressed
    grid, the float32 bytes of every parameter."""
    if not field.grid.config.compressed:
        nbytes = sum(4 * p.numel() for p in field.parameters())
        return lambda: nbytes
    return lambda: len(encode_model(field.to_shac_model(config)))


def floor_bytes(field: CompressedField, config: dict) -> int:
    """Bytes of the field's file with every latent zero: weights, headers and tables,
    the smallest file its configuration can give."""
    model = field.to_shac_model(config)
    zeros = [np.zeros_like(level) for level in model.levels]
    tables = [histogram_table(np.zeros(1, dtype=np.int64)) for _ in model.tables]
    return len(encode_model(dataclasses.replace(model, levels=zeros, tables=tables)))


def make_controller(field: CompressedField, cfg: TrainerConfig, config: dict,
                    pixels: int | None, what: str) -> RateController | None:
    """The rate controller a run asks for (``trainer.target_bpp`` over ``pixels``, or
    ``trainer.target_bytes``), after checking the target can be reached; None without a
    target.

    Raises:
        ConfigError: both targets, a bpp target for a scene, or an unreachable target.
    """
    target = target_bytes_of(cfg.target_bpp, cfg.target_bytes, pixels)
    if target is None:
        return None
    if not field.grid.config.compressed:
        raise ConfigError("rate control needs a compressed grid (grid.compressed: true)")
    check_reachable(target, floor_bytes(field, config), field.grid.latents.numel(), what)
    return RateController(target, every=cfg.log_every)
