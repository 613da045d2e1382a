"""The signals a batch finds at a path, per task: one job each.

``wisp-shacira batch --inputs PATH`` turns every path into the inputs of the config's task:
a folder of images into its images, a folder of videos into its videos (a frame folder
stays one video), a folder of scenes into its scenes (a scene folder stays one scene).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from wisp_shacira.datasets.image import list_images
from wisp_shacira.errors import ConfigError, DataError

VIDEO_FILE_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg")
"""Files a folder of videos holds (any other folder is a folder of frames)."""


def _existing(path: Path) -> Path:
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    return path


def video_inputs(path: Path) -> list[Path]:
    """A video file; the videos in a folder; or the folder itself (a folder of frames)."""
    path = _existing(path)
    if path.is_dir():
        videos = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_FILE_SUFFIXES)
        return videos or [path]
    return [path]


def _is_scene(folder: Path) -> bool:
    """A scene folder holds its camera files (NeRF-synthetic ``transforms_*.json``, RTMV
    ``00000.json`` ...) directly."""
    return any(p.suffix == ".json" for p in folder.iterdir() if p.is_file())


def scene_inputs(path: Path) -> list[Path]:
    """A scene folder itself, or the scene folders inside a folder."""
    path = _existing(path)
    if not path.is_dir():
        raise DataError(f"{path}: a scene is a folder (with transforms_*.json or RTMV .json files)")
    if _is_scene(path):
        return [path]
    scenes = sorted(p for p in path.iterdir() if p.is_dir() and _is_scene(p))
    if not scenes:
        raise DataError(f"{path}: neither a scene folder nor a folder of scene folders")
    return scenes


INPUTS: dict[str, Callable[[Path], list[Path]]] = {
    "image": list_images,
    "video": video_inputs,
    "nerf": scene_inputs,
}


def batch_inputs(task: str, paths: list[Path]) -> list[Path]:
    """Every input of ``task`` at ``paths`` (in order, no repeats).

    Raises:
        DataError: a path that does not exist or holds nothing for the task.
        ConfigError: a task whose files are not made by ``encode`` (``wisp_nerf``).
    """
    if task not in INPUTS:
        raise ConfigError(f"the {task} task is not trained by wisp-shacira encode, so it cannot "
                          f"run as a batch")
    found: dict[Path, Path] = {}
    for path in paths:
        for item in INPUTS[task](Path(path)):
            found.setdefault(item.resolve(), item)
    return list(found.values())
