"""Rate control: reach a requested file size by searching the level of lambda.

A run with ``trainer.target_bpp`` or ``trainer.target_bytes`` trains in passes. Each
pass is a complete training run with the configured lambda schedule multiplied by one
scale; its size is the exact byte length of the file it writes. The first pass uses
scale 1; the next ones come from a secant step on ``log(size)`` against
``log(scale)`` (between the closest passes above and below the target once there are
both; from one pass: the slope :data:`DEFAULT_SLOPE`), until a pass is within
the tolerance (5%) or :data:`MAX_PASSES` passes are done; the pass closest to the target
is kept. A fixed scale per pass, not lambda adapted inside one run: on the demo scene
lambda changes the final size only when applied from the start (x10 from step 0:
-39% bytes; raised step by step to x59 over the second half: +18%), so a controller that
watches the size while training reacts when its lever no longer works.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from typing import Callable, Generic, TypeVar

import numpy as np

from wisp_shacira.codec.model_io import encode_model
from wisp_shacira.codec.context_io import fit_context_model
from wisp_shacira.codec.tables import histogram_table
from wisp_shacira.errors import ConfigError
from wisp_shacira.fields.base import CompressedField
from wisp_shacira.train.config import TrainerConfig

log = logging.getLogger(__name__)
T = TypeVar("T")

TOLERANCE = 0.05
"""Relative size error that ends the search."""
MAX_PASSES = 5
DEFAULT_SLOPE = -0.2
"""``d log(size) / d log(scale)`` assumed after one pass (demo scene: -0.21 from x1 to
x10; demo image: -0.12 from x1 to x4.5, -0.29 from x4.5 to x38)."""
SLOPE_RANGE = (-3.0, -0.05)
MAX_LOG_STEP = math.log(100.0)
"""Largest change of ``log(scale)`` from one pass to the next."""
MAX_BITS_PER_LATENT = 16
"""A latent coded with 16-bit frequencies costs at most 16 bits."""


@dataclass
class RatePass(Generic[T]):
    """One training pass: its lambda scale, the size of its file and what it trained."""

    scale: float
    bytes: int
    result: T = field(repr=False)


@dataclass
class RateSearch(Generic[T]):
    """The passes of a rate-controlled run (see the module docstring).

    Attributes:
        target_bytes: requested file size.
        passes: every pass done, in order.
    """

    target_bytes: int
    passes: list[RatePass[T]] = field(default_factory=list)

    def error(self, size: int) -> float:
        return size / self.target_bytes - 1.0

    def done(self) -> bool:
        return bool(self.passes) and (abs(self.error(self.best().bytes)) <= TOLERANCE
                                      or len(self.passes) >= MAX_PASSES)

    def best(self) -> RatePass[T]:
        """The pass whose file is closest to the target (in log size)."""
        return min(self.passes, key=lambda p: abs(math.log(p.bytes / self.target_bytes)))

    def next_scale(self) -> float:
        """The lambda scale of the next pass."""
        if not self.passes:
            return 1.0
        goal = math.log(self.target_bytes)
        ranked = sorted(self.passes, key=lambda p: abs(math.log(p.bytes) - goal))
        near = ranked[0]
        above = [p for p in ranked if p.bytes > self.target_bytes]
        below = [p for p in ranked if p.bytes <= self.target_bytes]
        other = ranked[1] if len(ranked) > 1 else None
        if above and below:                  # a bracket: interpolate between its ends
            near, other = above[0], below[0]
        slope = DEFAULT_SLOPE
        if other is not None and other.scale != near.scale:
            slope = ((math.log(near.bytes) - math.log(other.bytes))
                     / (math.log(near.scale) - math.log(other.scale)))
            slope = min(SLOPE_RANGE[1], max(SLOPE_RANGE[0], slope))
        step = (goal - math.log(near.bytes)) / slope
        return near.scale * math.exp(max(-MAX_LOG_STEP, min(MAX_LOG_STEP, step)))

    def report(self) -> dict:
        """What was asked and reached, and every pass (for the run's report)."""
        best = self.best()
        return {"target_bytes": self.target_bytes, "reached_bytes": best.bytes,
                "error": self.error(best.bytes),
                "within_5_percent": abs(self.error(best.bytes)) <= TOLERANCE,
                "lambda_scale": best.scale,
                "passes": [{"lambda_scale": p.scale, "bytes": p.bytes} for p in self.passes]}


def search(train: Callable[[float], tuple[T, int]], target_bytes: int,
           what: str) -> tuple[T, RateSearch[T]]:
    """Train passes ``train(scale) -> (result, file bytes)`` until one is within the
    tolerance of ``target_bytes`` (or :data:`MAX_PASSES`); returns the closest pass's
    result and the search."""
    state: RateSearch[T] = RateSearch(target_bytes)
    while not state.done():
        scale = state.next_scale()
        result, size = train(scale)
        state.passes.append(RatePass(scale, size, result))
        log.info("%s: rate pass %d, lambda x%.3g: %d bytes (%+.1f%% of the target %d)", what,
                 len(state.passes), scale, size, 100 * state.error(size), target_bytes)
        for old in state.passes:
            if old is not state.best():
                old.result = None          # keep only the best pass's model in memory
    best = state.best()
    if abs(state.error(best.bytes)) > TOLERANCE:
        log.warning("%s: no pass within %.0f%% of %d bytes after %d passes; keeping the "
                    "closest (%d bytes, lambda x%.3g): the size may not respond to lambda "
                    "here, change grid.log2_table_size instead", what, 100 * TOLERANCE,
                    target_bytes, len(state.passes), best.bytes, best.scale)
    return best.result, state


def file_size_probe(field: CompressedField, config: dict) -> Callable[[], int]:
    """``probe() -> bytes`` of the ``.shac`` file the field would be written as now (its
    rounded latents coded with their own tables, CONFIG ``config``); for an uncompressed
    grid, the float32 bytes of every parameter."""
    if not field.grid.config.compressed:
        nbytes = sum(4 * p.numel() for p in field.parameters())
        return lambda: nbytes
    return lambda: len(field.encode_shac(config)[0])


def floor_bytes(field: CompressedField, config: dict) -> int:
    """Bytes of the field's file with every latent zero: weights, headers and tables,
    the smallest file its configuration can give (with ``grid.latent_coder: auto``, the
    smaller of the two codings)."""
    sizes = []
    for coder in field.grid.config.latent_codings():
        model = field.to_shac_model(config, coder=coder)
        zeros = [np.zeros_like(level) for level in model.levels]
        tables = [histogram_table(np.zeros(1, dtype=np.int64)) for _ in model.tables]
        context = None if model.context is None else fit_context_model(
            zeros, list(model.context.shapes), model.context.precision)
        sizes.append(len(encode_model(dataclasses.replace(model, levels=zeros, tables=tables,
                                                          context=context))))
    return min(sizes)


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


def check_reachable(target: int, floor: int, num_latents: int, what: str) -> None:
    """Refuse a target below the file's fixed part (weights, headers, tables with all
    latents zero) or above what the table can hold (16 bits per latent).

    Raises:
        ConfigError: naming the target, the bound and the knob to turn.
    """
    if target < floor:
        raise ConfigError(f"{what}: target of {target} bytes is below the {floor} bytes "
                          f"of weights, headers and tables alone; lower nef/grid sizes "
                          f"(e.g. grid.log2_table_size, nef.hidden_dim) or raise the target")
    ceiling = floor + num_latents * MAX_BITS_PER_LATENT // 8
    if target > ceiling:
        raise ConfigError(f"{what}: target of {target} bytes is beyond the largest file this "
                          f"table can give ({num_latents} latents: at most {ceiling} bytes); "
                          f"raise grid.log2_table_size or lower the target")


def rate_target(make_field: Callable[[], CompressedField], cfg: TrainerConfig, config: dict,
                pixels: int | None, what: str) -> int | None:
    """The byte target a run asks for (``trainer.target_bpp`` over ``pixels``, or
    ``trainer.target_bytes``), checked to be reachable on a field ``make_field()`` builds
    (only when there is a target); None without a target.

    Raises:
        ConfigError: both targets, a bpp target for a scene, or an unreachable target.
    """
    target = target_bytes_of(cfg.target_bpp, cfg.target_bytes, pixels)
    if target is None:
        return None
    field = make_field()
    if not field.grid.config.compressed:
        raise ConfigError("rate control needs a compressed grid (grid.compressed: true)")
    check_reachable(target, floor_bytes(field, config), field.grid.latents.numel(), what)
    return target


def fit_to_target(train: Callable[[float], T], field_of: Callable[[T], CompressedField],
                  config: dict, target: int | None, what: str,
                  size_of: Callable[[T], int] | None = None) -> tuple[T, RateSearch | None]:
    """``train(1.0)`` without a target; with one, :func:`search` over passes
    ``train(scale)``, each measured by ``size_of(result)`` (default: the size of the
    file of ``field_of(result)`` with CONFIG ``config``; a task whose export changes the
    field, as the NeRF task's pruning does, gives the size of what it writes)."""
    if target is None:
        return train(1.0), None

    def one_pass(scale: float) -> tuple[T, int]:
        result = train(scale)
        if size_of is not None:
            return result, size_of(result)
        return result, file_size_probe(field_of(result), config)()

    return search(one_pass, target, what)


def pass_label(desc: str, scale: float) -> str:
    """Progress-bar label of a training pass (its lambda scale, when not 1)."""
    return desc if scale == 1.0 else f"{desc} (lambda x{scale:.3g})"
