"""The Triton kernels against the reference, their selection and their fallbacks.

``test_kernel_*`` run the kernels: on CUDA when there is one, else on CPU tensors under
Triton's interpreter (``TRITON_INTERPRET=1``), which must be set before the kernels
module is imported; :func:`test_kernels_under_the_interpreter` therefore runs them in
a child pytest with the variable set. Everything skips without Triton.

Tolerances: forwards must be bit-identical to ``encode_reference`` on the CPU (corners summed in
corner order, no fused multiply-add); table gradients are float32 atomics in any
order, compared with ``rtol = atol = 1e-5`` (features and gradients of order 1; the
largest difference seen is ~2e-6).
"""
from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from wisp_shacira.grid import fast, triton_select
from wisp_shacira.grid.encoding import encode_reference
from wisp_shacira.grid.fast import encode, select_backend
from wisp_shacira.grid.hashing import make_layout
from wisp_shacira.grid.shacira_grid import GridConfig, ShaciraGrid

HAS_TRITON = importlib.util.find_spec("triton") is not None
CUDA = torch.cuda.is_available()
INTERPRETED = os.environ.get("TRITON_INTERPRET", "") == "1"
DEVICE = torch.device("cuda" if CUDA else "cpu")
runs_kernels = pytest.mark.skipif(
    not HAS_TRITON or not (CUDA or INTERPRETED),
    reason="needs Triton and CUDA, or TRITON_INTERPRET=1 (run by "
           "test_kernels_under_the_interpreter)")

# (dim, min_res, max_res, levels, log2 T, F): dense and hashed levels in each; the last
# has vertices * prime far above 2^32 (the uint32 hash must wrap like the int64 one).
CONFIGS = [
    (2, 2, 40, 4, 7, 1),
    (2, 3, 64, 3, 8, 3),
    (3, 2, 24, 3, 9, 2),
    (3, 4, 33, 3, 10, 4),
    (1, 4, 200, 3, 6, 2),
    (3, 2, 4096, 3, 9, 2),
]
CASES = [(config, None) for config in CONFIGS] + [(CONFIGS[0], 2), (CONFIGS[2], 2),
                                                   (CONFIGS[3], 0)]
POINTS = 300 if CUDA else 200      # the interpreter: one program of 256 points per level


@pytest.fixture(autouse=True)
def _fresh_state():
    """Backend state reset around each test (no monkeypatch here: a test's patches are
    undone before this teardown runs)."""
    saved = os.environ.pop(fast.ENV_VAR, None)
    triton_select.reset()
    fast._failed.clear()
    yield
    triton_select.reset()
    fast._failed.clear()
    os.environ.pop(fast.ENV_VAR, None)
    if saved is not None:
        os.environ[fast.ENV_VAR] = saved


def _inputs(dim: int, min_res: int, max_res: int, levels: int, log2_t: int, feat: int,
            num_points: int = POINTS, device: torch.device = DEVICE):
    layout = make_layout(dim, min_res, max_res, levels, log2_t)
    assert any(layout.dense) and not all(layout.dense)
    gen = torch.Generator().manual_seed(dim * 100 + levels + feat)
    table = torch.randn(layout.total_rows, feat, generator=gen)
    coords = torch.rand(num_points, dim, generator=gen) * 1.1 - 0.05
    coords[:3] = torch.tensor([0.0, 1.0, 0.5])[:, None]
    grad_out = torch.randn(num_points, levels * feat, generator=gen)
    return layout, table.to(device), coords.to(device), grad_out.to(device)


def _forward_backward(fn, table: torch.Tensor, grad_out: torch.Tensor):
    leaf = table.clone().requires_grad_()
    out = fn(leaf)
    if out.requires_grad:
        out.backward(grad_out)
    grad = leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)
    return out.detach(), grad


@runs_kernels
@pytest.mark.parametrize(("config", "num_active"), CASES)
def test_kernel_matches_reference(config: tuple, num_active: int | None) -> None:
    from wisp_shacira.grid.triton_kernels import encode_triton

    layout, table, coords, grad_out = _inputs(*config)
    active = layout.num_levels if num_active is None else num_active
    want = _forward_backward(lambda t: encode_reference(t, coords, layout, num_active),
                             table, grad_out)
    got = _forward_backward(lambda t: encode_triton(t, coords, layout, active), table, grad_out)
    cpu = encode_reference(table.cpu(), coords.cpu(), layout, num_active)
    assert torch.equal(got[0].cpu(), cpu)                # the CPU reference's rounding, exactly
    torch.testing.assert_close(got[1], want[1], rtol=1e-5, atol=1e-5)


@runs_kernels
def test_kernel_is_chosen_and_forced_through_the_dispatch(
        monkeypatch: pytest.MonkeyPatch) -> None:
    layout, table, coords, grad_out = _inputs(*CONFIGS[2])
    leaf = table.clone().requires_grad_()
    assert select_backend(leaf, coords, None, "triton") == "triton"
    if CUDA:
        assert select_backend(leaf, coords, None) == "triton"        # training on CUDA
        with torch.no_grad():
            assert select_backend(leaf, coords, None) == "torch"     # evaluation
    monkeypatch.setenv(fast.ENV_VAR, "triton")
    want = _forward_backward(lambda t: encode_reference(t, coords, layout), table, grad_out)
    got = _forward_backward(lambda t: encode(t, coords, layout), table, grad_out)
    assert torch.equal(got[0].cpu(), encode_reference(table.cpu(), coords.cpu(), layout))
    torch.testing.assert_close(got[1], want[1], rtol=1e-5, atol=1e-5)


@runs_kernels
def test_kernel_deterministic_mode() -> None:
    from wisp_shacira.grid.triton_kernels import encode_triton

    layout, table, coords, grad_out = _inputs(*CONFIGS[2])
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        runs = [_forward_backward(lambda t: encode_triton(t, coords, layout, 3), table, grad_out)
                for _ in range(2)]
    finally:
        torch.use_deterministic_algorithms(before)
    assert torch.equal(runs[0][1], runs[1][1])
    want = _forward_backward(lambda t: encode_reference(t, coords, layout), table, grad_out)
    torch.testing.assert_close(runs[0][1], want[1], rtol=1e-5, atol=1e-5)


@runs_kernels
def test_kernel_trains_a_grid_latents_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """D = 1 latents, F = 2 features, soft rounding: the grid's gradients match the reference."""
    torch.manual_seed(0)
    grid = ShaciraGrid(3, GridConfig(num_levels=3, min_res=2, max_res=24, log2_table_size=9,
                                     feature_dim=2, latent_dim=1, latent_init=2.0)).to(DEVICE)
    coords = torch.rand(200, 3, device=DEVICE)
    grads = {}
    for name in ("reference", "triton"):
        monkeypatch.setenv(fast.ENV_VAR, name)
        grid.zero_grad()
        torch.manual_seed(1)
        out = grid.interpolate(coords, tau=0.5)
        out.square().sum().backward()
        grads[name] = (out.detach(), [p.grad.clone() for p in grid.parameters()
                                      if p.grad is not None])
    torch.testing.assert_close(grads["triton"][0], grads["reference"][0], rtol=1e-5, atol=1e-5)
    for got, want in zip(grads["triton"][1], grads["reference"][1]):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not HAS_TRITON or CUDA or INTERPRETED,
                    reason="needs Triton; with CUDA the kernel tests run directly")
def test_kernels_under_the_interpreter(child_pytest) -> None:
    child_pytest(__file__, "test_kernel_", env={"TRITON_INTERPRET": "1"})


def test_cpu_tensors_never_take_triton_automatically() -> None:
    layout, table, coords, _ = _inputs(*CONFIGS[0], device=torch.device("cpu"))
    assert select_backend(table.clone().requires_grad_(), coords, None) in ("numba", "torch")


def test_forced_without_a_usable_device_falls_back(monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    layout, table, coords, _ = _inputs(*CONFIGS[0], device=torch.device("cpu"))
    with caplog.at_level(logging.INFO, logger="wisp_shacira.grid.triton_select"):
        assert select_backend(table, coords, None, "triton") == "torch"
        assert select_backend(table, coords, None, "triton") == "torch"
    assert len([r for r in caplog.records if "triton backend requested" in r.message]) == 1
    assert torch.equal(encode(table, coords, layout, backend="triton"),
                       encode_reference(table, coords, layout))


def test_fallback_when_triton_is_missing(monkeypatch: pytest.MonkeyPatch,
                                         caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "triton", None)
    monkeypatch.delitem(sys.modules, "wisp_shacira.grid.triton_kernels", raising=False)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    layout, table, coords, grad_out = _inputs(*CONFIGS[2], device=torch.device("cpu"))
    with caplog.at_level(logging.INFO, logger="wisp_shacira.grid"):
        assert select_backend(table, coords, None, "triton") == "torch"
    assert triton_select.load_triton() is None
    assert any("triton backend unavailable" in r.message for r in caplog.records)
    want = _forward_backward(lambda t: encode_reference(t, coords, layout), table, grad_out)
    got = _forward_backward(lambda t: encode(t, coords, layout, backend="triton"), table,
                            grad_out)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_fallback_when_the_kernels_fail(monkeypatch: pytest.MonkeyPatch,
                                        caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("simulated compilation failure\nsecond line")

    def unused(*args: object) -> None:
        raise AssertionError("the kernels must not run after a failed probe")

    kernels = SimpleNamespace(fits_layout=lambda layout: True, probe=broken, encode_triton=unused)
    monkeypatch.setattr(fast, "load_triton", lambda: kernels)
    monkeypatch.setattr(triton_select, "load_triton", lambda: kernels)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    layout, table, coords, grad_out = _inputs(*CONFIGS[1], device=torch.device("cpu"))
    assert select_backend(table, coords, None, "triton") == "triton"
    want = _forward_backward(lambda t: encode_reference(t, coords, layout), table, grad_out)
    with caplog.at_level(logging.WARNING, logger="wisp_shacira.grid.triton_select"):
        for _ in range(2):
            got = _forward_backward(lambda t: encode(t, coords, layout, backend="triton"),
                                    table, grad_out)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    warnings = [r.message for r in caplog.records if "failed to compile" in r.message]
    assert len(warnings) == 1 and "second line" not in warnings[0]
    assert select_backend(table, coords, None, "triton") == "torch"


def test_importing_the_grid_does_not_import_triton() -> None:
    code = ("import sys, torch; before = 'triton' in sys.modules; "
            "import wisp_shacira.grid.shacira_grid, wisp_shacira.fields.nerf; "
            "from wisp_shacira.grid import fast; fast.select_backend(torch.zeros(4, 1), "
            "torch.zeros(2, 3), None); assert before or 'triton' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
