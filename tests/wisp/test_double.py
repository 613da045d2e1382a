"""The test double cannot drift silently from Kaolin-Wisp: every recorded real signature
(``double/real_signatures.json``, read from Wisp main 931707e by ``record_signatures.py``)
has the same parameter names and default values in the double."""
from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

RECORDED = json.loads((Path(__file__).parent / "double" / "real_signatures.json").read_text())


def resolve(symbol: str):
    """The double's function for a dotted ``module.Class.function`` name."""
    parts = symbol.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            obj = inspect.getattr_static(obj, name) if inspect.isclass(obj) else getattr(obj, name)
        return obj.__func__ if isinstance(obj, (classmethod, staticmethod)) else obj
    raise LookupError(symbol)


def value(source: str | None):
    return None if source is None else eval(source, {"np": np, "torch": torch, "nn": nn})


def test_every_adapter_symbol_is_recorded():
    assert len(RECORDED) >= 45
    assert all(entry["file"].startswith("wisp/") and entry["line"] > 0 for entry in RECORDED.values())


@pytest.mark.parametrize("symbol", sorted(RECORDED))
def test_double_signature_matches_the_real_one(double, symbol):
    params = list(inspect.signature(resolve(symbol)).parameters.values())
    recorded = RECORDED[symbol]["params"]
    names = [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    assert names == [name for name, _ in recorded], symbol
    for param, (name, default) in zip([p for p in params if p.name in names], recorded):
        assert (param.default is not inspect.Parameter.empty) == (default is not None), name
        if default is not None:
            want = value(default)
            got = param.default
            assert (got == want) if not callable(want) else (got is want), (symbol, name, got, want)
