"""Training loop of the NeRF task: random ray batches, RD steps, occupancy updates,
periodic validation, checkpoints and resume.

Each step renders ``rays_per_batch`` random training pixels with the packed tracer
and takes one :class:`~wisp_shacira.train.rd.RDTrainer` step on their MSE (plus the
rate term of a compressed grid). Every ``occupancy_every`` steps the occupancy grid
is refreshed from the field's density. ``output/checkpoint.pt`` is written every
``checkpoint_every`` steps and at the end (atomically, with the RNG state), so an
interrupted run resumed with ``resume: true`` loses at most the steps since its last
checkpoint and then follows the same trajectory as an uninterrupted run.

Under ``torchrun`` every process draws the whole ray batch (pixels, random
backgrounds and the tracer's jitter, as one process does) and renders its slice of
it; only rank 0 validates and writes checkpoints, and a checkpoint resumes under any
number of processes (:mod:`~wisp_shacira.train.distributed`).
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wisp_shacira.datasets.nerf_synthetic import NerfScene
from wisp_shacira.errors import ConfigError
from wisp_shacira.fields.nerf import RadianceField
from wisp_shacira.metrics import psnr
from wisp_shacira.render.occupancy import OccupancyGrid
from wisp_shacira.render.tracer import Tracer
from wisp_shacira.tasks.common import seed_everything, tensorboard_writer
from wisp_shacira.tasks.nerf_config import AppConfig
from wisp_shacira.train.checkpoint import load_checkpoint, restore_checkpoint, save_checkpoint
from wisp_shacira.train.distributed import SINGLE, DataParallel
from wisp_shacira.train.rate_control import file_size_probe, pass_label
from wisp_shacira.train.rd import Distortion, RDTrainer, StepHooks, StepStats

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
_NOT_COMPARED = {"output", "resume", "trainer.log_every", "trainer.val_every", "trainer.val_views",
                 "trainer.checkpoint_every", "trainer.tensorboard", "trainer.device"}


@dataclass
class TrainResult:
    """A trained field and what its training measured.

    Attributes:
        field: the field (train mode, latents not yet hardened).
        history: validation points ``{"step", "val_psnr"}``.
        seconds: wall time of the training loop (summed over resumed runs).
        resumed_from: step the run resumed from, or None.
        parallel: what a data-parallel run averaged each step (None for one process).
    """

    field: RadianceField
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    resumed_from: int | None = None
    parallel: dict | None = None


def _flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


def comparable_config(cfg: AppConfig) -> dict[str, Any]:
    """The settings a resumed run must share with its checkpoint (dotted keys)."""
    flat = _flatten(dataclasses.asdict(cfg))
    return {k: v for k, v in flat.items() if k not in _NOT_COMPARED}


def _check_same_config(saved: dict[str, Any], cfg: AppConfig, path: Path) -> None:
    current = comparable_config(cfg)
    for key in sorted(set(saved) | set(current)):
        if saved.get(key) != current.get(key):
            raise ConfigError(f"{path}: checkpoint was made with {key} = {saved.get(key)!r}, "
                              f"this run has {current.get(key)!r}; keep the settings or start "
                              f"over without --resume")


def make_distortion(field_: RadianceField, tracer: Tracer, occupancy: OccupancyGrid,
                    scene: NerfScene, cfg: AppConfig,
                    parallel: DataParallel = SINGLE) -> Distortion:
    """``distortion(tau)``: MSE of a random batch of training rays per call, the field in
    phase ``tau`` (random backgrounds if enabled). In a data-parallel run every rank
    draws the whole batch (pixels, backgrounds, the tracer's jitter: the random numbers
    one process draws) and renders its equal slice of the rays."""
    n, device = cfg.trainer.rays_per_batch, scene.images.device
    bg = torch.tensor(cfg.dataset.bg_color, device=device)

    def distortion(tau: float | None) -> torch.Tensor:
        view = parallel.split(torch.randint(scene.num_views, (n,), device=device))
        row = parallel.split(torch.randint(scene.H, (n,), device=device))
        col = parallel.split(torch.randint(scene.W, (n,), device=device))
        origins, dirs, target = scene.pixel_rays(view, row, col)
        ray_bg = None
        if cfg.trainer.random_bg:
            ray_bg = parallel.split(torch.rand(n, 3, device=device))
            clear = (1.0 - scene.alphas[view, row, col])[:, None]
            target = target + (ray_bg - bg) * clear
        query = field_.query(tau=tau)
        jitter = None
        if parallel.distributed and tracer.config.jitter:
            jitter = parallel.split(torch.rand((n, tracer.config.num_samples), device=device,
                                               dtype=origins.dtype))
        rgb = tracer.render_rays(query, origins, dirs, occupancy, bg_color=ray_bg,
                                 jitter=jitter)["rgb"]
        return torch.mean((rgb - target) ** 2)

    return distortion


@torch.no_grad()
def validate(field_: RadianceField, tracer: Tracer, occupancy: OccupancyGrid, scene: NerfScene,
             views: int) -> float:
    """Mean PSNR (float renders, hard-rounded latents) of ``views`` evenly spaced views."""
    picks = np.unique(np.linspace(0, scene.num_views - 1, min(views, scene.num_views)).round())
    query = field_.query()
    values = []
    for v in picks.astype(int):
        fx, fy, cx, cy = (float(x) for x in scene.intrinsics[v])
        rgb = tracer.render_image(query, scene.c2w[v], fx, fy, cx, cy, scene.H, scene.W,
                                  occupancy)["rgb"]
        values.append(psnr(rgb.clamp(0, 1).cpu().numpy(), scene.images[v].cpu().numpy()))
    return float(np.mean(values))


class _Loop(StepHooks):
    """State of one training run (field, trainer, occupancy, bookkeeping) and its
    per-step work around the shared trainer's loop: occupancy updates before a step;
    validation, checkpoints, timing and TensorBoard after it."""

    def __init__(self, cfg: AppConfig, device: torch.device, out_dir: Path, config: dict,
                 val_scene: NerfScene | None, scale: float = 1.0,
                 parallel: DataParallel = SINGLE) -> None:
        seed_everything(cfg.trainer.seed)
        self.cfg = cfg
        self.main = parallel.is_main
        self.field = RadianceField(cfg.grid, cfg.nef).to(device)
        self.tracer = Tracer(cfg.tracer)
        self.occupancy = OccupancyGrid(cfg.trainer.occupancy_resolution,
                                       warmup_steps=cfg.trainer.occupancy_warmup).to(device)
        self.trainer = RDTrainer(self.field, cfg.trainer, file_size_probe(self.field, config),
                                 scale, parallel)
        self.path = out_dir / CHECKPOINT_NAME
        self.result = TrainResult(self.field)
        self.writer = tensorboard_writer(cfg.trainer.tensorboard and self.main,
                                         out_dir / "tensorboard")
        self.val_scene = val_scene if self.main else None
        self._started = time.perf_counter()

    def resume(self) -> None:
        state = load_checkpoint(self.path)
        _check_same_config(state["extra"]["config"], self.cfg, self.path)
        step = restore_checkpoint(state, self.field, self.trainer.optimizer,
                                  {"occupancy": self.occupancy})
        self.trainer.step_idx = step
        self.result.history = list(state["extra"]["history"])
        self.result.seconds = float(state["extra"]["seconds"])
        self.result.resumed_from = step
        log.info("resumed from %s at step %d", self.path, step)

    def save(self) -> None:
        extra = {"config": comparable_config(self.cfg), "history": self.result.history,
                 "seconds": self.result.seconds}
        save_checkpoint(self.path, self.field, self.trainer.optimizer, self.trainer.step_idx,
                        {"occupancy": self.occupancy}, extra)

    def before_step(self, step: int, tau: float | None) -> None:
        """Refresh the occupancy from the field as the last step left it: in the phase of
        that step (hard rounding before the first), not in the phase of the coming one."""
        self._started = time.perf_counter()
        if step % self.cfg.trainer.occupancy_every == 0:
            last = self.trainer.tau(step - 1) if step > 0 else None
            with torch.no_grad():
                self.occupancy.update(self.field.query(tau=last).density, step)

    def after_step(self, steps_done: int, stats: StepStats) -> None:
        tcfg = self.cfg.trainer
        if self.val_scene is not None and tcfg.val_every and steps_done % tcfg.val_every == 0:
            value = validate(self.field, self.tracer, self.occupancy, self.val_scene,
                             tcfg.val_views)
            self.result.history.append({"step": steps_done, "val_psnr": value})
            if self.writer is not None:
                self.writer.add_scalar("val/psnr", value, steps_done)
        if self.writer is not None and steps_done % tcfg.log_every == 0:
            self.writer.add_scalar("train/psnr", stats.psnr, steps_done)
            self.writer.add_scalar("train/bits", stats.bits, steps_done)
        self.result.seconds += time.perf_counter() - self._started
        if self.main and ((tcfg.checkpoint_every and steps_done % tcfg.checkpoint_every == 0)
                          or steps_done == tcfg.iterations):
            self.save()

    def postfix(self) -> dict[str, str]:
        out = {"occ": f"{self.occupancy.occupancy_fraction():.2f}"}
        if self.result.history:
            out["val"] = f"{self.result.history[-1]['val_psnr']:.2f}"
        return out


def train_field(cfg: AppConfig, train_scene: NerfScene, val_scene: NerfScene | None,
                device: torch.device, out_dir: Path, config: dict,
                scale: float = 1.0, parallel: DataParallel = SINGLE) -> TrainResult:
    """Train (or resume) a radiance field; see the module docstring.

    Args:
        train_scene: training views, on ``device``.
        val_scene: views for periodic validation (None = no validation).
        config: the file's CONFIG (for the size shown while training).
        scale: multiplier of the lambda schedule (a rate-control pass).
        parallel: the data-parallel process group: every rank trains on its slice of
            each batch and resumes from the same checkpoint (made by any number of
            processes); only the main one validates and writes checkpoints.

    Raises:
        ConfigError: ``trainer.rays_per_batch`` not divisible by the number of processes.
    """
    parallel.check_divisible("trainer.rays_per_batch", cfg.trainer.rays_per_batch)
    loop = _Loop(cfg, device, out_dir, config, val_scene, scale, parallel)
    if cfg.resume:
        loop.resume()
    elif loop.path.exists() and parallel.is_main:
        log.warning("%s exists and will be replaced (pass --resume to continue it)", loop.path)
    if cfg.trainer.checkpoint_every and parallel.is_main:
        log.info("checkpoint every %d steps in %s; continue an interrupted run with "
                 "--output %s --resume", cfg.trainer.checkpoint_every, loop.path, out_dir)
    distortion = make_distortion(loop.field, loop.tracer, loop.occupancy, train_scene, cfg,
                                 parallel)
    loop.field.train()
    loop.trainer.run(distortion, pass_label("nerf", scale), hooks=[loop])
    if loop.writer is not None:
        loop.writer.close()
    loop.result.parallel = loop.trainer.parallel_report()
    return loop.result
