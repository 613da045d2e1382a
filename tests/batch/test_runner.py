"""Running a batch one job after another: reuse, resume, retries, the report."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import wisp_shacira.batch.runner as runner
from wisp_shacira.batch.jobs import plan_jobs
from wisp_shacira.batch.runner import Sequential, run_batch, summary


def test_rerun_reuses_and_recomputes_only_what_is_missing(images: Path, base_config: dict,
                                                          points: list, tmp_path: Path) -> None:
    out = tmp_path / "out"
    jobs = plan_jobs(base_config, [images], points[:1], out)
    report = run_batch(jobs, out, Sequential(threads=1), progress=False)
    assert report["counts"] == {"done": 3, "reused": 0, "failed": 0} and report["complete"]
    saved = json.loads((out / "metrics.json").read_text())
    assert [r["job"] for r in saved["jobs"]] == ["T7/img0", "T7/img1", "T7/img2"]
    assert (out / "rd.png").read_bytes()[:4] == b"\x89PNG"
    first = {j.name: (j.out_dir / f"{j.input.stem}.shac").read_bytes() for j in jobs}
    stamp = (jobs[0].out_dir / "img0.shac").stat().st_mtime_ns
    (jobs[1].out_dir / "img1.shac").unlink()
    again = run_batch(jobs, out, Sequential(threads=1), progress=False)
    assert again["counts"] == {"done": 1, "reused": 2, "failed": 0}
    assert [r["status"] for r in again["jobs"]] == ["reused", "done", "reused"]
    assert (jobs[0].out_dir / "img0.shac").stat().st_mtime_ns == stamp     # not rewritten
    assert (jobs[1].out_dir / "img1.shac").read_bytes() == first["T7/img1"]  # same file again
    assert "1 run, 2 reused, 0 failed" in summary(again)


def test_a_crashing_job_is_retried_once_then_reported(images: Path, base_config: dict,
                                                      points: list, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[str] = []
    original = runner.run_job

    def flaky(job, threads=None):
        attempts.append(job.name)
        if job.input.stem == "img1":
            raise RuntimeError("worker lost")
        return original(job, threads)

    monkeypatch.setattr(runner, "run_job", flaky)
    out = tmp_path / "out"
    report = run_batch(plan_jobs(base_config, [images], points[:1], out), out,
                       Sequential(threads=1), progress=False)
    assert attempts.count("T7/img1") == 2 and attempts.count("T7/img0") == 1
    assert [r["status"] for r in report["jobs"]] == ["done", "failed", "done"]
    assert "failed T7/img1: RuntimeError: worker lost" in summary(report)
