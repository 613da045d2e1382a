"""The golden Wisp-written file (``tests/golden/wisp_nerf_v3_43c22df``, written once by
``tests/golden/make_wisp_golden.py``) keeps decoding to the same renders."""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
FOLDER = GOLDEN / "wisp_nerf_v3_43c22df"
sys.path.insert(0, str(GOLDEN))
from make_wisp_golden import renders  # noqa: E402


def test_golden_wisp_file_renders_as_recorded():
    entry = json.loads((FOLDER / "manifest.json").read_text())["scene.shac"]
    path = FOLDER / "scene.shac"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["file_sha256"], "file changed"
    got = renders(path)
    assert got == {k: v for k, v in entry.items() if k.startswith("render_")}
