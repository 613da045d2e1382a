"""The Kaolin-Wisp test double (``tests/wisp/double``) as a fixture."""
from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

DOUBLE = Path(__file__).resolve().parent / "double"
ROOTS = ("wisp", "kaolin", "imgui")


def purge() -> None:
    """Forget the double and the adapter modules (the next import starts afresh)."""
    for name in list(sys.modules):
        root = name.split(".")[0]
        if root in ROOTS or name == "wisp_shacira.wisp" or name.startswith("wisp_shacira.wisp."):
            del sys.modules[name]
    package = sys.modules.get("wisp_shacira")
    if package is not None and hasattr(package, "wisp"):
        delattr(package, "wisp")


@pytest.fixture
def double(monkeypatch):
    """The double on ``sys.path`` and the adapter imported against it; yields a namespace of
    the adapter modules (``grid``, ``trainer``, ``renderer``, ``app``)."""
    pytest.importorskip("tyro")           # the double's config system (extra "test")
    pytest.importorskip("hydra_zen")
    purge()
    monkeypatch.syspath_prepend(str(DOUBLE))
    import imgui
    import wisp_shacira.wisp as adapter
    import wisp_shacira.wisp.app_support as app
    import wisp_shacira.wisp.renderer as renderer
    import wisp_shacira.wisp.trainer as trainer
    imgui.SLIDERS.clear()
    imgui.TEXTS.clear()
    imgui.ANSWERS.clear()
    yield types.SimpleNamespace(grid=adapter, trainer=trainer, renderer=renderer, app=app,
                                imgui=imgui)
    purge()
