"""What every task decoder checks before it builds a model from an untrusted file.

1. :func:`parse_file_config`: the CONFIG section as the task's strict dataclasses (the
   same types and ``check()`` ranges as the YAML; unknown or missing keys are errors),
   plus the decoder's own bounds (:mod:`wisp_shacira.codec.limits`) and agreement with
   the TABLES section (levels, latent dimension).
2. :func:`build_field`: the field is first built on PyTorch's ``meta`` device (no
   memory), the file's weights are checked against it (names, types, shapes, latent
   layout), the memory of the real model plus the task's output is checked against
   the limit, and only then is the real model built and loaded.

Every violation is a :class:`~wisp_shacira.errors.BitstreamError` naming the file.
"""
from __future__ import annotations

import dataclasses
import typing
from typing import Any, Callable, TypeVar

import torch

from wisp_shacira.codec import limits
from wisp_shacira.codec.model_io import ShacModel
from wisp_shacira.config import build_config
from wisp_shacira.errors import BitstreamError, ConfigError
from wisp_shacira.fields.base import CompressedField
from wisp_shacira.grid.shacira_grid import GridConfig

T = TypeVar("T")
F = TypeVar("F", bound=CompressedField)
EVAL_CHUNK = 1 << 16
"""Points per field evaluation in the decoders' render loops."""


def parse_file_config(cls: type[T], model: ShacModel, name: str) -> T:
    """``model.config`` as dataclass ``cls`` (sections ``grid``, ``nef``, metadata), checked.

    ``cls.task`` is a ``Literal`` of the one task name the file must hold.
    """
    task = typing.get_args(typing.get_type_hints(cls)["task"])[0]
    if model.config.get("task") != task:
        from wisp_shacira.tasks import get_task          # the registry imports the tasks
        raise BitstreamError(f"{name}: holds a {model.config.get('task')!r} model, not "
                             f"{get_task(task).description}")
    try:
        cfg = build_config(cls, model.config)
    except ConfigError as exc:
        raise BitstreamError(f"{name}: invalid configuration in the file ({exc})") from exc
    check_grid(cfg.grid, model, name)
    check_mlp(cfg.nef, name)
    return cfg


def check_grid(grid: GridConfig, model: ShacModel, name: str) -> None:
    """Decoder bounds of the grid section, and agreement with the tables section."""
    if not grid.compressed:
        raise BitstreamError(f"{name}: grid.compressed is false in a .shac file")
    limits.require_in(grid.num_levels, 1, limits.MAX_LEVELS, "grid.num_levels", name)
    limits.require_in(grid.latent_dim, 1, limits.MAX_LATENT_DIM, "grid.latent_dim", name)
    limits.require_in(grid.feature_dim, 1, limits.MAX_FEATURE_DIM, "grid.feature_dim", name)
    limits.require_in(grid.max_res, 1, limits.MAX_IMAGE_SIDE, "grid.max_res", name)
    if (grid.num_levels, grid.latent_dim) != (model.num_levels, model.latent_dim):
        raise BitstreamError(f"{name}: the tables hold {model.num_levels} levels of "
                             f"{model.latent_dim} latents, the configuration says "
                             f"{grid.num_levels} of {grid.latent_dim}")


def check_mlp(nef: Any, name: str) -> None:
    """Bounds of every ``*num_layers`` and ``*_dim`` field of an MLP configuration."""
    for item in dataclasses.fields(nef):
        value = getattr(nef, item.name)
        if item.name.endswith("num_layers"):
            limits.require_in(value, 0, limits.MAX_MLP_LAYERS, f"nef.{item.name}", name)
        elif item.name.endswith("_dim"):
            limits.require_in(value, 0, limits.MAX_MLP_WIDTH, f"nef.{item.name}", name)


def eval_bytes(field: CompressedField, points: int) -> int:
    """Working memory of evaluating ``field`` at ``points`` points (an upper estimate):
    corner rows and weights of every level, features, and every head activation."""
    layout = field.grid.layout
    corners = 2**layout.dim * layout.num_levels * 12
    features = layout.num_levels * field.grid.config.feature_dim * 4 * 3
    widths = sum(p.shape[0] for p in field.heads.parameters() if p.dim() == 2)
    return points * (corners + features + widths * 4 * 3)


def build_field(factory: Callable[[], F], model: ShacModel, name: str,
                output_bytes: Callable[[F], float], what: str) -> F:
    """Check ``model`` against the field ``factory`` builds, then build and load it.

    Args:
        factory: builds the field (called once on the meta device, once for real).
        output_bytes: memory the decode needs beyond the model's parameters, given the
            (meta) field.
        what: the decode's output, for the memory message.
    Returns:
        The loaded field in eval mode, on the CPU.
    """
    with torch.device("meta"):
        probe = factory()
    probe.check_shac_model(model, name)
    params = sum(p.numel() for p in probe.parameters()) * 4
    limits.check_memory(2 * params + output_bytes(probe), what, name)
    field = factory()
    field.load_shac_model(model, name)
    return field.eval()
