"""``wisp-shacira info`` names the format version, how a file codes its latents, the prior
it was trained with and how it stores the heads."""
from __future__ import annotations

from pathlib import Path

import pytest

from wisp_shacira.cli.main import main

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


@pytest.mark.parametrize("name,model,version,heads", [
    ("v1_9a01d5c/image.shac", "factorized", 1, "float16, float32"),
    ("v3_baf8633/image.shac", "factorized", 3, "int8 rows with a float16 scale"),
    ("v4_d42ec47/image.shac", "context", 4, "int8 rows"),
    ("v5_3979a63/image_random.shac", "context", 5, "integers times a power-of-two step"),
    ("v5_3979a63/image.shac", "factorized", 5, "integers times a power-of-two step")])
def test_info_names_the_version_entropy_model_and_weight_storage(
        name: str, model: str, version: int, heads: str, capsys) -> None:
    assert main(["info", str(GOLDEN / name)]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert f"format version {version}, task image" in line
    assert f"latents coded with the {model} model (trained with the {model} prior)" in line
    assert f"weights stored as {heads}" in line


def test_info_says_when_levels_code_only_some_rows(capsys) -> None:
    assert main(["info", str(GOLDEN / "v5_0cd2e3f" / "scene_pruned.shac")]) == 0
    assert "code only the rows that coded_rows 'occupancy' selects" in capsys.readouterr().out
    assert main(["info", str(GOLDEN / "v5_3979a63" / "scene.shac")]) == 0
    assert "coded_rows" not in capsys.readouterr().out
