"""Machine-independent decode arithmetic (:mod:`wisp_shacira.grid.exact`)."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from wisp_shacira.grid import exact


def _rows(seed: int, n: int, k: int, scale: float = 3.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, k, generator=gen) * scale
    x[::7] *= 1e-3  # rows of very different magnitudes
    return x


def test_linear_is_the_exact_sum_of_the_rounded_terms() -> None:
    x, w, b = _rows(0, 6, 70), _rows(1, 4, 70), _rows(2, 1, 4)[0]
    out = exact.exact_linear(x, w, b)
    qx, ex = exact.quantize_rows(x, exact.INPUT_BITS)
    qw, ew = exact.quantize_rows(w, exact.WEIGHT_BITS)
    for i in range(x.shape[0]):
        for j in range(w.shape[0]):
            blocks = [sum(int(qx[i, k]) * int(qw[j, k])
                          for k in range(s, min(s + exact.BLOCK, x.shape[1])))
                      for s in range(0, x.shape[1], exact.BLOCK)]
            acc = float(blocks[0])
            for block in blocks[1:]:
                acc = acc + float(block)  # each block is exact; the block sums are ordered
            value = acc * 2.0 ** int(ex[i]) * 2.0 ** int(ew[j]) + float(b[j])
            assert out[i, j].item() == np.float32(value)


def test_linear_is_close_to_float64_and_row_local() -> None:
    x, w, b = _rows(3, 3000, 37), _rows(4, 11, 37), _rows(5, 1, 11)[0]
    out = exact.exact_linear(x, w, b)
    ref = x.double() @ w.double().T + b.double()
    assert torch.allclose(out.double(), ref, rtol=1e-6, atol=1e-5 * ref.abs().max().item())
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))
    assert torch.equal(exact.exact_linear(x[perm], w, b), out[perm])
    parts = torch.cat([exact.exact_linear(x[:17], w, b), exact.exact_linear(x[17:], w, b)])
    assert torch.equal(parts, out)
    assert exact.exact_linear(x.reshape(10, 300, 37), w, b).shape == (10, 300, 11)


def test_linear_does_not_depend_on_the_thread_count() -> None:
    x, w = _rows(6, 20000, 64), _rows(7, 64, 64)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = exact.exact_linear(x, w)
        torch.set_num_threads(2)
        two = exact.exact_linear(x, w)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)


def test_float32_rounding_equals_the_float64_rounding() -> None:
    x = _rows(10, 400, 33)
    x[1] *= 1e-36  # shifts beyond float32's exponent range: the float64 path
    x[2, :5] = torch.tensor([1e-45, -3e-42, 1e-38, 0.0, -0.0])  # subnormal terms
    x[3] = torch.tensor(1e-39)  # a subnormal row
    x[4, 0] = 2.0**24 - 0.5  # the largest term rounds up to 2^bits
    for bits in (exact.INPUT_BITS, exact.SUM_BITS):
        for part in (x, x[5:]):  # with, and without, the rows that need float64
            q32, e32 = exact.quantize_rows(part, bits)
            q64, e64 = exact.quantize_rows(part.double(), bits)
            assert torch.equal(q32, q64) and torch.equal(e32, e64)
            assert q32.abs().max() <= 2.0**bits


def test_linear_edge_cases() -> None:
    assert exact.exact_linear(torch.zeros(0, 5), torch.ones(3, 5)).shape == (0, 3)
    assert torch.equal(exact.exact_linear(torch.ones(2, 0), torch.ones(3, 0), torch.ones(3)),
                       torch.ones(2, 3))
    assert torch.equal(exact.exact_linear(torch.zeros(2, 4), torch.ones(3, 4)), torch.zeros(2, 3))
    out = exact.exact_linear(torch.tensor([[math.nan, 1.0], [1.0, 2.0]]), torch.eye(2))
    assert torch.isnan(out[0]).all() and torch.equal(out[1], torch.tensor([1.0, 2.0]))


def test_exact_linear_module_switches_on_the_gradient_mode() -> None:
    layer = exact.ExactLinear(5, 3)
    x = _rows(8, 50, 5)
    with torch.no_grad():
        decoded = layer(x)
    assert torch.equal(decoded, exact.exact_linear(x, layer.weight, layer.bias))
    trained = layer(x)
    assert trained.requires_grad
    assert torch.allclose(decoded, trained, rtol=1e-5, atol=1e-6)
    assert set(layer.state_dict()) == {"weight", "bias"}


def _ulps(value: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Distance in float32 ulps of ``value`` from the float64 ``ref``."""
    spacing = torch.from_numpy(np.spacing(np.abs(ref.float().numpy()))).double()
    return (value.double() - ref).abs() / spacing


def test_exp_sigmoid_softplus_within_one_ulp() -> None:
    x = torch.linspace(-100.0, 88.0, 100_001)
    normal = torch.exp(x.double()) > 2.0**-126
    assert _ulps(exact.exact_exp(x), torch.exp(x.double()))[normal].max() <= 0.5 + 1e-6
    assert _ulps(exact.exact_sigmoid(x), torch.sigmoid(x.double()))[x > -80].max() <= 1.0
    soft = torch.nn.functional.softplus(x.double())
    assert _ulps(exact.exact_softplus(x), soft)[soft > 2.0**-126].max() <= 1.0
    special = torch.tensor([math.nan, math.inf, -math.inf, 0.0])
    assert torch.equal(torch.isnan(exact.exact_exp(special)), torch.tensor([True, False, False, False]))
    assert exact.exact_exp(special)[1:].tolist() == [math.inf, 0.0, 1.0]


def test_sin_cos_within_one_ulp() -> None:
    x = torch.linspace(-3300.0, 3300.0, 200_001)
    sin, cos = exact.exact_sin_cos(x)
    assert (sin.double() - torch.sin(x.double())).abs().max() < 6e-8
    assert (cos.double() - torch.cos(x.double())).abs().max() < 6e-8
    sin, cos = exact.exact_sin_cos(torch.tensor([math.nan, math.inf]))
    assert torch.isnan(sin).all() and torch.isnan(cos).all()


def test_sums_are_order_independent_and_close() -> None:
    x = torch.rand(40, 300, generator=torch.Generator().manual_seed(9))
    total = exact.exact_sum(x, -1)
    assert torch.allclose(total.double(), x.double().sum(-1), rtol=1e-7)
    perm = torch.randperm(300, generator=torch.Generator().manual_seed(1))
    assert torch.equal(exact.exact_sum(x[:, perm], -1), total)
    assert torch.equal(exact.exact_sum(x.T, 0), total)
    running = exact.exact_cumsum(x, -1)
    assert torch.allclose(running.double(), x.double().cumsum(-1), rtol=1e-6)
    before = exact.exact_cumsum(x, -1, exclusive=True)
    assert torch.equal(before[:, 0], torch.zeros(40))
    # each prefix is rounded to float32 once (|prefix| <= 300, half an ulp < 2e-5)
    assert torch.allclose(running.double() - before.double(), x.double(), atol=4e-5)
    assert torch.isnan(exact.exact_sum(torch.tensor([[1.0, math.nan]]), -1)).all()


def test_pow2_is_exact() -> None:
    exponents = torch.arange(-1022, 1024)
    assert [Fraction(v) for v in exact.pow2(exponents).tolist()[::97]] == [
        Fraction(2) ** int(e) for e in exponents.tolist()[::97]]


@pytest.mark.parametrize("fn", [exact.exp, exact.sigmoid, exact.softplus])
def test_dispatch_keeps_torch_and_its_gradient_when_training(fn) -> None:
    x = torch.linspace(-5, 5, 11, requires_grad=True)
    trained = fn(x)
    trained.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    with torch.no_grad():
        decoded = fn(x)
    assert not decoded.requires_grad
    assert torch.allclose(trained.detach(), decoded, rtol=1e-6, atol=1e-7)


def _is_correctly_rounded(x: float, root: float, dtype: np.dtype) -> bool:
    """``root`` is the representable value of ``dtype`` nearest ``sqrt(x)`` (exact rationals:
    the midpoints to both neighbours bracket ``x`` when squared)."""
    if x == 0.0:
        return root == 0.0
    r = np.array(root, dtype=dtype)
    up = Fraction(float(np.nextafter(r, np.array(np.inf, dtype=dtype))))
    down = Fraction(float(np.nextafter(r, np.array(0.0, dtype=dtype))))
    mid_up, mid_down = (Fraction(root) + up) / 2, (Fraction(root) + down) / 2
    return mid_down**2 <= Fraction(x) <= mid_up**2


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sqrt_is_correctly_rounded(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(11)
    x = torch.cat([torch.rand(3000, generator=gen, dtype=torch.float64) * 10.0,
                   torch.exp(torch.randn(3000, generator=gen, dtype=torch.float64) * 20.0)])
    x = x.to(dtype)
    root = exact.exact_sqrt(x)
    assert root.dtype == dtype and root.shape == x.shape
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    assert all(_is_correctly_rounded(float(v), float(r), np_dtype)
               for v, r in zip(x.tolist(), root.tolist()))


def test_sqrt_special_values_shapes_and_dtypes() -> None:
    special = torch.tensor([0.0, -0.0, math.inf, 1e-45, 4.0, -1.0, math.nan])
    root = exact.exact_sqrt(special)
    assert root[[0, 1, 2, 4]].tolist() == [0.0, -0.0, math.inf, 2.0]
    assert math.copysign(1.0, root[1].item()) == -1.0
    assert _is_correctly_rounded(special[3].item(), root[3].item(), np.float32)  # subnormal
    assert torch.isnan(root[5:]).all()
    assert exact.exact_sqrt(torch.full((2, 3), 9.0)).shape == (2, 3)
    half = exact.exact_sqrt(torch.tensor([2.0, 3.0], dtype=torch.bfloat16))
    assert half.dtype == torch.bfloat16
    assert torch.equal(half, torch.tensor([2.0, 3.0]).sqrt().to(torch.bfloat16))
    strided = torch.arange(12.0).reshape(3, 4).T
    assert torch.equal(exact.exact_sqrt(strided), exact.exact_sqrt(strided.contiguous()))


def test_normalize_keeps_the_gradient_when_training() -> None:
    v = torch.tensor([[3.0, 4.0, 12.0]], requires_grad=True)
    out = exact.normalize(v)
    out.sum().backward()
    assert v.grad is not None
    assert torch.equal(exact.normalize(v.detach()), torch.tensor([[3.0, 4.0, 12.0]]) / 13.0)


def test_cross_is_the_cross_product() -> None:
    gen = torch.Generator().manual_seed(12)
    a, b = torch.randn(2, 100, 3, generator=gen, dtype=torch.float64)
    out = exact.cross(a, b)
    assert torch.allclose(out, torch.linalg.cross(a, b), rtol=0, atol=1e-14)
    a1, a2, a3 = a[7].tolist()
    b1, b2, b3 = b[7].tolist()
    assert out[7].tolist() == [a2 * b3 - a3 * b2, a3 * b1 - a1 * b3, a1 * b2 - a2 * b1]
