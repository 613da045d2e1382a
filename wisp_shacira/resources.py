"""Bundled configs and demo data, found with :mod:`importlib.resources` (stdlib only).

The repository's ``configs/`` and ``data/`` folders are packaged as
``wisp_shacira.bundled.configs`` and ``wisp_shacira.bundled.data`` (``pyproject.toml``
maps them in with ``[tool.setuptools.package-dir]``): a wheel carries a copy inside the
package, an editable install imports them from the folders themselves. A source
checkout imported without installing (``python -m ...`` from the repository root)
falls back to the folders beside ``wisp_shacira/``.

Config names are paths relative to ``configs/`` with or without ``.yaml``:
``"shacira_nerf"``, ``"shacira_nerf.yaml"``, ``"wisp/shacira_nerf.yaml"`` (a leading
``configs/`` is accepted too, so the README's ``--config configs/X.yaml`` works from
any folder).
"""
from __future__ import annotations

import importlib
import os
from importlib import resources
from pathlib import Path, PurePosixPath

from wisp_shacira.errors import ConfigError, DataError

DEMO_NAMES = ("demo_image.png", "demo_video", "demo_scene")
"""The bundled demo inputs: an image, a folder of video frames, a NeRF-synthetic scene."""

_SOURCE_ROOT = Path(__file__).resolve().parents[1]
_CONFIG_SUFFIX = ".yaml"


def _folder(kind: str) -> Path:
    """The bundled folder ``kind`` (``"data"`` or ``"configs"``) as a file-system path."""
    try:
        module = importlib.import_module(f"wisp_shacira.bundled.{kind}")
    except ModuleNotFoundError:
        return _SOURCE_ROOT / kind            # source checkout, not installed
    root = resources.files(module)
    if not isinstance(root, Path):           # e.g. a zip import: no real paths to hand out
        raise DataError(f"wisp_shacira.bundled.{kind} is not on the file system ({root}); "
                        f"install wisp-shacira with pip")
    return root


def config_names() -> list[str]:
    """Names of the bundled configs (``"shacira_image"``, ..., ``"wisp/shacira_nerf"``)."""
    root = _folder("configs")
    return sorted(p.relative_to(root).with_suffix("").as_posix()
                  for p in root.rglob(f"*{_CONFIG_SUFFIX}") if p.is_file())


def bundled_config(name: str) -> Path:
    """The bundled config ``name`` (see the module docstring for the accepted forms).

    Raises:
        ConfigError: no bundled config has that name; the message lists the names.
    """
    key = PurePosixPath(str(name).replace("\\", "/"))
    if key.parts[:1] == ("configs",):
        key = PurePosixPath(*key.parts[1:]) if len(key.parts) > 1 else PurePosixPath()
    if key.suffix == _CONFIG_SUFFIX:
        key = key.with_suffix("")
    names = config_names()
    if key.as_posix() not in names:
        raise ConfigError(f"unknown bundled config {name!r} (available: {', '.join(names)})")
    return _folder("configs").joinpath(*key.parts).with_suffix(_CONFIG_SUFFIX)


def resolve_config(arg: str | os.PathLike[str]) -> Path:
    """``--config`` argument -> YAML file: an existing file wins, else a bundled config.

    Raises:
        ConfigError: neither; the message lists the bundled names.
    """
    path = Path(arg)
    if path.is_file():
        return path
    try:
        return bundled_config(str(arg))
    except ConfigError:
        pass
    raise ConfigError(f"config {arg} not found: not a file and not a bundled config "
                      f"(available: {', '.join(config_names())})")


def demo_data(name: str) -> Path:
    """Path of the bundled demo input ``name`` (one of :data:`DEMO_NAMES`), a real
    file-system path (a file or a folder). Cheap: nothing is read or checked here, so
    modules can call it at import time; the loaders report a missing input.

    Raises:
        DataError: ``name`` is not a bundled demo input.
    """
    if name not in DEMO_NAMES:
        raise DataError(f"unknown demo data {name!r} (available: {', '.join(DEMO_NAMES)})")
    return _folder("data") / name
