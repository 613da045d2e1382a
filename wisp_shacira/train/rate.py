"""The one rate term and the one set of SHACIRA parameter groups.

Every trainer uses these: :class:`~wisp_shacira.train.rd.RDTrainer` (image, video and
NeRF tasks) and the Kaolin-Wisp trainer (through :class:`RateTerm`, an optimiser step
pre-hook, and :func:`refine_param_groups`).

The rate term of a step is ``lambda * bits / entries``: the prior's self-information
of the noisy latents (``ShaciraGrid.rate_bits``) averaged over all latent entries
(the paper's ``L_I``), in float32 with autocast off (Wisp trains in mixed precision).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from wisp_shacira.config import require
from wisp_shacira.grid.shacira_grid import ShaciraGrid
from wisp_shacira.train.config import TrainerConfig
from wisp_shacira.train.schedules import lambda_at, tau_at


def rate_loss(grid: ShaciraGrid, lam: float,
              sample: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lam * bits / entries, bits)``: the weighted rate (with gradients) and the
    estimated bits of the whole table (detached); zeros for an uncompressed grid."""
    with torch.autocast(device_type=grid.latents.device.type, enabled=False):
        bits = grid.rate_bits(sample).float()
    return lam * bits / grid.latents.numel(), bits.detach()


def grid_param_groups(grid: ShaciraGrid, lr_latents: float, lr_decoder: float,
                      lr_prior: float) -> list[dict]:
    """Adam groups ``latents``, ``decoder``, ``prior`` of a grid (only ``latents`` for an
    uncompressed one). ``lr_latents`` is in feature units when ``latent_step`` is set
    (see ``ShaciraGrid.latent_lr``)."""
    groups = [{"name": "latents", "params": [grid.latents], "lr": grid.latent_lr(lr_latents)}]
    if grid.config.compressed:
        groups.append({"name": "decoder", "params": list(grid.decoder.parameters()),
                       "lr": lr_decoder})
        groups.append({"name": "prior", "params": list(grid.prior.parameters()), "lr": lr_prior})
    return groups


@dataclass
class ShaciraLearningRates:
    """Learning rates of the SHACIRA parameter groups (no weight decay on any)."""

    latents: float = 0.02
    latent_decoder: float = 0.01
    prior: float = 1e-3

    def check(self) -> None:
        for name, value in dataclasses.asdict(self).items():
            require(value > 0, f"trainer.lr_{name} must be > 0, got {value}")


def refine_param_groups(optimizer: torch.optim.Optimizer, grid: ShaciraGrid,
                        lrs: ShaciraLearningRates) -> None:
    """Move a grid's latents, latent decoder and prior out of an optimiser's groups into
    the groups of :func:`grid_param_groups` (named ``shacira_latents``,
    ``shacira_decoder``, ``shacira_prior``; no weight decay).

    Call before the first step (the optimiser has no state yet). Other parameters keep
    their groups (the Kaolin-Wisp trainer's, with its weight decay).
    """
    lrs.check()
    own = grid_param_groups(grid, lrs.latents, lrs.latent_decoder, lrs.prior)
    moved = {id(p) for group in own for p in group["params"]}
    for group in optimizer.param_groups:
        group["params"] = [p for p in group["params"] if id(p) not in moved]
    eps = optimizer.defaults.get("eps", 1e-8)
    for group in own:
        optimizer.add_param_group({**group, "initial_lr": group["lr"], "eps": eps,
                                   "weight_decay": 0.0, "name": f"shacira_{group['name']}"})


def schedule_config(lambda_start: float, lambda_end: float, anneal_fraction: float,
                    tau_start: float, tau_end: float, rate_sample: int | None) -> TrainerConfig:
    """A checked :class:`TrainerConfig` carrying only the rate-distortion schedule.

    Raises:
        ConfigError: a value out of range.
    """
    cfg = TrainerConfig(lambda_start=lambda_start, lambda_end=lambda_end,
                        anneal_fraction=anneal_fraction, tau_start=tau_start, tau_end=tau_end,
                        rate_sample=rate_sample)
    cfg.check()
    return cfg


def progress_of(step: int, total_steps: int) -> float:
    """``step / total_steps`` clamped to [0, 1]."""
    return min(1.0, max(0.0, step / max(total_steps, 1)))


class RateTerm:
    """Adds the rate term to an optimiser's gradients right before each step (for a
    trainer whose loop is not ours, e.g. Kaolin-Wisp's).

    That trainer has already back-propagated its own loss when it calls
    ``optimizer.step()`` (directly or through ``GradScaler.step``, which unscales
    first); the pre-hook back-propagates the rate on top, so the step uses the gradient
    of ``distortion + rate``. A fused optimiser that unscales inside its step finds the
    loss scale in ``optimizer.grad_scale`` (set by ``GradScaler``); the hook then scales
    the rate the same way.

    Args:
        grid: the grid whose latents are coded.
        cfg: rate schedule (see :func:`schedule_config`).
    """

    def __init__(self, grid: ShaciraGrid, cfg: TrainerConfig) -> None:
        self.grid = grid
        self.cfg = cfg
        self.step = 0
        self.total_steps = 1
        self.last_bits = float("nan")

    def begin_step(self, step: int, total_steps: int) -> float | None:
        """Record the step (before its forward pass); returns its quantisation phase
        ``tau``, which the caller passes to the forward pass."""
        self.step, self.total_steps = step, total_steps
        return tau_at(self.cfg, progress_of(step, total_steps))

    def attach(self, optimizer: torch.optim.Optimizer) -> Any:
        """Register the step pre-hook; returns the removable handle."""
        return optimizer.register_step_pre_hook(self.pre_step_hook)

    def loss(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The rate term of the current step (see :func:`rate_loss`)."""
        lam = lambda_at(self.cfg, progress_of(self.step, self.total_steps))
        return rate_loss(self.grid, lam, self.cfg.rate_sample)

    def pre_step_hook(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        """Back-propagate the rate of the current step (signature of a step pre-hook)."""
        with torch.enable_grad():
            loss, bits = self.loss()
            scale = getattr(optimizer, "grad_scale", None)
            (loss if scale is None else loss * scale.float()).backward()
        self.last_bits = float(bits)
