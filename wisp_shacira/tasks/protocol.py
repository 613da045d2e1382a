"""The interface every task implements, and what LOD tools and the viewer see of it.

A task (image, video, nerf, ...) is one module in :mod:`wisp_shacira.tasks` that
defines ``TASK``, an object satisfying :class:`Task`, and one line in
:data:`wisp_shacira.tasks.TASKS`. ``wisp-shacira encode``/``decode``, :mod:`wisp_shacira.lod`,
:mod:`wisp_shacira.lod_report` and the viewer use only this interface.

LOD always means the number of grid levels used, coarsest first: ``1..num_levels``
(None = all).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Protocol, runtime_checkable

import numpy as np
import torch

from wisp_shacira.codec.model_io import ShacModel


@runtime_checkable
class LodSource(Protocol):
    """A decoded model that renders at any LOD it holds.

    ``view`` tells the viewer how to show it: ``"planar"`` sources (images, videos) are
    windows over ``[0, 1]^2`` with frames; ``"scene"`` sources are rendered from cameras.
    """

    view: Literal["planar", "scene"]
    num_levels: int
    height: int
    width: int

    def write(self, lod: int, out: Path, force: bool = False) -> Path:
        """Write what ``wisp-shacira decode`` writes for this model, at LOD ``lod``, to
        ``out`` (a path :meth:`Task.decode_output` accepted); returns the path written."""
        ...


@runtime_checkable
class PlanarSource(LodSource, Protocol):
    """Images and videos: ``colours`` at window coordinates, per frame."""

    channels: int
    num_frames: int

    def colours(self, coords: torch.Tensor, lod: int, frame: int = 0) -> torch.Tensor:
        """Colours at ``coords: [N, 2]`` (x, y) in [0, 1] of ``frame``: [N, C] in [0, 1]."""
        ...


@runtime_checkable
class SceneSource(LodSource, Protocol):
    """Scenes: views from cameras, and the camera the model was trained around."""

    def render(self, lod: int, c2w: torch.Tensor, intrinsics: torch.Tensor, height: int,
               width: int) -> np.ndarray:
        """Views ``[V, H, W, 3]`` uint8 from ``c2w: [V, 4, 4]`` (box frame, OpenGL axes)
        with ``intrinsics: [V, 4]`` (fx, fy, cx, cy) at ``height x width``."""
        ...

    def camera(self) -> dict:
        """The training camera: ``fx, fy, cx, cy, orbit_radius, orbit_height``."""
        ...


@dataclass
class LodTarget:
    """How ``wisp-shacira lod`` renders one LOD of a model and what it compares it with.

    Attributes:
        render: ``render(model, lod) -> [V, H, W, C]`` (frames or views; uint8 or [0, 1]).
        reference: the same shape, or None (then the highest LOD held is the reference).
        label: what the reference is, for the report.
        preview: the frame or view shown in the render strip.
    """

    render: Callable[[ShacModel, int], np.ndarray]
    reference: np.ndarray | None
    label: str
    preview: int = 0


@runtime_checkable
class Task(Protocol):
    """One kind of signal: its config, its pipeline, its decoder and its LOD source.

    Attributes:
        name: the ``task`` key of configs and of ``.shac`` files.
        description: "an image", ... (for messages).
        config_type: the dataclass a YAML config of this task is built into.
        data_parallel: whether :meth:`run` takes ``parallel=`` (a
            :class:`~wisp_shacira.train.distributed.DataParallel`) and so trains under
            ``torchrun``.
    """

    name: str
    description: str
    config_type: type
    data_parallel: bool

    def run(self, cfg: Any, output_dir: Path) -> dict:
        """Train, export, decode from the file and measure; returns the report (a
        ``data_parallel`` task also takes ``parallel=``)."""
        ...

    def summary(self, report: dict) -> str:
        """A readable table of a :meth:`run` report."""
        ...

    def decode_output(self, source: Path, out: Path) -> Path:
        """The path ``decode`` would write for ``out`` (checked by suffix alone)."""
        ...

    def decode(self, path: Path, out: Path, max_lod: int | None = None, *,
               force: bool = False) -> Path:
        """Decode a file of this task from the file alone; returns the path written."""
        ...

    def open_source(self, model: ShacModel, name: str) -> LodSource:
        """The renderer of a decoded (possibly partial) model."""
        ...

    def lod_target(self, model: ShacModel, name: str, reference: Path | None,
                   poses: Path | None, max_views: int | None) -> LodTarget:
        """What ``wisp-shacira lod`` renders and compares with (``reference``: an original
        signal; ``poses``: a transforms file for scenes)."""
        ...


@dataclass(frozen=True)
class TaskSpec:
    """A :class:`Task` made of a task module's functions (what every task module's
    ``TASK`` is)."""

    name: str
    description: str
    config_type: type
    run: Callable[[Any, Path], dict]
    summary: Callable[[dict], str]
    decode_output: Callable[[Path, Path], Path]
    decode: Callable[..., Path]
    open_source: Callable[[ShacModel, str], LodSource]
    lod_target: Callable[[ShacModel, str, Path | None, Path | None, int | None], LodTarget]
    data_parallel: bool = False
