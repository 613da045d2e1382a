"""The Kaolin-Wisp adapter against the test double of Wisp (``tests/wisp/double``): the
app YAML parsed by the real tyro + hydra-zen, a Wisp-style training run through the
real trainer lifecycle (warm-up, AMP scaler, ``MultiStepLR``, pruning, rate term), the
export, and the file rendered without Wisp (in process and by ``wisp-shacira render``)
matching the adapter's own model. The last tests need the real Kaolin-Wisp and CUDA.
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from wisp_shacira.codec.model_io import read_shac
from wisp_shacira.errors import BitstreamError, ConfigError
from wisp_shacira.resources import demo_data

ROOT = Path(__file__).resolve().parents[2]
YAML = ROOT / "configs" / "wisp" / "shacira_nerf.yaml"
SMALL = ["--grid.num-lods=4", "--grid.codebook-bitwidth=10", "--grid.min-grid-res=4",
         "--grid.max-grid-res=16", "--grid.latent-init=0.6", "--grid.prior-init-scale=4.0",
         "--nef.hidden-dim=16", "--blas.level=3", "--tracer.num-steps=32",
         "--dataset-transform.num-samples=64", "--trainer.max-epochs=2",
         "--trainer.prune-every=5", "--trainer.target-sample-size=2048",
         "--trainer.enable-amp=False", "--trainer.valid-every=-1", "--device=cpu",
         "--interactive=False", "--trainer.lambda-start=0.01", "--trainer.lambda-end=0.001"]


def parse(double, monkeypatch, tmp_path: Path, *extra: str):
    """The app config of the shipped YAML on the demo scene, made small."""
    argv = ["main_wisp.py", "--config", str(YAML), f"--dataset.dataset-path={demo_data('demo_scene')}",
            f"--tracker.log-dir={tmp_path / 'logs'}", *SMALL, *extra]
    monkeypatch.setattr(sys, "argv", argv)
    from wisp.config import parse_config
    return parse_config(double.app.ShaciraNeRFAppConfig, yaml_arg="--config")


def build(double, cfg):
    """Datasets, pipeline, tracker and trainer as ``app_support.run`` builds them."""
    from wisp.framework import WispState
    from wisp.trainers.tracker import Tracker
    app = double.app
    transform = app.instantiate_checked(cfg.dataset_transform)
    train = app.instantiate_checked(cfg.dataset, transform=transform)
    torch.manual_seed(0)
    pipeline = app.build_pipeline(cfg, train)
    tracker = Tracker(cfg=cfg.tracker, exp_name=cfg.trainer.exp_name, log_fname="run")
    tracker.save_app_config(cfg)
    return double.trainer.ShaciraMultiviewTrainer(
        cfg=cfg.trainer, pipeline=pipeline, train_dataset=train, validation_dataset=None,
        tracker=tracker, device=torch.device("cpu"), scene_state=WispState())


@pytest.fixture
def trained(double, monkeypatch, tmp_path):
    """A short Wisp-style training run and its exported file."""
    cfg = parse(double, monkeypatch, tmp_path)
    trainer = build(double, cfg)
    grid = trainer.pipeline.nef.grid
    before = grid.core.latents.detach().clone()
    prunes = []
    original_prune = trainer.pipeline.nef.prune
    trainer.pipeline.nef.prune = lambda: prunes.append(trainer.total_iterations) or original_prune()
    trainer.train()
    return trainer, before, prunes, Path(trainer.tracker.log_dir) / "model.shac"


def test_yaml_parses_into_the_adapter_configs(double, monkeypatch, tmp_path):
    cfg = parse(double, monkeypatch, tmp_path)
    assert type(cfg.grid).__name__ == "ConfigShaciraGridFromGeometric"
    assert cfg.grid.num_lods == 4 and cfg.trainer.lr_latents == 0.02
    assert type(cfg.trainer.optimizer).__name__ == "ConfigAdam"
    assert cfg.trainer.optimizer.weight_decay == 1e-6 and cfg.trainer.scheduler is True


def test_training_through_the_wisp_lifecycle(trained):
    trainer, before, prunes, path = trained
    grid = trainer.pipeline.nef.grid
    assert trainer.rate_term is not None and trainer.rate_term.last_bits > 0
    assert not torch.equal(before, grid.core.latents)
    assert prunes and all(step % 5 == 0 for step in prunes)
    assert trainer.pipeline.tracer.lods and set(trainer.pipeline.tracer.lods) == {None}
    assert trainer.tracker.torn_down and path.is_file()
    groups = {g.get("name"): g for g in trainer.optimizer.param_groups}
    for name in ("shacira_latents", "shacira_decoder", "shacira_prior"):
        assert groups[name]["weight_decay"] == 0.0
        assert groups[name]["lr"] == groups[name]["initial_lr"]      # never decayed
    decoder_group = trainer.optimizer.param_groups[0]
    assert decoder_group["weight_decay"] == 1e-6
    assert len(trainer.optimizer.param_groups[1]["params"]) == 0     # the grid group is empty


def test_scheduler_decays_wisp_groups_like_multisteplr_only(double, monkeypatch, tmp_path):
    cfg = parse(double, monkeypatch, tmp_path)
    trainer = build(double, cfg)
    reference = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    total = len(trainer.train_dataset) * cfg.trainer.max_epochs
    multistep = torch.optim.lr_scheduler.MultiStepLR(
        reference, [total * m for m in cfg.trainer.scheduler_milestones], cfg.trainer.scheduler_gamma)
    wisp_lr = trainer.optimizer.param_groups[0]["lr"]
    for _ in range(total):
        trainer.optimizer.step()
        trainer.scheduler.step()
        reference.step()
        multistep.step()
        groups = trainer.optimizer.param_groups
        assert groups[0]["lr"] == pytest.approx(wisp_lr * reference.param_groups[0]["lr"])
        assert groups[-1]["lr"] == groups[-1]["initial_lr"]
    assert reference.param_groups[0]["lr"] < 0.1


def test_clean_export_config(trained):
    model = read_shac(trained[3])
    config = model.config

    def keys(node):
        if isinstance(node, dict):
            for key, value in node.items():
                yield key
                yield from keys(value)
        elif isinstance(node, list):
            for value in node:
                yield from keys(value)

    assert not [k for k in keys(config) if k.startswith("_")]
    app = config["wisp"]["app"]
    assert app["grid"]["constructor"] == "ShaciraGrid.from_geometric"
    assert app["nef"]["hidden_dim"] == 16 and app["trainer"]["optimizer"]["constructor"] == "Adam"
    assert config["nef"]["view_embedder"] == "positional" and config["wisp"]["format"] == 2
    assert config["scene"]["name"] == "demo_scene" and config["tracer"]["num_samples"] == 32


class WispQuery:
    """The adapter's in-memory Wisp nef as the project tracer's field (``lod`` = levels)."""

    def __init__(self, nef, lod):
        self.nef, self.lod_idx = nef, None if lod is None else lod - 1

    def __call__(self, points, dirs):
        out = self.nef.rgba(points, dirs, self.lod_idx)
        return out["density"][:, 0], out["rgb"]

    def density(self, points):
        return self(points, torch.zeros_like(points))[0]


def adapter_render(trainer, meta, lod, c2w, intr, height, width):
    """What the adapter's model renders with this package's tracer and occupancy rebuild."""
    from wisp_shacira.tasks import nerf_eval
    nef = trainer.pipeline.nef.eval()
    query = WispQuery(nef, lod)
    holder = torch.nn.Module()
    holder.p = torch.nn.Parameter(torch.zeros(1))
    holder.query = lambda lod_: query
    occ = meta["occupancy"]
    occupancy = nerf_eval.rebuild_occupancy(holder, occ["resolution"], occ["subsamples"],
                                            occ["threshold"], lod)
    from wisp_shacira.render.tracer import Tracer, TracerConfig
    from wisp_shacira.config import build_config
    model = nerf_eval.SceneModel(holder, Tracer(build_config(TracerConfig, meta["tracer"])),
                                 occupancy, meta, lod)
    return nerf_eval.render_views(model, c2w, intr, height, width)


@pytest.mark.parametrize("lod", [None, 2])
def test_rebuilt_field_matches_the_adapter(trained, lod):
    from wisp_shacira.tasks.nerf_eval import scene_field
    trainer, _, _, path = trained
    field, _ = scene_field(read_shac(path), str(path))
    nef = trainer.pipeline.nef.eval()
    points = torch.rand(300, 3) * 2 - 1
    dirs = torch.nn.functional.normalize(torch.randn(300, 3), dim=-1)
    want = nef.rgba(points, dirs, None if lod is None else lod - 1)
    with torch.no_grad():
        sigma, rgb = field.query(lod)(points, dirs)
    assert torch.equal(rgb, want["rgb"]) and torch.equal(sigma, want["density"][:, 0])


def test_wisp_shacira_render_matches_the_adapter(trained, tmp_path):
    trainer, _, _, path = trained
    meta = read_shac(path).config
    poses_file = demo_data("demo_scene") / "transforms_test.json"
    from wisp_shacira.tasks.nerf_poses import read_poses
    poses = read_poses(poses_file, meta)
    keep = [0, 1]
    with torch.no_grad():
        want = adapter_render(trainer, meta, None, poses.c2w[keep], poses.intrinsics[keep],
                              poses.height, poses.width)
    out = tmp_path / "renders"
    subset = tmp_path / "poses.json"
    doc = json.loads(poses_file.read_text())
    doc["frames"] = doc["frames"][:2]
    for frame in doc["frames"]:
        frame["file_path"] = str((poses_file.parent / frame["file_path"]).resolve())
    subset.write_text(json.dumps(doc))
    result = subprocess.run([sys.executable, "-m", "wisp_shacira.cli.main", "render", str(path),
                             "--poses", str(subset), "-o", str(out), "--device", "cpu"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    from PIL import Image
    got = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(out.glob("*.png"))])
    assert got.shape == want.shape and np.array_equal(got, want)


def test_lod_view_and_decode_sources(trained, tmp_path):
    from wisp_shacira.lod import open_source, open_stream
    from wisp_shacira.tasks import get_task
    path = trained[3]
    stream = open_stream(path)
    source = open_source(stream)
    assert source.view == "scene" and source.num_levels == 4
    c2w, intr = source.default_view()
    views = [source.render(lod, c2w, intr, 16, 16) for lod in (1, 4)]
    assert views[0].shape == (1, 16, 16, 3) and not np.array_equal(*views)
    target = get_task("wisp_nerf").lod_target(stream.model, stream.name, None, None, None)
    assert target.render(stream.model, 2).shape[-1] == 3


def test_export_refuses_an_unrebuildable_nef(double, monkeypatch, tmp_path):
    cfg = parse(double, monkeypatch, tmp_path, "--nef.layer-type=spectral_norm")
    with pytest.raises(ConfigError, match="spectral_norm"):
        build(double, cfg)


def test_baseline_yaml_runs_wisps_hash_grid(double, monkeypatch, tmp_path):
    yaml_path = ROOT / "configs" / "wisp" / "hash_nerf.yaml"
    argv = ["main_wisp.py", "--config", str(yaml_path),
            f"--dataset.dataset-path={demo_data('demo_scene')}", f"--tracker.log-dir={tmp_path}",
            "--grid.num-lods=4", "--grid.codebook-bitwidth=10", "--grid.min-grid-res=4",
            "--grid.max-grid-res=16", "--nef.hidden-dim=16", "--blas.level=3",
            "--tracer.num-steps=32", "--dataset-transform.num-samples=64",
            "--trainer.max-epochs=1", "--trainer.enable-amp=False", "--trainer.valid-every=-1",
            "--device=cpu", "--interactive=False"]
    monkeypatch.setattr(sys, "argv", argv)
    seen = []
    trainer_cls = double.trainer.ShaciraMultiviewTrainer
    original = trainer_cls.post_training
    monkeypatch.setattr(trainer_cls, "post_training",
                        lambda self: seen.append(self) or original(self))
    double.app.main()
    from wisp.models.grids import HashGrid
    (trainer,) = seen
    grid = trainer.pipeline.nef.grid
    assert type(grid) is HashGrid and trainer.rate_term is None
    assert trainer.total_iterations >= trainer.max_iterations   # Wisp counts the StopIteration call
    assert not list(Path(tmp_path).rglob("model.shac"))     # no SHACIRA export for Wisp's grid


def test_pretrained_shac_of_another_task_is_one_line(double, monkeypatch, tmp_path, random_image_shac):
    image = random_image_shac(tmp_path / "image.shac", 8, 8)
    cfg = parse(double, monkeypatch, tmp_path, f"--pretrained={image}")
    with pytest.raises(BitstreamError, match="holds a 'image' model"):
        build(double, cfg)


def test_yaml_with_an_uninstalled_grid_or_paper_keys_is_refused(double, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(YAML.read_text().replace("'ShaciraGrid.from_geometric'", "'LatentGrid'"))
    with pytest.raises(ConfigError, match="grid.constructor 'LatentGrid' is not available"):
        double.app.check_yaml(str(bad))
    paper = tmp_path / "paper.yaml"
    paper.write_text("parent: 'nerf_base.yaml'\ngrid:\n  grid_type: 'LatentGrid'\n")
    with pytest.raises(ConfigError, match="official SHACIRA code"):
        double.app.check_yaml(str(paper))


def test_renderer_lifecycle_and_slider(double, trained):
    from wisp.core import Rays
    from wisp.renderer.core.api import REGISTERED, Camera, FramePayload
    from wisp.renderer.gui import WIDGETS
    trainer = trained[0]
    renderer_cls = double.renderer.ShaciraRadianceRenderer
    assert REGISTERED["NeuralRadianceField"]["PackedRFTracer"] is renderer_cls
    nef, tracer = trainer.pipeline.nef, trainer.pipeline.tracer
    renderer = renderer_cls(nef, tracer, batch_size=5)
    payload = FramePayload(Camera(4, 3), 4, 3, {"rgb"})
    renderer.pre_render(payload)
    tracer.lods.clear()
    rays = Rays(torch.zeros(12, 3) + torch.tensor([0.0, 0.0, 3.0]),
                torch.nn.functional.normalize(torch.randn(12, 3) * 0.1 + torch.tensor([0.0, 0.0, -1.0]), dim=-1),
                0.0, 6.0)
    rb = renderer.render(rays)
    assert rb.rgb.shape == (3, 4, 3) and tracer.lods == [None, None, None]
    renderer.post_render()
    assert not renderer.needs_refresh(payload)
    widget = WIDGETS[renderer_cls]()
    double.imgui.ANSWERS.append((True, 1))
    widget.paint(None, renderer)
    assert double.imgui.SLIDERS[-1][1:] == (3, 0, 3) and widget.painted is renderer
    assert renderer.lod_idx == 1 and renderer.needs_refresh(payload)
    tracer.lods.clear()
    renderer.render(rays)
    assert tracer.lods == [1, 1, 1]


# --------------------------------------------------------------------------- real Kaolin-Wisp

def _real_wisp():
    pytest.importorskip("kaolin")
    pytest.importorskip("wisp")
    if not torch.cuda.is_available():
        pytest.skip("Kaolin-Wisp needs CUDA")
    from conftest import purge
    purge()
    import wisp_shacira.wisp as adapter
    return adapter


def test_real_wisp_grid_nerf_and_prune():
    adapter = _real_wisp()
    from wisp.accelstructs import OctreeAS as RealOctreeAS
    from wisp.models.grids import HashGrid as RealHashGrid
    from wisp.models.nefs import NeuralRadianceField as RealNeRF
    grid = adapter.ShaciraGrid.from_geometric(RealOctreeAS.make_dense(level=4), feature_dim=2,
                                              num_lods=4, codebook_bitwidth=10, max_grid_res=32)
    assert isinstance(grid, RealHashGrid)
    nef = RealNeRF(grid=grid, prune_density_decay=0.6, prune_min_density=0.0).cuda()
    coords = torch.rand(128, 3, device="cuda") * 2 - 1
    assert grid.interpolate(coords, None).shape == (128, 8)
    out = nef.rgba(coords, torch.nn.functional.normalize(coords, dim=-1))
    assert out["rgb"].shape == (128, 3) and out["density"].shape == (128, 1)
    nef.prune()
    assert grid.occupancy.shape == (grid.num_cells,)


def test_real_wisp_app_config_parses(monkeypatch):
    _real_wisp()
    from wisp.config import parse_config
    from wisp_shacira.wisp.app_support import ShaciraNeRFAppConfig
    monkeypatch.setattr(sys, "argv", ["main_wisp.py", "--config", str(YAML)])
    cfg = parse_config(ShaciraNeRFAppConfig, yaml_arg="--config")
    assert type(cfg.grid).__name__ == "ConfigShaciraGridFromGeometric"
    assert cfg.grid.num_lods == 24 and cfg.trainer.lr_latents == 0.02
    assert dataclasses.is_dataclass(cfg)


@pytest.mark.parametrize("name", ["shacira_nerf.yaml", "hash_nerf.yaml", "paper_lego.yaml",
                                  "paper_rtmv_v8.yaml"])
def test_shipped_yamls_parse(double, monkeypatch, name):
    path = ROOT / "configs" / "wisp" / name
    double.app.check_yaml(str(path))
    monkeypatch.setattr(sys, "argv", ["main_wisp.py", "--config", str(path)])
    from wisp.config import parse_config
    cfg = parse_config(double.app.ShaciraNeRFAppConfig, yaml_arg="--config")
    assert cfg.trainer.exp_name and cfg.grid.num_lods in (20, 24)
