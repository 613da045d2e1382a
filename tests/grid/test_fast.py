"""Fast encoding paths must equal the reference (outputs and table gradients)."""
from __future__ import annotations

import importlib.util
import sys
from typing import Callable

import pytest
import torch

from wisp_shacira.errors import ConfigError
from wisp_shacira.grid import fast
from wisp_shacira.grid.encoding import encode_reference
from wisp_shacira.grid.fast import build_plan, encode, select_backend
from wisp_shacira.grid.hashing import GridLayout, make_layout
from wisp_shacira.grid.shacira_grid import GridConfig, ShaciraGrid

HAS_NUMBA = importlib.util.find_spec("numba") is not None
Pair = tuple[torch.Tensor, torch.Tensor]
needs_numba = pytest.mark.skipif(not HAS_NUMBA, reason="numba (extra 'fast') not installed")

# (dim, min_res, max_res, levels, log2 T, F): every case has dense and hashed levels.
CONFIGS = [
    (2, 2, 40, 5, 7, 1),
    (2, 3, 64, 4, 8, 3),
    (3, 2, 24, 4, 9, 2),
    (3, 4, 33, 3, 10, 1),
    (1, 4, 200, 3, 6, 2),
]


@pytest.fixture(autouse=True)
def _fresh_backend_state(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(fast.ENV_VAR, raising=False)
    fast.load_numba.cache_clear()
    fast._failed.clear()
    yield
    fast.load_numba.cache_clear()
    fast._failed.clear()


def _inputs(dim: int, min_res: int, max_res: int, levels: int, log2_t: int, feat: int,
            num_points: int = 200) -> tuple[GridLayout, torch.Tensor, torch.Tensor, torch.Tensor]:
    layout = make_layout(dim, min_res, max_res, levels, log2_t)
    assert any(layout.dense) and not all(layout.dense)
    gen = torch.Generator().manual_seed(dim * 100 + levels)
    table = torch.randn(layout.total_rows, feat, generator=gen)
    coords = torch.rand(num_points, dim, generator=gen) * 1.1 - 0.05
    coords[:3] = torch.tensor([0.0, 1.0, 0.5])[:, None]
    grad_out = torch.randn(num_points, levels * feat, generator=gen)
    return layout, table, coords, grad_out


def _run(table: torch.Tensor, grad_out: torch.Tensor,
         fn: Callable[[torch.Tensor], torch.Tensor]) -> Pair:
    leaf = table.clone().requires_grad_()
    out = fn(leaf)
    if out.requires_grad:
        out.backward(grad_out)
    grad = leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)
    return out.detach(), grad


def _assert_same(got: Pair, want: Pair) -> None:
    torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[1], want[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", ["torch", pytest.param("numba", marks=needs_numba), "plan"])
@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("num_active", [None, 2, 0])
def test_fast_paths_equal_reference(backend: str, config: tuple, num_active: int | None) -> None:
    layout, table, coords, grad_out = _inputs(*config)
    plan = build_plan(coords, layout) if backend == "plan" else None
    want = _run(table, grad_out, lambda t: encode_reference(t, coords, layout, num_active))
    assert select_backend(table, coords, plan, backend) == backend
    got = _run(table, grad_out, lambda t: encode(t, coords, layout, num_active, plan, backend))
    _assert_same(got, want)


@needs_numba
def test_automatic_choice_on_cpu() -> None:
    layout, table, coords, _ = _inputs(*CONFIGS[0])
    assert select_backend(table, coords, None) == "numba"
    assert select_backend(table.double(), coords.double(), None) == "torch"
    assert select_backend(table, coords, build_plan(coords, layout)) == "plan"
    assert select_backend(table, coords.clone().requires_grad_(), None) == "reference"


def test_environment_variable_forces_a_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    layout, table, coords, _ = _inputs(*CONFIGS[0])
    monkeypatch.setenv(fast.ENV_VAR, "reference")
    assert select_backend(table, coords, None) == "reference"
    monkeypatch.setenv(fast.ENV_VAR, "torch")
    assert select_backend(table, coords, build_plan(coords, layout)) == "torch"
    assert select_backend(table, None, build_plan(coords, layout)) == "plan"
    monkeypatch.setenv(fast.ENV_VAR, "cuda-magic")
    with pytest.raises(ConfigError, match="WISP_SHACIRA_ENCODING"):
        select_backend(table, coords, None)
    monkeypatch.setenv(fast.ENV_VAR, "plan")
    assert select_backend(table, coords, None) in ("numba", "torch")   # no plan: automatic


@pytest.mark.parametrize("backend", ["torch", pytest.param("numba", marks=needs_numba)])
@pytest.mark.parametrize("config", CONFIGS)
def test_forward_outputs_are_bit_identical_across_backends(backend: str, config: tuple) -> None:
    """Decoding may run on any backend: the features (not just close) must be the same."""
    layout, table, coords, _ = _inputs(*config, num_points=5000)
    want = encode_reference(table, coords, layout)
    assert torch.equal(encode(table, coords, layout, backend=backend), want)


def test_fallback_when_numba_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "numba", None)
    monkeypatch.delitem(sys.modules, "wisp_shacira.grid.numba_kernels", raising=False)
    layout, table, coords, grad_out = _inputs(*CONFIGS[2])
    assert fast.load_numba() is None
    assert select_backend(table, coords, None) == "torch"
    assert select_backend(table, coords, None, "numba") == "torch"
    want = _run(table, grad_out, lambda t: encode_reference(t, coords, layout))
    _assert_same(_run(table, grad_out, lambda t: encode(t, coords, layout, backend="numba")), want)


@needs_numba
def test_fallback_when_numba_kernels_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    kernels = fast.load_numba()

    def broken(*args: object) -> torch.Tensor:
        raise kernels.NumbaError("simulated compilation failure")

    monkeypatch.setattr(kernels, "encode_numba", broken)
    layout, table, coords, grad_out = _inputs(*CONFIGS[1])
    want = _run(table, grad_out, lambda t: encode_reference(t, coords, layout))
    _assert_same(_run(table, grad_out, lambda t: encode(t, coords, layout)), want)
    assert select_backend(table, coords, None) == "torch"


@pytest.mark.parametrize("backend", ["torch", pytest.param("numba", marks=needs_numba)])
def test_decoded_latents_receive_gradients(backend: str) -> None:
    """Through ShaciraGrid (D = 2 latents decoded to F = 3 features), as in training."""
    torch.manual_seed(0)
    grid = ShaciraGrid(3, GridConfig(num_levels=4, min_res=2, max_res=20, log2_table_size=9,
                                     feature_dim=3, latent_dim=2, latent_init=2.0))
    grid.eval()
    coords = torch.rand(150, 3)
    grads = {}
    for name in ("reference", backend):
        grid.zero_grad()
        table = grid.decoded_table()
        out = encode(table, coords, grid.layout, 3, backend=name)
        (out.sin().sum()).backward()
        grads[name] = (out.detach(), grid.latents.grad.clone(), grid.decoder.weight.grad.clone())
    assert grads[backend][1].abs().sum() > 0
    for got, want in zip(grads[backend], grads["reference"]):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_torch_path_on_cuda_matches_cpu_reference() -> None:
    layout, table, coords, grad_out = _inputs(*CONFIGS[2])
    want = _run(table, grad_out, lambda t: encode_reference(t, coords, layout))
    cuda = torch.device("cuda")
    got = _run(table.to(cuda), grad_out.to(cuda),
               lambda t: encode(t, coords.to(cuda), layout))
    _assert_same((got[0].cpu(), got[1].cpu()), want)
