"""Data-parallel training (``train/distributed.py``) with 2 gloo processes on tiny inputs.

One spawn of 2 processes (joined through the environment, as ``torchrun`` does) runs the
reducer cases and every task path, each rank into its own folders; the test process
runs the same configs alone and compares. Two processes and one draw the same global
batches and random numbers, but sum each gradient in another order (each rank sums its
half, then the all-reduce adds the halves), so the files agree to float rounding: a
weight or latent that lies on a rounding boundary may land on the other side. The
tolerance below is what that allows; the measured differences are far smaller (the
files are often byte-identical).
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import png
import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image

import distributed_workers as workers
from wisp_shacira.errors import ConfigError
from wisp_shacira.tasks import image, nerf, video
from wisp_shacira.train.checkpoint import load_checkpoint
from wisp_shacira.train.distributed import SINGLE, DataParallel, world_from_env
from wisp_shacira.train.rd import RDTrainer

ROOT = Path(__file__).resolve().parents[2]
WORLD = 2
PSNR_TOLERANCE_DB = 0.05
BYTES_TOLERANCE = 0.02
"""Largest PSNR difference and relative size difference between 2 processes and 1."""
IMAGE_RUNS = ("planned", "full", "ooc", "random")


def _free_ports(count: int) -> list[int]:
    """``count`` distinct ports free now (bound together, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _spawn(fn, root: Path) -> None:  # noqa: ANN001
    mp.spawn(fn, args=(WORLD, _free_ports(3), str(root)), nprocs=WORLD, join=True)


def _inputs(root: Path) -> None:
    """A 32x32 RGB image, a 4-frame 16x16 clip and a 16x16 synthetic scene."""
    root.mkdir(parents=True)
    yy, xx = np.mgrid[0:32, 0:32]
    base = (np.sin(xx / 3.0) + np.cos(yy / 4.0) + 2) / 4
    pixels = np.stack([base, base ** 2, 1 - base], -1)
    with open(root / "img.png", "wb") as handle:
        png.Writer(32, 32, greyscale=False).write_array(
            handle, (pixels * 255).astype(np.uint8).reshape(-1))
    (root / "clip").mkdir()
    for t in range(4):
        frame = np.zeros((16, 16, 3), np.uint8)
        frame[..., 0], frame[..., 1] = 40 + 20 * t, 60 + 4 * yy[:16, :16]
        frame[..., 2] = 30 + 5 * ((xx[:16, :16] + t) % 16)
        Image.fromarray(frame).save(root / "clip" / f"f{t}.png")
    spec = importlib.util.spec_from_file_location("make_demo_scene",
                                                  ROOT / "data" / "make_demo_scene.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    demo.make_demo_scene(root / "scene", size=16, n_train=8, n_val=2, n_test=2, seed=3,
                         supersample=1)


@pytest.fixture(scope="module")
def spawned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The spawn's folder: inputs (and a single process's interrupted NeRF run), results,
    rank folders."""
    root = tmp_path_factory.mktemp("dist")
    _inputs(root / "inputs")
    (root / "inputs" / "tiny.yaml").write_text(json.dumps({"task": "image", **workers.IMAGE}))
    workers.interrupted_nerf(root / "inputs" / "scene", root / "inputs" / "nerf1")
    _spawn(workers.first_spawn, root)
    return root


def _results(root: Path, name: str) -> list[dict]:
    return [json.loads((root / "results" / f"{name}_{r}.json").read_text()) for r in range(WORLD)]


def test_touched_rows_average_equals_the_dense_average(spawned: Path) -> None:
    for result in _results(spawned, "first"):
        few, mid, many = (result["reducer"][k] for k in ("few", "mid", "many"))
        for case in (few, mid, many):
            assert case["table_equal"] and case["small_equal"]
            assert case["means"] == [1.5, 1.5]
        assert few["sparse_steps"] == 1 and few["mask_steps"] == 0        # row indices
        assert mid["sparse_steps"] == 1 and mid["mask_steps"] == 1        # bitmasks
        assert few["bytes"] < mid["bytes"] < few["dense_bytes"]
        assert 6 <= few["touched"] <= 12 and 20 <= mid["touched"] <= 40
        assert many["sparse_steps"] == 0 and many["bytes"] == many["dense_bytes"]
        assert "bias" in result["reducer"]["in_sync_error"]


def test_only_rank_zero_writes(spawned: Path) -> None:
    rank0, rank1 = _results(spawned, "first")
    for name in (*IMAGE_RUNS, "rate", "video", "nerf"):
        assert not (spawned / name / "rank1").exists(), name
        assert (spawned / name / "rank0").is_dir(), name
    for name in IMAGE_RUNS:
        assert rank1[name] == {"task": "image", "rank": 1}
        assert sorted(p.name for p in (spawned / name / "rank0").iterdir()) == \
            ["img.png", "img.shac", "metrics.json"]
    assert rank1["video"] == {"task": "video", "rank": 1}
    assert rank0["nerf"] == rank1["nerf"] == "interrupted"


def _close(two: dict, one: dict) -> None:
    assert abs(two["psnr"] - one["psnr"]) <= PSNR_TOLERANCE_DB
    assert abs(two["bytes"] - one["bytes"]) <= BYTES_TOLERANCE * one["bytes"]


def test_two_processes_match_one_with_the_same_global_batches(spawned: Path,
                                                              tmp_path: Path) -> None:
    rank0 = _results(spawned, "first")[0]
    img = spawned / "inputs" / "img.png"
    for name, trainer in (("planned", {"batch_size": 256}), ("full", {}),
                          ("ooc", {"batch_size": 256,
                                   "dataset": {"out_of_core": "always", "tile": 16}})):
        one = image.run(workers.image_config(img, **trainer), tmp_path / name)
        two = rank0[name]
        _close(two["images"][0], one["images"][0])
        assert two["images"][0]["decode_matches"]
        report = two["distributed"]
        assert report["world_size"] == WORLD and report["backend"] == "gloo"
        assert report["steps"] == 60 and report["reduced_bytes_per_step"] > 0
        assert report["table_in_flat_buffer"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(image, "PLAN_LIMIT", 10)
        one = image.run(workers.image_config(img, batch_size=256), tmp_path / "random")
    _close(rank0["random"]["images"][0], one["images"][0])
    one = video.run(workers.video_config(spawned / "inputs" / "clip"), tmp_path / "video")
    _close(rank0["video"], one)
    rate = rank0["rate"]["images"][0]
    assert len(rate["rate_control"]["passes"]) >= 2          # every pass trained by both
    assert rate["rate_control"]["reached_bytes"] == rate["bytes"]


def test_nerf_resumes_with_another_number_of_processes(spawned: Path, tmp_path: Path) -> None:
    """2 processes -> 1 and 1 -> 2: the checkpoints of both at step 10 hold the same random
    state (every process draws what one process draws) and close weights."""
    two_ck = load_checkpoint(spawned / "nerf" / "rank0" / "checkpoint.pt")
    one_ck = load_checkpoint(spawned / "inputs" / "nerf1" / "checkpoint.pt")
    assert two_ck["step"] == one_ck["step"] == workers.INTERRUPT_AT - 1
    assert torch.equal(two_ck["rng"]["cpu"], one_ck["rng"]["cpu"])
    for key, value in one_ck["model"].items():
        assert torch.allclose(two_ck["model"][key], value, atol=1e-4), key
    scene = spawned / "inputs" / "scene"
    (tmp_path / "resume1").mkdir()
    shutil.copy(spawned / "nerf" / "rank0" / "checkpoint.pt", tmp_path / "resume1")
    alone = nerf.run(workers.nerf_config(scene, tmp_path / "resume1", resume=True),
                     tmp_path / "resume1")
    two, other = (result["resume"] for result in _results(spawned, "first"))
    assert other == {"task": "nerf", "rank": 1}
    straight = nerf.run(workers.nerf_config(scene, tmp_path / "straight"), tmp_path / "straight")
    for report in (alone, two):
        assert report["resumed_from"] == workers.INTERRUPT_AT - 1 and report["decode_matches"]
        _close(report, straight)
    assert two["distributed"]["world_size"] == WORLD and "distributed" not in alone
    assert load_checkpoint(spawned / "resume2" / "checkpoint.pt")["step"] == 20


def test_the_command_line_prints_on_rank_zero_and_names_a_batch_it_cannot_split(
        spawned: Path) -> None:
    rank0, rank1 = (result["cli"] for result in _results(spawned, "first"))
    assert rank0["ok"]["code"] == rank1["ok"]["code"] == 0, rank0["ok"]["stderr"]
    assert rank0["ok"]["stdout"].count("outputs in") == 1 and rank1["ok"]["stdout"] == ""
    assert "writing outputs to" in rank0["ok"]["stderr"] and rank1["ok"]["stderr"] == ""
    metrics = json.loads((spawned / "cli" / "metrics.json").read_text())
    assert metrics["distributed"]["world_size"] == WORLD
    message = ("error: trainer.batch_size = 255 is not divisible by the 2 processes of this "
               "torchrun: use a multiple of 2")
    for rank in (rank0, rank1):
        assert rank["bad"]["code"] == 2 and message in rank["bad"]["stderr"]


def test_torchrun_refuses_a_batch_it_cannot_split(tmp_path: Path) -> None:
    """The real launcher (``python -m torch.distributed.run``): one line per process."""
    config = tmp_path / "tiny.yaml"
    config.write_text(json.dumps({"task": "image", **workers.IMAGE}))
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(WORLD),
         "--master-port", str(_free_ports(1)[0]), "-m", "wisp_shacira.cli.main", "encode",
         "--config", str(config), "--output", str(tmp_path / "out"),
         "--trainer.batch_size", "255"],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode != 0
    assert run.stderr.count("error: trainer.batch_size = 255 is not divisible by the 2 "
                            "processes of this torchrun: use a multiple of 2") == WORLD
    assert not (tmp_path / "out").exists()


def test_batches_the_processes_cannot_share_are_refused_before_training(tmp_path: Path) -> None:
    two = DataParallel(rank=0, world=2)
    with pytest.raises(ConfigError, match="trainer.rays_per_batch = 127 is not divisible"):
        two.check_divisible("trainer.rays_per_batch", 127)
    from wisp_shacira.fields.image import ImageField, ImageNefConfig
    from wisp_shacira.grid.shacira_grid import GridConfig
    field = ImageField(GridConfig(num_levels=2, min_res=4, max_res=8, log2_table_size=6),
                       ImageNefConfig(hidden_dim=4), 3)
    coords, target = torch.rand(99, 2), torch.rand(99, 3)
    with pytest.raises(ConfigError, match="trainer.batch_size = 33 is not divisible"):
        image._distortion(field, coords, target, 33, 0, two)
    with pytest.raises(ConfigError, match="a subset of 1 pixels, fewer than the 2 processes"):
        image._distortion(field, coords, target, 2, 0, two)
    clip = np.zeros((2, 4, 4, 3), np.uint8)
    with pytest.raises(ConfigError, match="trainer.batch_size = 3 is not divisible"):
        video._random_batch_loss(video.VideoField(video.GridConfig(num_levels=2, min_res=2,
                                                                   max_res=4),
                                                  video.VideoNefConfig()),
                                 clip, 3, 0, torch.device("cpu"), two)


def test_a_single_process_is_a_no_op() -> None:
    items = torch.arange(10)
    assert SINGLE.bounds(10) == (0, 10) and SINGLE.split(items) is not None
    assert torch.equal(SINGLE.split(items), items) and SINGLE.weight(10, 10) == 1.0
    SINGLE.check_divisible("trainer.batch_size", 7)
    SINGLE.barrier()
    assert SINGLE.broadcast("x") == "x" and SINGLE.is_main and not SINGLE.distributed
    assert world_from_env({}) == 1 and world_from_env({"WORLD_SIZE": "1"}) == 1
    with pytest.raises(ConfigError, match="WORLD_SIZE"):
        world_from_env({"WORLD_SIZE": "two"})
    from wisp_shacira.fields.image import ImageField, ImageNefConfig
    from wisp_shacira.grid.shacira_grid import GridConfig
    from wisp_shacira.train.config import TrainerConfig
    field = ImageField(GridConfig(num_levels=2, min_res=4, max_res=8, log2_table_size=6),
                       ImageNefConfig(hidden_dim=4), 3)
    trainer = RDTrainer(field, TrainerConfig(iterations=2))
    assert trainer.reducer is None and trainer.parallel_report() is None
    three = DataParallel(rank=2, world=3)
    assert [DataParallel(rank=r, world=3).bounds(10) for r in range(3)] == [(0, 4), (4, 7), (7, 10)]
    assert three.weight(3, 10) == pytest.approx(0.9)
