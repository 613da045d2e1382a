"""Batch jobs on a local 2-CPU Ray instance (skipped without the ``ray`` extra).

The tests that start Ray run each in a child pytest (``test_in_child``), as the
``wisp-shacira batch`` command does: one process, one ``ray.init``, one shutdown. Ray's
core worker is not meant to be started again in a process after a shutdown, and the main
test process must not carry its threads to the end of the session.
"""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from wisp_shacira.batch.jobs import plan_jobs
from wisp_shacira.batch.ray_pool import RayOptions, RayPool, probe
from wisp_shacira.batch.runner import Sequential, run_batch
from wisp_shacira.errors import ConfigError, MissingExtraError

HOOKS = Path(__file__).parent
RAY_TESTS = ["test_ray_compresses_resumes_and_matches_the_sequential_files",
             "test_a_worker_that_dies_is_retried_once_then_reported"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingExtraError, match=r"wisp-shacira\[ray\]"):
        RayPool(RayOptions()).__enter__()


def test_an_address_that_does_not_answer_is_refused_quickly() -> None:
    address = f"127.0.0.1:{_closed_port()}"
    with pytest.raises(ConfigError, match=f"no Ray cluster answers at {address}"):
        probe(address, timeout=2.0)
    with pytest.raises(ConfigError, match="expected host:port"):
        probe("nowhere", timeout=1.0)


@pytest.mark.child_only
def test_ray_compresses_resumes_and_matches_the_sequential_files(
        images: Path, base_config: dict, points: list, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'wisp-shacira[ray]')")
    out, alone = tmp_path / "ray", tmp_path / "sequential"
    jobs = plan_jobs(base_config, [images], points[:1], out)
    with RayPool(RayOptions(cpus=2)) as pool:
        report = run_batch(jobs, out, pool, progress=False)
        assert report["counts"] == {"done": 3, "reused": 0, "failed": 0}
        assert report["executor"] == "ray" and report["cluster_cpus"] == 2
        (jobs[2].out_dir / "img2.shac").unlink()
        again = run_batch(jobs, out, pool, progress=False)
    assert [r["status"] for r in again["jobs"]] == ["reused", "reused", "done"]
    one = plan_jobs(base_config, [images], points[:1], alone)
    run_batch(one, alone, Sequential(threads=1), progress=False)
    for ray_job, job in zip(jobs, one):
        name = f"{job.input.stem}.shac"
        assert (ray_job.out_dir / name).read_bytes() == (job.out_dir / name).read_bytes()


@pytest.mark.child_only
def test_a_worker_that_dies_is_retried_once_then_reported(
        images: Path, base_config: dict, points: list, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'wisp-shacira[ray]')")
    log = tmp_path / "attempts.log"
    path = os.pathsep.join([str(HOOKS), str(HOOKS.parents[1])])    # the hook, the package
    env = {"env_vars": {"PYTHONPATH": path, "WISP_SHACIRA_TEST_KILL": "img1",
                        "WISP_SHACIRA_TEST_LOG": str(log)},
           "worker_process_setup_hook": "ray_hooks.setup"}
    out = tmp_path / "out"
    jobs = plan_jobs(base_config, [images], points[:1], out)
    with RayPool(RayOptions(cpus=2, runtime_env=env)) as pool:
        report = run_batch(jobs, out, pool, progress=False)
    assert [r["status"] for r in report["jobs"]] == ["done", "failed", "done"]
    assert "died" in report["jobs"][1]["error"].lower() or "crash" in report["jobs"][1]["error"].lower()
    assert log.read_text().split().count("T7/img1") == 2
    assert (jobs[0].out_dir / "img0.shac").is_file() and not (jobs[1].out_dir / "img1.shac").exists()


@pytest.mark.parametrize("name", RAY_TESTS)
def test_in_child(name: str, child_pytest) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'wisp-shacira[ray]')")
    child_pytest(__file__, name)
