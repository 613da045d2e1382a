"""Decode arithmetic whose result does not depend on the machine.

A float32 matrix product goes through the BLAS library, which picks its kernels by CPU
(vector width, blocking, fused multiply-adds), and a float reduction sums in an order
set by the vector width; so two machines can decode one file to different pixels.
The functions here compute the same quantities from operations whose result IEEE 754
fixes exactly on every machine, thread count and backend (CPU or CUDA):

- elementwise ``+ - * /``, comparisons, rounding (each correctly rounded);
- the square root of :func:`exact_sqrt` (correctly rounded; ``torch.sqrt`` on the CPU is
  not: it calls MKL's vector math, whose last bit depends on the CPU's instruction set);
- integer arithmetic, whose sums do not depend on their order;
- float64 products and sums of integers whose every partial sum stays below ``2^53``
  in magnitude: such a sum is exact, so no summation order or fused multiply-add can
  change it.

:func:`exact_linear` rounds each input row to ``INPUT_BITS`` significant bits and each
weight row to ``WEIGHT_BITS`` (a power-of-two scale per row, so a row's result does not
depend on the other rows of the batch), multiplies the integers exactly in float64 and
scales back once. :func:`exact_exp` is a Cody-Waite reduction and a Taylor polynomial
in float64. :func:`exact_sum` and :func:`exact_cumsum` sum fixed-point integers.

The results differ from torch's float32 operations by rounding (about ``2^-24`` of a
row's largest input or weight for :func:`exact_linear`, under one float32 ulp for the
transcendental functions). Callers use them where no gradient is recorded
(:func:`decoding`): decoding, evaluation and rendering of a trained field; training
keeps torch's operations and their autograd.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

INPUT_BITS = 24
WEIGHT_BITS = 24
#: Products of two 24-bit integers, summed over this many terms, stay below
#: 2^53 (24 + 24 + 5 = 53): the float64 matrix product of one block is exact.
BLOCK = 2 ** (53 - INPUT_BITS - WEIGHT_BITS)
#: Significant bits of each term of :func:`exact_sum`; the int64 total of up to
#: 2^(62 - SUM_BITS) terms cannot overflow.
SUM_BITS = 40
#: Rows of :func:`exact_linear` per block of float64 temporaries.
ROWS = 2**13

_LN2_HI = 6.93147180369123816490e-01  # fdlibm: the high part has 21 trailing zero bits
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_EXP_TERMS = [1.0 / math.factorial(n) for n in range(14)]
_LOG1P_TERMS = [2.0 / (2 * n + 1) for n in range(20)]
_PIO2_HI = 1.57079632673412561417e00  # fdlibm: 33 significant bits
_PIO2_LO = 6.07710050650619224932e-11
_INV_PIO2 = 6.36619772367581382433e-01
_SIN_TERMS = [(-1.0) ** n / math.factorial(2 * n + 1) for n in range(10)]
_COS_TERMS = [(-1.0) ** n / math.factorial(2 * n) for n in range(10)]


def decoding() -> bool:
    """True where no gradient is recorded: the callers then use this module's arithmetic."""
    return not torch.is_grad_enabled()


def pow2(exponent: Tensor) -> Tensor:
    """``2.0 ** exponent`` as float64, built from its bits (exact): int64 in [-1022, 1023]."""
    biased = (exponent.to(torch.int64).clamp(-1022, 1023) + 1023) << 52
    return biased.view(torch.float64)


def _rounded_rows(x: Tensor, bits: int) -> tuple[Tensor, Tensor, Tensor | None]:
    """``round(x * 2^shift)`` per row (float32 where that is exact, else float64),
    ``shift [N, 1]`` int64, and the rows' finite mask ``[N, 1]`` (None if all are)."""
    peak = x.abs().amax(dim=-1, keepdim=True) if x.shape[-1] else x.new_zeros(x.shape[0], 1)
    finite = torch.isfinite(peak)
    all_finite = bool(finite.all())
    if not all_finite:
        peak = torch.where(finite, peak, torch.zeros_like(peak))
    _, exponent = torch.frexp(peak)
    shift = (bits - exponent.to(torch.int64)).clamp(-1022, 1023)
    if x.dtype == torch.float32 and bool(((shift >= -126) & (shift <= 127)).all()):
        # The float32 product is exact (a power of two; below 2^bits, or too small to
        # round to anything but 0), so this equals the float64 rounding, at a fifth of
        # its cost.
        q = torch.round(x * pow2(shift).float())
    else:
        q = torch.round(x.double() * pow2(shift))
    return q, shift, None if all_finite else finite


def quantize_rows(x: Tensor, bits: int) -> tuple[Tensor, Tensor]:
    """Integers ``q`` and exponents ``e`` with ``x ~ q * 2^e`` per row.

    Args:
        x: ``[N, K]`` float.
        bits: the largest ``|q|`` of a row is at most ``2^bits``.

    Returns:
        ``q [N, K]`` float64 integers and ``e [N, 1]`` int64; rows that hold a NaN or
        an infinity give NaN in ``q``.
    """
    q, shift, finite = _rounded_rows(x, bits)
    q = q.double()
    if finite is not None:
        q = torch.where(finite, q, torch.full_like(q, math.nan))
    return q, -shift


def exact_linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias`` with a result that only depends on the row's inputs.

    Args:
        x: ``[..., K]`` float; weight: ``[M, K]``; bias: ``[M]`` or None.

    Returns:
        ``[..., M]`` in ``x``'s dtype (rows are done ``ROWS`` at a time, so the float64
        temporaries stay small).
    """
    lead, width = x.shape[:-1], x.shape[-1]
    rows = x.reshape(math.prod(lead), width)
    qw, ew = quantize_rows(weight, WEIGHT_BITS)
    qw_t, scale_w = qw.T.contiguous(), pow2(ew.T)
    shift = None if bias is None else bias.double()
    out = x.new_empty(rows.shape[0], weight.shape[0])
    for first in range(0, rows.shape[0], ROWS):
        qx, ex = quantize_rows(rows[first:first + ROWS], INPUT_BITS)
        acc = qx[:, :BLOCK] @ qw_t[:BLOCK]
        for start in range(BLOCK, width, BLOCK):
            acc.add_(qx[:, start:start + BLOCK] @ qw_t[start:start + BLOCK])
        acc.mul_(pow2(ex)).mul_(scale_w)
        out[first:first + ROWS] = acc if shift is None else acc.add_(shift)
    return out.reshape(*lead, weight.shape[0])


class ExactLinear(nn.Linear):
    """``nn.Linear`` that evaluates with :func:`exact_linear` when :func:`decoding`.

    Shapes: ``[..., in_features] -> [..., out_features]``; parameters and state-dict
    keys are ``nn.Linear``'s.
    """

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)


def _exp64(x: Tensor) -> Tensor:
    """``exp`` of float64 ``x`` from exact operations (relative error ~1e-16)."""
    x = x.clamp(-745.0, 709.0)
    k = torch.round(x * _INV_LN2)
    k = torch.where(torch.isnan(k), torch.zeros_like(k), k)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    poly = _horner(_EXP_TERMS, r)
    half = torch.div(k, 2, rounding_mode="floor")
    return poly * pow2(half) * pow2(k - half)


def exact_exp(x: Tensor) -> Tensor:
    """``exp(x)`` in ``x``'s dtype, identical on every machine."""
    return _exp64(x.double()).to(x.dtype)


def exact_sigmoid(x: Tensor) -> Tensor:
    """``1 / (1 + exp(-x))`` in ``x``'s dtype, identical on every machine."""
    return (1.0 / (1.0 + _exp64(-x.double()))).to(x.dtype)


def _log1p64(u: Tensor) -> Tensor:
    """``log(1 + u)`` for float64 ``u`` in [0, 1]: ``2 atanh(s)``, ``s = u / (2 + u)``."""
    s = u / (2.0 + u)
    s2 = s * s
    return _horner(_LOG1P_TERMS, s2) * s


def exact_softplus(x: Tensor, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(x))`` (``x`` above ``threshold``, as ``F.softplus``), identical on
    every machine; in ``x``'s dtype."""
    xd = x.double()
    soft = xd.clamp_min(0.0) + _log1p64(_exp64(-xd.abs()))
    return torch.where(xd > threshold, xd, soft).to(x.dtype)


def _horner(terms: list[float], u: Tensor) -> Tensor:
    acc = torch.full_like(u, terms[-1])
    for coeff in reversed(terms[:-1]):
        acc = acc * u + coeff
    return acc


def exact_sin_cos(x: Tensor) -> tuple[Tensor, Tensor]:
    """``(sin(x), cos(x))`` in ``x``'s dtype, identical on every machine (Cody-Waite
    reduction by pi/2, accurate for ``|x| < 2^20``; Taylor polynomials on [-pi/4, pi/4])."""
    xd = x.double()
    n = torch.round(xd * _INV_PIO2)
    n = torch.where(torch.isfinite(n), n, torch.zeros_like(n))
    r = (xd - n * _PIO2_HI) - n * _PIO2_LO
    r = torch.where(torch.isfinite(xd), r, torch.full_like(r, math.nan))
    r2 = r * r
    sin_r, cos_r = r * _horner(_SIN_TERMS, r2), _horner(_COS_TERMS, r2)
    quadrant = n.to(torch.int64) % 4
    sin = torch.where(quadrant % 2 == 0, sin_r, cos_r)
    cos = torch.where(quadrant % 2 == 0, cos_r, sin_r)
    sin = torch.where(quadrant >= 2, -sin, sin)
    cos = torch.where((quadrant == 1) | (quadrant == 2), -cos, cos)
    return sin.to(x.dtype), cos.to(x.dtype)


def _rows(x: Tensor, dim: int) -> tuple[Tensor, torch.Size]:
    moved = x.movedim(dim, -1)
    return moved.reshape(-1, moved.shape[-1]), moved.shape


def _term_bits(length: int) -> int:
    spare = 62 - max(length - 1, 0).bit_length()
    if spare < 24:
        raise ValueError(f"exact sums take at most 2^38 terms, got {length}")
    return min(SUM_BITS, spare)


def _fixed_point_rows(x: Tensor, dim: int) -> tuple[Tensor, Tensor, Tensor | None, torch.Size]:
    """The rows of ``x`` along ``dim`` as int64 fixed-point terms (0 in rows that are not
    finite), their exponents ``[N, 1]``, the finite mask (None if all rows are) and the
    moved shape."""
    rows, shape = _rows(x, dim)
    q, shift, finite = _rounded_rows(rows, _term_bits(rows.shape[-1]))
    if finite is not None:
        q = torch.where(finite, q, torch.zeros_like(q))
    return q.to(torch.int64), -shift, finite, shape


def _from_fixed(total: Tensor, e: Tensor, finite: Tensor | None, dtype: torch.dtype) -> Tensor:
    out = total.double() * pow2(e)
    if finite is not None:
        out = torch.where(finite, out, math.nan)
    return out.to(dtype)


def exact_sum(x: Tensor, dim: int = -1) -> Tensor:
    """Sum over ``dim`` of fixed-point terms (per row ``SUM_BITS`` significant bits),
    independent of the order of the terms and of the other rows; in ``x``'s dtype."""
    terms, e, finite, shape = _fixed_point_rows(x, dim)
    total = _from_fixed(terms.sum(dim=-1, keepdim=True), e, finite, x.dtype)
    return total.reshape(shape[:-1])


def exact_cumsum(x: Tensor, dim: int = -1, exclusive: bool = False) -> Tensor:
    """Prefix sums over ``dim`` of fixed-point terms (as :func:`exact_sum`, the scale set
    by the row's largest term), inclusive or ``exclusive`` (each term left out of its
    own sum); in ``x``'s dtype, shape of ``x``."""
    terms, e, finite, shape = _fixed_point_rows(x, dim)
    running = terms.cumsum(dim=-1)
    if exclusive:
        running = running - terms
    return _from_fixed(running, e, finite, x.dtype).reshape(shape).movedim(-1, dim)


def exact_sqrt(x: Tensor) -> Tensor:
    """The correctly rounded square root of each element, identical on every machine.

    IEEE 754 requires its square root to be correctly rounded, and the hardware
    instructions that NumPy uses on the CPU implement it (CUDA's ``sqrt`` too, unless
    compiled with fast math, so a GPU tensor keeps ``torch.sqrt``). ``torch.sqrt`` on the
    CPU does not: it calls MKL's vector math, whose last bit changes with the code path
    MKL picks for the CPU (seen with ``MKL_CBWR=COMPATIBLE`` versus the default, and
    between an AMD/AVX2 and an Intel/AVX-512 machine).
    bfloat16 goes through float32 (its rounding then equals the direct one).
    """
    if x.device.type != "cpu":
        return torch.sqrt(x)
    if x.dtype == torch.bfloat16:
        return exact_sqrt(x.float()).to(x.dtype)
    array = x.detach().contiguous().numpy()
    with np.errstate(invalid="ignore"):  # NaN for negative inputs, as torch.sqrt
        return torch.from_numpy(np.sqrt(array, out=np.empty_like(array)))


def cross(a: Tensor, b: Tensor) -> Tensor:
    """``a x b`` for ``a, b: [..., 3]`` from separate products and differences (a compiled
    cross-product kernel may fuse ``a1 * b2 - a2 * b1`` into a multiply-add on CPUs that
    have one, and give other bits there)."""
    a1, a2, a3 = a.unbind(-1)
    b1, b2, b3 = b.unbind(-1)
    return torch.stack([a2 * b3 - a3 * b2, a3 * b1 - a1 * b3, a1 * b2 - a2 * b1], dim=-1)


def normalize(v: Tensor) -> Tensor:
    """``v / |v|`` for ``v: [..., 3]``, the squares added in axis order (a vectorised norm
    would sum in an order set by the vector width) and the root correctly rounded
    (:func:`exact_sqrt`) where no gradient flows through ``v``."""
    x, y, z = v.unbind(-1)
    square = x * x + y * y + z * z
    root = torch.sqrt(square) if square.requires_grad else exact_sqrt(square)
    return v / root[..., None]


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear``, or :func:`exact_linear` when :func:`decoding`."""
    return exact_linear(x, weight, bias) if decoding() else F.linear(x, weight, bias)


def exp(x: Tensor) -> Tensor:
    """``torch.exp``, or :func:`exact_exp` when :func:`decoding`."""
    return exact_exp(x) if decoding() else torch.exp(x)


def sigmoid(x: Tensor) -> Tensor:
    """``torch.sigmoid``, or :func:`exact_sigmoid` when :func:`decoding`."""
    return exact_sigmoid(x) if decoding() else torch.sigmoid(x)


def softplus(x: Tensor) -> Tensor:
    """``F.softplus``, or :func:`exact_softplus` when :func:`decoding`."""
    return exact_softplus(x) if decoding() else F.softplus(x)


def sin_cos(x: Tensor) -> tuple[Tensor, Tensor]:
    """``(torch.sin(x), torch.cos(x))``, or :func:`exact_sin_cos` when :func:`decoding`."""
    return exact_sin_cos(x) if decoding() else (torch.sin(x), torch.cos(x))


def sum_over(x: Tensor, dim: int) -> Tensor:
    """``x.sum(dim)``, or :func:`exact_sum` when :func:`decoding`."""
    return exact_sum(x, dim) if decoding() else x.sum(dim=dim)


def cumsum(x: Tensor, dim: int, exclusive: bool = False) -> Tensor:
    """``torch.cumsum`` (minus ``x`` when ``exclusive``), or :func:`exact_cumsum` when
    :func:`decoding`."""
    if decoding():
        return exact_cumsum(x, dim, exclusive)
    total = torch.cumsum(x, dim=dim)
    return total - x if exclusive else total
