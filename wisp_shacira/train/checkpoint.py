"""Atomic training checkpoints: model, optimiser, extra modules, RNG state and step.

A checkpoint is one file written with :func:`~wisp_shacira.outputs.write_atomic`
(temporary file, then rename), so an interruption leaves either the previous
checkpoint or the new one, never a partial file; the temporary a SIGKILL leaves
(``.checkpoint.pt.<pid>.<random>.tmp``) is removed when the next run starts
(:func:`wisp_shacira.tasks.common.prepare_output_dir`). Restoring the RNG state makes a
resumed run take the same random draws (ray batches, jitter, occupancy cells) as an
uninterrupted one.
"""
from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wisp_shacira.errors import ConfigError, DataError
from wisp_shacira.outputs import write_atomic

FORMAT = 1


def capture_rng() -> dict[str, Any]:
    """The torch RNG states (CPU, and every CUDA device when present, plus the current
    device's as ``cuda_current``)."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
        state["cuda_current"] = torch.cuda.get_rng_state()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng` (CUDA states are restored when CUDA is present).

    The current device gets the state of the device current when the checkpoint was
    made: a data-parallel run draws on ``cuda:LOCAL_RANK`` in every process, and the
    checkpoint is rank 0's (its ``cuda:0``), whatever the number of processes resuming.
    """
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][:torch.cuda.device_count()])
        if "cuda_current" in state:
            torch.cuda.set_rng_state(state["cuda_current"])


def save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, step: int,
                    modules: dict[str, nn.Module], extra: dict[str, Any]) -> None:
    """Write a checkpoint atomically.

    Args:
        model: the trained module (its ``state_dict``).
        optimizer: its optimiser.
        step: optimisation steps done.
        modules: other stateful modules (e.g. the occupancy grid), by name.
        extra: JSON-like data to keep (configuration, history, elapsed time).
    """
    state = {"format": FORMAT, "step": step, "model": model.state_dict(),
             "optimizer": optimizer.state_dict(),
             "modules": {name: module.state_dict() for name, module in modules.items()},
             "rng": capture_rng(), "extra": extra}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors on the CPU).

    Raises:
        ConfigError: the file does not exist.
        DataError: the file is not a readable checkpoint.
    """
    if not path.is_file():
        raise ConfigError(f"{path}: no checkpoint to resume from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable checkpoint ({exc})".replace("\n", " ")) from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise DataError(f"{path}: not a wisp-shacira checkpoint (format {FORMAT})")
    return state


def restore_checkpoint(state: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
                       modules: dict[str, nn.Module]) -> int:
    """Load a checkpoint into freshly built objects and restore the RNG; returns the step.

    The model and modules must already live on their training device; optimiser state
    follows the parameters' device.
    """
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    for name, module in modules.items():
        module.load_state_dict(state["modules"][name])
    restore_rng(state["rng"])
    return int(state["step"])
