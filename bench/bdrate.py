"""Bjontegaard deltas between two rate-distortion curves (helper of the bench scripts).

Also the entropy-model options the RD benches share (:func:`parse_models`,
:func:`model_labels`). A curve is a list of ``(rate, psnr)`` points: rate in any positive unit (bits per
pixel, bytes; the same for both curves), PSNR in dB. The points may come in any
order. The deltas are computed by the ``bjontegaard`` package (extra ``bench``) with
Akima interpolation (piecewise cubic; ``method="pchip"`` gives the monotone piecewise
cubic Hermite interpolant instead; with only two points Akima falls back to a straight
line), integrated over the range where both curves are defined:

* :func:`bd_rate`: the mean rate difference at equal PSNR, in percent (negative: the
  test curve needs fewer bits for the same quality);
* :func:`bd_psnr`: the mean PSNR difference at equal rate, in dB (positive: the test
  curve is better).

Curves that cannot give a number (fewer than two points, a rate that is not positive,
values that are not finite, two points at the same PSNR (or rate), no overlap) raise
``ValueError`` with a message instead of returning NaN.

    python bench/bdrate.py     # self-check on synthetic curves
"""
from __future__ import annotations

import math
import warnings
from typing import Sequence

from wisp_shacira.errors import ConfigError
from wisp_shacira.extras import require

Curve = Sequence[tuple[float, float]]

METHODS = ("akima", "pchip")


def _checked(curve: Curve, what: str) -> list[tuple[float, float]]:
    """``curve`` as ``[(rate, psnr), ...]`` floats, after the checks every delta needs."""
    points = [(float(rate), float(psnr)) for rate, psnr in curve]
    if len(points) < 2:
        raise ValueError(f"{what} curve has {len(points)} point(s); a Bjontegaard delta needs "
                         f"at least 2")
    for rate, psnr in points:
        if not (math.isfinite(rate) and math.isfinite(psnr)):
            raise ValueError(f"{what} curve has a non-finite point ({rate}, {psnr})")
        if rate <= 0:
            raise ValueError(f"{what} curve has a rate of {rate}; rates must be positive")
    return points


def _distinct(values: list[float], what: str, axis: str) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"{what} curve has two points at the same {axis}; the interpolation "
                         f"needs distinct values")


def _overlap(anchor: list[float], test: list[float], axis: str) -> None:
    low, high = max(min(anchor), min(test)), min(max(anchor), max(test))
    if not low < high:
        raise ValueError(f"the curves share no {axis} range (anchor {min(anchor):.4g}.."
                         f"{max(anchor):.4g}, test {min(test):.4g}..{max(test):.4g})")


def _delta(anchor: Curve, test: Curve, method: str, kind: str) -> float:
    """``bjontegaard.bd_rate`` or ``bd_psnr`` of the two curves, sorted along the
    integration axis (PSNR for the rate delta, rate for the PSNR delta)."""
    bjontegaard = require("bjontegaard", "bench", "a Bjontegaard delta")
    if method not in METHODS:
        raise ValueError(f"unknown interpolation {method!r}; expected one of {METHODS}")
    a, t = _checked(anchor, "anchor"), _checked(test, "test")
    axis = 1 if kind == "rate" else 0
    name = "PSNR" if kind == "rate" else "rate"
    a.sort(key=lambda p: p[axis])
    t.sort(key=lambda p: p[axis])
    for points, what in ((a, "anchor"), (t, "test")):
        _distinct([p[axis] for p in points], what, name)
    _overlap([p[axis] for p in a], [p[axis] for p in t], name)
    function = bjontegaard.bd_rate if kind == "rate" else bjontegaard.bd_psnr
    with warnings.catch_warnings():
        # a partial overlap is legitimate here (a few points per curve); the caller sees
        # the ranges in its tables
        warnings.simplefilter("ignore")
        value = function([p[0] for p in a], [p[1] for p in a], [p[0] for p in t],
                         [p[1] for p in t], method, require_matching_points=False, min_overlap=0)
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"the BD-{kind} of these curves is not finite ({value})")
    return value


def bd_rate(anchor: Curve, test: Curve, method: str = "akima") -> float:
    """Mean rate difference of ``test`` against ``anchor`` at equal PSNR, in percent.

    Args:
        anchor, test: ``[(rate, psnr_db), ...]``, at least two points each, rates > 0.
        method: ``"akima"`` (default) or ``"pchip"`` interpolation of log-rate over PSNR.
    Returns:
        Percent; negative means ``test`` needs fewer bits for the same PSNR.
    Raises:
        ValueError: fewer than two points, a non-positive rate, a non-finite value,
            two points at the same PSNR, or no common PSNR range.
    """
    return _delta(anchor, test, method, "rate")


def bd_psnr(anchor: Curve, test: Curve, method: str = "akima") -> float:
    """Mean PSNR difference of ``test`` against ``anchor`` at equal rate, in dB.

    Args:
        anchor, test: ``[(rate, psnr_db), ...]``, at least two points each, rates > 0.
        method: ``"akima"`` (default) or ``"pchip"`` interpolation of PSNR over log-rate.
    Returns:
        dB; positive means ``test`` has the higher PSNR at the same rate.
    Raises:
        ValueError: fewer than two points, a non-positive rate, a non-finite value,
            two points at the same rate, or no common rate range.
    """
    return _delta(anchor, test, method, "psnr")


def _self_check() -> None:
    """Synthetic curves with known deltas, and each refused input."""
    anchor = [(0.25, 28.0), (0.5, 31.0), (1.0, 34.0), (2.0, 37.0)]   # 3 dB per doubling
    cheaper = [(0.8 * r, p) for r, p in anchor]                          # 20% fewer bits
    better = [(r, p + 0.5) for r, p in anchor]
    for method in METHODS:
        assert abs(bd_rate(anchor, cheaper, method) + 20.0) < 1e-6, method
        assert abs(bd_rate(anchor, anchor, method)) < 1e-9, method
        assert abs(bd_psnr(anchor, better, method) - 0.5) < 1e-9, method
        assert bd_rate(anchor, better, method) < 0 < bd_psnr(anchor, cheaper, method), method
    assert abs(bd_rate(anchor[::-1], cheaper[1::-1] + cheaper[2:]) + 20.0) < 1e-6  # any order
    bad = {"one point": (anchor, anchor[:1]),
           "no overlap": (anchor, [(r, p + 20) for r, p in anchor]),
           "zero rate": (anchor, [(0.0, 30.0), (1.0, 33.0)]),
           "NaN": (anchor, [(0.5, float("nan")), (1.0, 33.0)]),
           "same PSNR": (anchor, [(0.5, 30.0), (1.0, 30.0)])}
    for label, (a, t) in bad.items():
        try:
            bd_rate(a, t)
        except ValueError as exc:
            print(f"refused ({label}): {exc}")
        else:
            raise AssertionError(f"{label}: no ValueError")
    print(f"bd_rate(anchor, 20% cheaper) = {bd_rate(anchor, cheaper):+.3f} %, "
          f"bd_psnr(anchor, +0.5 dB) = {bd_psnr(anchor, better):+.3f} dB: self-check passed")


def parse_models(text: str) -> list[str]:
    """``"factorized,context"`` -> ``["factorized", "context"]`` (values checked by the config)."""
    models = [m.strip() for m in text.split(",")]
    if not all(models):
        raise ConfigError(f"--entropy-models {text!r}: expected comma-separated names, "
                          f"e.g. factorized,context")
    return models


def model_labels(models: list[str]) -> list[str]:
    """One unique label per model run: its name, ``NAME_2``... for a repeated one (the
    same model twice measures run-to-run noise)."""
    labels = []
    for model in models:
        count = sum(m == model for m in models[:len(labels) + 1])
        labels.append(model if count == 1 else f"{model}_{count}")
    return labels


if __name__ == "__main__":
    _self_check()
