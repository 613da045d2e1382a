"""Task registry: each task module (image, video, nerf) provides the same entry points.

A task module defines ``AppConfig`` (a dataclass with sections ``grid``, ``nef``,
``dataset``, ``trainer``, ...), ``run(cfg, output_dir) -> dict`` (train, export,
decode, report) and ``decode(model, path, out, **options)`` for a ``.shac`` file
whose config names the task. Modules are imported lazily so that a task's optional
dependencies never burden the others.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from wisp_shacira.errors import ConfigError

TASKS: dict[str, str] = {
    "image": "wisp_shacira.tasks.image",
    "video": "wisp_shacira.tasks.video",
    "nerf": "wisp_shacira.tasks.nerf",
}


def get_task(name: object) -> ModuleType:
    """The module of task ``name``."""
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r} (known: {', '.join(TASKS)})")
    return importlib.import_module(TASKS[str(name)])
