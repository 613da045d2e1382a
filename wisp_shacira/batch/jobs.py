"""Jobs of a batch: one input at one rate point, each in its own output folder.

A job is plain data (task name, input path, point label, the whole config as a dict,
output folder), so it travels to a Ray worker as it is. When a job's task run ends,
:func:`run_job` writes ``batch.json`` into its folder, last and atomically: the
digest of the config, the identity of the input (size and modification time of every
file) and the size and SHA-256 of every file the run wrote. :func:`reusable` accepts
an earlier run's outputs only when all of that still holds, so a rerun after a crash,
a preempted node or a deleted output recomputes exactly the jobs whose outputs are
missing, partial, changed or made from another config or input.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from wisp_shacira.config import build_config, merge, parse_overrides
from wisp_shacira.errors import ConfigError, DataError, ShaciraError
from wisp_shacira.outputs import write_atomic
from wisp_shacira.tasks import get_task
from wisp_shacira.tasks.inputs import batch_inputs

logger = logging.getLogger(__name__)

MARKER = "batch.json"
"""The completion record of a job, in its output folder."""
MARKER_FORMAT = 1
HEADLINE = ("psnr", "ssim", "bpp", "bytes", "encode_seconds", "train_seconds",
            "decode_seconds")
"""Figures of a task's report a batch table shows (those the report has)."""


@dataclass(frozen=True)
class Point:
    """A rate point: a label (its folder name) and the config overrides it applies."""

    label: str
    overrides: dict


def parse_point(text: str) -> Point:
    """``"[LABEL:]KEY=VALUE,KEY=VALUE"`` -> a :class:`Point` (label from the values when
    not given), e.g. ``"T12:grid.log2_table_size=12,trainer.lambda_end=1e-4"``.

    Raises:
        ConfigError: an empty point or an item that is not ``KEY=VALUE``.
    """
    label, _, body = text.partition(":") if re.match(r"^[\w.-]+:", text) else ("", "", text)
    items = [item.strip() for item in body.split(",") if item.strip()]
    if not items or any("=" not in item for item in items):
        raise ConfigError(f"--point {text!r}: expected [LABEL:]KEY=VALUE[,KEY=VALUE...]")
    overrides = parse_overrides([f"--{item}" for item in items])
    if not label:
        label = re.sub(r"[^\w.+-]", "_", "_".join(
            f"{item.split('=')[0].rsplit('.', 1)[-1]}-{item.split('=', 1)[1]}" for item in items))
    if not re.fullmatch(r"[\w.+-]+", label):
        raise ConfigError(f"--point {text!r}: the label {label!r} must be a plain folder name")
    return Point(label, overrides)


@dataclass(frozen=True)
class Job:
    """One input at one rate point.

    Attributes:
        task: the config's task.
        input: the signal (``dataset.path`` of this job).
        label: the point's label.
        data: the whole config (YAML, point overrides, ``dataset.path``, ``output``).
        out_dir: where the task run writes (``OUT/LABEL/STEM``).
    """

    task: str
    input: Path
    label: str
    data: dict
    out_dir: Path

    @property
    def name(self) -> str:
        return f"{self.label}/{self.input.stem}"

    def digest(self) -> str:
        """SHA-256 of the config (canonical JSON)."""
        text = json.dumps(self.data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def plan_jobs(base: dict, inputs: list[Path], points: list[Point], out: Path) -> list[Job]:
    """Every input of ``inputs`` (expanded for the task: folders of images, videos,
    scenes) at every point, each config checked before anything runs.

    Raises:
        ConfigError: no task, a bad override, two points with one label.
        DataError: an input that does not exist, two inputs with one file stem.
    """
    task = get_task(base.get("task"))
    found = batch_inputs(task.name, inputs)
    stems = [p.stem for p in found]
    if len(set(stems)) != len(stems):
        twice = sorted({s for s in stems if stems.count(s) > 1})
        raise DataError(f"inputs {', '.join(twice)} share a file name stem: their output "
                        f"folders would collide")
    labels = [p.label for p in points]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"two points share the label {sorted(labels, key=labels.count)[-1]!r}")
    jobs = []
    for point in points:
        for path in found:
            out_dir = Path(out) / point.label / path.stem
            data = merge(merge(base, point.overrides),
                         {"dataset": {"path": str(path)}, "output": str(out_dir)})
            try:
                build_config(task.config_type, data)
            except ConfigError as exc:
                raise ConfigError(f"point {point.label}: {exc}") from exc
            jobs.append(Job(task.name, Path(path), point.label, data, out_dir))
    return jobs


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def input_identity(path: Path) -> list[list]:
    """``[relative name, bytes, mtime_ns]`` of the input file, or of every file under an
    input folder (a scene, a frame folder)."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return [[str(p.relative_to(path)) if p != path else p.name, p.stat().st_size,
             p.stat().st_mtime_ns] for p in files]


def written_files(out_dir: Path) -> dict[str, dict]:
    """Size and SHA-256 of every file under ``out_dir`` except the marker, hidden files
    (temporaries, checkpoints) and TensorBoard logs."""
    out = {}
    for path in sorted(Path(out_dir).rglob("*")):
        rel = path.relative_to(out_dir)
        if (not path.is_file() or rel.as_posix() == MARKER or rel.parts[0] == "tensorboard"
                or any(part.startswith(".") for part in rel.parts)):
            continue
        out[rel.as_posix()] = {"bytes": path.stat().st_size, "sha256": _file_digest(path)}
    return out


def headline(report: dict) -> dict:
    """The figures of a task report a table shows (an image run's mean row)."""
    source = report.get("mean", report)
    return {key: source[key] for key in HEADLINE if source.get(key) is not None}


def reusable(job: Job) -> dict | None:
    """The row of an earlier complete run of ``job`` whose outputs still hold, else None.

    The marker must parse and name this config and this input (sizes and times), and
    every file it lists must still be there with its size and SHA-256.
    """
    try:
        record = json.loads((job.out_dir / MARKER).read_text())
        if (record.get("format") != MARKER_FORMAT or record.get("config") != job.digest()
                or record.get("input") != input_identity(job.input)):
            return None
        for rel, expected in record["files"].items():
            path = job.out_dir / rel
            if path.stat().st_size != expected["bytes"] or _file_digest(path) != expected["sha256"]:
                return None
        if not any(rel.endswith(".shac") for rel in record["files"]):
            return None
        return {**record["row"], "status": "reused"}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _row(job: Job, status: str, **values) -> dict:
    return {"job": job.name, "point": job.label, "input": str(job.input),
            "output": str(job.out_dir), "status": status, **values}


def run_job(job: Job, threads: int | None = None) -> dict:
    """Run ``job``'s task in this process and record it; returns the job's row.

    A user error (bad input, config, output) comes back as a ``failed`` row: running it
    again would fail again. Anything else propagates, so that the caller may retry.

    Args:
        threads: torch threads (None: as set).
    """
    import torch
    if threads is not None:
        torch.set_num_threads(threads)
    task = get_task(job.task)
    (job.out_dir / MARKER).unlink(missing_ok=True)     # this run's record replaces it
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        cfg = build_config(task.config_type, job.data)
        report = task.run(cfg, job.out_dir)
    except ShaciraError as exc:
        return _row(job, "failed", error=str(exc))
    row = _row(job, "done", **headline(report), seconds=time.perf_counter() - start,
               cpu_seconds=time.process_time() - cpu_start, pid=os.getpid())
    record = {"format": MARKER_FORMAT, "config": job.digest(), "input": input_identity(job.input),
              "files": written_files(job.out_dir), "row": row}
    write_atomic(job.out_dir / MARKER, json.dumps(record, indent=1).encode())
    logger.info("%s: done in %.1f s", job.name, row["seconds"])
    return row


def failed_row(job: Job, error: str) -> dict:
    """The row of a job that failed on every attempt."""
    return _row(job, "failed", error=error)
