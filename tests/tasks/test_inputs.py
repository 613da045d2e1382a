"""What a batch finds at a path, per task."""
from __future__ import annotations

from pathlib import Path

import pytest

from wisp_shacira.errors import ConfigError, DataError
from wisp_shacira.tasks import TASKS
from wisp_shacira.tasks.inputs import INPUTS, batch_inputs


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_every_encodable_task_lists_inputs() -> None:
    assert set(INPUTS) == set(TASKS) - {"wisp_nerf"}
    with pytest.raises(ConfigError, match="wisp_nerf task is not trained by wisp-shacira encode"):
        batch_inputs("wisp_nerf", [Path(".")])


def test_videos_frame_folders_and_scenes(tmp_path: Path) -> None:
    videos = [_touch(tmp_path / "clips" / name) for name in ("b.mp4", "a.MOV")]
    _touch(tmp_path / "clips" / "notes.txt")
    assert batch_inputs("video", [tmp_path / "clips"]) == sorted(videos)
    frames = tmp_path / "frames"
    _touch(frames / "0001.png")
    assert batch_inputs("video", [frames, videos[0]]) == [frames, videos[0]]
    scenes = [tmp_path / "scenes" / name for name in ("lego", "ship")]
    for scene in scenes:
        _touch(scene / "transforms_train.json")
    _touch(tmp_path / "scenes" / "readme" / "x.txt")
    assert batch_inputs("nerf", [tmp_path / "scenes"]) == scenes
    assert batch_inputs("nerf", [scenes[1], tmp_path / "scenes"]) == [scenes[1], scenes[0]]
    with pytest.raises(DataError, match="neither a scene folder"):
        batch_inputs("nerf", [tmp_path / "frames"])
    with pytest.raises(DataError, match="no such file"):
        batch_inputs("video", [tmp_path / "missing.mp4"])
