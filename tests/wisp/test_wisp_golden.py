"""The golden Wisp-written files (``tests/golden/wisp_nerf_v<version>_<commit>``, each
written once by ``tests/golden/make_wisp_golden.py`` at that commit: version 3 and 5) keep
decoding to the same renders."""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
FOLDERS = sorted(GOLDEN.glob("wisp_nerf_v*"))
sys.path.insert(0, str(GOLDEN))
from make_wisp_golden import renders  # noqa: E402


def test_every_wisp_golden_version_is_here():
    assert [f.name for f in FOLDERS] == ["wisp_nerf_v3_43c22df", "wisp_nerf_v5_3979a63"]


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_golden_wisp_file_renders_as_recorded(folder: Path):
    entry = json.loads((folder / "manifest.json").read_text())["scene.shac"]
    path = folder / "scene.shac"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["file_sha256"], "file changed"
    got = renders(path)
    assert got == {k: v for k, v in entry.items() if k.startswith("render_")}
