"""The Wisp-free logic behind the Kaolin-Wisp adapter (no Wisp needed)."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from wisp_shacira.codec.model_io import read_shac
from wisp_shacira.errors import BitstreamError, ConfigError
from wisp_shacira.fields import wisp_bridge as wb
from wisp_shacira.grid.shacira_grid import GridConfig, ShaciraGrid
from wisp_shacira.train import rate as rt

torch.set_num_threads(1)


def small_config(**overrides) -> GridConfig:
    args = dict(feature_dim=2, num_lods=4, codebook_bitwidth=8, min_grid_res=2, max_grid_res=16,
                latent_dim=1, latent_init=0.6, prior_init_scale=4.0, multiscale_type="cat")
    args.update(overrides)
    return wb.grid_config_from_wisp(**args)


@pytest.fixture
def core() -> ShaciraGrid:
    torch.manual_seed(0)
    grid = ShaciraGrid(3, small_config())
    with torch.no_grad():
        grid.latents.uniform_(-3, 3)
    return grid.eval()


class FakeNef(nn.Module):
    """The parameter naming of a Wisp NeuralRadianceField holding a grid."""

    def __init__(self, core: ShaciraGrid) -> None:
        super().__init__()
        self.grid = nn.Module()
        self.grid.core = core
        self.decoder_density = nn.Linear(core.output_dim, 16)
        self.decoder_color = nn.Linear(16, 3)
        self.extra = nn.Linear(2, 2)


def wisp_style_optimizer(nef: nn.Module, lr: float = 1e-3, weight_decay: float = 1e-6,
                         grid_lr_weight: float = 100.0) -> torch.optim.Adam:
    """Groups built by name as Wisp's BaseTrainer.init_optimizer does."""
    groups: dict[str, list] = {"decoder": [], "grid": [], "rest": []}
    for name, param in nef.named_parameters():
        groups[wb.wisp_param_group(name)].append(param)
    return torch.optim.Adam([
        {"params": groups["decoder"], "lr": lr, "weight_decay": weight_decay},
        {"params": groups["grid"], "lr": lr * grid_lr_weight},
        {"params": groups["rest"], "lr": lr}], eps=1e-15)


def test_wisp_not_installed_names_what_to_install():
    error = wb.wisp_not_installed(ModuleNotFoundError("No module named 'wisp'"))
    assert isinstance(error, ImportError)
    message = str(error)
    assert "\n" not in message and "kaolin" in message and "kaolin-wisp" in message
    assert "docs/wisp.md" in message and "No module named 'wisp'" in message


def test_grid_config_mapping():
    cfg = small_config(codebook_bitwidth=10, latent_dim=2)
    assert (cfg.num_levels, cfg.min_res, cfg.max_res) == (4, 2, 16)
    assert (cfg.log2_table_size, cfg.feature_dim, cfg.latent_dim) == (10, 2, 2)
    assert cfg.compressed and cfg.latent_step is None
    assert small_config(latent_step=0.05).latent_step == 0.05


@pytest.mark.parametrize("key,value,needle", [
    ("multiscale_type", "max", "grid.multiscale_type"), ("num_lods", 0, "grid.num_lods"),
    ("min_grid_res", 32, "grid.min_grid_res"), ("latent_dim", 0, "grid.latent_dim"),
    ("codebook_bitwidth", 0, "grid.codebook_bitwidth"), ("latent_step", -1.0, "grid.latent_step")])
def test_grid_config_rejects_bad_values(key, value, needle):
    with pytest.raises(ConfigError, match=needle):
        small_config(**{key: value})


def test_coords_and_lod_mapping():
    coords = torch.tensor([[[-1.0, 0.0, 1.0]]])
    assert torch.equal(wb.wisp_coords_to_unit(coords), torch.tensor([[0.0, 0.5, 1.0]]))
    assert wb.core_lod(None, 4) is None
    assert wb.core_lod(3, 4) == 4 and wb.core_lod(-1, 4) == 4
    assert wb.core_lod(0, 4) == 1 and wb.core_lod(-2, 4) == 3
    with pytest.raises(ValueError):
        wb.core_lod(4, 4)
    assert wb.lod_from_slider(3, 4) is None and wb.lod_from_slider(1, 4) == 1


def test_interpolate_shapes_and_values(core):
    coords = torch.rand(5, 7, 3) * 2 - 1
    cat = wb.interpolate_wisp(core, coords, None, "cat")
    assert cat.shape == (5, 7, core.output_dim)
    reference = core.interpolate((coords.reshape(-1, 3) + 1) / 2)
    assert torch.allclose(cat.reshape(-1, core.output_dim), reference)
    flat = wb.interpolate_wisp(core, coords.reshape(-1, 3), 3, "cat")
    assert torch.equal(flat, cat.reshape(-1, core.output_dim))
    summed = wb.interpolate_wisp(core, coords, None, "sum")
    assert summed.shape == (5, 7, 2)
    assert torch.allclose(summed, cat.view(5, 7, 4, 2).sum(2), atol=1e-6)
    with pytest.raises(ValueError):
        wb.interpolate_wisp(core, coords, None, "max")


def test_lod_zeroes_finer_levels_only(core):
    coords = torch.rand(64, 3) * 2 - 1
    full = wb.interpolate_wisp(core, coords, None, "cat").view(64, 4, 2)
    lod1 = wb.interpolate_wisp(core, coords, 1, "cat").view(64, 4, 2)
    assert torch.equal(lod1[:, :2], full[:, :2])
    assert torch.count_nonzero(lod1[:, 2:]) == 0
    assert torch.count_nonzero(full[:, 1]) > 0
    summed = wb.interpolate_wisp(core, coords, 1, "sum")
    assert torch.allclose(summed, full[:, :2].sum(1), atol=1e-6)


def test_wisp_name_rules_on_grid_parameters(core):
    names = dict(FakeNef(core).named_parameters())
    groups = {name: wb.wisp_param_group(name) for name in names}
    assert groups["grid.core.latents"] == "grid"
    assert groups["grid.core.decoder.weight"] == "decoder"
    prior_names = [n for n in names if n.startswith("grid.core.prior.")]
    assert prior_names and all(groups[n] == "grid" for n in prior_names)  # never weight decay
    assert groups["decoder_density.weight"] == "decoder" and groups["extra.bias"] == "rest"


def test_refine_param_groups(core):
    nef = FakeNef(core)
    optimizer = wisp_style_optimizer(nef)
    rt.refine_param_groups(optimizer, core, rt.ShaciraLearningRates(0.02, 0.01, 0.003))
    owners: dict[int, dict] = {}
    for group in optimizer.param_groups:
        for param in group["params"]:
            assert id(param) not in owners, "a parameter is in two groups"
            owners[id(param)] = group
    assert len(owners) == len(list(nef.parameters()))
    by_name = {g.get("name"): g for g in optimizer.param_groups}
    assert by_name["shacira_latents"]["params"] == [core.latents]
    assert by_name["shacira_latents"]["lr"] == 0.02
    assert by_name["shacira_decoder"]["lr"] == 0.01
    assert by_name["shacira_prior"]["lr"] == 0.003
    for name in ("shacira_latents", "shacira_decoder", "shacira_prior"):
        assert by_name[name]["weight_decay"] == 0.0
    assert owners[id(nef.decoder_density.weight)]["weight_decay"] == 1e-6
    with pytest.raises(ConfigError, match="trainer.lr_prior"):
        rt.refine_param_groups(wisp_style_optimizer(FakeNef(core)), core,
                               rt.ShaciraLearningRates(prior=0.0))


def test_refine_param_groups_latent_lr_in_feature_units_with_a_fixed_step():
    core = ShaciraGrid(3, small_config(latent_step=0.05))
    optimizer = wisp_style_optimizer(FakeNef(core))
    rt.refine_param_groups(optimizer, core, rt.ShaciraLearningRates(0.1, 0.01, 0.003))
    by_name = {g.get("name"): g for g in optimizer.param_groups}
    assert by_name["shacira_latents"]["lr"] == pytest.approx(2.0)


def test_schedule_config_and_temperature(core):
    cfg = rt.schedule_config(1e-3, 1e-4, 0.5, 1.0, 0.1, None)
    term = rt.RateTerm(core, cfg)
    assert term.begin_step(0, 100) == pytest.approx(1.0)
    assert term.begin_step(60, 100) is None
    with pytest.raises(ConfigError):
        rt.schedule_config(1e-3, 1e-4, 0.5, 0.1, 1.0, None)


def test_rate_loss_is_float32_under_autocast(core):
    cfg = rt.schedule_config(1e-3, 1e-3, 0.9, 1.0, 0.05, None)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        loss, bits = rt.rate_loss(core, 1e-3, cfg.rate_sample)
    assert loss.dtype == torch.float32 and bits.dtype == torch.float32
    assert loss.item() == pytest.approx(1e-3 * bits.item() / core.latents.numel(), rel=1e-5)


def _rate(grid: ShaciraGrid, step: int, total: int, cfg) -> torch.Tensor:
    """The weighted rate term of ``step`` as the Wisp trainer's hook computes it."""
    term = rt.RateTerm(grid, cfg)
    term.begin_step(step, total)
    return term.loss()[0]


def _grads(module: nn.Module) -> list[torch.Tensor]:
    return [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in module.parameters()]


@pytest.mark.parametrize("grad_scale", [None, 8.0])
def test_rate_term_hook_adds_the_rate_gradient(core, grad_scale):
    core.train()
    cfg = rt.schedule_config(1e-2, 1e-3, 0.9, 1.0, 0.05, None)
    coords = torch.rand(32, 3) * 2 - 1
    term = rt.RateTerm(core, cfg)
    tau = term.begin_step(3, 10)
    assert tau is not None

    def distortion() -> torch.Tensor:
        torch.manual_seed(1)
        return wb.interpolate_wisp(core, coords, None, "cat", tau).pow(2).mean()

    def rate() -> torch.Tensor:
        torch.manual_seed(2)
        return _rate(core, 3, 10, cfg)

    core.zero_grad()
    distortion().backward()
    dist_grads = _grads(core)
    core.zero_grad()
    rate().backward()
    rate_grads = _grads(core)
    scale = 1.0 if grad_scale is None else grad_scale
    expected = [d + scale * r for d, r in zip(dist_grads, rate_grads)]

    optimizer = torch.optim.SGD(core.parameters(), lr=0.0)
    term.attach(optimizer)
    core.zero_grad()
    distortion().backward()
    torch.manual_seed(2)
    if grad_scale is None:
        optimizer.step()  # the registered pre-step hook adds the rate gradient
    else:
        optimizer.grad_scale = torch.tensor(grad_scale)  # as GradScaler sets it for fused steps
        term.pre_step_hook(optimizer, (), {})
    for got, want in zip(_grads(core), expected):
        assert torch.allclose(got, want, atol=1e-6)
    assert torch.count_nonzero(rate_grads[0]) > 0 and term.last_bits > 0


def test_rate_term_under_grad_scaler_matches_the_joint_loss(core):
    core.train()
    cfg = rt.schedule_config(1e-2, 1e-3, 0.9, 1.0, 0.05, None)
    coords = torch.rand(32, 3) * 2 - 1

    def one_step(use_hook: bool) -> ShaciraGrid:
        grid = copy.deepcopy(core)
        term = rt.RateTerm(grid, cfg)
        tau = term.begin_step(3, 10)
        optimizer = torch.optim.Adam(grid.parameters(), lr=1e-2)
        torch.manual_seed(1)
        distortion = wb.interpolate_wisp(grid, coords, None, "cat", tau).pow(2).mean()
        if use_hook:
            term.attach(optimizer)
            scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
            scaler.scale(distortion).backward()
            torch.manual_seed(2)
            scaler.step(optimizer)
            scaler.update()
        else:
            torch.manual_seed(2)
            (distortion + _rate(grid, 3, 10, cfg)).backward()
            optimizer.step()
        return grid

    hooked, joint = one_step(True), one_step(False)
    assert not torch.equal(hooked.latents, core.latents)
    for a, b in zip(hooked.parameters(), joint.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_export_and_load_round_trip(core, tmp_path):
    torch.manual_seed(3)
    nef = FakeNef(core)
    heads = wb.heads_of(nef)
    assert set(heads) == {"decoder_density", "decoder_color", "extra"}
    path = tmp_path / "scene.shac"
    sections = {"wisp": {"multiscale_type": "cat"}, "nef": {"hidden_dim": 16}}
    nbytes = wb.export_wisp_nerf(core, heads, path, sections)
    assert nbytes == path.stat().st_size
    model = read_shac(path)
    assert model.config["task"] == wb.WISP_TASK and model.config["nef"]["hidden_dim"] == 16
    coords = torch.rand(50, 3) * 2 - 1
    expected = nef.decoder_density(wb.interpolate_wisp(core, coords, None, "cat"))

    torch.manual_seed(99)
    other_core = ShaciraGrid(3, core.config).eval()
    other = FakeNef(other_core)
    wb.load_wisp_nerf(path, other_core, wb.heads_of(other))
    got = other.decoder_density(wb.interpolate_wisp(other_core, coords, None, "cat"))
    assert torch.equal(got, expected)

    wrong = ShaciraGrid(3, small_config(num_lods=3))
    with pytest.raises(BitstreamError, match="grid configuration differs"):
        wb.load_wisp_nerf(path, wrong, wb.heads_of(FakeNef(wrong)))


@pytest.mark.parametrize("total,fired", [(300, 3), (30, 2), (10, 2), (3, 0)])
def test_wisp_lr_factor_fires_on_whole_milestones_only(total, fired):
    milestones = [total * m for m in (0.5, 0.75, 0.9)]       # as Wisp's init_optimizer
    assert wb.wisp_lr_factor(total, milestones, 0.5) == 0.5**fired
    assert wb.wisp_lr_factor(0, milestones, 0.5) == 1.0


def test_user_error_cause_unwraps_wrappers():
    error = ConfigError("grid.num_lods must be >= 1, got 0")
    try:
        try:
            raise error
        except ConfigError as inner:
            raise RuntimeError("Error in call to target 'ShaciraGrid.from_geometric'") from inner
    except RuntimeError as outer:
        assert wb.user_error_cause(outer) is error
    assert wb.user_error_cause(ValueError("x")) is None
    assert wb.user_error_cause(error) is error
