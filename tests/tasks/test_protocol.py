"""Every registered task implements the Task protocol, and its sources render any LOD of
its golden file through the interface the LOD tools and the viewer use."""
from __future__ import annotations

import inspect
import typing
from pathlib import Path

import numpy as np
import pytest

from wisp_shacira.errors import ConfigError, OutputError
from wisp_shacira.lod import open_source, open_stream
from wisp_shacira.tasks import TASKS, get_task
from wisp_shacira.tasks.protocol import LodSource, LodTarget, PlanarSource, SceneSource, Task

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "v3_baf8633"
FILES = {"image": GOLDEN / "image.shac", "video": GOLDEN / "video.shac",
         "nerf": GOLDEN / "scene.shac",
         "wisp_nerf": GOLDEN.parent / "wisp_nerf_v3_43c22df" / "scene.shac"}


def test_every_registered_task_has_a_golden_file() -> None:
    assert set(FILES) == set(TASKS)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_implements_the_protocol(name: str) -> None:
    task = get_task(name)
    assert isinstance(task, Task) and task.name == name and task.description
    hint = typing.get_type_hints(task.config_type)["task"]
    assert typing.get_args(hint) == (name,) and task.config_type().task == name
    with pytest.raises(OutputError):
        task.decode_output(Path("x.shac"), Path("out.jpg"))
    takes_parallel = "parallel" in inspect.signature(task.run).parameters
    assert task.data_parallel == takes_parallel == (name != "wisp_nerf")


@pytest.mark.parametrize("name", sorted(TASKS))
def test_source_renders_every_lod_through_the_interface(name: str, tmp_path: Path) -> None:
    stream = open_stream(FILES[name])
    source = open_source(stream)
    assert isinstance(source, LodSource) and source.num_levels == stream.num_levels
    assert isinstance(source, SceneSource if source.view == "scene" else PlanarSource)
    target = get_task(name).lod_target(stream.model, stream.name, None, None, None)
    assert isinstance(target, LodTarget) and target.reference is None
    renders = [target.render(stream.model, lod) for lod in (1, stream.available)]
    assert renders[0].shape == renders[1].shape and not np.array_equal(*renders)
    out = get_task(name).decode_output(FILES[name], tmp_path / "frames")
    assert source.write(1, out).exists()


def test_unknown_task_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="image, video, nerf"):
        get_task("audio")
