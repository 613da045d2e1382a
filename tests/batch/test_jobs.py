"""Jobs: points, planning (configs checked first), the completion record and reuse."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from wisp_shacira.batch.jobs import MARKER, parse_point, plan_jobs, reusable, run_job
from wisp_shacira.errors import ConfigError, DataError


def test_parse_point_with_and_without_label() -> None:
    point = parse_point("T12:grid.log2_table_size=12,trainer.lambda_end=1e-4")
    assert point.label == "T12"
    assert point.overrides["grid"] == {"log2_table_size": 12}
    assert float(point.overrides["trainer"]["lambda_end"]) == 1e-4     # the config coerces it
    assert parse_point("grid.log2_table_size=9").label == "log2_table_size-9"
    for bad in ("", "T12:", "grid.log2_table_size", "T1:x", "T1:,"):
        with pytest.raises(ConfigError, match="--point"):
            parse_point(bad)


def test_plan_expands_folders_and_checks_every_config(images: Path, base_config: dict,
                                                      points: list, tmp_path: Path) -> None:
    jobs = plan_jobs(base_config, [images], points, tmp_path / "out")
    assert [j.name for j in jobs] == [f"{p}/img{i}" for p in ("T7", "T8") for i in range(3)]
    assert jobs[0].data["dataset"]["path"] == str(images / "img0.png")
    assert jobs[0].out_dir == tmp_path / "out" / "T7" / "img0"
    assert jobs[0].digest() != jobs[3].digest()
    bad = parse_point("grid.log2_table_size=99")
    with pytest.raises(ConfigError, match="point log2_table_size-99"):
        plan_jobs(base_config, [images], [bad], tmp_path / "out")
    with pytest.raises(DataError, match="no such image"):
        plan_jobs(base_config, [tmp_path / "missing.png"], points, tmp_path / "out")
    other = tmp_path / "other"
    other.mkdir()
    (other / "img0.png").write_bytes((images / "img0.png").read_bytes())
    with pytest.raises(DataError, match="share a file name stem"):
        plan_jobs(base_config, [images, other], points, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_finished_job_is_reused_until_anything_changes(images: Path, base_config: dict,
                                                         points: list, tmp_path: Path) -> None:
    job = plan_jobs(base_config, [images / "img0.png"], points[:1], tmp_path / "out")[0]
    assert reusable(job) is None
    row = run_job(job, threads=1)
    assert row["status"] == "done" and row["bytes"] > 0 and row["psnr"] > 0
    record = json.loads((job.out_dir / MARKER).read_text())
    assert "img0.shac" in record["files"] and "img0.png" in record["files"]
    assert reusable(job)["status"] == "reused"
    shac = job.out_dir / "img0.shac"
    data = shac.read_bytes()
    shac.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))      # same size, one bit flipped
    assert reusable(job) is None
    shac.write_bytes(data)
    assert reusable(job) is not None
    other = plan_jobs(base_config, [images / "img0.png"], points[1:], tmp_path / "out")[0]
    moved = type(job)(other.task, other.input, job.label, other.data, job.out_dir)
    assert reusable(moved) is None                             # another config
    (images / "img0.png").write_bytes((images / "img1.png").read_bytes())
    assert reusable(job) is None                               # another input


def test_a_user_error_is_a_failed_row(images: Path, base_config: dict, points: list,
                                      tmp_path: Path) -> None:
    job = plan_jobs(base_config, [images / "img0.png"], points[:1], tmp_path / "out")[0]
    (images / "img0.png").write_bytes(b"not a png")
    row = run_job(job, threads=1)
    assert row["status"] == "failed" and "img0.png" in row["error"]
    assert not (job.out_dir / MARKER).exists()
