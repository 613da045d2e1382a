"""What the processes of ``tests/train/test_distributed.py`` run (spawned by
``torch.multiprocessing``, joined through the environment as ``torchrun`` would).

Each rank writes its results as JSON under ``results/`` (never into an output folder);
the image, video and NeRF runs of rank ``r`` write into ``<name>/rank<r>``, so the test
can check that rank 1 wrote nothing.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from wisp_shacira.config import build_config
from wisp_shacira.errors import TrainingError
from wisp_shacira.train.distributed import DataParallel, GradientReducer, process_group

IMAGE = {"grid": {"num_levels": 4, "min_res": 4, "max_res": 32, "log2_table_size": 8},
         "nef": {"hidden_dim": 8}}
VIDEO = {"grid": {"num_levels": 4, "min_res": 2, "max_res": 16, "log2_table_size": 10,
                  "feature_dim": 2},
         "nef": {"hidden_dim": 16}}
NERF = {"grid": {"num_levels": 4, "min_res": 4, "max_res": 32, "log2_table_size": 10,
                 "feature_dim": 2},
        "nef": {"hidden_dim": 16, "geo_feat_dim": 7, "color_hidden_dim": 16,
                "color_num_layers": 1},
        "tracer": {"num_samples": 16, "chunk_size": 1024}}
NERF_TRAINER = {"iterations": 20, "rays_per_batch": 128, "occupancy_resolution": 8,
                "occupancy_every": 4, "occupancy_warmup": 8, "val_every": 10,
                "checkpoint_every": 5, "rate_sample": 512, "lr_mlp": 0.005}
INTERRUPT_AT = 11
"""The interrupted NeRF run stops in its 11th step: the checkpoint holds step 10."""


def image_config(path: Path, **trainer: Any) -> Any:
    from wisp_shacira.tasks.image import AppConfig
    dataset = {"path": str(path), **trainer.pop("dataset", {})}
    return build_config(AppConfig, {**IMAGE, "dataset": dataset,
                                    "trainer": {"iterations": 60, "log_every": 1000, **trainer}})


def video_config(path: Path, **trainer: Any) -> Any:
    from wisp_shacira.tasks.video import AppConfig
    return build_config(AppConfig, {**VIDEO, "dataset": {"path": str(path)},
                                    "trainer": {"iterations": 40, "log_every": 1000,
                                                "batch_size": 512, **trainer}})


def nerf_config(scene: Path, out: Path, resume: bool = False) -> Any:
    from wisp_shacira.tasks.nerf_config import AppConfig
    return build_config(AppConfig, {**NERF, "output": str(out), "resume": resume,
                                    "dataset": {"path": str(scene)}, "trainer": NERF_TRAINER})


def _join(rank: int, world: int, port: int) -> None:
    """The environment ``torchrun`` gives a worker (each process group of a spawn on its
    own port: a group started right after another one ended could reach the old store)."""
    torch.set_num_threads(1)
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})


def _save(root: Path, name: str, rank: int, data: Any) -> None:
    (root / "results").mkdir(parents=True, exist_ok=True)
    (root / "results" / f"{name}_{rank}.json").write_text(json.dumps(data, default=str))


def reducer_cases(parallel: DataParallel) -> dict:
    """Touched-row and dense averaging of the same gradients, compared on every rank;
    and the in-sync check catching a rank that differs."""
    out = {}
    for label, rows in (("few", 6), ("mid", 20), ("many", 200)):
        grads = []
        for dense_below in (1 << 40, 0):
            table = nn.Parameter(torch.zeros(256, 2))
            small = nn.Parameter(torch.zeros(3))
            gen = torch.Generator().manual_seed(7 + parallel.rank)
            picked = torch.randperm(256, generator=gen)[:rows]
            table.grad = torch.zeros(256, 2)
            table.grad[picked] = torch.randn(rows, 2, generator=gen)
            small.grad = torch.randn(3, generator=gen)
            reducer = GradientReducer([table, small], table, parallel, dense_below=dense_below)
            mean = reducer.reduce(torch.tensor(float(parallel.rank + 1)))
            grads.append((table.grad.clone(), small.grad.clone(), mean, reducer.report()))
        (dense_t, dense_s, dense_m, _), (sparse_t, sparse_s, sparse_m, report) = grads
        out[label] = {"table_equal": torch.equal(dense_t, sparse_t),
                      "small_equal": torch.equal(dense_s, sparse_s),
                      "means": [dense_m, sparse_m], "sparse_steps": report["sparse_steps"],
                      "mask_steps": report["mask_steps"],
                      "bytes": report["reduced_bytes_per_step"],
                      "dense_bytes": report["dense_bytes_per_step"],
                      "touched": report["touched_rows_per_sparse_step"]}
    module = nn.Linear(2, 2)
    with torch.no_grad():
        module.weight.fill_(0.5)
        module.bias.fill_(float(parallel.rank))
    try:
        GradientReducer(list(module.parameters()), None, parallel).check_in_sync(module)
        out["in_sync_error"] = None
    except TrainingError as exc:
        out["in_sync_error"] = str(exc)
    return out


def _interrupting(call: int) -> Callable[[], None]:
    """Make ``RDTrainer.step`` raise KeyboardInterrupt at its ``call``-th call."""
    from wisp_shacira.train.rd import RDTrainer
    original, calls = RDTrainer.step, [0]

    def step(self, distortion):  # noqa: ANN001, ANN202
        calls[0] += 1
        if calls[0] == call:
            raise KeyboardInterrupt
        return original(self, distortion)

    RDTrainer.step = step  # type: ignore[method-assign]
    return lambda: setattr(RDTrainer, "step", original)


def _runs(root: Path, rank: int, parallel: DataParallel) -> dict:
    """Every task path of the first spawn; each rank writes into its own folders."""
    from wisp_shacira.tasks import image, nerf, video
    inputs, mine = root / "inputs", f"rank{rank}"
    out: dict[str, Any] = {"reducer": reducer_cases(parallel)}
    for name, trainer in (("planned", {"batch_size": 256}), ("full", {}),
                          ("ooc", {"batch_size": 256,
                                   "dataset": {"out_of_core": "always", "tile": 16}})):
        out[name] = image.run(image_config(inputs / "img.png", **trainer),
                              root / name / mine, parallel)
    limit, image.PLAN_LIMIT = image.PLAN_LIMIT, 10
    try:
        out["random"] = image.run(image_config(inputs / "img.png", batch_size=256),
                                  root / "random" / mine, parallel)
    finally:
        image.PLAN_LIMIT = limit
    out["video"] = video.run(video_config(inputs / "clip"), root / "video" / mine, parallel)
    out["rate"] = image.run(image_config(inputs / "img.png", iterations=10, batch_size=256,
                                         target_bpp=4.8), root / "rate" / mine, parallel)
    restore = _interrupting(INTERRUPT_AT)
    try:
        nerf.run(nerf_config(inputs / "scene", root / "nerf" / mine), root / "nerf" / mine,
                 parallel)
        out["nerf"] = "finished"
    except KeyboardInterrupt:
        out["nerf"] = "interrupted"
    finally:
        restore()
    return out


def _cli(args: list[str]) -> dict:
    """``wisp-shacira encode ARGS`` in this process: exit code, stdout, stderr."""
    from wisp_shacira.cli.main import main as cli_main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(["encode", *args])
    return {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


def cli_runs(root: Path, rank: int, world: int, ports: list[int]) -> dict:
    """The command line under the environment of a torchrun worker: a run, and a batch
    the processes cannot split."""
    config = root / "inputs" / "tiny.yaml"
    common = ["--config", str(config), "--dataset.path", str(root / "inputs" / "img.png"),
              "--output", str(root / "cli"), "--trainer.iterations", "4"]
    _join(rank, world, ports[0])
    ok = _cli([*common, "--trainer.batch_size", "256"])
    _join(rank, world, ports[1])
    return {"ok": ok, "bad": _cli([*common, "--trainer.batch_size", "255"])}


def _resume(root: Path, parallel: DataParallel) -> dict:
    """Resume the single process's interrupted NeRF run (its checkpoint copied by rank 0
    into ``resume2``, shared by both ranks as under torchrun)."""
    from wisp_shacira.tasks import nerf
    out = root / "resume2"
    if parallel.is_main:
        out.mkdir()
        shutil.copy(root / "inputs" / "nerf1" / "checkpoint.pt", out / "checkpoint.pt")
    parallel.barrier()
    return nerf.run(nerf_config(root / "inputs" / "scene", out, resume=True), out, parallel)


def first_spawn(rank: int, world: int, ports: list[int], root: str) -> None:
    """The spawned processes: the command line, then the reducer cases, every task (each
    rank into its own folders) and the NeRF resume (three process groups, on ``ports``)."""
    results = {"cli": cli_runs(Path(root), rank, world, ports)}
    _join(rank, world, ports[2])
    with process_group(torch.device("cpu")) as parallel:
        results.update(_runs(Path(root), rank, parallel))
        results["resume"] = _resume(Path(root), parallel)
    _save(Path(root), "first", rank, results)


def interrupted_nerf(scene: Path, out: Path) -> None:
    """A single-process NeRF run stopped in step :data:`INTERRUPT_AT` (checkpoint at 10)."""
    from wisp_shacira.tasks import nerf
    restore = _interrupting(INTERRUPT_AT)
    try:
        nerf.run(nerf_config(scene, out), out)
    except KeyboardInterrupt:
        pass
    finally:
        restore()
