"""Task registry: every task module defines ``TASK``, a
:class:`~wisp_shacira.tasks.protocol.Task` (config type, ``run``, ``summary``, ``decode``,
``decode_output``, ``open_source``, ``lod_target``).

A new task is one module and one line here. Modules are imported lazily, so that a
task's optional dependencies never burden the others.
"""
from __future__ import annotations

import importlib

from wisp_shacira.errors import ConfigError
from wisp_shacira.tasks.protocol import Task

TASKS: dict[str, str] = {
    "image": "wisp_shacira.tasks.image",
    "video": "wisp_shacira.tasks.video",
    "nerf": "wisp_shacira.tasks.nerf",
    "wisp_nerf": "wisp_shacira.tasks.wisp_nerf",
}


def get_task(name: object) -> Task:
    """The task called ``name``.

    Raises:
        ConfigError: no such task.
    """
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r} (known: {', '.join(TASKS)})")
    return importlib.import_module(TASKS[str(name)]).TASK
