"""The Kaolin-Wisp adapter (wisp_shacira.wisp).

Most tests run against a fake, minimal ``wisp``/``kaolin``/``imgui`` injected into
``sys.modules``: it mirrors the upstream interfaces the adapter uses (class
hierarchy, ``NeuralRadianceField.prune``, the trainer's name-based parameter groups,
the renderer/widget registries), so class creation, ``from_geometric``,
``interpolate``, LOD, pruning, the trainer hooks and the GUI slider are exercised
without a GPU. The last tests need the real Kaolin-Wisp and are skipped without it.
"""
from __future__ import annotations

import dataclasses
import inspect
import sys
import types
import typing
from pathlib import Path

import pytest
import torch
from torch import nn

from wisp_shacira.codec.model_io import read_shac
from wisp_shacira.errors import ConfigError

torch.set_num_threads(1)
FAKE_ROOTS = ("wisp", "kaolin", "imgui")


# --------------------------------------------------------------------------- fake wisp

class BaseAS:
    """Fake acceleration structure base."""


class OctreeAS(BaseAS):
    """Fake octree: the occupied cells of its finest level are ``points``."""

    def __init__(self, points: torch.Tensor, max_level: int) -> None:
        self.points, self.pyramid, self.max_level = points, None, max_level

    @classmethod
    def make_dense(cls, level: int) -> OctreeAS:
        axis = torch.arange(2**level, dtype=torch.int16)
        grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
        return cls(grid, level)

    @classmethod
    def from_quantized_points(cls, points: torch.Tensor, level: int) -> OctreeAS:
        return cls(points, level)


class BLASGrid(nn.Module):
    def __init__(self, blas: BaseAS) -> None:
        super().__init__()
        self.blas = blas

    def public_properties(self) -> dict:
        return {"Acceleration Structure": self.blas}


class HashGrid(BLASGrid):
    """Upstream's constructor allocates a float codebook, which the adapter must skip."""

    def __init__(self, blas: BaseAS, feature_dim: int, resolutions: list,
                 multiscale_type: str = "sum", codebook_bitwidth: int = 8) -> None:
        super().__init__(blas)
        self.codebook = nn.Parameter(torch.zeros(sum(r**3 for r in resolutions), feature_dim))

    @classmethod
    def from_geometric(cls, blas: BaseAS, feature_dim: int, num_lods: int) -> HashGrid:
        return cls(blas, feature_dim, [4] * num_lods)

    def public_properties(self) -> dict:
        return {**super().public_properties(), "Feature Dims": self.feature_dim,
                "HashTable Size": f"2^{self.codebook_bitwidth}"}


class NeuralRadianceField(nn.Module):
    """Fake NeRF with upstream's ``rgba`` LOD default and ``prune`` logic (on CPU)."""

    def __init__(self, grid: BLASGrid, prune_density_decay: float = 0.6,
                 prune_min_density: float = -1.0) -> None:
        super().__init__()
        self.grid = grid
        dim = grid.feature_dim * (grid.num_lods if grid.multiscale_type == "cat" else 1)
        self.decoder_density = nn.Linear(dim, 16)
        self.decoder_color = nn.Linear(16, 3)
        self.prune_density_decay, self.prune_min_density = prune_density_decay, prune_min_density

    def rgba(self, coords: torch.Tensor, ray_d: torch.Tensor | None = None,
             lod_idx: int | None = None) -> dict:
        if lod_idx is None:
            lod_idx = len(self.grid.active_lods) - 1
        feats = self.grid.interpolate(coords, lod_idx).reshape(coords.shape[0], -1)
        feats = self.decoder_density(feats)
        return {"rgb": torch.sigmoid(self.decoder_color(feats)),
                "density": torch.relu(feats[:, :1])}

    def prune(self) -> None:
        if not isinstance(self.grid, HashGrid):
            raise NotImplementedError(f"Pruning not implemented for grid type {self.grid}")
        self.grid.occupancy = self.grid.occupancy * self.prune_density_decay
        points = self.grid.dense_points
        res = 2.0**self.grid.blas.max_level
        samples = ((points.float() + torch.rand(points.shape[0], 3)) / res) * 2.0 - 1.0
        with torch.no_grad():
            density = self.rgba(samples)["density"]
        self.grid.occupancy = torch.stack([density[:, 0], self.grid.occupancy], -1).max(dim=-1)[0]
        kept = points[self.grid.occupancy > self.prune_min_density]
        if kept.shape[0] > 0:
            level = self.grid.blas.max_level
            self.grid.blas = self.grid.blas.__class__.from_quantized_points(kept, level)


class PackedRFTracer:
    """Fake tracer: records the LOD it is asked for and returns one buffer per batch."""

    def __init__(self) -> None:
        self.lods: list = []

    def __call__(self, nef: nn.Module, rays: list, lod_idx: int | None = None,
                 **kwargs) -> FakeBuffer:
        self.lods.append(lod_idx)
        return FakeBuffer([len(rays)])


class FakeBuffer:
    def __init__(self, parts: list | None = None) -> None:
        self.parts = parts or []

    def __iadd__(self, other: FakeBuffer) -> FakeBuffer:
        return FakeBuffer(self.parts + other.parts)

    def reshape(self, *shape: int) -> FakeBuffer:
        self.shape = shape
        return self


class FakeRays(list):
    def split(self, size: int) -> list:
        return [FakeRays(self[i:i + size]) for i in range(0, len(self), size)]


class MultiviewTrainer:
    """Fake trainer: upstream's name-based groups, pre-step/step/post-training cycle."""

    def __init__(self, cfg, pipeline, tracker, iterations_per_epoch: int = 3) -> None:
        self.cfg, self.pipeline, self.tracker = cfg, pipeline, tracker
        self.epoch, self.iteration, self.iterations_per_epoch = 1, 0, iterations_per_epoch
        self.max_epochs = 2
        self.init_optimizer()

    @property
    def total_iterations(self) -> int:
        return (self.epoch - 1) * self.iterations_per_epoch + self.iteration

    @property
    def max_iterations(self) -> int:
        return self.max_epochs * self.iterations_per_epoch

    def init_optimizer(self) -> None:
        decoder, grid, rest = [], [], []
        for name, param in self.pipeline.nef.named_parameters():
            (decoder if "decoder" in name else grid if "grid" in name else rest).append(param)
        lr = self.cfg.optimizer_lr
        self.optimizer = torch.optim.Adam([
            {"params": decoder, "lr": lr, "eps": 1e-15, "weight_decay": 1e-6},
            {"params": grid, "eps": 1e-15, "lr": lr * self.cfg.grid_lr_weight},
            {"params": rest, "eps": 1e-15, "lr": lr}])

    def pre_step(self) -> None:
        self.pre_steps = getattr(self, "pre_steps", 0) + 1

    def step(self, data: dict) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        rgb = self.pipeline.nef.rgba(data["coords"])["rgb"]
        torch.nn.functional.mse_loss(rgb, data["rgb"]).backward()
        self.optimizer.step()

    def log_console(self) -> None:
        pass

    def post_training(self) -> None:
        self.post_trained = True


@dataclasses.dataclass
class ConfigMultiviewTrainer:
    exp_name: str = "test"
    optimizer_lr: float = 1e-3
    grid_lr_weight: float = 100.0


class NeuralRadianceFieldPackedRenderer:
    """Fake of upstream's radiance renderer (state it keeps, refresh logic)."""

    def __init__(self, nef: nn.Module, tracer: PackedRFTracer, batch_size: int = 2) -> None:
        self.nef, self.tracer, self.batch_size = nef, tracer, batch_size
        self.num_steps, self.raymarch_type = 8, "ray"
        self.bg_color, self.channels = "black", {"rgb"}
        self.render_res_x = self.output_width = 3
        self.render_res_y = self.output_height = 2
        self._last_state: dict = {}

    def needs_refresh(self, payload, *args, **kwargs) -> bool:
        return self._last_state.get("num_steps", 0) < self.num_steps

    def post_render(self) -> None:
        self._last_state["num_steps"] = self.num_steps


class WidgetNeuralRadianceFieldRenderer:
    def paint(self, state, renderer=None, *args, **kwargs) -> None:
        self.painted = renderer


def build_fake_modules(registry: dict) -> dict[str, types.ModuleType]:
    """Module name -> fake module, for ``sys.modules``."""
    def module(name: str, **attrs) -> types.ModuleType:
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        return mod

    def field_renderer(nef_type, tracer_type):
        def register(cls):
            registry[("renderer", nef_type.__name__, tracer_type.__name__)] = cls
            return cls
        return register

    def widget(block):
        def register(cls):
            registry[("widget", block)] = cls
            return cls
        return register

    def slider_int(label, value, min_value, max_value):
        registry.setdefault("sliders", []).append((label, value, min_value, max_value))
        return registry.pop("slider_answer", (False, value))

    return {
        "kaolin": module("kaolin"), "kaolin.ops": module("kaolin.ops"),
        "kaolin.ops.spc": module("kaolin.ops.spc",
                                 unbatched_get_level_points=lambda points, pyramid, level: points),
        "wisp": module("wisp"), "wisp.models": module("wisp.models"),
        "wisp.accelstructs": module("wisp.accelstructs", BaseAS=BaseAS, OctreeAS=OctreeAS),
        "wisp.models.grids": module("wisp.models.grids", BLASGrid=BLASGrid, HashGrid=HashGrid),
        "wisp.models.nefs": module("wisp.models.nefs", NeuralRadianceField=NeuralRadianceField),
        "wisp.config": module("wisp.config", configure=dataclasses.dataclass),
        "wisp.trainers": module("wisp.trainers", MultiviewTrainer=MultiviewTrainer,
                                ConfigMultiviewTrainer=ConfigMultiviewTrainer),
        "wisp.tracers": module("wisp.tracers", PackedRFTracer=PackedRFTracer),
        "wisp.core": module("wisp.core", RenderBuffer=lambda hit=None: FakeBuffer(), Rays=FakeRays),
        "wisp.framework": module("wisp.framework", WispState=object),
        "wisp.renderer": module("wisp.renderer"),
        "wisp.renderer.core": module("wisp.renderer.core"),
        "wisp.renderer.core.api": module("wisp.renderer.core.api", FramePayload=object,
                                         field_renderer=field_renderer),
        "wisp.renderer.core.renderers": module(
            "wisp.renderer.core.renderers",
            NeuralRadianceFieldPackedRenderer=NeuralRadianceFieldPackedRenderer),
        "wisp.renderer.gui": module(
            "wisp.renderer.gui", widget=widget,
            WidgetNeuralRadianceFieldRenderer=WidgetNeuralRadianceFieldRenderer),
        "imgui": module("imgui", core=types.SimpleNamespace(slider_int=slider_int),
                        text=lambda text: registry.setdefault("texts", []).append(text)),
    }


def _purge_adapter_modules() -> None:
    for name in list(sys.modules):
        if name == "wisp_shacira.wisp" or name.startswith("wisp_shacira.wisp."):
            del sys.modules[name]
    package = sys.modules.get("wisp_shacira")
    if package is not None and hasattr(package, "wisp"):
        delattr(package, "wisp")


@pytest.fixture
def fake(monkeypatch):
    """Install the fake Wisp; yields a namespace with the registry and the adapter modules."""
    registry: dict = {}
    for name in [n for n in sys.modules if n.split(".")[0] in FAKE_ROOTS]:
        monkeypatch.delitem(sys.modules, name)
    for name, mod in build_fake_modules(registry).items():
        monkeypatch.setitem(sys.modules, name, mod)
    _purge_adapter_modules()
    import wisp_shacira.wisp as adapter
    import wisp_shacira.wisp.renderer as renderer
    import wisp_shacira.wisp.trainer as trainer
    yield types.SimpleNamespace(registry=registry, grid=adapter, trainer=trainer, renderer=renderer)
    _purge_adapter_modules()


def make_grid(fake, **overrides):
    args = dict(feature_dim=2, num_lods=4, codebook_bitwidth=8, min_grid_res=2, max_grid_res=16,
                latent_init=0.6, prior_init_scale=4.0)
    args.update(overrides)
    torch.manual_seed(0)
    return fake.grid.ShaciraGrid.from_geometric(OctreeAS.make_dense(2), **args)


# --------------------------------------------------------------------------- fake-wisp tests

def test_import_without_wisp_raises_one_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "wisp", None)  # as if Kaolin-Wisp were not installed
    _purge_adapter_modules()
    from wisp_shacira.fields.wisp_bridge import WispNotInstalled
    try:
        with pytest.raises(WispNotInstalled) as info:
            import wisp_shacira.wisp  # noqa: F401
    finally:
        _purge_adapter_modules()
    assert isinstance(info.value, ImportError)
    assert "\n" not in str(info.value) and "kaolin-wisp" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__



def test_grid_is_a_wisp_hash_grid_without_codebook(fake):
    grid = make_grid(fake)
    assert isinstance(grid, HashGrid) and type(grid).__name__ == "ShaciraGrid"
    assert not hasattr(grid, "codebook")
    names = {name for name, _ in grid.named_parameters()}
    assert "core.latents" in names and "core.decoder.weight" in names
    assert any(name.startswith("core.prior.") for name in names)
    assert (grid.num_lods, grid.max_lod, grid.active_lods) == (4, 3, [0, 1, 2, 3])
    assert grid.resolutions == list(grid.core.layout.resolutions)
    assert grid.feature_dim == 2 and grid.multiscale_type == "cat" and grid.codebook_bitwidth == 8
    props = grid.public_properties()
    assert props["Latent Dims"] == 1 and props["HashTable Size"] == "2^8"
    assert "Acceleration Structure" in props and grid.name() == "SHACIRA Grid"


def test_from_geometric_is_an_autoconfig_constructor(fake):
    cls = fake.grid.ShaciraGrid
    ctor = cls.from_geometric
    hints = typing.get_type_hints(ctor)
    assert hints["return"] is cls  # Wisp's gather_constructors test
    assert inspect.getmodule(ctor).__dict__[ctor.__qualname__.split(".")[0]] is cls
    configurable = {name: hint for name, hint in hints.items() if name not in ("return", "blas")}
    assert configurable and all(hint in (int, float, str, bool) for hint in configurable.values())
    params = inspect.signature(ctor).parameters
    assert all(p.default is not inspect.Parameter.empty for n, p in params.items() if n != "blas")


def test_from_geometric_rejects_bad_arguments(fake):
    with pytest.raises(ConfigError, match="grid.multiscale_type"):
        make_grid(fake, multiscale_type="max")
    with pytest.raises(ConfigError, match="grid.max_grid_res"):
        make_grid(fake, min_grid_res=32)


def test_interpolate_shapes_and_lod(fake):
    grid = make_grid(fake).eval()
    with torch.no_grad():
        grid.core.latents.uniform_(-3, 3)
    coords = torch.rand(6, 5, 3) * 2 - 1
    assert grid.interpolate(coords, None).shape == (6, 5, 8)
    flat = grid.interpolate(coords.reshape(-1, 3), 3)
    assert flat.shape == (30, 8)
    assert torch.equal(flat, grid.interpolate(coords, None).reshape(30, 8))
    lod0 = grid.interpolate(coords.reshape(-1, 3), 0).view(30, 4, 2)
    assert torch.equal(lod0[:, 0], flat.view(30, 4, 2)[:, 0])
    assert torch.count_nonzero(lod0[:, 1:]) == 0
    summed = make_grid(fake, multiscale_type="sum")
    assert summed.interpolate(coords, 1).shape == (6, 5, 2)


def test_nerf_default_lod_uses_all_levels(fake):
    grid = make_grid(fake).eval()
    with torch.no_grad():
        grid.core.latents.uniform_(-3, 3)
    nef = NeuralRadianceField(grid)
    coords = torch.rand(10, 3) * 2 - 1
    finest = grid.interpolate(coords, len(grid.active_lods) - 1).view(10, 4, 2)[:, -1]
    assert torch.count_nonzero(finest) > 0
    assert torch.equal(nef.rgba(coords)["rgb"], nef.rgba(coords, lod_idx=3)["rgb"])


def test_pruning_through_the_nerf(fake):
    grid = make_grid(fake)
    assert grid.dense_points.shape == (64, 3) and grid.num_cells == 64
    assert grid.occupancy.shape == (64,)
    nef = NeuralRadianceField(grid, prune_density_decay=0.5, prune_min_density=1e9)
    nef.prune()  # nothing passes the threshold: the blas is kept
    assert grid.blas.points.shape[0] == 64 and torch.all(grid.occupancy >= 0)
    nef.prune_min_density = -1.0
    nef.prune()
    assert grid.blas.points.shape[0] == 64 and grid.blas is not None
    grid.freeze()
    assert not any(p.requires_grad for p in grid.core.parameters())


def test_export_and_load(fake, tmp_path):
    grid = make_grid(fake)
    nef = NeuralRadianceField(grid)
    path = tmp_path / "nerf.shac"
    nbytes = grid.export(path, nef, {"nef": {"hidden_dim": 16}})
    assert nbytes == path.stat().st_size
    config = read_shac(path).config
    assert config["task"] == "wisp_nerf" and config["wisp"]["multiscale_type"] == "cat"
    coords = torch.rand(20, 3) * 2 - 1
    expected = nef.eval().rgba(coords)["rgb"]
    other_grid = make_grid(fake)
    with torch.no_grad():
        other_grid.core.latents.zero_()
    other = NeuralRadianceField(other_grid).eval()
    other_grid.load(path, other)
    assert torch.equal(other.rgba(coords)["rgb"], expected)


class FakeTracker:
    def __init__(self, log_dir: Path, pretrained: str | None = None) -> None:
        self.log_dir = str(log_dir)
        self.app = {"nef": {"hidden_dim": 16, "grid": object()}, "pretrained": pretrained}

    def get_app_config(self, as_dict: bool = False) -> dict:
        return self.app


def make_trainer(fake, tmp_path, grid, **cfg):
    nef = NeuralRadianceField(grid)
    pipeline = types.SimpleNamespace(nef=nef)
    config = fake.trainer.ConfigShaciraTrainer(lambda_start=1e-2, lambda_end=1e-3, **cfg)
    return fake.trainer.ShaciraMultiviewTrainer(config, pipeline, FakeTracker(tmp_path))


def test_trainer_groups_rate_and_export(fake, tmp_path):
    grid = make_grid(fake)
    trainer = make_trainer(fake, tmp_path, grid, lr_prior=0.005)
    groups = {g.get("name"): g for g in trainer.optimizer.param_groups}
    assert groups["shacira_prior"]["lr"] == 0.005 and groups["shacira_prior"]["weight_decay"] == 0.0
    assert groups["shacira_latents"]["params"] == [grid.core.latents]
    data = {"coords": torch.rand(64, 3) * 2 - 1, "rgb": torch.rand(64, 3)}
    before = grid.core.latents.detach().clone()
    for iteration in (1, 2):
        trainer.iteration = iteration
        trainer.pre_step()
        assert grid.tau is not None
        trainer.step(data)
    assert trainer.pre_steps == 2
    assert not torch.equal(before, grid.core.latents)
    points = torch.rand(16, 3) * 2 - 1
    assert not torch.equal(grid.interpolate(points), grid.interpolate(points))  # soft rounding
    grid.eval()                                        # evaluation rounds hard, tau or not
    assert grid.tau is not None and torch.equal(grid.interpolate(points), grid.interpolate(points))
    grid.train()
    assert trainer.rate_term.last_bits > 0
    trainer.post_training()
    assert trainer.post_trained
    model = read_shac(tmp_path / "model.shac")
    assert model.config["wisp"]["nef"] == {"hidden_dim": 16}


def test_trainer_refuses_to_overwrite_an_input(fake, tmp_path):
    grid = make_grid(fake)
    pretrained = tmp_path / "model.pth"
    pretrained.write_bytes(b"weights")
    trainer = make_trainer(fake, tmp_path, grid, shac_path=str(pretrained))
    trainer.tracker.app["pretrained"] = str(pretrained)
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        trainer.post_training()
    assert pretrained.read_bytes() == b"weights"


def test_trainer_leaves_other_grids_alone(fake, tmp_path):
    class PlainGrid(HashGrid):
        def __init__(self) -> None:
            super().__init__(OctreeAS.make_dense(1), 2, [2, 4])
            self.feature_dim, self.num_lods, self.multiscale_type = 2, 2, "cat"

    trainer = make_trainer(fake, tmp_path, PlainGrid())
    assert trainer.rate_term is None and len(trainer.optimizer.param_groups) == 3
    trainer.post_training()
    assert not (tmp_path / "model.shac").exists()


def test_yaml_matches_the_constructor_and_trainer_config(fake):
    import yaml
    path = Path(__file__).resolve().parents[2] / "configs" / "wisp" / "shacira_nerf.yaml"
    data = yaml.safe_load(path.read_text())
    assert data["grid"]["constructor"] == "ShaciraGrid.from_geometric"
    params = set(inspect.signature(fake.grid.ShaciraGrid.from_geometric).parameters) - {"blas"}
    assert set(data["grid"]) - {"constructor"} == params
    shacira_fields = ({f.name for f in dataclasses.fields(fake.trainer.ConfigShaciraTrainer)}
                      - {f.name for f in dataclasses.fields(ConfigMultiviewTrainer)})
    assert shacira_fields <= set(data["trainer"])
    grid_args = {k: v for k, v in data["grid"].items() if k != "constructor"}
    grid = fake.grid.ShaciraGrid.from_geometric(OctreeAS.make_dense(1), **grid_args)
    assert grid.core.output_dim == 24 * 4


def test_renderer_passes_the_slider_lod(fake):
    registry = fake.registry
    renderer_cls = fake.renderer.ShaciraRadianceRenderer
    assert registry[("renderer", "NeuralRadianceField", "PackedRFTracer")] is renderer_cls
    widget_cls = registry[("widget", renderer_cls)]
    grid = make_grid(fake)
    tracer = PackedRFTracer()
    renderer = renderer_cls(NeuralRadianceField(grid), tracer, batch_size=2)
    renderer.render(FakeRays(range(5)))
    assert tracer.lods == [None, None, None]
    renderer.post_render()
    assert not renderer.needs_refresh(None)

    widget = widget_cls()
    registry["slider_answer"] = (True, 1)
    widget.paint(None, renderer)
    assert registry["sliders"][-1][1:] == (3, 0, 3) and widget.painted is renderer
    assert renderer.lod_idx == 1 and renderer.needs_refresh(None)
    tracer.lods.clear()
    renderer.render(FakeRays(range(2)))
    assert tracer.lods == [1]
    registry["slider_answer"] = (True, 3)
    widget.paint(None, renderer)
    assert renderer.lod_idx is None


# --------------------------------------------------------------------------- real Kaolin-Wisp

def _real_wisp():
    pytest.importorskip("kaolin")
    pytest.importorskip("wisp")
    if not torch.cuda.is_available():
        pytest.skip("Kaolin-Wisp needs CUDA")
    _purge_adapter_modules()
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
    yaml_path = Path(__file__).resolve().parents[2] / "configs" / "wisp" / "shacira_nerf.yaml"
    monkeypatch.setattr(sys, "argv", ["main_wisp.py", "--config", str(yaml_path)])
    cfg = parse_config(ShaciraNeRFAppConfig, yaml_arg="--config")
    assert type(cfg.grid).__name__ == "ConfigShaciraGridFromGeometric"
    assert cfg.grid.num_lods == 24 and cfg.trainer.lr_latents == 0.02
