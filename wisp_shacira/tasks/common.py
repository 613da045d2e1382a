"""Helpers shared by the task pipelines: output folders, timing, JSON reports."""
from __future__ import annotations

import json
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from wisp_shacira.codec.model_io import level_payload_bytes
from wisp_shacira.errors import ConfigError
from wisp_shacira.fields.base import CompressedField, smallest
from wisp_shacira.grid.gathered import worth_gathering
from wisp_shacira.outputs import check_writable, remove_stale_temporaries, write_atomic
from wisp_shacira.tasks.report import latent_rate_text

log = logging.getLogger("wisp_shacira")


@dataclass
class Trained:
    """A trained field and what its data-parallel training averaged each step
    (:meth:`~wisp_shacira.train.rd.RDTrainer.parallel_report`; None for one process)."""

    field: CompressedField
    parallel: dict | None = None


def default_output_dir(task: str) -> Path:
    """``runs/<task>-<timestamp>`` under the current directory."""
    return Path("runs") / f"{task}-{time.strftime('%Y%m%d-%H%M%S')}"


def prepare_output_dir(out_dir: Path) -> Path:
    """Start of a run: check before any work that outputs can be written in ``out_dir``
    (creating nothing: a run that fails on its inputs leaves no folder behind), and
    remove the temporaries an interrupted earlier run left in it (``.checkpoint.pt.*.tmp``,
    ``.NAME.shac.*.tmp``, ... of processes that are gone).

    Raises:
        OutputError: the folder cannot be created or written, or its ``metrics.json``
            is read-only.
    """
    out_dir = Path(out_dir)
    check_writable(out_dir / "metrics.json", create=False)
    remove_stale_temporaries(out_dir)
    return out_dir


def prepare_decode_output(task: Any, source: Path, out: Path, force: bool = False) -> Path:
    """Before any decoding: the output path of ``task.decode_output`` (a
    :class:`~wisp_shacira.tasks.protocol.Task`), checked not to be the input and to be
    writable (an existing read-only output needs ``force``)."""
    check_not_input(Path(out), [Path(source)])
    target = task.decode_output(Path(source), Path(out))
    check_not_input(target, [Path(source)])
    return check_writable(target, force, create=False)


def check_not_input(out: Path, inputs: list[Path]) -> None:
    """Refuse to write an output over one of the inputs."""
    target = out.resolve()
    for path in inputs:
        if path.exists() and path.resolve() == target:
            raise ConfigError(f"refusing to overwrite input file {path} with an output")


def write_json(path: Path, data: dict, force: bool = False) -> None:
    """Write ``data`` as indented JSON, atomically (``force``: replace a read-only file)."""
    write_atomic(path, (json.dumps(data, indent=2) + "\n").encode(), force=force)


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
    """A TensorBoard ``SummaryWriter`` when enabled, else None.

    Raises:
        MissingExtraError: enabled without the tensorboard package (extra ``tensorboard``).
    """
    if not enabled:
        return None
    from wisp_shacira.extras import require
    require("tensorboard", "tensorboard", "trainer.tensorboard")
    from torch.utils.tensorboard import SummaryWriter
    return SummaryWriter(str(logdir))


def write_model(field: CompressedField, config: dict, path: Path,
                row_masks: list | None = None,
                encoded: dict[str, bytes] | None = None) -> tuple[int, dict]:
    """Write the field's ``.shac`` file (call ``round_weights`` first) and compare the rate
    its entropy model reports for the rounded latents with the bytes the coder wrote.

    With ``grid.latent_coder: auto`` both codings are made and the smaller written
    (:meth:`~wisp_shacira.fields.base.CompressedField.encode_codings`, which also takes
    ``row_masks``); ``encoded`` gives them when the caller already made them.

    Returns:
        (file bytes, ``{"entropy_model", "latent_coder", "file_bytes", "model_bytes",
        "latent_bytes", "own_coding_bytes"}``: ``latent_coder`` is the coding the file
        holds, ``file_bytes`` the file's size with each coding tried, ``latent_bytes``
        its level sections, ``own_coding_bytes`` those of the coding of the training
        prior's own kind, the one its estimate ``model_bytes`` is to match), also logged.
    """
    encoded = encoded or field.encode_codings(config, row_masks=row_masks)
    data, chosen, tried = smallest(encoded)
    write_atomic(path, data)
    estimate = field.grid.model_bits() / 8
    own = field.grid.config.entropy_model
    own_data = encoded[own] if own in encoded else field.encode_codings(
        config, coders=(own,), row_masks=row_masks)[own]
    rate = {"entropy_model": own, "latent_coder": chosen, "file_bytes": tried,
            "model_bytes": estimate, "latent_bytes": level_payload_bytes(data),
            "own_coding_bytes": level_payload_bytes(own_data)}
    if len(tried) > 1:
        log.info("latent coding: %s; wrote %s", ", ".join(
            f"{coder} {size:,} bytes" for coder, size in rate["file_bytes"].items()), chosen)
    log.info("latent rate: %s", latent_rate_text(rate))
    return len(data), rate


def batch_mse(prediction: torch.Tensor, target: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    """``mean((prediction - target)^2)`` over ``[n, C]``, times a rank's ``weight`` (see
    :meth:`~wisp_shacira.train.distributed.DataParallel.weight`; 1: not multiplied)."""
    mse = torch.mean((prediction - target) ** 2)
    return mse if weight == 1.0 else mse * weight


def global_batch_table(field: CompressedField, tau: float | None, n_global: int,
                       n_local: int) -> torch.Tensor | None:
    """The decoded table when a rank's ``n_local`` points would take the gathered training
    encoding but the global batch of ``n_global`` (what one process draws) would not:
    then the rank rounds the whole table as one process does, so the random numbers it
    draws (one soft-rounding sample per table entry, not one seed per step) do not depend
    on the number of processes. None otherwise (the grid chooses as usual; its other
    choices compute the same function and draw the same numbers)."""
    grid = field.grid
    if (n_local == n_global or not grid.config.compressed or not torch.is_grad_enabled()
            or worth_gathering(grid.layout, n_global)
            or not worth_gathering(grid.layout, n_local)):
        return None
    return grid.decoded_table(tau)
