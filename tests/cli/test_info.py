"""``wisp-shacira info`` names how a file codes its latents and the prior it was trained with."""
from __future__ import annotations

from pathlib import Path

import pytest

from wisp_shacira.cli.main import main

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


@pytest.mark.parametrize("name,model", [("v3_baf8633/image.shac", "factorized"),
                                        ("v4_d42ec47/image.shac", "context")])
def test_info_names_the_entropy_model(name: str, model: str, capsys) -> None:
    assert main(["info", str(GOLDEN / name)]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert f"latents coded with the {model} model (trained with the {model} prior)" in line
