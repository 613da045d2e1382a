"""Import layering of the package (the contract drawn in docs/architecture.md, "Layering").

Every module of ``wisp_shacira/`` is parsed with ``ast``; all its static imports count,
those inside functions and ``if TYPE_CHECKING:`` blocks included, and so do
``importlib.import_module("literal")`` calls. A module may import modules of its own
layer or of lower layers only. The layers, lowest first:

    0 base        errors, outputs, config, metrics, resources, extras (import no other
                  layer, no torch)
    1 codec/      the .shac format: container, tables, coder, model <-> bytes (no torch)
    2 grid/ entropy/
    3 fields/ render/ datasets/
    4 train/
    5 tasks/
    6 lod.py lod_report.py batch/
    7 entry points and adapter: cli/, viewer/, wisp/ (nothing in the package imports wisp/)
    8 the package root wisp_shacira/__init__.py (lazy facade; nothing in the package imports it)

Also: only ``codec/coder.py`` imports ``constriction``; only ``batch/ray_pool.py`` imports
``ray`` (optional imports through ``extras.require("module", ...)`` count); only ``wisp/`` imports ``wisp`` or
``kaolin``; nothing in ``codec/`` or the base imports torch, and importing
``wisp_shacira.codec.model_io`` (or any codec module) leaves torch out of ``sys.modules``.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "wisp_shacira"

LAYERS: dict[str, int] = {
    "wisp_shacira.errors": 0, "wisp_shacira.outputs": 0, "wisp_shacira.config": 0,
    "wisp_shacira.metrics": 0, "wisp_shacira.resources": 0, "wisp_shacira.extras": 0,
    "wisp_shacira.bundled": 0,  # data/ and configs/ shipped as packages (no code)
    "wisp_shacira.codec": 1,
    "wisp_shacira.grid": 2, "wisp_shacira.entropy": 2,
    "wisp_shacira.fields": 3, "wisp_shacira.render": 3, "wisp_shacira.datasets": 3,
    "wisp_shacira.train": 4,
    "wisp_shacira.tasks": 5,
    "wisp_shacira.lod": 6, "wisp_shacira.lod_report": 6, "wisp_shacira.batch": 6,
    "wisp_shacira.cli": 7, "wisp_shacira.viewer": 7, "wisp_shacira.wisp": 7,
    "wisp_shacira": 8,
}
"""Layer of every module, by its longest listed prefix; ``"wisp_shacira"`` is the root module
only (a new top-level module or package must be added here and to docs/architecture.md)."""
LAYER_NAMES = {0: "base", 1: "codec", 2: "grid/entropy", 3: "fields/render/datasets", 4: "train",
               5: "tasks", 6: "lod/batch", 7: "entry point/adapter", 8: "package root"}



@dataclass(frozen=True)
class Import:
    module: str   # importing module
    target: str   # imported module (a package module when it is one, else the dotted name)
    path: Path
    line: int

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _targets(module: str, is_package: bool, node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            package = module.split(".") if is_package else module.split(".")[:-1]
            package = package[:len(package) - node.level + 1]
            base = ".".join(package + ([base] if base else []))
        # ``from pkg import name`` imports the module pkg.name when there is one
        return list(dict.fromkeys(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                                  for a in node.names))
    if (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module"
                 or isinstance(node.func, ast.Name) and node.func.id in ("import_module",
                                                                          "__import__", "require"))):
        return [node.args[0].value]
    return []


def _imports() -> list[Import]:
    found = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            for target in _targets(module, path.name == "__init__.py", node):
                found.append(Import(module, target, path, node.lineno))
    return found


IMPORTS = _imports()


def layer_of(module: str) -> int | None:
    """The layer of a package module, by its longest prefix in :data:`LAYERS`."""
    if module == "wisp_shacira":
        return LAYERS[module]
    parts = module.split(".")
    for end in range(len(parts), 1, -1):
        if ".".join(parts[:end]) in LAYERS:
            return LAYERS[".".join(parts[:end])]
    return None


def _is(target: str, prefix: str) -> bool:
    return target == prefix or target.startswith(prefix + ".")


def _upward() -> list[Import]:
    out = []
    for imp in IMPORTS:
        if not _is(imp.target, "wisp_shacira"):
            continue
        low, high = layer_of(imp.module), layer_of(imp.target)
        inner_wisp = (_is(imp.target, "wisp_shacira.wisp")
                      and not _is(imp.module, "wisp_shacira.wisp"))
        if high > low or inner_wisp:
            out.append(imp)
    return out


def _describe(imp: Import) -> str:
    return (f"{imp.where()}: {imp.module} ({LAYER_NAMES[layer_of(imp.module)]}) imports "
            f"{imp.target} ({LAYER_NAMES[layer_of(imp.target)]})")


def test_every_module_has_a_layer() -> None:
    missing = [m for m in MODULES if layer_of(m) is None]
    assert not missing, ("modules without a layer (add them to LAYERS and "
                         f"docs/architecture.md): {missing}")
    unknown = sorted({i.target for i in IMPORTS if _is(i.target, "wisp_shacira")
                      and i.target not in MODULES and layer_of(i.target) is None})
    assert not unknown, f"imports of unknown package modules: {unknown}"


def test_no_upward_imports() -> None:
    new = _upward()
    assert not new, ("upward imports (a module may import its own layer or lower ones; see "
                     "docs/architecture.md, Layering):\n" + "\n".join(map(_describe, new)))


def _importers(top: str) -> set[str]:
    return {imp.module for imp in IMPORTS if _is(imp.target, top)}


def test_only_the_coder_imports_constriction() -> None:
    assert _importers("constriction") == {"wisp_shacira.codec.coder"}


def test_only_the_ray_pool_imports_ray() -> None:
    assert _importers("ray") == {"wisp_shacira.batch.ray_pool"}


def test_only_the_adapter_imports_wisp_or_kaolin() -> None:
    outside = sorted(m for m in _importers("wisp") | _importers("kaolin")
                     if not _is(m, "wisp_shacira.wisp"))
    assert not outside, f"modules outside wisp_shacira/wisp/ importing wisp or kaolin: {outside}"


def test_codec_and_base_import_no_torch() -> None:
    found = [imp.where() for imp in IMPORTS
             if _is(imp.target, "torch") and layer_of(imp.module) <= LAYERS["wisp_shacira.codec"]]
    assert not found, f"torch imported by the codec or a base module: {found}"


def test_importing_the_codec_loads_no_torch() -> None:
    codec = sorted(m for m in MODULES if _is(m, "wisp_shacira.codec"))
    code = ("import sys\n" + "".join(f"import {m}\n" for m in codec) +
            "import wisp_shacira\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numba'))\n"
            "assert not bad, bad[:5]\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_package_root_keeps_its_public_api_lazily() -> None:
    code = ("import sys, wisp_shacira as w\n"
            "assert 'torch' not in sys.modules\n"
            "from wisp_shacira import (BitstreamError, ConfigError, DataError, GridConfig,\n"
            "    ShacModel, ShaciraError, ShaciraGrid, read_shac, write_shac, __version__)\n"
            "from wisp_shacira.grid.shacira_grid import ShaciraGrid as G\n"
            "assert ShaciraGrid is G and set(w.__all__) <= set(dir(w))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
