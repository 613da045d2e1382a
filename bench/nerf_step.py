"""Steps per second of the whole NeRF training step (helper of ``bench/nerf_lego.py``).

One step is what ``wisp-shacira encode`` runs per iteration: a batch of random training
rays, the packed tracer with the occupancy grid (marching rounds with early stop), the
radiance field, the rate term, Adam; plus the occupancy update every
``trainer.occupancy_every`` steps. After ``warmup`` steps (past the occupancy warm-up,
so empty space is skipped as in the rest of training) the next ``steps`` are timed,
for two paths from the same seed:

- ``before``: the path before issue 16: the latent table decoded every step, and on
  CUDA the torch encoding (``WISP_SHACIRA_ENCODING=torch``; on a CPU the automatic
  numba kernels, as before);
- ``after``: the automatic choice: the fused Triton kernel on CUDA (numba on a CPU) and
  interpolate-first where it costs less.

Also one held-out view rendered at full size (seconds), which ``bench/gpu_check.py``
uses to size the paper-scale run.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Iterator
from unittest import mock

import torch

from wisp_shacira.fields.nerf import RadianceField
from wisp_shacira.grid import shacira_grid
from wisp_shacira.grid.fast import ENV_VAR
from wisp_shacira.render.occupancy import OccupancyGrid
from wisp_shacira.render.tracer import Tracer
from wisp_shacira.tasks import nerf
from wisp_shacira.tasks.common import seed_everything
from wisp_shacira.tasks.nerf_train import make_distortion
from wisp_shacira.train.rd import RDTrainer, resolve_device


@contextmanager
def todays_path(device: torch.device) -> Iterator[None]:
    """The encoding as it was before issue 16: the table decoded first; on CUDA the torch path."""
    old = os.environ.get(ENV_VAR)
    if device.type == "cuda":
        os.environ[ENV_VAR] = "torch"
    try:
        with mock.patch.object(shacira_grid.ShaciraGrid, "step_table",
                               lambda self, tau=None: self.decoded_table(tau)), \
                mock.patch.object(shacira_grid, "latents_first_pays", lambda *args: False):
            yield
    finally:
        os.environ.pop(ENV_VAR, None)
        if old is not None:
            os.environ[ENV_VAR] = old


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time_steps(cfg: nerf.AppConfig, train, device: torch.device, steps: int,
                warmup: int) -> tuple[dict, RadianceField, OccupancyGrid, Tracer]:
    """Train ``warmup`` steps, time ``steps`` more; returns the timing and the pieces."""
    seed_everything(cfg.trainer.seed)
    field = RadianceField(cfg.grid, cfg.nef).to(device)
    tracer = Tracer(cfg.tracer)
    occupancy = OccupancyGrid(cfg.trainer.occupancy_resolution,
                              warmup_steps=cfg.trainer.occupancy_warmup).to(device)
    trainer = RDTrainer(field, cfg.trainer)
    distortion = make_distortion(field, tracer, occupancy, train, cfg)
    field.train()
    start = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            _sync(device)
            start = time.perf_counter()
        if step % cfg.trainer.occupancy_every == 0:
            with torch.no_grad():
                tau = trainer.tau(step - 1) if step > 0 else None
                occupancy.update(field.query(tau=tau).density, step)
        trainer.step(distortion)
    _sync(device)
    elapsed = time.perf_counter() - start
    timing = {"steps": steps, "seconds": elapsed, "steps_per_s": steps / elapsed,
              "ms_per_step": 1e3 * elapsed / steps,
              "occupancy": occupancy.occupancy_fraction()}
    return timing, field, occupancy, tracer


def _render_seconds(field: RadianceField, occupancy: OccupancyGrid, tracer: Tracer, held,
                    device: torch.device) -> float:
    """Seconds to render the first held-out view at full size (no gradients)."""
    fx, fy, cx, cy = (float(v) for v in held.intrinsics[0])
    field.eval()
    _sync(device)
    start = time.perf_counter()
    tracer.render_image(field.query(), held.c2w[0].to(device), fx, fy, cx, cy, held.H, held.W,
                        occupancy)
    _sync(device)
    return time.perf_counter() - start


def step_timing(cfg: nerf.AppConfig, steps: int, warmup: int) -> dict:
    """Steps per second before and after (see the module docstring), and the speed-up."""
    scene, _, root = nerf.load_scene(cfg.dataset)
    device = resolve_device(cfg.trainer.device)
    train = scene.split("train").to(device)
    held = scene.split(nerf.held_out_split(scene, root))
    report: dict = {"device": str(device), "rays_per_batch": cfg.trainer.rays_per_batch,
                    "height": scene.H, "width": scene.W, "warmup": warmup,
                    "log2_table_size": cfg.grid.log2_table_size,
                    "num_levels": cfg.grid.num_levels, "feature_dim": cfg.grid.feature_dim,
                    "latent_dim": cfg.grid.latent_dim}
    with todays_path(device):
        report["before"] = _time_steps(cfg, train, device, steps, warmup)[0]
    report["after"], field, occupancy, tracer = _time_steps(cfg, train, device, steps, warmup)
    report["speedup"] = report["after"]["steps_per_s"] / report["before"]["steps_per_s"]
    report["render_s_per_view"] = _render_seconds(field, occupancy, tracer, held, device)
    report["held_out_views"] = len(held.names)
    return report


def format_timing(report: dict) -> str:
    """Two lines: the step times before and after, and the render time."""
    before, after = report["before"], report["after"]
    return (f"NeRF training step on {report['device']}, {report['rays_per_batch']} rays, "
            f"{report['width']}x{report['height']} views, T = 2^{report['log2_table_size']}, "
            f"{report['num_levels']} levels, F = {report['feature_dim']}, "
            f"D = {report['latent_dim']}, timed after {report['warmup']} steps:\n"
            f"  before (table decoded; CUDA: torch path): {before['steps_per_s']:.1f} steps/s "
            f"({before['ms_per_step']:.1f} ms), occupancy {before['occupancy']:.2f}\n"
            f"  after (automatic):                        {after['steps_per_s']:.1f} steps/s "
            f"({after['ms_per_step']:.1f} ms), occupancy {after['occupancy']:.2f}; "
            f"x{report['speedup']:.2f}\n"
            f"  one held-out view rendered in {report['render_s_per_view']:.2f} s")
