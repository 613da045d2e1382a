"""NeRF task end to end on a tiny generated scene: train, export, decode, render from
the file, resume after an interruption, the uncompressed baseline, and user errors."""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from wisp_shacira.cli.main import main as cli_main
from wisp_shacira.codec.model_io import read_shac
from wisp_shacira.config import build_config
from wisp_shacira.datasets.rtmv import look_at_c2w
from wisp_shacira.errors import ConfigError, DataError
from wisp_shacira.tasks import nerf
from wisp_shacira.tasks.nerf_config import AppConfig
from wisp_shacira.tasks.nerf_eval import box_poses
from wisp_shacira.train.checkpoint import load_checkpoint
from wisp_shacira.train.rd import RDTrainer

ROOT = Path(__file__).resolve().parents[2]


def _load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    demo = _load_module("make_demo_scene", ROOT / "data" / "make_demo_scene.py")
    return demo.make_demo_scene(tmp_path_factory.mktemp("scene"), size=16, n_train=8, n_val=2,
                                n_test=2, seed=3, supersample=1)


def tiny_config(scene: Path, out: Path, **trainer: object) -> AppConfig:
    """A config that trains in about a second."""
    data = {"output": str(out),
            "grid": {"num_levels": 4, "min_res": 4, "max_res": 32, "log2_table_size": 10,
                     "feature_dim": 2},
            "nef": {"hidden_dim": 16, "geo_feat_dim": 7, "color_hidden_dim": 16,
                    "color_num_layers": 1},
            "tracer": {"num_samples": 16, "chunk_size": 1024},
            "dataset": {"path": str(scene)},
            "trainer": {"iterations": 20, "rays_per_batch": 128, "occupancy_resolution": 8,
                        "occupancy_every": 4, "occupancy_warmup": 8, "val_every": 10,
                        "checkpoint_every": 5, "rate_sample": 512, "lr_mlp": 0.005, **trainer}}
    return build_config(AppConfig, data)


def test_train_export_decode_and_render_from_the_file(scene_dir: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    report = nerf.run(tiny_config(scene_dir, tmp_path / "run"), tmp_path / "run")
    shac = tmp_path / "run" / "scene.shac"
    assert report["bytes"] == shac.stat().st_size
    assert report["decode_matches"] and abs(report["psnr"] - report["psnr_in_memory"]) < 0.01
    assert report["split"] == "test" and len(list((tmp_path / "run" / "renders").glob("*.png"))) == 2
    assert [v["step"] for v in report["validation"]] == [10, 20]
    assert "held-out PSNR (from file)" in nerf.summary(report)
    capsys.readouterr()
    rc = cli_main(["render", str(shac), "--poses", str(scene_dir / "transforms_test.json"),
                   "-o", str(tmp_path / "views")])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    mean = re.search(r"mean \(2 views\)\s+([0-9.]+)", printed)
    assert mean is not None and abs(float(mean.group(1)) - report["psnr"]) < 0.01
    fresh = subprocess.run([sys.executable, "-m", "wisp_shacira.cli.main", "render", str(shac),
                            "--poses", str(scene_dir / "transforms_test.json"),
                            "-o", str(tmp_path / "fresh")], capture_output=True, text=True,
                           timeout=300)
    assert fresh.returncode == 0, fresh.stderr
    for view in sorted((tmp_path / "views").glob("*.png")):
        assert view.read_bytes() == (tmp_path / "fresh" / view.name).read_bytes(), view.name


def _interrupt_at(monkeypatch: pytest.MonkeyPatch, call: int) -> None:
    original, calls = RDTrainer.step, [0]

    def step(self: RDTrainer, distortion):  # noqa: ANN001, ANN202
        calls[0] += 1
        if calls[0] == call:
            raise KeyboardInterrupt
        return original(self, distortion)

    monkeypatch.setattr(RDTrainer, "step", step)


@pytest.mark.parametrize("call, saved", [(13, 10), (23, 20)])
def test_resume_after_interrupt_gives_the_same_state(scene_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     call: int, saved: int) -> None:
    """Step 20 is also an occupancy update (every 4 steps): the update right after a resume
    must see the same quantisation phase as in the uninterrupted run."""
    straight = nerf.run(tiny_config(scene_dir, tmp_path / "a", iterations=30), tmp_path / "a")
    with monkeypatch.context() as patch:
        _interrupt_at(patch, call)
        with pytest.raises(KeyboardInterrupt):
            nerf.run(tiny_config(scene_dir, tmp_path / "b", iterations=30), tmp_path / "b")
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == saved
    cfg = tiny_config(scene_dir, tmp_path / "b", iterations=30)
    cfg.resume = True
    resumed = nerf.run(cfg, tmp_path / "b")
    assert resumed["resumed_from"] == saved
    assert (tmp_path / "a" / "scene.shac").read_bytes() == (tmp_path / "b" / "scene.shac").read_bytes()
    state_a = load_checkpoint(tmp_path / "a" / "checkpoint.pt")
    state_b = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    for key, value in state_a["model"].items():
        assert torch.equal(value, state_b["model"][key]), key
    assert torch.equal(state_a["modules"]["occupancy"]["density"],
                       state_b["modules"]["occupancy"]["density"])
    assert resumed["validation"] == straight["validation"]


def test_resume_needs_a_matching_checkpoint(scene_dir: Path, tmp_path: Path) -> None:
    cfg = tiny_config(scene_dir, tmp_path / "c", iterations=5)
    cfg.resume = True
    with pytest.raises(ConfigError, match="no checkpoint"):
        nerf.run(cfg, tmp_path / "c")
    nerf.run(tiny_config(scene_dir, tmp_path / "c", iterations=5), tmp_path / "c")
    changed = tiny_config(scene_dir, tmp_path / "c", iterations=5, rays_per_batch=64)
    changed.resume = True
    with pytest.raises(ConfigError, match="trainer.rays_per_batch"):
        nerf.run(changed, tmp_path / "c")


def test_uncompressed_baseline_saves_float_weights(scene_dir: Path, tmp_path: Path) -> None:
    cfg = tiny_config(scene_dir, tmp_path / "f", iterations=5)
    cfg.grid.compressed = False
    report = nerf.run(cfg, tmp_path / "f")
    model = tmp_path / "f" / "model.pt"
    assert not (tmp_path / "f" / "scene.shac").exists()
    assert report["bytes"] == model.stat().st_size > report["grid_float_bytes"]
    assert report["decode_matches"]


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="tracer.bg_color"):
        build_config(AppConfig, {"dataset": {"bg_color": [0, 0, 0]}})
    with pytest.raises(ConfigError, match="--output"):
        build_config(AppConfig, {"resume": True})
    with pytest.raises(ConfigError, match="rays_per_batch"):
        build_config(AppConfig, {"trainer": {"batch_size": 5}})


def test_missing_scene_and_missing_image_are_clear_errors(scene_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        nerf.run(tiny_config(tmp_path / "nowhere", tmp_path / "o"), tmp_path / "o")
    broken = tmp_path / "broken"
    broken.mkdir()
    for split in ("train", "val", "test"):
        (broken / f"transforms_{split}.json").write_text(
            (scene_dir / f"transforms_{split}.json").read_text())
    with pytest.raises(DataError, match="r_0.png does not exist"):
        nerf.run(tiny_config(broken, tmp_path / "o"), tmp_path / "o")


def test_encode_reports_user_errors_without_traceback(scene_dir: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "transforms_train.json").write_text("{not json")
    run = cli_main(["encode", "--config", "shacira_nerf", "--dataset.path", str(tmp_path),
                    "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert run == 2 and "malformed JSON" in err and "transforms_train.json" in err
    assert "Traceback" not in err


def _write_rtmv_view(root: Path, idx: int, eye: list[float], size: int = 8) -> None:
    openexr = pytest.importorskip("OpenEXR")
    meta = {"camera_data": {"camera_look_at": {"eye": eye, "at": [0.2, 0.1, 0.0],
                                               "up": [0.0, 0.0, 1.0]},
                            "intrinsics": {"fx": 8.0, "fy": 8.0}, "width": size, "height": size}}
    (root / f"{idx:05d}.json").write_text(json.dumps(meta))
    shade = np.linspace(0.2, 0.8, size * size, dtype=np.float32).reshape(size, size)
    channels = {"R": shade, "G": shade[::-1].copy(), "B": np.full_like(shade, 0.5),
                "A": np.ones_like(shade), "depth.R": np.full_like(shade, 3.0)}
    header = {"compression": openexr.ZIP_COMPRESSION, "type": openexr.scanlineimage}
    openexr.File(header, channels).write(str(root / f"{idx:05d}.exr"))


def test_rtmv_scene_file_maps_raw_poses_into_the_box(tmp_path: Path) -> None:
    root = tmp_path / "rtmv"
    root.mkdir()
    for i in range(6):
        angle = 2 * np.pi * i / 6
        _write_rtmv_view(root, i, [4 * np.cos(angle) + 1.0, 4 * np.sin(angle), 1.0 + 0.2 * i])
    cfg = tiny_config(root, tmp_path / "o", iterations=3, random_bg=False)
    cfg.dataset.format = "rtmv"
    report = nerf.run(cfg, tmp_path / "o")
    assert report["split"] == "test" and report["views"] == 2 and report["decode_matches"]
    meta = read_shac(tmp_path / "o" / "scene.shac", max_lod=0).config
    scene, _, _ = nerf.load_scene(cfg.dataset)
    raw = torch.stack([look_at_c2w(torch.tensor(e, dtype=torch.float64),
                                   torch.tensor([0.2, 0.1, 0.0], dtype=torch.float64),
                                   torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
                       for e in [json.loads((root / f"{n}.json").read_text())["camera_data"]
                                 ["camera_look_at"]["eye"] for n in scene.names]])
    assert torch.allclose(box_poses(raw, meta["scene"]), scene.c2w, atol=1e-5)


def test_progress_bar_shows_validation_only_once_there_is_one(scene_dir: Path,
                                                             tmp_path: Path) -> None:
    from wisp_shacira.tasks.nerf_train import _Loop
    cfg = tiny_config(scene_dir, tmp_path / "o")
    loop = _Loop(cfg, torch.device("cpu"), tmp_path / "o", {"task": "nerf"}, None)
    assert "val" not in loop.postfix() and "occ" in loop.postfix()
    loop.result.history.append({"step": 10, "val_psnr": 21.5})
    assert loop.postfix()["val"] == "21.50"


def test_context_model_round_trip(scene_dir: Path, tmp_path: Path) -> None:
    cfg = tiny_config(scene_dir, tmp_path / "run", val_every=0, checkpoint_every=0)
    cfg.grid.entropy_model = cfg.grid.latent_coder = "context"
    report = nerf.run(cfg, tmp_path / "run")
    shac = tmp_path / "run" / "scene.shac"
    assert shac.read_bytes()[4] == 5 and report["decode_matches"]
    assert read_shac(shac, max_lod=0).context is not None
    assert report["rate"]["entropy_model"] == "context"
