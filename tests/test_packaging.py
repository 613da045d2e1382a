"""Packaging: bundled resources, the wheel's contents, optional extras.

The wheel test builds a real wheel (``pip wheel --no-deps --no-build-isolation``, about a
second, no network) from a copy of the packaging inputs and lists it; ``.ci/wheel_smoke.sh``
installs one into a fresh virtual environment and runs the CLI from outside the repository.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from wisp_shacira import resources
from wisp_shacira.errors import ConfigError, DataError, MissingExtraError, ShaciraError
from wisp_shacira.extras import require

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "v3_baf8633"
OPTIONAL = ("skimage", "matplotlib", "av", "viser", "numba", "OpenEXR", "tensorboard")
"""Top-level modules of the extras; none may be needed by the core paths."""


def _block(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make ``names`` (and their already imported submodules) unimportable in-process."""
    for name in names:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            monkeypatch.setitem(sys.modules, key, None)
        monkeypatch.setitem(sys.modules, name, None)


# ----------------------------------------------------------------------------- resources

def test_config_names_list_every_bundled_yaml() -> None:
    names = resources.config_names()
    on_disk = sorted(p.relative_to(ROOT / "configs").with_suffix("").as_posix()
                     for p in (ROOT / "configs").rglob("*.yaml"))
    assert names == on_disk
    assert {"shacira_image", "shacira_video", "shacira_nerf", "wisp/shacira_nerf"} <= set(names)


@pytest.mark.parametrize("name", ["shacira_nerf", "shacira_nerf.yaml", "configs/shacira_nerf.yaml"])
def test_bundled_config_accepts_a_name_with_or_without_suffix(name: str) -> None:
    path = resources.bundled_config(name)
    assert path.is_file() and path.name == "shacira_nerf.yaml" and path.parent.name != "wisp"
    assert path.read_bytes() == (ROOT / "configs" / "shacira_nerf.yaml").read_bytes()


def test_bundled_config_in_a_subfolder() -> None:
    path = resources.bundled_config("wisp/shacira_nerf.yaml")
    assert path.read_bytes() == (ROOT / "configs" / "wisp" / "shacira_nerf.yaml").read_bytes()
    assert resources.bundled_config("wisp/shacira_nerf") == path


@pytest.mark.parametrize("name", ["nope", "shacira", "wisp", "../pyproject", "configs"])
def test_unknown_bundled_config_lists_the_names(name: str) -> None:
    with pytest.raises(ConfigError, match=r"unknown bundled config .*available: .*shacira_image"):
        resources.bundled_config(name)


def test_resolve_config_prefers_an_existing_file(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("shacira_image").write_text("task: image\n")     # a file named like a bundled config
    assert resources.resolve_config("shacira_image") == Path("shacira_image")
    own = tmp_path / "mine.yaml"
    own.write_text("task: image\n")
    assert resources.resolve_config(own) == own
    assert resources.resolve_config("shacira_video") == resources.bundled_config("shacira_video")
    # the README's relative path works from any folder: not a file here, so bundled
    assert (resources.resolve_config("configs/shacira_video.yaml")
            == resources.bundled_config("shacira_video"))


def test_resolve_config_error_names_the_argument_and_the_choices(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError) as info:
        resources.resolve_config(missing)
    message = str(info.value)
    assert message.startswith(f"config {missing} not found: not a file and not a bundled config "
                              f"(available: ")
    assert "shacira_image" in message and "wisp/shacira_nerf" in message and "\n" not in message
    with pytest.raises(ConfigError, match="not a file and not a bundled config"):
        resources.resolve_config(tmp_path)                # a folder is not a config file


def test_demo_data_are_real_paths() -> None:
    image, video, scene = (resources.demo_data(n) for n in resources.DEMO_NAMES)
    assert image.is_file() and image.suffix == ".png"
    assert video.is_dir() and len(list(video.glob("*.png"))) >= 2
    assert (scene / "transforms_train.json").is_file()
    with pytest.raises(DataError, match="unknown demo data 'nope' .*demo_image.png"):
        resources.demo_data("nope")


def test_task_demo_constants_use_the_bundled_data() -> None:
    from wisp_shacira.tasks import image, nerf, video
    assert image.DEMO_IMAGE == resources.demo_data("demo_image.png")
    assert video.DEMO_VIDEO == resources.demo_data("demo_video")
    assert nerf.DEMO_SCENE == resources.demo_data("demo_scene")


def test_resources_come_through_importlib_when_installed() -> None:
    """In an install (editable or not) the folders are the packages of the distribution."""
    try:
        module = importlib.import_module("wisp_shacira.bundled.data")
    except ModuleNotFoundError:
        pytest.skip("wisp-shacira is not installed (pip install -e .); resources fall back "
                    "to the source folders")
    data = Path(module.__file__).parent
    assert resources.demo_data("demo_image.png") == data / "demo_image.png"
    configs = Path(importlib.import_module("wisp_shacira.bundled.configs").__file__).parent
    assert resources.bundled_config("shacira_image") == configs / "shacira_image.yaml"


# ----------------------------------------------------------------------------- the wheel

def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_package_list_holds_every_package() -> None:
    """The packages are listed (the mapped data packages cannot be found); a new
    subpackage must be added to pyproject.toml."""
    from setuptools import find_packages
    tool = _pyproject()["tool"]["setuptools"]
    found = set(find_packages(str(ROOT), include=["wisp_shacira", "wisp_shacira.*"]))
    assert set(tool["packages"]) == found | {"wisp_shacira.bundled.data",
                                             "wisp_shacira.bundled.configs"}
    assert tool["package-dir"] == {"wisp_shacira.bundled.data": "data",
                                   "wisp_shacira.bundled.configs": "configs"}


def test_extras_and_core() -> None:
    project = _pyproject()["project"]
    core = {re.split(r"[<>=!~ ;\[]", r)[0] for r in project["dependencies"]}
    assert core == {"torch", "numpy", "constriction", "PyYAML", "tqdm", "pypng", "imageio",
                    "Pillow", "tifffile"}
    assert "torch>=2.1,<2.15" in project["dependencies"]
    assert "constriction>=0.5,<0.6" in project["dependencies"]
    extras = project["optional-dependencies"]
    assert {"video", "plots", "metrics", "viewer", "fast", "exr", "tensorboard", "ray", "bench",
            "fuzz", "test", "all"} <= set(extras)
    (everything,) = extras["all"]
    assert everything.startswith("wisp-shacira[") and everything.endswith("]")
    assert set(everything[len("wisp-shacira["):-1].split(",")) == {
        "video", "plots", "metrics", "viewer", "fast", "exr", "tensorboard", "ray"}
    assert project["scripts"] == {"wisp-shacira": "wisp_shacira.cli.main:main"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 69:
        pytest.skip(f"building the wheel needs setuptools >= 69, found {setuptools.__version__}")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("wisp_shacira", "data", "configs", "tests"):   # tests: must stay out
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                             "--no-build-isolation", str(src), "-w", str(tmp / "dist")],
                            capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        text = result.stdout + result.stderr
        if any(s in text for s in ("Could not find a version", "NewConnectionError",
                                   "No matching distribution", "Network is unreachable")):
            pytest.skip(f"building the wheel needed the network: {text.strip()[-300:]}")
        pytest.fail(f"pip wheel failed ({result.returncode}):\n{text}")
    (path,) = (tmp / "dist").glob("wisp_shacira-*.whl")
    return path


def test_wheel_ships_demo_data_and_configs_and_no_tests(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, package in (("data", "wisp_shacira/bundled/data"),
                            ("configs", "wisp_shacira/bundled/configs")):
        files = [p for p in (ROOT / folder).rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts]
        missing = [str(p) for p in files
                   if f"{package}/{p.relative_to(ROOT / folder).as_posix()}" not in names]
        assert not missing, f"not in the wheel: {missing}"
    assert "wisp_shacira/bundled/data/demo_video/frame_00000.png" in names
    assert "wisp_shacira/bundled/configs/wisp/shacira_nerf.yaml" in names
    assert "wisp_shacira/resources.py" in names and "wisp_shacira/extras.py" in names
    tops = {n.split("/")[0] for n in names}
    assert tops == {"wisp_shacira", wheel.name.split("-py3")[0] + ".dist-info"}, tops
    assert not [n for n in names if "/tests/" in n or n.startswith("tests/") or "conftest" in n]
    assert not [n for n in names if n.endswith(".pyc") or "__pycache__" in n]


def test_wheel_metadata(wheel: Path) -> None:
    import wisp_shacira
    with zipfile.ZipFile(wheel) as z:
        info = wheel.name.split("-py3")[0] + ".dist-info"
        metadata = z.read(f"{info}/METADATA").decode()
        entry_points = z.read(f"{info}/entry_points.txt").decode()
    assert f"Version: {wisp_shacira.__version__}\n" in metadata
    assert "wisp-shacira = wisp_shacira.cli.main:main" in entry_points
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    core = [r for r in requires if "extra ==" not in r]
    assert any(r.startswith("Requires-Dist: torch") for r in core)
    for heavy in ("av", "matplotlib", "scikit-image", "viser", "numba"):
        assert not [r for r in core if r.split()[1].startswith(heavy)], (heavy, core)
        assert [r for r in requires if r.split()[1].startswith(heavy) and "extra ==" in r]


# ----------------------------------------------------------------------------- extras

@pytest.mark.parametrize("module, extra", [("matplotlib", "plots"), ("skimage.metrics", "metrics"),
                                           ("av", "video"), ("viser", "viewer")])
def test_require_names_the_extra(monkeypatch: pytest.MonkeyPatch, module: str, extra: str) -> None:
    _block(monkeypatch, module.split(".")[0])
    with pytest.raises(MissingExtraError) as info:
        require(module, extra, "the frobnicator")
    message = str(info.value)
    assert message.startswith("the frobnicator needs the optional package")
    assert message.endswith(f"pip install 'wisp-shacira[{extra}]'") and "\n" not in message
    assert isinstance(info.value, ShaciraError) and isinstance(info.value, ImportError)


def test_require_returns_the_module() -> None:
    assert require("json", "none", "x") is json


def test_core_imports_load_no_extra() -> None:
    """The CLI and every task import without touching an optional package."""
    code = ("import sys; import wisp_shacira.cli.main, wisp_shacira.tasks.image, "
            "wisp_shacira.tasks.video, wisp_shacira.tasks.nerf, wisp_shacira.lod_report, "
            "wisp_shacira.metrics, wisp_shacira.datasets.video, wisp_shacira.datasets.rtmv; "
            f"print([m for m in {OPTIONAL!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"


def test_decoding_works_without_the_extras(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from wisp_shacira.cli.main import main
    from wisp_shacira.datasets.image import load_image
    _block(monkeypatch, "skimage", "matplotlib", "av", "viser")
    assert main(["decode", str(GOLDEN / "image.shac"), "-o", str(tmp_path / "x.png")]) == 0
    assert load_image(tmp_path / "x.png").pixels.ndim == 3
    assert main(["info", str(GOLDEN / "image.shac")]) == 0
    assert main(["decode", str(GOLDEN / "video.shac"), "-o", str(tmp_path / "frames")]) == 0
    assert len(list((tmp_path / "frames").glob("frame_*.png"))) >= 2
    capsys.readouterr()
    # an MP4 needs the extra "video": refused before decoding, one line, exit 2
    assert main(["decode", str(GOLDEN / "video.shac"), "-o", str(tmp_path / "v.mp4")]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'wisp-shacira[video]'" in err and "\n" not in err
    assert not (tmp_path / "v.mp4").exists()


def test_image_run_reports_ssim_as_missing_without_scikit_image(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from wisp_shacira import metrics
    from wisp_shacira.config import load_config
    from wisp_shacira.tasks import get_task
    _block(monkeypatch, "skimage")
    monkeypatch.setattr(metrics, "_ssim_warned", False)
    task = get_task("image")
    cfg = load_config(task.config_type, resources.bundled_config("shacira_image"),
                      ["--trainer.iterations", "3", "--grid.num_levels", "4",
                       "--grid.max_res", "32"])
    with caplog.at_level(logging.WARNING, logger="wisp_shacira"):
        report = task.run(cfg, tmp_path / "out")
        assert metrics.ssim(np.zeros((8, 8)), np.zeros((8, 8))) is None   # warned once only
    warnings = [r for r in caplog.records if "SSIM" in r.getMessage()]
    assert len(warnings) == 1 and "pip install 'wisp-shacira[metrics]'" in warnings[0].getMessage()
    assert report["images"][0]["ssim"] is None and report["mean"]["ssim"] is None
    assert report["images"][0]["psnr"] > 0
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert written["mean"]["ssim"] is None
    assert "n/a" in task.summary(report)
    assert metrics.format_metric(None) == "n/a" and metrics.mean_metric([1.0, None]) is None


def test_video_output_without_pyav_is_a_frame_folder(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    from wisp_shacira.datasets import video
    monkeypatch.setattr(video, "_mp4_warned", False)
    if importlib.util.find_spec("av") is not None:
        assert video.decoded_clip_path(tmp_path, "clip") == tmp_path / "clip.mp4"
    _block(monkeypatch, "av")
    assert video.decoded_clip_path(tmp_path, "clip") == tmp_path / "clip_frames"
    frames = video.load_video(resources.demo_data("demo_video"))      # folders need no PyAV
    assert frames.ndim == 4 and frames.dtype == np.uint8
    (tmp_path / "clip.mp4").write_bytes(b"not read")
    with pytest.raises(MissingExtraError, match=r"wisp-shacira\[video\]"):
        video.load_video(tmp_path / "clip.mp4")
