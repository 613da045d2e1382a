"""Hostile files: every class of bad header the decoder met gives the one-line error,
before anything large is allocated (one test runs the decoder under a memory limit)."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from wisp_shacira.cli.main import main
from wisp_shacira.codec.container import pack_sections, unpack_sections
from wisp_shacira.codec.head_io import pack_weights
from wisp_shacira.codec.model_io import (
    KIND_LEVEL,
    KIND_TABLES,
    _pack_tables,
    decode_model,
    encode_model,
)
from wisp_shacira.codec.tables import build_table
from wisp_shacira.datasets.image import load_image

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "v3_baf8633"
SMALL_LIMIT = "256M"


def _with_config(task: str, edit: Callable[[dict], object]) -> bytes:
    """The version-3 golden file of ``task`` with its CONFIG edited (checksums valid)."""
    model = decode_model((GOLDEN / f"{task}.shac").read_bytes())
    result = edit(model.config)
    if result is not None:
        model = dataclasses.replace(model, config=result)
    return encode_model(model)


def _set(path: str, value: object) -> Callable[[dict], None]:
    def edit(config: dict) -> None:
        *parents, last = path.split(".")
        node = config
        for key in parents:
            node = node[key]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value
    return edit


_DELETE = object()
CONFIG_CASES = [
    ("image", "image.height", _DELETE, "missing config key image.height"),
    ("image", "image.height", "x", "image.height: expected int"),
    ("image", "image.height", None, "image.height"),
    ("image", "image.width", True, "image.width: expected int"),
    ("image", "image.height", 0, "image size"),
    ("image", "image.width", -5, "image size"),
    ("image", "image.height", math.nan, "image.height"),
    ("image", "image.height", 10**9, "image size"),
    ("image", "image.bit_depth", 0, "bit_depth"),
    ("image", "image.bit_depth", 32, "bit_depth"),
    ("image", "image.bit_depth", -8, "bit_depth"),
    ("image", "image.channels", -1, "channels"),
    ("image", "nef.hidden_dim", 10**9, "nef.hidden_dim"),
    ("image", "nef.num_layers", 10**6, "nef.num_layers"),
    ("image", "grid.num_levels", 10**6, "grid.num_levels"),
    ("image", "grid.latent_dim", 10**6, "grid.latent_dim"),
    ("image", "grid.latent_dim", 3, "tables hold"),
    ("image", "task", ["image"], "not a JSON object with a task name"),
    ("video", "video.fps", math.nan, "video.fps"),
    ("video", "video.fps", "fast", "video.fps"),
    ("nerf", "occupancy.resolution", 10**4, "occupancy.resolution"),
    ("nerf", "occupancy.resolution", 2**31, "occupancy.resolution"),
    ("nerf", "occupancy.subsamples", 0, "occupancy.subsamples"),
    ("nerf", "tracer.chunk_size", 0, "tracer.chunk_size"),
    ("nerf", "tracer.chunk_size", 1, "tracer.chunk_size must be >= 64"),
    ("nerf", "occupancy.resolution", 1000, "occupancy points"),
    ("nerf", "tracer.num_samples", 10**7, "tracer.num_samples"),
    ("nerf", "scene.height", 0, "scene size"),
    ("nerf", "tracer.bg_color", [1.0, 1.0], "expected 3 values"),
    ("nerf", "camera.fx", math.nan, "camera.fx"),
]


def _decode(data: bytes, tmp_path: Path, capsys: pytest.CaptureFixture) -> str:
    path = tmp_path / "hostile.shac"
    path.write_bytes(data)
    rc = main(["decode", str(path), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("error:"), err
    return err


@pytest.mark.parametrize("task, key, value, message", CONFIG_CASES)
def test_hostile_configuration_is_one_line(task: str, key: str, value: object, message: str,
                                           tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = _with_config("scene" if task == "nerf" else task, _set(key, value))
    err = _decode(data, tmp_path, capsys)
    assert any(m in err for m in message.split("|")), err


@pytest.mark.parametrize("config", [[1, 2], "image", 0])
def test_a_configuration_that_is_no_mapping(config: object, tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    data = _with_config("image", lambda _: config)
    assert "config is not a JSON object" in _decode(data, tmp_path, capsys)


@pytest.mark.parametrize("task, key, value, what", [
    ("video", "video", {"num_frames": 10**6}, "1000000 frames"),
    ("scene", "scene", {"height": 100000}, "1 views of 16x100000"),
])
def test_outputs_too_large_for_the_memory_limit(task: str, key: str | None, value: dict,
                                                what: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WISP_SHACIRA_MAX_MEMORY", SMALL_LIMIT)
    data = _with_config(task, lambda c: c[key or "image"].update(value))
    err = _decode(data, tmp_path, capsys)
    assert "decoding needs about" in err and "256.0 MiB" in err and "--max-memory" in err
    assert what in err or task == "scene"


def test_a_huge_image_decodes_by_tiles_and_its_whole_image_uses_are_bounded(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WISP_SHACIRA_MAX_MEMORY", SMALL_LIMIT)
    path = tmp_path / "huge.shac"
    path.write_bytes(_with_config("image", lambda c: c["image"].update(height=20000, width=20000)))
    assert main(["decode", str(path), "-o", str(tmp_path / "r.png"), "--region", "100,200,64,48"]) == 0
    assert load_image(tmp_path / "r.png").pixels.shape == (48, 64, 3)
    capsys.readouterr()
    assert main(["lod", str(path), "-o", str(tmp_path / "lod")]) == 2
    err = capsys.readouterr().err
    assert "decoding needs about" in err and "whole 20000x20000 image" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.shac", "r.png"]


def _sections(task: str = "image") -> list[tuple[int, bytes]]:
    return [(s.kind, s.payload) for s in unpack_sections((GOLDEN / f"{task}.shac").read_bytes()).sections]


def _weights_payload(edit: Callable[[bytearray], bytes]) -> bytes:
    sections = _sections()
    sections[2] = (sections[2][0], edit(bytearray(sections[2][1])))
    return pack_sections(sections)


def _duplicate_weight(payload: bytearray) -> bytes:
    model = decode_model((GOLDEN / "image.shac").read_bytes())
    name, array = next(iter(model.weights.items()))
    one = pack_weights({name: array}, 3)[1:]
    return bytes([payload[0] + 1]) + bytes(payload[1:]) + one


def _nan_weight(payload: bytearray) -> bytes:
    model = decode_model((GOLDEN / "image.shac").read_bytes())
    weights = dict(model.weights)
    weights["grid.decoder.bias"] = np.array([np.nan] * len(weights["grid.decoder.bias"]),
                                            dtype=np.float32)
    return pack_weights(weights, 3)


def _dtype_code(payload: bytearray) -> bytes:
    length = payload[1]
    payload[2 + length] = 2   # the first tensor's dtype becomes int32
    return bytes(payload)


STRUCTURE_CASES = [
    ("last level removed", lambda s: s[:-1], "declares 6 sections, but a model of 4 levels"),
    ("level duplicated", lambda s: s + s[-1:], "declares 8 sections"),
    ("tables trailing bytes", lambda s: s[:1] + [(KIND_TABLES, s[1][1] + b"\0")] + s[2:],
     "trailing bytes"),
    ("weights trailing bytes", lambda s: s[:2] + [(s[2][0], s[2][1] + b"\0\0")] + s[3:],
     "trailing bytes"),
    ("level moved before weights", lambda s: s[:2] + [s[3], s[2]] + s[4:], "section order"),
]


@pytest.mark.parametrize("label, edit, message", STRUCTURE_CASES, ids=[c[0] for c in STRUCTURE_CASES])
def test_structurally_wrong_files(label: str, edit: Callable, message: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture) -> None:
    assert message in _decode(pack_sections(edit(_sections())), tmp_path, capsys)


@pytest.mark.parametrize("edit, message", [(_duplicate_weight, "appears twice"),
                                           (_nan_weight, "NaN"),
                                           (_dtype_code, "malformed header sections")])
def test_bad_weights(edit: Callable, message: str, tmp_path: Path,
                     capsys: pytest.CaptureFixture) -> None:
    assert message in _decode(_weights_payload(edit), tmp_path, capsys)


def _tables(dims: int, precision: int = 16, rows: int | None = None) -> bytes:
    model = decode_model((GOLDEN / "image.shac").read_bytes())
    model.tables = [build_table(np.ones(1), 0, precision)] * dims
    model.level_tables = None
    level_rows = [rows] * model.num_levels if rows else model.level_rows
    payload = _pack_tables(dataclasses.replace(model, level_rows=level_rows), precision)
    sections = _sections()
    sections[1] = (KIND_TABLES, payload)
    sections[3:] = [(KIND_LEVEL, b"")] * model.num_levels
    return pack_sections(sections)


def _precision(value: int) -> bytes:
    sections = _sections()
    sections[1] = (KIND_TABLES, bytes([value]) + sections[1][1][1:])
    return pack_sections(sections)


@pytest.mark.parametrize("data, message", [
    (lambda: _tables(0), "latent dimension, got"),
    (lambda: _tables(3), "tables hold 4 levels of 3 latents"),
    (lambda: _precision(40), "precision 40"),
    (lambda: _tables(2, rows=2**31), "above the limit"),
    (lambda: _tables(2, rows=2**29), "decoding needs about"),
])
def test_bad_tables(data: Callable[[], bytes], message: str, tmp_path: Path,
                    capsys: pytest.CaptureFixture) -> None:
    assert message in _decode(data(), tmp_path, capsys)


def test_a_level_spliced_from_another_file_fails_its_chained_checksum(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    mine = (GOLDEN / "image.shac").read_bytes()
    other = encode_model(dataclasses.replace(decode_model(mine), config={
        **decode_model(mine).config, "image": {**decode_model(mine).config["image"], "name": "b"}}))
    last = unpack_sections(other).sections[-1].nbytes
    spliced = mine[:len(mine) - unpack_sections(mine).sections[-1].nbytes] + other[-last:]
    assert "checksum" in _decode(spliced, tmp_path, capsys)


_LIMITED = """
import json, resource, sys
from wisp_shacira.cli.main import main
import wisp_shacira.tasks.image, wisp_shacira.tasks.video, wisp_shacira.tasks.nerf
import torch
torch.set_num_threads(1)
status = open("/proc/self/status").read()
used = int(next(l for l in status.splitlines() if l.startswith("VmSize")).split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (used + (1 << 30), resource.RLIM_INFINITY))
codes = [main(["decode", path, "-o", path[:-5] + "_out"]) for path in sys.argv[1:]]
print(json.dumps(codes))
"""


def test_hostile_sizes_are_refused_before_allocating(tmp_path: Path) -> None:
    """With the address space capped at 1 GiB above what the imports use, every hostile
    file is refused by the size checks (exit 2), never by a failed allocation."""
    cases = {
        "image_2e20": _with_config("image", lambda c: c["image"].update(height=2**20, width=2**20)),
        "rows_2e29": _tables(2, rows=2**29),
        "video_1e6_frames": _with_config("video", lambda c: c["video"].update(
            num_frames=10**6, height=1080, width=1920)),
        "scene_occupancy": _with_config("scene", lambda c: c["occupancy"].update(resolution=1024,
                                                                                  subsamples=1)),
    }
    paths = []
    for name, data in cases.items():
        paths.append(str(tmp_path / f"{name}.shac"))
        Path(paths[-1]).write_bytes(data)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WISP_SHACIRA_MAX_MEMORY", None)
    result = subprocess.run([sys.executable, "-c", _LIMITED, *paths], capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [2] * len(paths)
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr
    assert result.stderr.count("decoding needs about") == len(paths) - 1, result.stderr
    assert "the decoded image needs up to 3.0 TiB on disk" in result.stderr  # decoded by tiles
    assert not any(Path(p[:-5] + "_out").exists() for p in paths)


@pytest.mark.parametrize("task, section", [("image", "image"), ("video", "video")])
def test_lod_report_checks_the_configuration_before_reading_it(
        task: str, section: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "hostile.shac"
    path.write_bytes(_with_config(task, _set(section, _DELETE)))
    assert main(["lod", str(path), "-o", str(tmp_path / "lod")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"missing config key {section}" in err, err
