"""``wisp-shacira lod``, ``decode --partial`` and ``view``'s start-up errors, in process."""
from __future__ import annotations

import importlib.util
import json
import socket
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from wisp_shacira.cli.main import main
from wisp_shacira.lod import open_stream

HAS_VISER = importlib.util.find_spec("viser") is not None


@pytest.fixture
def image_shac(random_image_shac):
    """A 12x16 RGB image model with 4 levels of seeded random integer latents."""
    return lambda path: random_image_shac(path, 12, 16)


def _truncated(image_shac, tmp_path: Path, levels: int) -> Path:
    full = image_shac(tmp_path / "full.shac")
    cut = tmp_path / "cut.shac"
    cut.write_bytes(full.read_bytes()[:open_stream(full).lod_bytes[levels - 1] + 2])
    return cut


def test_lod_prints_a_row_per_lod_and_writes_plot_strip_json(image_shac, tmp_path, capsys) -> None:
    shac = image_shac(tmp_path / "img.shac")
    reference = tmp_path / "ref.png"
    iio.imwrite(reference, np.full((12, 16, 3), 100, np.uint8))
    assert main(["lod", str(shac), "--reference", str(reference)]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line[:1].isdigit()]
    assert [int(r[0]) for r in rows] == [1, 2, 3, 4]
    assert int(rows[-1][1]) == shac.stat().st_size and rows[-1][2] == "100.0%"
    out_dir = tmp_path / "img_lod"
    report = json.loads((out_dir / "lod.json").read_text())
    assert [row["bytes"] for row in report["lods"]] == [int(r[1]) for r in rows]
    assert iio.imread(out_dir / "lod_psnr.png").ndim == 3
    assert iio.imread(out_dir / "lod_strip.png").ndim == 3


def test_lod_of_a_truncated_stream_measures_the_levels_it_holds(image_shac, tmp_path, capsys) -> None:
    cut = _truncated(image_shac, tmp_path, 2)
    assert main(["lod", str(cut), "-o", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "warning:" in captured.err and "decoded levels 1..2 of 4" in captured.err
    assert len(json.loads((tmp_path / "out" / "lod.json").read_text())["lods"]) == 2


def test_decode_partial_accepts_a_truncated_stream(image_shac, tmp_path, capsys) -> None:
    cut = _truncated(image_shac, tmp_path, 3)
    assert main(["decode", str(cut), "-o", str(tmp_path / "d.png")]) == 2
    assert "truncated" in capsys.readouterr().err
    assert main(["decode", str(cut), "-o", str(tmp_path / "d.png"), "--partial"]) == 0
    captured = capsys.readouterr()
    assert "decoded levels 1..3 of 4" in captured.err and "LOD 3 of 4" in captured.out
    assert iio.imread(tmp_path / "d.png").shape == (12, 16, 3)


@pytest.mark.parametrize("args, message", [
    (["decode", "{shac}", "-o", "{tmp}/d.png", "--partial", "--max-lod", "9"], "out of range 1..4"),
    (["lod", "{png}"], "not a .shac file"),
    (["lod", "{shac}", "--poses", "{tmp}/t.json"], "--poses is for scenes"),
    (["lod", "{shac}", "--views", "0"], "--views must be >= 1"),
    (["view", "{png}", "--port", "{port}"], "not a .shac file"),
    (["view", "{shac}", "--port", "70000"], "--port must be in 1..65535"),
])
def test_bad_input_gives_one_clear_line(image_shac, tmp_path, capsys, args: list[str], message: str) -> None:
    shac = image_shac(tmp_path / "img.shac")
    png = tmp_path / "img.png"
    iio.imwrite(png, np.zeros((4, 4, 3), np.uint8))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    filled = [a.format(shac=shac, png=png, tmp=tmp_path, port=port) for a in args]
    assert main(filled) == 2
    err = capsys.readouterr().err
    if args[0] == "view" and not HAS_VISER:
        message = "needs viser"
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_view_refuses_a_port_in_use(image_shac, tmp_path, capsys) -> None:
    shac = image_shac(tmp_path / "img.shac")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["view", str(shac), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert (f"port {port} on 127.0.0.1 is not available" in err) if HAS_VISER else \
        ("needs viser" in err)


@pytest.mark.skipif(not HAS_VISER, reason="the viewer needs viser (pip install viser)")
def test_view_starts_and_stops(image_shac, tmp_path, capsys) -> None:
    cut = _truncated(image_shac, tmp_path, 2)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert main(["view", str(cut), "--port", str(port), "--seconds", "0.5"]) == 0
    captured = capsys.readouterr()
    assert f"http://127.0.0.1:{port}" in captured.out and "LOD 1..2" in captured.out
    assert "decoded levels 1..2 of 4" in captured.err
