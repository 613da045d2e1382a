"""Scene files that store their occupancy and code only the rows read inside it
(``tasks.occupancy_file``): the same render as the unpruned file, fewer coded rows,
prefixes that decode, and clear errors for what a decoder cannot use."""
from __future__ import annotations

import base64
import dataclasses
import lzma
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.tasks.test_nerf_task import scene_dir, tiny_config  # noqa: F401  (fixture)
from wisp_shacira.codec import model_io
from wisp_shacira.codec.model_io import decode_model, prefix_nbytes, read_shac
from wisp_shacira.errors import BitstreamError
from wisp_shacira.grid.occupied_rows import occupied_rows
from wisp_shacira.tasks import nerf
from wisp_shacira.tasks.nerf_eval import load_scene_model, render_views, scene_row_masks
from wisp_shacira.tasks.occupancy_file import pack_cells, pruned_field, unpack_cells


@pytest.fixture(scope="module")
def trained(scene_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    out = tmp_path_factory.mktemp("unpruned")
    cfg = tiny_config(scene_dir, out, iterations=30, prune_empty_space=False,
                      val_every=0, checkpoint_every=0)
    nerf.run(cfg, out)
    return out / "scene.shac"


def _half(resolution: int) -> torch.Tensor:
    """Occupied cells in one corner octant and a slab: a pattern that leaves rows unread."""
    cells = torch.zeros((resolution,) * 3, dtype=torch.bool)
    half = resolution // 2
    cells[:half, :half, :half] = True
    cells[-1, :, 1] = True
    return cells


def _pruned_file(shac: Path, cells: torch.Tensor, out: Path) -> Path:
    """``shac`` rewritten to store ``cells`` and code only the rows read inside them."""
    field = load_scene_model(shac).field
    config = read_shac(shac, max_lod=0).config
    pruned, masks, zeroed = pruned_field(field, cells)
    assert 0 < zeroed < 1
    config = {**config, "coded_rows": "occupancy",
              "occupancy": {**config["occupancy"], "cells": pack_cells(cells)}}
    out.write_bytes(pruned.encode_shac(config, row_masks=masks)[0])
    return out


def test_a_pruned_file_renders_what_the_unpruned_field_renders(trained: Path,
                                                               scene_dir: Path,  # noqa: F811
                                                               tmp_path: Path) -> None:
    scene, _, _ = nerf.load_scene(tiny_config(scene_dir, tmp_path).dataset)
    held = scene.split("test")
    meta = read_shac(trained, max_lod=0).config
    cells = _half(meta["occupancy"]["resolution"])
    unpruned = load_scene_model(trained)
    unpruned.occupancy.occupied.copy_(cells)
    expected = render_views(unpruned, held.c2w, held.intrinsics, held.H, held.W)
    pruned = _pruned_file(trained, cells, tmp_path / "pruned.shac")
    decoded = load_scene_model(pruned)
    assert torch.equal(decoded.occupancy.occupied, cells)
    assert np.array_equal(render_views(decoded, held.c2w, held.intrinsics, held.H, held.W),
                          expected)
    assert expected.std() > 0
    # The unread rows decode as zero, the read ones as in the unpruned file.
    layout = decoded.field.grid.layout
    before, after = read_shac(trained), read_shac(pruned)
    coded = 0
    for level, read in enumerate(occupied_rows(layout, cells)):
        if read is None:
            assert np.array_equal(before.levels[level], after.levels[level])
            continue
        assert np.array_equal(after.levels[level][read.numpy()], before.levels[level][read.numpy()])
        assert not after.levels[level][~read.numpy()].any()
        coded += after.mask_of(level) is not None
    assert coded >= 1                                  # a hashed level codes fewer rows


def test_the_default_export_prunes_and_decodes_as_exported(scene_dir: Path,  # noqa: F811
                                                           tmp_path: Path) -> None:
    report = nerf.run(tiny_config(scene_dir, tmp_path / "run", iterations=30, val_every=0,
                                  checkpoint_every=0), tmp_path / "run")
    pruning = report["rate"]["pruning"]
    assert report["decode_matches"]
    assert pruning["applied"] == (pruning["pruned"] < pruning["unpruned"])
    meta = read_shac(tmp_path / "run" / "scene.shac", max_lod=0).config
    assert ("cells" in meta["occupancy"]) == pruning["applied"]
    assert "empty space" in nerf.summary(report)


def test_a_prefix_of_a_pruned_file_decodes_its_levels(trained: Path, tmp_path: Path) -> None:
    meta = read_shac(trained, max_lod=0).config
    data = _pruned_file(trained, _half(meta["occupancy"]["resolution"]),
                        tmp_path / "p.shac").read_bytes()
    full = decode_model(data)
    prefix = decode_model(data[:prefix_nbytes(data, 3)], partial=True)
    assert len(prefix.levels) == 3
    for a, b in zip(prefix.levels, full.levels):
        assert np.array_equal(a, b)


def test_a_pruned_file_needs_its_masks_and_valid_cells(trained: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    meta = read_shac(trained, max_lod=0).config
    data = _pruned_file(trained, _half(meta["occupancy"]["resolution"]),
                        tmp_path / "p.shac").read_bytes()
    assert decode_model(data, max_lod=0).config["coded_rows"] == "occupancy"
    assert len(decode_model(data).levels) == 4          # the scene task registered its masks
    with monkeypatch.context() as patch:
        patch.delitem(model_io._ROW_MASKS, "occupancy")
        with pytest.raises(BitstreamError, match="does not know"):
            decode_model(data)
    head = decode_model(data, max_lod=0)
    config = head.config

    def masks_of(**changes: object) -> list:
        return scene_row_masks(dataclasses.replace(head, config={**config, **changes}), "f")

    with pytest.raises(BitstreamError, match="log2_table_size|does not give the file's levels"):
        masks_of(grid={**config["grid"], "log2_table_size": 9})
    with pytest.raises(BitstreamError, match="coded_rows"):
        masks_of(coded_rows="everything")
    with pytest.raises(BitstreamError, match="occupancy.resolution"):
        masks_of(occupancy={**config["occupancy"], "resolution": 0})
    # What the fuzzer found: a grid that is not a mapping, and 10^9 levels (the layout of
    # which took minutes to build) are refused by the scene decoder's checks first.
    with pytest.raises(BitstreamError, match="invalid configuration"):
        masks_of(grid=[])
    with pytest.raises(BitstreamError, match="num_levels"):
        masks_of(grid={**config["grid"], "num_levels": 10**9})
    # A 1024^3 grid (LZMA2 would hold its 128 MiB of bits in a few KB) is refused before
    # its cells are even read.
    monkeypatch.setenv("WISP_SHACIRA_MAX_MEMORY", "1G")
    with pytest.raises(BitstreamError, match="1024\\^3 occupancy grid"):
        masks_of(occupancy={**config["occupancy"], "resolution": 1024, "cells": "not even read"})


def _raw(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_RAW,
                         filters=[{"id": lzma.FILTER_LZMA2, "dict_size": 4096}])


def test_cells_round_trip_and_corrupt_cells_are_refused() -> None:
    cells = _half(6)
    assert torch.equal(unpack_cells(pack_cells(cells), 6, "f"), cells)
    text = pack_cells(cells)
    packed = base64.b64decode(text)
    bad = {"not base64": "@@@@",
           "not lzma2": base64.b64encode(b"plain bytes").decode(),
           "truncated": base64.b64encode(packed[:-6]).decode(),
           "too short": base64.b64encode(_raw(b"\0" * 3)).decode(),
           "too long": base64.b64encode(_raw(b"\0" * 999)).decode()}
    for value in bad.values():
        with pytest.raises(BitstreamError, match="occupancy cells"):
            unpack_cells(value, 6, "f")


def test_rate_control_measures_the_file_the_export_writes(scene_dir: Path,  # noqa: F811
                                                          tmp_path: Path) -> None:
    free = nerf.run(tiny_config(scene_dir, tmp_path / "a", iterations=30, val_every=0,
                                checkpoint_every=0), tmp_path / "a")
    target = int(free["bytes"] * 1.15)
    report = nerf.run(tiny_config(scene_dir, tmp_path / "b", iterations=30, val_every=0,
                                  checkpoint_every=0, target_bytes=target), tmp_path / "b")
    control = report["rate_control"]
    assert control["target_bytes"] == target
    assert control["reached_bytes"] == report["bytes"] == (tmp_path / "b" / "scene.shac").stat().st_size
