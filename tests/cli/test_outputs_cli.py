"""Outputs of ``wisp-shacira`` in process: wrong suffixes refused before any work,
``--max-lod`` ranges, ``--force`` for read-only outputs, unwritable ``-o`` and
``--max-memory``, each a one-line error (exit 2)."""
from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pytest
import torch

from wisp_shacira.cli.main import main
from wisp_shacira.codec.limits import ENV_MAX_MEMORY, parse_size
from wisp_shacira.codec.model_io import write_shac
from wisp_shacira.fields.video import VideoField, VideoNefConfig
from wisp_shacira.grid.shacira_grid import GridConfig
from wisp_shacira.outputs import file_mode, folder_mode


@pytest.fixture
def image_shac(random_image_shac, tmp_path: Path) -> Path:
    """A 12x16 RGB image file with 4 levels."""
    return random_image_shac(tmp_path / "img.shac", 12, 16)


@pytest.fixture(scope="module")
def video_shac(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-frame 8x8 video file with 3 levels (untrained field)."""
    torch.manual_seed(0)
    grid = GridConfig(num_levels=3, min_res=2, max_res=8, log2_table_size=8)
    nef = VideoNefConfig(hidden_dim=8)
    field = VideoField(grid, nef).eval()
    field.round_weights()
    config = {"task": "video", "grid": dataclasses.asdict(grid), "nef": dataclasses.asdict(nef),
              "video": {"name": "v", "num_frames": 3, "height": 8, "width": 8, "fps": 10.0}}
    path = tmp_path_factory.mktemp("video") / "v.shac"
    write_shac(path, field.to_shac_model(config))
    return path


def _fail(*args: object, **kwargs: object) -> None:
    raise AssertionError("work started before the output was checked")


def _one_error(capsys: pytest.CaptureFixture, *needles: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert all(needle in err for needle in needles), err
    return err


def _read_only(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"old")
    path.chmod(0o444)
    return path


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_wrong_suffix_is_refused_before_any_work(image_shac: Path, video_shac: Path, exported,
                                                 scene_dir: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture) -> None:
    for target in ("wisp_shacira.tasks.image.decode_field",
                   "wisp_shacira.tasks.video.decode_frames",
                   "wisp_shacira.tasks.nerf.load_any_model", "wisp_shacira.lod.open_stream",
                   "wisp_shacira.cli.render.load_any_model", "wisp_shacira.lod_report.analyse"):
        monkeypatch.setattr(target, _fail)
    scene, poses = str(exported[0]), str(scene_dir / "transforms_test.json")
    cases = [
        (["decode", str(image_shac), "-o", str(tmp_path / "out.jpg")], "must end in .png"),
        (["decode", str(image_shac), "-o", str(tmp_path / "o.mp4"), "--partial"], "end in .png"),
        (["decode", str(video_shac), "-o", str(tmp_path / "out.png")], "must end in .mp4"),
        (["decode", str(video_shac), "-o", str(tmp_path / "o.shac"), "--partial"], "end in .mp4"),
        (["decode", scene, "-o", str(tmp_path / "turntable.png")], "must end in .mp4"),
        (["render", scene, "--poses", poses, "-o", str(tmp_path / "views.png")], "is a folder"),
        (["lod", str(image_shac), "-o", str(tmp_path / "lod.mp4")], "is a folder"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        _one_error(capsys, message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.shac"]


def test_decode_writes_video_file_and_frames_with_the_usual_permissions(
        video_shac: Path, image_shac: Path, tmp_path: Path) -> None:
    assert main(["decode", str(video_shac), "-o", str(tmp_path / "v.mp4")]) == 0
    assert main(["decode", str(video_shac), "-o", str(tmp_path / "frames")]) == 0
    assert main(["decode", str(image_shac), "-o", str(tmp_path / "pngs")]) == 0
    assert _mode(tmp_path / "v.mp4") == file_mode() == _mode(tmp_path / "pngs" / "img.png")
    assert _mode(tmp_path / "frames") == folder_mode()
    assert {_mode(p) for p in (tmp_path / "frames").iterdir()} == {file_mode()}
    assert len(list((tmp_path / "frames").iterdir())) == 3


def test_max_lod_out_of_range_names_the_valid_range(image_shac: Path, exported, scene_dir: Path,
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture) -> None:
    out = str(tmp_path / "d.png")
    for extra in ([], ["--partial"]):
        for lod in ("0", "5", "-1"):
            assert main(["decode", str(image_shac), "-o", out, "--max-lod", lod, *extra]) == 2
            err = _one_error(capsys, f"--max-lod {lod} is out of range 1..4")
            assert "None" not in err
    assert main(["decode", str(image_shac), "-o", out, "--max-lod", "4"]) == 0
    monkeypatch.setattr("wisp_shacira.cli.render.load_any_model", _fail)
    poses = str(scene_dir / "transforms_test.json")
    for lod in ("0", "9"):
        assert main(["render", str(exported[0]), "--poses", poses, "-o", str(tmp_path / "r"),
                     "--max-lod", lod]) == 2
        _one_error(capsys, "out of range 1..3")


def test_read_only_outputs_need_force(image_shac: Path, video_shac: Path, exported,
                                      scene_dir: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture) -> None:
    png, mp4 = _read_only(tmp_path / "d.png"), _read_only(tmp_path / "v.mp4")
    lod_json = _read_only(tmp_path / "lod" / "lod.json")
    view = _read_only(tmp_path / "views" / "r_0.png")
    poses = str(scene_dir / "transforms_test.json")
    commands = [
        ["decode", str(image_shac), "-o", str(png)],
        ["decode", str(video_shac), "-o", str(mp4)],
        ["lod", str(image_shac), "-o", str(tmp_path / "lod")],
        ["render", str(exported[0]), "--poses", poses, "-o", str(tmp_path / "views")],
    ]
    with monkeypatch.context() as patch:
        for target in ("wisp_shacira.tasks.image.decode_field",
                       "wisp_shacira.tasks.video.decode_frames",
                       "wisp_shacira.lod_report.analyse", "wisp_shacira.cli.render.render_views"):
            patch.setattr(target, _fail)
        for argv in commands:
            assert main(argv) == 2, argv
            _one_error(capsys, "read-only", "--force")
    assert all(p.read_bytes() == b"old" for p in (png, mp4, lod_json, view))
    for argv in commands:
        assert main(argv + ["--force"]) == 0, argv
    for path in (png, mp4, lod_json, view):
        assert path.read_bytes() != b"old" and _mode(path) == file_mode()


def test_unwritable_output_is_one_line(image_shac: Path, video_shac: Path, exported,
                                       scene_dir: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_bytes(b"")
    poses = str(scene_dir / "transforms_test.json")
    commands = [
        ["decode", str(image_shac), "-o", "/proc/wisp_shacira_test.png"],
        ["decode", str(image_shac), "-o", str(blocker / "d.png")],
        ["decode", str(video_shac), "-o", "/proc/self/nothing/v.mp4"],
        ["decode", str(video_shac), "-o", str(blocker / "sub" / "frames")],
        ["render", str(exported[0]), "--poses", poses, "-o", "/proc/wisp_shacira_views"],
        ["lod", str(image_shac), "-o", str(blocker / "lod")],
    ]
    for argv in commands:
        assert main(argv) == 2, argv
        _one_error(capsys, "cannot")


@pytest.mark.parametrize("text, expected", [
    ("512M", 512 << 20), ("8G", 8 << 30), ("1.5GiB", 3 << 29), ("1000", 1000), ("2kb", 2000),
])
def test_max_memory_parses_sizes(text: str, expected: int) -> None:
    assert parse_size(text) == expected


def test_max_memory_applies_to_its_command_only(image_shac: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv(ENV_MAX_MEMORY, "1")
    out = str(tmp_path / "d.png")
    assert main(["decode", str(image_shac), "-o", out, "--max-memory", "2kb"]) == 2
    _one_error(capsys, "above the limit of 2.0 KiB")
    assert main(["decode", str(image_shac), "-o", out, "--max-memory", "1G"]) == 0
    assert os.environ[ENV_MAX_MEMORY] == "1"


@pytest.mark.parametrize("command", ["info", "decode", "render", "lod"])
def test_bad_max_memory_is_one_line(image_shac: Path, tmp_path: Path, command: str,
                                    monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv(ENV_MAX_MEMORY, "1")
    extra = {"decode": ["-o", str(tmp_path / "d.png")], "lod": [],
             "render": ["--poses", "p.json", "-o", str(tmp_path / "r")], "info": []}[command]
    for bad in ("lots", "0", "12 parsecs", ""):
        assert main([command, str(image_shac), *extra, "--max-memory", bad]) == 2
        _one_error(capsys, "--max-memory")
    assert os.environ[ENV_MAX_MEMORY] == "1"
