"""Running a batch: reuse what is done, run the rest (in this process or on Ray), and
collect one ``metrics.json``, table and rate-distortion plot for the whole set.

``metrics.json`` is rewritten (atomically) after every job, so an interrupted batch
leaves the rows it finished; a rerun reuses every job whose outputs still hold
(:func:`~wisp_shacira.batch.jobs.reusable`) and runs only the others.
"""
from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path
from typing import Iterable, Iterator, Protocol

from tqdm.auto import tqdm

from wisp_shacira.batch.jobs import Job, failed_row, reusable, run_job
from wisp_shacira.errors import MissingExtraError
from wisp_shacira.extras import require
from wisp_shacira.outputs import check_writable, write_atomic
from wisp_shacira.tasks.report import format_table

logger = logging.getLogger(__name__)

METRICS = "metrics.json"
PLOT = "rd.png"


class Executor(Protocol):
    """Runs jobs and yields each one's row as it ends (:class:`Sequential`,
    :class:`~wisp_shacira.batch.ray_pool.RayPool`)."""

    def describe(self) -> dict: ...

    def run(self, jobs: list[Job]) -> Iterable[dict]: ...


class Sequential:
    """One job after another in this process, each retried ``retries`` times when it
    raises anything but a user error.

    Args:
        threads: torch threads of every job (None: as set).
    """

    def __init__(self, threads: int | None = None, retries: int = 1) -> None:
        self.threads = threads
        self.retries = retries

    def describe(self) -> dict:
        return {"executor": "sequential", "threads": self.threads}

    def run(self, jobs: list[Job]) -> Iterator[dict]:
        for job in jobs:
            for attempt in range(self.retries + 1):
                try:
                    yield run_job(job, self.threads)
                    break
                except Exception as exc:       # noqa: BLE001  (retried, then reported)
                    error = f"{type(exc).__name__}: {exc}"
                    logger.warning("%s: attempt %d failed: %s", job.name, attempt + 1, error)
            else:
                yield failed_row(job, error)


def _report(jobs: list[Job], rows: dict[str, dict], executor: Executor, wall: float,
            complete: bool) -> dict:
    ordered = [rows[job.name] for job in jobs if job.name in rows]
    counts = {status: sum(r["status"] == status for r in ordered)
              for status in ("done", "reused", "failed")}
    computed = [r for r in ordered if r["status"] == "done"]
    return {"task": jobs[0].task if jobs else None, **executor.describe(),
            "complete": complete, "jobs_total": len(jobs), "counts": counts,
            "wall_seconds": wall, "cpu_seconds": sum(r.get("cpu_seconds", 0.0) for r in computed),
            "jobs": ordered}


def _write(out: Path, report: dict) -> None:
    write_atomic(out / METRICS, json.dumps(report, indent=1, default=str).encode())


def run_batch(jobs: list[Job], out: Path, executor: Executor, progress: bool = True) -> dict:
    """Reuse the jobs whose outputs hold, run the others with ``executor``, and write
    ``OUT/metrics.json`` (and ``OUT/rd.png`` when the jobs report rates and matplotlib is
    installed). Returns the report (rows in plan order)."""
    out = Path(out)
    check_writable(out / METRICS, create=False)
    rows: dict[str, dict] = {}
    for job in jobs:
        earlier = reusable(job)
        if earlier is not None:
            rows[job.name] = earlier
    pending = [job for job in jobs if job.name not in rows]
    logger.info("batch: %d jobs, %d reused, %d to run", len(jobs), len(rows), len(pending))
    start = time.perf_counter()
    bar = tqdm(total=len(jobs), initial=len(rows), desc="batch", unit="job", disable=not progress)
    with bar:
        for row in executor.run(pending):
            rows[row["job"]] = row
            bar.update(1)
            failed = sum(r["status"] == "failed" for r in rows.values())
            bar.set_postfix(last=row["job"], failed=failed)
            _write(out, _report(jobs, rows, executor, time.perf_counter() - start, False))
    report = _report(jobs, rows, executor, time.perf_counter() - start, True)
    _write(out, report)
    plot(report, out / PLOT)
    return report


def summary(report: dict) -> str:
    """The table of a batch: one row per job, then the failures and the totals."""
    def cells(row: dict) -> list:
        size, secs, cpu = row.get("bytes"), row.get("seconds"), row.get("cpu_seconds")
        return [row["job"], row["status"], row.get("psnr"), row.get("bpp"),
                None if size is None else int(size), None if secs is None else f"{secs:.1f}",
                None if cpu is None else f"{cpu:.1f}"]

    rows = [cells(r) for r in report["jobs"]]
    lines = [format_table(["job", "status", "PSNR", "BPP", "bytes", "seconds", "CPU s"], rows)]
    lines += [f"failed {r['job']}: {r.get('error')}" for r in report["jobs"]
              if r["status"] == "failed"]
    counts = report["counts"]
    lines.append(f"{counts['done']} run, {counts['reused']} reused, {counts['failed']} failed "
                 f"in {report['wall_seconds']:.1f} s ({report['executor']}; "
                 f"{report['cpu_seconds']:.1f} CPU s in the jobs run)")
    return "\n".join(lines)


def plot(report: dict, path: Path) -> Path | None:
    """PSNR against BPP of every input across the points (None: nothing to plot, or no
    matplotlib)."""
    curves: dict[str, list[tuple[float, float]]] = {}
    for row in report["jobs"]:
        if row["status"] != "failed" and "bpp" in row and "psnr" in row:
            curves.setdefault(Path(row["input"]).stem, []).append((row["bpp"], row["psnr"]))
    if not curves:
        return None
    try:
        require("matplotlib", "plots", "the batch RD plot")
    except MissingExtraError as exc:
        logger.info("%s; no %s", exc, path.name)
        return None
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in sorted(curves.items()):
        xs, ys = zip(*sorted(points))
        ax.plot(xs, ys, marker="o", label=name)
    ax.set_xlabel("bits per pixel (file bytes)")
    ax.set_ylabel("PSNR (dB, decoded from the file)")
    ax.grid(alpha=0.3)
    if len(curves) <= 12:
        ax.legend(fontsize=7)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    write_atomic(path, buffer.getvalue())
    return path
