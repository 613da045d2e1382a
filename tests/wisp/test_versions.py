"""Version gates: a torch or Kaolin-Wisp the adapter cannot use is one clear line (exit 2
from the app), never a traceback; exported configs hold only the user's values."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from hydra_zen import builds

from conftest import DOUBLE, purge
from wisp_shacira.errors import ShaciraError
from wisp_shacira.fields import wisp_bridge as wb

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("version,ok", [("2.0.0", True), ("2.13.0+cpu", True),
                                        ("1.13.1+cu117", False), ("1.12.1", False)])
def test_torch_gate(version, ok):
    problem = wb.torch_problem(version)
    assert (problem is None) == ok
    if not ok:
        assert f"found torch {version}" in problem and "torch >= 2.0" in problem
        assert "\n" not in problem


def test_import_refuses_old_torch(monkeypatch):
    import torch
    purge()
    monkeypatch.syspath_prepend(str(DOUBLE))
    monkeypatch.setattr(torch, "__version__", "1.12.1+cu113")
    try:
        with pytest.raises(wb.WispVersionError, match="found torch 1.12.1"):
            import wisp_shacira.wisp  # noqa: F401
    finally:
        purge()


def _old_wisp(root: Path, fork: bool) -> Path:
    """A Wisp 0.1.x-like package: grids but no wisp.config (the SHACIRA fork has config_parser)."""
    package = root / "wisp"
    (package / "models" / "grids").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "models" / "__init__.py").write_text("")
    (package / "models" / "grids" / "__init__.py").write_text("class HashGrid: pass\n")
    if fork:
        (package / "config_parser.py").write_text("")
    return root


@pytest.mark.parametrize("fork", [False, True])
def test_import_refuses_wisp_without_wisp_config(monkeypatch, tmp_path, fork):
    purge()
    monkeypatch.syspath_prepend(str(_old_wisp(tmp_path, fork)))
    try:
        with pytest.raises(wb.WispVersionError) as info:
            import wisp_shacira.wisp  # noqa: F401
    finally:
        purge()
    message = str(info.value)
    assert "\n" not in message and "99639ae" in message and str(tmp_path) in message
    assert ("config_parser" in message) == fork
    assert isinstance(info.value, ShaciraError) and isinstance(info.value, ImportError)


def test_app_prints_one_line_and_exits_2(tmp_path):
    env = {"PYTHONPATH": f"{_old_wisp(tmp_path, True)}:{ROOT}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, str(ROOT / "app" / "main_wisp.py"), "--config",
                             str(ROOT / "configs" / "wisp" / "shacira_nerf.yaml")],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: found wisp") and "99639ae" in lines[0]


def test_yaml_keys_need_ad6af84(double, monkeypatch):
    from wisp.trainers import ConfigMultiviewTrainer
    fields = dict(ConfigMultiviewTrainer.__dataclass_fields__)
    fields.pop("rgb_loss_type")
    monkeypatch.setattr(ConfigMultiviewTrainer, "__dataclass_fields__", fields)
    with pytest.raises(wb.WispVersionError, match="ad6af84"):
        double.app.check_yaml(str(ROOT / "configs" / "wisp" / "shacira_nerf.yaml"))


class Grid:
    """A constructor for the hydra-zen config below."""

    def __init__(self, blas: object = None, feature_dim: int = 4):
        self.feature_dim = feature_dim


def test_user_config_drops_hydra_zen_internals():
    cfg = builds(Grid, populate_full_signature=True, zen_partial=True, hydra_convert="all",
                 zen_meta={"__ctor_name__": "Grid", "__supported_args__": "feature_dim"},
                 zen_dataclass={"cls_name": "ConfigGrid"})

    @dataclasses.dataclass
    class App:
        grid: cfg = dataclasses.field(default_factory=cfg)
        sizes: tuple = (1, 2)
        device: str = "cuda"
        blob: object = dataclasses.field(default_factory=object)

    raw = dataclasses.asdict(App())
    assert {"_target_", "_convert_", "__ctor_name__"} <= set(raw["grid"])
    clean = wb.user_config(raw)
    assert clean == {"grid": {"constructor": "Grid", "blas": None, "feature_dim": 4},
                     "sizes": [1, 2], "device": "cuda"}
